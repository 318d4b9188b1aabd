"""What a person sees: the digits map in a real browser (WebGL), a box selection, its rows."""

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from components.selection import rows_in_selection
from tests.e2e.conftest import wait_idle

pytestmark = pytest.mark.e2e


def _darkest(png: bytes) -> np.ndarray:
    """Each pixel's smallest channel (0 black .. 255 white), shape (height, width)."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int).min(axis=2)


def _ink(png: bytes) -> float:
    """Share of pixels that are not (near) white."""
    return float((_darkest(png) < 235).mean())


def test_digits_map_box_select(page, shots_dir, app_home):
    from playwright.sync_api import expect

    # the default UMAP of digits is computed on first visit, then the map is drawn
    expect(page.get_by_text(re.compile(r"1,797 of 1,797 points drawn")).first).to_be_visible(timeout=300_000)
    plot = page.get_by_test_id("map-plot")
    expect(plot).to_have_attribute("data-drawn", "1797", timeout=30_000)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    legend = page.get_by_test_id("map-legend")
    expect(legend.locator("[data-category='0']")).to_be_visible()  # categorical legend of `digit`
    # the faithfulness scores arrive a moment later and rerun the page: select after that
    expect(page.get_by_text(re.compile(r"Trustworthiness \(k=10\)"))).to_be_visible(timeout=120_000)
    wait_idle(page)
    ink = _ink(plot.screenshot())
    assert 0.02 < ink < 0.9, f"the map looks blank ({ink:.1%} of pixels drawn)"
    page.screenshot(path=str(shots_dir / "map.png"), full_page=False)

    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=12)
    page.mouse.up()
    sel = page.get_by_text(re.compile(r"^\d[\d,]* selected points$"))
    expect(sel).to_be_visible(timeout=30_000)
    wait_idle(page)
    n = int(sel.inner_text().split()[0].replace(",", ""))
    # the same rows as rows_in_selection on the stored projection (every row, server side)
    geometry = json.loads(plot.get_attribute("data-selection"))
    art_id = plot.get_attribute("data-coords-id")
    proj = pd.read_parquet(app_home / "artifacts" / art_id / "projection.parquet")
    expected = rows_in_selection(proj, geometry)
    assert 0 < n == len(expected) < 1797
    # the browser draws the same points as selected: strong colours inside the box, only the
    # faded twins (each channel >= 255 - 0.3 * 255, blending only lightens) outside it
    expect(plot).to_have_attribute("data-selected", str(n))
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 40)  # no hover tip or ring
    expect(page.get_by_test_id("map-tip")).to_be_hidden()
    shot = _darkest(plot.screenshot())
    h, w = shot.shape
    outside = np.ones_like(shot, dtype=bool)
    outside[int(0.2 * h) - 12:int(0.6 * h) + 12, int(0.25 * w) - 12:int(0.6 * w) + 12] = False
    outside[:3], outside[-3:], outside[:, :3], outside[:, -3:] = False, False, False, False  # border
    assert shot[outside].min() >= 170, shot[outside].min()
    assert shot[int(0.2 * h):int(0.6 * h), int(0.25 * w):int(0.6 * w)].min() < 120
    with page.expect_download() as dl:
        page.get_by_role("button", name=re.compile(r"Download the .* rows \(CSV\)")).click()
    got = pd.read_csv(dl.value.path())
    np.testing.assert_array_equal(got["_row"].to_numpy(), expected)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(page.get_by_test_id("stImage").first).to_be_visible()  # digit images of the selection
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=str(shots_dir / "selection.png"), full_page=True)

    # a colour change moves one column (the coordinates stay in the browser) and keeps the selection
    color_id = plot.get_attribute("data-color-id")
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(
        has_text="Colour by").click()
    page.get_by_role("option", name="(none)").click()
    expect(plot).not_to_have_attribute("data-color-id", color_id, timeout=30_000)
    wait_idle(page)
    expect(legend.locator("[data-category]")).to_have_count(0)
    assert plot.get_attribute("data-coords-loads") == "1"
    expect(page.get_by_text(f"{n:,} selected points")).to_be_visible()
    expect(plot).to_have_attribute("data-selected", str(n))
    assert _ink(plot.screenshot()) > 0.02
    page.screenshot(path=str(shots_dir / "colour.png"), full_page=False)

    # in pan mode a drag moves the view with the mouse and selects nothing
    plot.locator("xpath=..").get_by_role("button", name="Pan", exact=True).click()
    row = int(expected[0])
    x0, y0 = plot.evaluate("(el, r) => el.screenOfRow(r)", row)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5 + 60, box["y"] + box["height"] * 0.5 + 40, steps=6)
    page.mouse.up()
    x1, y1 = plot.evaluate("(el, r) => el.screenOfRow(r)", row)
    assert abs(x1 - x0 - 60) < 3 and abs(y1 - y0 - 40) < 3, (x0, y0, x1, y1)
    expect(plot).to_have_attribute("data-selected", str(n))

    # Escape with the pointer over the map clears the selection, in the browser and the page
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.9)
    page.keyboard.press("Escape")
    expect(plot).to_have_attribute("data-selected", "0", timeout=30_000)
    expect(page.get_by_text(f"{n:,} selected points")).to_have_count(0, timeout=30_000)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_hidden_legend_category_is_not_lassoed(page, shots_dir, app_home):
    """Issue 17 item 9: with a legend entry hidden, a lasso selects only what is shown."""
    from playwright.sync_api import expect

    plot = page.get_by_test_id("map-plot")
    expect(plot).to_have_attribute("data-drawn", "1797", timeout=300_000)
    wait_idle(page)
    page.get_by_test_id("map-legend").locator("[data-category='0']").click()
    expect(page.get_by_text(re.compile(r"Hidden in the legend: 0\."))).to_be_visible(timeout=30_000)
    wait_idle(page)
    page.get_by_role("button", name="Lasso", exact=True).click()
    box = plot.bounding_box()
    corners = [(0.02, 0.02), (0.98, 0.02), (0.98, 0.98), (0.02, 0.98), (0.02, 0.03)]
    page.mouse.move(box["x"] + box["width"] * 0.02, box["y"] + box["height"] * 0.02)
    page.mouse.down()
    for fx, fy in corners[1:]:
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy, steps=15)
    page.mouse.up()
    sel = page.get_by_text(re.compile(r"^\d[\d,]* selected points$"))
    expect(sel).to_be_visible(timeout=30_000)
    wait_idle(page)
    n = int(sel.inner_text().split()[0].replace(",", ""))
    geometry = json.loads(plot.get_attribute("data-selection"))
    assert "lasso" in geometry and len(geometry["lasso"][0]["x"]) <= 200
    proj = pd.read_parquet(app_home / "artifacts" / plot.get_attribute("data-coords-id") / "projection.parquet")
    inside = rows_in_selection(proj, geometry)
    zeros = set(np.flatnonzero(pd.read_parquet(_digits_table(app_home))["digit"].astype(str) == "0"))
    expected = [r for r in inside if r not in zeros]
    assert len(inside) > 1500 and n == len(expected) == len(inside) - len(zeros & set(inside))
    page.screenshot(path=str(shots_dir / "hidden.png"), full_page=False)


def _digits_table(home):
    found = sorted(home.glob("datasets/*/table.parquet")) or sorted(home.glob("datasets/**/*.parquet"))
    for f in found:
        if "digit" in pd.read_parquet(f).columns:
            return f
    raise FileNotFoundError("the digits table is not in the workspace")
