"""Clusters and linked charts in a real browser: click a bar of the digit chart, the map and
the selection follow; compute clusters; the copied URL reopens the same view."""

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
    wait_idle(page, settle_ms=1500)
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
    wait_idle(page, settle_ms=1000)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=str(shots_dir / "clusters.png"), full_page=True)
    url = page.url
    assert "clu=" in url and "filters=" in url and "proj=" in url

    other = browser.new_context(viewport={"width": 1400, "height": 1500}).new_page()
    other.set_default_timeout(60_000)
    other.goto(url, wait_until="domcontentloaded")
    expect(other.get_by_text(re.compile(rf"{n:,} of 1,797 rows pass"))).to_be_visible(timeout=120_000)
    other.get_by_role("tab", name="Clusters").click()
    expect(other.get_by_text(re.compile(r"Unclustered: \d"))).to_be_visible(timeout=60_000)
    wait_idle(other, settle_ms=1000)
    other.screenshot(path=str(shots_dir / "reopened.png"), full_page=True)
    other.context.close()
