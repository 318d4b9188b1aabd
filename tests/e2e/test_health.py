"""What a person sees on Model health: the bundled all-MiniLM-L6-v2 analysed, alpha per layer in
its bands and the spectral density of one layer with its fit; the representation panel beside the
map (screenshots to $E2E_SHOTS). The comparison with a random init is AppTest's."""

import re

import pytest

from tests.e2e.conftest import wait_idle

pytestmark = pytest.mark.e2e


@pytest.mark.own_start
def test_model_health_minilm(page, app_url, shots_dir):
    from playwright.sync_api import expect

    page.goto(app_url + "/health", wait_until="domcontentloaded")
    wait_idle(page)
    expect(page.get_by_text("mean alpha (FARMS)")).to_be_visible(timeout=180_000)
    wait_idle(page, settle_ms=1500)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text("39 layers analysed, 65 skipped")).to_be_visible()  # 63 1-D
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts).to_have_count(2, timeout=30_000)  # alpha bars, one ESD
    bars = charts.nth(0)
    expect(bars.locator(".js-plotly-plot")).to_be_visible(timeout=30_000)
    # the three bands are labelled on the bar chart
    for band in ("over-fit risk", "under-trained"):
        expect(bars.get_by_text(re.compile(band))).to_have_count(1)
    esd = charts.nth(1)
    expect(esd.locator(".legendtext", has_text=re.compile("power law"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"8,192 eigenvalues · alpha \d+\.\d\d"))).to_be_visible()
    page.screenshot(path=str(shots_dir / "health.png"), full_page=True)

    # the plain fit beside a random init of the same architecture: AppTest
    # (tests/app/test_health.py) checks that page logic; its second ESD chart is the same component


def test_representation_panel_beside_the_map(page, shots_dir):
    from playwright.sync_api import expect

    expect(page.get_by_text(re.compile(r"1,797 of 1,797 points drawn")).first).to_be_visible(
        timeout=180_000)
    expect(page.get_by_text(re.compile(r"Trustworthiness \(k=10\)"))).to_be_visible(timeout=120_000)
    wait_idle(page, settle_ms=1000)
    page.get_by_role("tab", name="Representation").click()
    wait_idle(page, settle_ms=500)
    # the label column defaults to the dataset's label (digit): DSMI below uses it
    page.get_by_role("button", name="Compute representation diagnostics").click()
    expect(page.get_by_text("Diffusion spectral entropy")).to_be_visible(timeout=120_000)
    wait_idle(page, settle_ms=1500)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    rankme = page.get_by_test_id("stMetric").filter(has_text=re.compile(r"^RankMe\s"))
    value = float(rankme.get_by_test_id("stMetricValue").inner_text())
    assert 1.0 < value < 64.0  # digits: 64 pixel features
    expect(page.get_by_text(re.compile(r"DSMI with the label: \d\.\d{3} bits \(10 classes\)"))
           ).to_be_visible()
    cov = page.get_by_test_id("stPlotlyChart").last
    expect(cov.locator(".js-plotly-plot")).to_be_visible(timeout=30_000)
    cov.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots_dir / "representation.png"), full_page=False)
