"""What a person sees: the digits map in a real browser, a box selection, the selected rows."""

import re

import pytest

from tests.e2e.conftest import wait_idle

pytestmark = pytest.mark.e2e


def test_digits_map_box_select(page, shots_dir):
    from playwright.sync_api import expect

    # the default UMAP of digits is computed on first visit, then the map is drawn
    expect(page.get_by_text(re.compile(r"1,797 of 1,797 points drawn"))).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart.locator(".js-plotly-plot")).to_be_visible(timeout=30_000)
    expect(chart.locator(".legendtext").first).to_be_visible()  # categorical legend of `digit`
    # the faithfulness scores arrive a moment later and rerun the page: select after that
    expect(page.get_by_text(re.compile(r"Trustworthiness \(k=10\)"))).to_be_visible(timeout=120_000)
    wait_idle(page, settle_ms=1000)
    page.screenshot(path=str(shots_dir / "map.png"), full_page=False)

    drag = chart.locator(".nsewdrag").first
    box = drag.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=12)
    page.mouse.up()
    wait_idle(page, settle_ms=1000)
    sel = page.get_by_text(re.compile(r"^\d[\d,]* selected points$"))
    expect(sel).to_be_visible(timeout=30_000)
    n = int(sel.inner_text().split()[0].replace(",", ""))
    assert 0 < n < 1797
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(page.get_by_test_id("stImage").first).to_be_visible()  # digit images of the selection
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=str(shots_dir / "selection.png"), full_page=True)
