"""Real-browser fixtures: `streamlit run` on a free loopback port, driven by Debian chromium.

Adapted from ../shared/recipes/streamlit_e2e.py. Playwright's own browser download is
never used: chromium comes from Debian (`make test` installs it when missing).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--no-first-run", "--disable-quic", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory) -> Path:
    d = Path(os.environ.get("E2E_SHOTS") or tmp_path_factory.mktemp("shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def app_home(tmp_path_factory) -> Path:
    """The app's workspace (LATENT_LENS_HOME): tests read stored artifacts from it."""
    return tmp_path_factory.mktemp("home")


def start_app(port: int, home: Path, log, script: Path = ROOT / "app" / "main.py",
              env: dict | None = None) -> subprocess.Popen:
    """`streamlit run <script>` (the app by default) on 127.0.0.1:``port`` with
    LATENT_LENS_HOME=``home`` and ``env`` added, returned once its health endpoint answers
    (90 s at most)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(script),
           "--server.headless=true", "--server.address=127.0.0.1", f"--server.port={port}",
           "--browser.gatherUsageStats=false"]
    env = dict(os.environ, LATENT_LENS_HOME=str(home), **(env or {}))
    env.pop("LATENT_LENS_BACKEND_URL", None)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_app(proc)
            raise TimeoutError("streamlit did not become healthy in 90 s")
        time.sleep(0.3)


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory, app_home):
    port = _free_port()
    log = (tmp_path_factory.mktemp("logs") / "streamlit.log").open("w")
    proc = start_app(port, app_home, log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_app(proc)
        log.close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url, request):
    """A new browser page on the app's home (the Map); a test marked ``own_start`` opens its
    own first page instead (the home page's work would be wasted on it)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1500})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    if request.node.get_closest_marker("own_start") is None:
        pg.goto(app_url, wait_until="domcontentloaded")
        wait_idle(pg)
    yield pg
    ctx.close()


def wait_idle(page, settle_ms: int = 400) -> None:
    """Wait for the websocket and for the script run to finish (Streamlit's own test attributes)."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']",
                           state="attached")
    page.wait_for_timeout(settle_ms)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                           state="attached")
