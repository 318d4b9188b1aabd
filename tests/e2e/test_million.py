"""Issue 13: a 1,000,000-point map in a real browser (headless chromium, software WebGL).

Every point is drawn (none sampled), the wire carries at most 16 bytes a point, and a box
drag over about half of the map selects, on the server, exactly the rows inside the box, and the
browser draws those points as selected.
The page is the map benchmark's (bench/map_scale_app.py: the map component on a stored
projection), so the test measures the component, not a projection job."""

import io
import json
import re
import sys

import numpy as np
import pandas as pd
import pytest

from components.selection import rows_in_selection
from tests.e2e.conftest import ROOT, _free_port, start_app, stop_app, wait_idle

pytestmark = pytest.mark.e2e
N = 1_000_000


def test_a_million_points_drawn_and_box_selected(browser, tmp_path):
    from playwright.sync_api import expect

    sys.path.insert(0, str(ROOT / "bench"))
    from map_scale import make_points

    make_points(N, tmp_path)
    log = (tmp_path / "streamlit.log").open("w")
    port = _free_port()
    proc = start_app(port, tmp_path / "home", log,
                     script=ROOT / "bench" / "map_scale_app.py",
                     env={"MAP_SCALE_DIR": str(tmp_path)})
    ctx = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = ctx.new_page()
    received: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: received.append(
        len(f) if isinstance(f, (bytes, str)) else 0)))
    try:
        page.goto(f"http://127.0.0.1:{port}/?n={N}", wait_until="domcontentloaded")
        plot = page.get_by_test_id("map-plot")
        expect(plot).to_have_attribute("data-drawn", str(N), timeout=300_000)
        wait_idle(page)
        expect(page.get_by_text(f"{N:,} of {N:,} drawn")).to_be_visible()
        assert sum(received) / N <= 16 + 0.5, sum(received) / N  # 0.5: bundle and page
        page.screenshot(path=str(tmp_path / "million.png"))
        from PIL import Image  # the points are visible: a fifth of the plot is not white
        ink = (np.asarray(Image.open(io.BytesIO(plot.screenshot())).convert("RGB")).min(axis=2) < 235).mean()
        assert ink > 0.2, ink

        box = plot.locator("canvas.sel").bounding_box()
        x0, y0, x1, y1 = box["width"] * 0.05, box["height"] * 0.05, box["width"] * 0.5, box["height"] * 0.95
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        page.mouse.move(box["x"] + x1, box["y"] + y1, steps=8)
        page.mouse.up()
        sel = page.get_by_text(re.compile(r"^[\d,]+ selected$"))
        expect(sel).to_be_visible(timeout=300_000)
        wait_idle(page)
        n = int(sel.inner_text().split()[0].replace(",", ""))
        points = pd.read_parquet(tmp_path / f"points_{N}.parquet", columns=["_row", "x", "y"])
        expected = rows_in_selection(points, json.loads(plot.get_attribute("data-selection")))
        assert 300_000 < n == len(expected) < 700_000
        expect(plot).to_have_attribute("data-selected", str(n))  # the points drawn as selected
        # ... and they are the points the renderer draws inside the dragged rectangle
        on_screen = plot.evaluate(
            """(el, [x0, y0, x1, y1]) => { const sp = el.llmap.sp; let k = 0;
                 for (let i = 0; i < el.llmap.coords.x.length; i++) {
                   const [x, y] = sp.getScreenPosition(i);
                   if (x >= x0 && x <= x1 && y >= y0 && y <= y1) k++; }
                 return k; }""", [x0, y0, x1, y1])
        assert abs(on_screen - n) <= 1e-4 * N, (on_screen, n)
        expect(page.get_by_test_id("stException")).to_have_count(0)
    finally:
        ctx.close()
        stop_app(proc)
        log.close()
