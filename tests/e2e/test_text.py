"""What a person sees on the text pages: the bundled corpus embedded, its map, a search by meaning
with the hits circled on the map, then a metadata filter with its selectivity (screenshots to
$E2E_SHOTS)."""

import re

import pytest

from tests.e2e.conftest import wait_idle

pytestmark = pytest.mark.e2e

SAMPLE = 200  # rows of the corpus to embed: seconds of CPU, enough for a map


def _pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the Streamlit multiselect labelled ``label``."""
    box = page.get_by_role("combobox", name=re.compile(label))
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    wait_idle(page, settle_ms=800)


@pytest.mark.own_start
def test_text_embed_map_search(page, app_url, shots_dir):
    from playwright.sync_api import expect

    page.goto(app_url + "/text", wait_until="domcontentloaded")
    wait_idle(page)
    page.get_by_role("button", name=re.compile("Add the ChatterBot")).click()
    wait_idle(page, settle_ms=1000)
    rows = page.get_by_role("spinbutton", name="Rows to embed")
    rows.fill(str(SAMPLE))
    rows.press("Enter")
    wait_idle(page, settle_ms=800)
    page.get_by_role("button", name="Embed", exact=True).click()
    expect(page.get_by_text("Texts embedded")).to_be_visible(timeout=240_000)
    wait_idle(page, settle_ms=1000)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=str(shots_dir / "text_embedded.png"), full_page=False)

    page.get_by_role("button", name="Show the map and search it").click()
    expect(page.get_by_text(re.compile(rf"{SAMPLE} of {SAMPLE} points drawn")).first).to_be_visible(
        timeout=240_000)
    wait_idle(page, settle_ms=1500)
    expect(page.get_by_text("Search by meaning")).to_be_visible()  # the Map page, beside the map

    query = page.get_by_role("textbox", name="Query")
    query.fill("what food do you like to eat?")
    query.press("Enter")
    expect(page.get_by_text(re.compile(rf"10 hits · among {SAMPLE} rows"))).to_be_visible(timeout=60_000)
    wait_idle(page)
    # the WebGL map draws every embedded text (the hits are ringed on it: checked in AppTest)
    expect(page.get_by_test_id("map-plot")).to_have_attribute("data-drawn", str(SAMPLE))
    hits = page.get_by_test_id("stDataFrame").first
    expect(hits).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=str(shots_dir / "text_search.png"), full_page=False)

    page.get_by_text("Metadata filters (applied inside the search)").click()
    wait_idle(page, settle_ms=500)
    _pick(page, "Filter on columns", "category")
    _pick(page, "category is one of", "food")
    sel = page.get_by_text(re.compile(rf"the filters keep [\d,]+ of {SAMPLE} rows \([\d.]+% selectivity\)"))
    expect(sel).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=str(shots_dir / "text_search_filtered.png"), full_page=False)
