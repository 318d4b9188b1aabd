"""What a person sees on the Globe page: airports on a globe beside their map, a click on the globe
ringed on the map, a box on the map lit up on the globe, and a trained encoder's heat map
(screenshots to $E2E_SHOTS)."""

import re

import pytest

from tests.e2e.conftest import wait_idle

pytestmark = pytest.mark.e2e


def _canvas_pixels(page, locator) -> dict:
    """Colour statistics of the globe's WebGL canvas, read back in the page."""
    return locator.evaluate("""(el) => {
        const src = el.querySelector('canvas');
        const c = document.createElement('canvas');
        c.width = src.width; c.height = src.height;
        const g = c.getContext('2d');
        g.drawImage(src, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let painted = 0, globe = 0, bright = 0;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i + 3] === 0) continue;
            painted++;
            const [r, gg, b] = [d[i], d[i + 1], d[i + 2]];
            if (Math.abs(r - 32) < 12 && Math.abs(gg - 44) < 12 && Math.abs(b - 62) < 12) globe++;
            else bright++;
        }
        return {w: c.width, h: c.height, painted, globe, other: bright};
    }""")


@pytest.mark.own_start
def test_globe_page_airports(page, app_url, shots_dir):
    from playwright.sync_api import expect

    page.goto(app_url + "/globe", wait_until="domcontentloaded")
    wait_idle(page)
    page.get_by_role("button", name=re.compile("US airports")).click()
    wait_idle(page, settle_ms=1000)
    deck = page.get_by_test_id("stDeckGlJsonChart").first
    expect(deck.locator("canvas").first).to_be_visible(timeout=60_000)
    plot = page.get_by_test_id("map-plot")  # the UMAP beside it: the WebGL map
    expect(plot).to_have_attribute("data-drawn", "3376", timeout=180_000)
    wait_idle(page, settle_ms=2500)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    stats = _canvas_pixels(page, deck)
    # a sphere, not a flat map: the canvas is mostly transparent around a disc of the globe colour
    assert stats["globe"] > 0.15 * stats["w"] * stats["h"], stats
    assert stats["painted"] < 0.8 * stats["w"] * stats["h"], stats
    assert stats["other"] > 200, stats  # the airports (coloured points)
    page.screenshot(path=str(shots_dir / "globe.png"), full_page=False)

    # a click on an airport on the globe rings it on the map (the view opens on the airports)
    box = deck.bounding_box()
    for dx in range(0, 60, 8):
        page.mouse.click(box["x"] + box["width"] / 2 - dx, box["y"] + box["height"] / 2 + 5)
        wait_idle(page, settle_ms=1200)
        if page.get_by_text(re.compile("1 clicked on the globe")).count():
            break
    expect(page.get_by_text(re.compile(r"1 selected points \(1 clicked on the globe\)"))).to_be_visible()
    expect(plot).to_have_attribute("data-ringed", "1")
    plot.screenshot(path=str(shots_dir / "globe_click_map.png"))
    page.screenshot(path=str(shots_dir / "globe_click.png"), full_page=False)

    # a box on the map lights those airports up on the globe
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.7, steps=12)
    page.mouse.up()
    wait_idle(page, settle_ms=1500)
    sel = page.get_by_text(re.compile(r"^\d[\d,]* selected points"))
    expect(sel).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"\d selected on the map"))).to_be_visible()
    n = int(sel.inner_text().split()[0].replace(",", ""))
    assert 1 < n < 3376
    page.screenshot(path=str(shots_dir / "globe_selection.png"), full_page=False)

    # train a small encoder on the airports' state: its heat map appears on the globe
    page.get_by_role("tab", name="Location encoder").click()
    page.get_by_role("spinbutton", name="Epochs (at most)").fill("15")
    page.get_by_role("button", name="Train the location encoder").click()
    expect(page.get_by_text(re.compile("Accuracy"))).to_be_visible(timeout=180_000)
    expect(page.get_by_text(re.compile("Heat map: the trained encoder"))).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.get_by_role("heading", name="Globe").scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir / "globe_heatmap.png"), full_page=False)
