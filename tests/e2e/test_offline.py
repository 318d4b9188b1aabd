"""Offline means no request to any outside host (issue 17 item 25): every request of a page
load, favicon included, goes to the app's own address."""

import re
from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import wait_idle

pytestmark = pytest.mark.e2e

LOCAL_SCHEMES = ("data", "blob", "about", "chrome-extension")


def _outside(urls: list[str], app_url: str) -> list[str]:
    host = urlparse(app_url).hostname
    return [u for u in urls if urlparse(u).scheme not in LOCAL_SCHEMES
            and urlparse(u).hostname not in (host, "localhost", "127.0.0.1")]


def test_page_loads_make_no_request_to_an_outside_host(browser, app_url):
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport={"width": 1400, "height": 1200})
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    try:
        for path, heading in (("/datasets", "Datasets"), ("", "Map")):  # Map: the default view
            page.goto(app_url + path, wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(
                timeout=120_000)
            # the favicon is set by the frontend once the page config has arrived
            icon = page.locator("link[rel='shortcut icon']")
            expect(icon).to_have_attribute("href", re.compile(r"\S"), timeout=30_000)
            page.wait_for_load_state("networkidle")
        href = icon.get_attribute("href")
        assert "gstatic" not in href and not _outside([page.url], app_url)
    finally:
        ctx.close()
    assert requests, "no request recorded"
    assert _outside(requests, app_url) == [], _outside(requests, app_url)


def test_map_url_opens_the_map_page_with_its_dataset(page, app_url):
    """Issue 17 item 6: `/map?dataset=…` (typed, or kept from a link) opens the Map page on that
    dataset instead of "Page not found"."""
    from playwright.sync_api import expect

    expect(page).to_have_url(re.compile(r"[?&]dataset=\w+"), timeout=120_000)
    dataset = re.search(r"dataset=(\w+)", page.url).group(1)
    page.goto(f"{app_url}/map?dataset={dataset}", wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Map", exact=True)).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(page).to_have_url(re.compile(rf"[?&]dataset={dataset}"))
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_test_id("stException")).to_have_count(0)
