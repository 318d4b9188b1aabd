"""Issue 17 item 7: the server restarts while a page is open. A file chosen before the restart
is gone from the server; the Upload page says so instead of silently storing nothing, and the
file chosen again is stored; the page keeps its dataset (it is in the URL)."""

import re

import pytest

from tests.e2e.conftest import _free_port, start_app, stop_app, wait_idle

pytestmark = pytest.mark.e2e


def test_upload_after_a_server_restart_says_what_to_do_and_then_works(browser, tmp_path):
    from playwright.sync_api import expect

    wait = 60_000  # reruns are slow on a busy 2-core machine

    from backend.store import Store

    home, port = tmp_path / "home", _free_port()
    csv = tmp_path / "points.csv"
    csv.write_text("a,b,c\n" + "\n".join(f"{i % 7},{i * 3 % 11},{i % 5}" for i in range(40)))
    log = (tmp_path / "streamlit.log").open("w")
    proc = start_app(port, home, log)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1500})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"http://127.0.0.1:{port}/upload", wait_until="domcontentloaded")
        wait_idle(page)
        expect(page).to_have_url(re.compile(r"dataset=\w+"), timeout=120_000)
        dataset = re.search(r"dataset=(\w+)", page.url).group(1)
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(csv))
        expect(page.get_by_text("points.csv · CSV · 40 rows")).to_be_visible(timeout=wait)
        wait_idle(page)
        before = {d.id for d in Store(home).datasets()}

        stop_app(proc)
        proc = start_app(port, home, log)
        page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']",
                               state="attached", timeout=60_000)
        page.get_by_role("button", name="Add dataset").click()
        expect(page.get_by_text(re.compile("no longer on the server"))).to_be_visible(timeout=wait)
        wait_idle(page)
        assert {d.id for d in Store(home).datasets()} == before  # nothing stored
        expect(page).to_have_url(re.compile(rf"dataset={dataset}"))  # the page kept its dataset
        page.screenshot(path=str(tmp_path / "restart.png"), full_page=True)

        page.get_by_test_id("stFileChipDeleteBtn").first.click()
        wait_idle(page)
        # a copy: Chromium fires no change event when the same path is chosen again in the
        # same file input (browser behaviour, with or without a restart)
        again = tmp_path / "again" / "points.csv"
        again.parent.mkdir()
        again.write_bytes(csv.read_bytes())
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(again))
        expect(page.get_by_text("points.csv · CSV · 40 rows")).to_be_visible(timeout=wait)
        wait_idle(page)
        page.get_by_role("button", name="Add dataset").click()
        expect(page.get_by_text(re.compile(r"Stored points: 40 rows × 3 dimensions"))).to_be_visible(timeout=wait)
        assert len({d.id for d in Store(home).datasets()} - before) == 1
        expect(page.get_by_test_id("stException")).to_have_count(0)
    finally:
        ctx.close()
        stop_app(proc)
        log.close()
