"""What a person sees on the Graph page: the karate club drawn with its edges, coloured by faction,
the diagnostics beside it, and a picked node with its neighbours (screenshots to $E2E_SHOTS)."""

import re

import pytest

from tests.e2e.conftest import wait_idle
from tests.e2e.test_browser import _ink

pytestmark = pytest.mark.e2e


@pytest.mark.own_start
def test_graph_page_karate_club(page, app_url, shots_dir):
    from playwright.sync_api import expect

    page.goto(app_url + "/graph", wait_until="domcontentloaded")
    wait_idle(page)
    page.get_by_role("button", name=re.compile("Karate club")).click()
    wait_idle(page)
    expect(page.get_by_text(re.compile(r"34 nodes and 78 of 78 edges drawn"))).to_be_visible(
        timeout=120_000)
    expect(page.get_by_text(re.compile(r"mAP, 1 hop"))).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # the WebGL map with its edge layer under the nodes
    plot = page.get_by_test_id("map-plot")
    expect(plot).to_have_attribute("data-drawn", "34", timeout=30_000)
    expect(plot).to_have_attribute("data-edges-drawn", "78", timeout=30_000)
    legend = page.get_by_test_id("map-legend").locator("[data-category]")
    assert sorted(legend.evaluate_all("els => els.map(e => e.dataset.category)")) == ["Mr. Hi", "Officer"]
    assert _ink(plot.screenshot()) > 0.01
    plot.screenshot(path=str(shots_dir / "graph-map.png"))
    page.screenshot(path=str(shots_dir / "graph.png"), full_page=False)

    # a node picked: its 16 neighbours listed and ringed on the graph
    page.get_by_test_id("stSelectbox").filter(has_text="Select a node").click()
    page.get_by_role("option", name="0 (node 0)", exact=True).click()
    wait_idle(page, settle_ms=1500)
    expect(page.get_by_text(re.compile(r"16 neighbours"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"1 selected"))).to_be_visible()
    expect(plot).to_have_attribute("data-ringed", "1")
    expect(plot).to_have_attribute("data-ringed-context", "16")  # the neighbours, orange
    plot.screenshot(path=str(shots_dir / "graph-map-selection.png"))

    # hover: the row and its colour at once, then the page's hover columns of that node
    px, py = plot.evaluate("el => el.screenOfRow(33)")
    box = plot.bounding_box()
    page.mouse.move(box["x"] + px, box["y"] + py)
    tip = page.get_by_test_id("map-tip")
    expect(tip).to_contain_text("row 33 · club: Officer")
    expect(tip).to_contain_text(re.compile(r"id: \S+"), timeout=30_000)  # after one rerun
    plot.screenshot(path=str(shots_dir / "graph-hover.png"))
    # a click on that node picks it: its 17 neighbours listed and ringed
    page.mouse.click(box["x"] + px, box["y"] + py)
    expect(page.get_by_text(re.compile(r"17 neighbours"))).to_be_visible(timeout=30_000)
    expect(plot).to_have_attribute("data-ringed-context", "17")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=str(shots_dir / "graph_selection.png"), full_page=True)
