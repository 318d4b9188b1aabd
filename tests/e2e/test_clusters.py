"""Clusters and linked charts in a real browser: click a bar of the digit chart, the map and
the selection follow; compute clusters, whose names and the density are layers of the WebGL
map; the copied URL reopens the same view."""

import re

import pytest

from tests.e2e.conftest import wait_idle

pytestmark = pytest.mark.e2e


def test_chart_filter_clusters_and_link(page, shots_dir, browser):
    from playwright.sync_api import expect

    page.screenshot(path=str(shots_dir / "clusters-start.png"))
    expect(page.get_by_text(re.compile(r"1,797 of 1,797 points drawn")).first).to_be_visible(
        timeout=240_000)
    expect(page.get_by_text(re.compile(r"Trustworthiness \(k=10\)"))).to_be_visible(timeout=240_000)
    wait_idle(page, settle_ms=1000)
    charts = page.get_by_test_id("stPlotlyChart")
    digit_chart = charts.nth(0)  # the Filters area's chart of `digit` (the map is WebGL)
    expect(digit_chart.locator(".bars path").first).to_be_visible(timeout=30_000)
    bar = digit_chart.locator(".bars path").first.bounding_box()
    area = digit_chart.locator(".nsewdrag").first.bounding_box()
    # brush (box-select) across the first bar only
    page.mouse.move(bar["x"] - 2, area["y"] + 2)
    page.mouse.down()
    page.mouse.move(bar["x"] + bar["width"] + 2, area["y"] + area["height"] - 2, steps=8)
    page.mouse.up()
    wait_idle(page)
    page.screenshot(path=str(shots_dir / "clusters-brushed.png"), full_page=True)
    passing = page.get_by_text(re.compile(r"\d[\d,]* of 1,797 rows pass"))
    expect(passing).to_be_visible(timeout=30_000)
    n = int(re.search(r"([\d,]+) of 1,797", passing.inner_text()).group(1).replace(",", ""))
    assert 100 < n < 250  # one digit: about a tenth of the rows
    page.screenshot(path=str(shots_dir / "clusters-filtered.png"), full_page=True)
    expect(page.get_by_text(f"{n:,} selected points", exact=True)).to_be_visible(timeout=30_000)

    page.get_by_role("tab", name="Clusters").click()
    page.get_by_role("button", name="Compute clusters").click()
    expect(page.get_by_text(re.compile(r"Unclustered: \d"))).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=str(shots_dir / "clusters.png"), full_page=True)
    url = page.url
    assert "clu=" in url and "filters=" in url and "proj=" in url
    _names_and_density_layers(page, shots_dir)

    other = browser.new_context(viewport={"width": 1400, "height": 1500}).new_page()
    other.set_default_timeout(60_000)
    other.goto(url, wait_until="domcontentloaded")
    expect(other.get_by_text(re.compile(rf"{n:,} of 1,797 rows pass"))).to_be_visible(timeout=120_000)
    other.get_by_role("tab", name="Clusters").click()
    expect(other.get_by_text(re.compile(r"Unclustered: \d"))).to_be_visible(timeout=60_000)
    wait_idle(other)
    other.screenshot(path=str(shots_dir / "reopened.png"), full_page=True)
    other.context.close()


def _labels(plot) -> tuple[int, int]:
    return int(plot.get_attribute("data-labels-drawn")), int(plot.get_attribute("data-labels-total"))


def _names_and_density_layers(page, shots_dir):
    """Cluster names are written on the WebGL map and thinned when zooming out; the density
    is drawn under the points; neither moves the coordinates again nor falls back to plotly."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    plot = page.get_by_test_id("map-plot")
    expect(plot).to_have_attribute("data-labels-total", re.compile(r"^[1-9]\d*$"), timeout=30_000)
    drawn, total = _labels(plot)
    assert 0 < drawn <= total
    n_charts = page.get_by_test_id("stPlotlyChart").count()
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").filter(has_text="Colour by").click()
    page.get_by_role("option", name="cluster", exact=True).click()
    sidebar.get_by_text("Density contours").click()
    expect(plot).to_have_attribute("data-density", re.compile(r"^[0-9a-f]{20}$"), timeout=30_000)
    wait_idle(page, settle_ms=1000)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert page.get_by_test_id("stPlotlyChart").count() == n_charts  # still the WebGL map
    assert plot.get_attribute("data-coords-loads") == "1"  # layers moved no coordinates
    assert plot.get_attribute("data-density-loads") == "1"
    assert _labels(plot) == (drawn, total)
    plot.screenshot(path=str(shots_dir / "clusters-layers.png"))

    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    crowded = "el => Number(el.dataset.labelsDrawn) < Number(el.dataset.labelsTotal)"
    for _ in range(12):  # zoom out step by step until the names crowd: the smaller clusters' go
        page.mouse.wheel(0, 120)
        try:
            page.wait_for_function(crowded, arg=plot.element_handle(), timeout=2_000)
            break
        except PlaywrightTimeout:
            continue
    assert 0 < _labels(plot)[0] < total
    plot.screenshot(path=str(shots_dir / "clusters-layers-zoomed-out.png"))
    page.get_by_role("button", name="Reset view").click()  # back in: every name again
    expect(plot).to_have_attribute("data-labels-drawn", str(drawn), timeout=30_000)
    sidebar.get_by_text("Density contours").click()
    expect(plot).to_have_attribute("data-density", "none", timeout=30_000)
