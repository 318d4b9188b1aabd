"""Map at scale (issue 13): the WebGL map vs the plotly path in headless chromium (software WebGL).

For each size: bytes received over the websocket, the server's time per rerun, time to first
draw, a box selection over about half the points until its count shows and the points are drawn
as selected, and four colour changes (score, label, score, label) until the new colours are on
screen (the GPU has run the frame: one pixel read back).
The plotly path draws a uniform sample of at most 100,000 points (as the page did); both run in
the same browser and server, one after the other, and the table prints WebGL / plotly ratios.

    .venv/bin/python bench/map_scale.py                 # 100k, 1M, 2M
    .venv/bin/python bench/map_scale.py 100000 --plotly-max 100000
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, _free_port, wait_idle  # noqa: E402


def make_points(n: int, out: Path) -> None:
    rng = np.random.default_rng(0)
    k = rng.integers(0, 10, n)
    ang = k / 10 * 2 * np.pi
    df = pd.DataFrame({
        "_row": np.arange(n),
        "x": (np.cos(ang) * 4 + rng.normal(size=n)).astype(np.float32),
        "y": (np.sin(ang) * 4 + rng.normal(size=n)).astype(np.float32),
        "label": pd.Categorical(k.astype(str)),
        "score": rng.random(n),
    })
    df.to_parquet(out / f"points_{n}.parquet", index=False)


STEP_TIMEOUT_MS = 180_000
COLOUR_CHANGES = 4


# Waits until the GPU has rendered the map's last frame: the renderer's draw event fires when its
# commands are queued, and software WebGL may need a second more to run them. Reading one pixel
# back returns only once they have run.
FINISHED = """(el) => { const gl = el.llmap.sp.get('regl')._gl; const px = new Uint8Array(4);
  gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px); return true; }"""


def server_ms(page) -> float:
    txt = page.get_by_text(re.compile(r"server-ms=\d+")).last.inner_text()
    return float(txt.split("=")[1])


def measure(page, url: str, renderer: str, n: int, frames: list) -> dict:
    from playwright.sync_api import expect

    out: dict = {}
    frames.clear()
    t = time.monotonic()
    page.goto(f"{url}/?n={n}&renderer={renderer}", wait_until="domcontentloaded")
    if renderer == "webgl":
        target = page.get_by_test_id("map-plot")
        expect(target).to_have_attribute("data-drawn", re.compile(r"\d+"), timeout=600_000)
        target.evaluate(FINISHED)
    else:
        target = page.locator(".js-plotly-plot .nsewdrag").first
        expect(target).to_be_visible(timeout=600_000)
    wait_idle(page)
    out["first draw s"] = time.monotonic() - t
    out["first MB"] = sum(frames) / 1e6
    out["first server ms"] = server_ms(page)
    # box selection over the left half
    box = target.bounding_box()
    frames.clear()
    t = time.monotonic()
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.95, steps=8)
    page.mouse.up()
    sel = page.get_by_text(re.compile(r"^[\d,]+ selected$"))
    try:
        expect(sel).to_be_visible(timeout=STEP_TIMEOUT_MS)
    except AssertionError:
        out["select s"] = f">{STEP_TIMEOUT_MS / 1000:.0f} (no selection shown)"
        return out
    out["selected"] = int(sel.inner_text().split()[0].replace(",", ""))
    if renderer == "webgl":  # ... and the same points drawn as selected
        expect(target).to_have_attribute("data-selected", str(out["selected"]), timeout=STEP_TIMEOUT_MS)
        target.evaluate(FINISHED)
    out["select s"] = time.monotonic() - t  # the script run may still be ending
    wait_idle(page)
    out["select MB"] = sum(frames) / 1e6
    out["select server ms"] = server_ms(page)
    # colour changes: score, label, score, ... (the first of each moves its column; later ones
    # find it cached in the browser)
    times = []
    for k in range(COLOUR_CHANGES):
        column = ("score", "label")[k % 2]
        legend_text = "score" if column == "score" else "0 ("
        before = target.get_attribute("data-color-id") if renderer == "webgl" else None
        frames.clear()
        t = time.monotonic()
        page.get_by_test_id("stSelectbox").click()
        page.get_by_role("option", name=column).click()
        if renderer == "webgl":
            expect(page.get_by_test_id("map-legend")).to_contain_text(legend_text, timeout=600_000)
            expect(target).not_to_have_attribute("data-color-id", before, timeout=600_000)
            target.evaluate(FINISHED)
        times.append(time.monotonic() - t)  # legend and points recoloured, on screen
        wait_idle(page)
        if k == 0:
            out["colour MB"] = sum(frames) / 1e6
            out["colour server ms"] = server_ms(page)
    out["colour s"] = times[0]
    out["colour median s"] = float(np.median(times))
    out["colour max s"] = max(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int, default=[100_000, 1_000_000, 2_000_000])
    ap.add_argument("--plotly-max", type=int, default=1_000_000,
                    help="largest size also run through the plotly path")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="map_scale_"))
    for n in args.sizes:
        make_points(n, tmp)
    port = _free_port()
    log = (tmp / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "bench" / "map_scale_app.py"),
         "--server.headless=true", "--server.address=127.0.0.1", f"--server.port={port}",
         "--browser.gatherUsageStats=false", "--server.maxMessageSize=1000"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, MAP_SCALE_DIR=str(tmp)))
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        print("load average before:", os.getloadavg(), flush=True)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for n in args.sizes:
                for renderer in ("webgl", "plotly"):
                    if renderer == "plotly" and n > args.plotly_max:
                        continue
                    ctx = b.new_context(viewport={"width": 1200, "height": 1000})
                    page = ctx.new_page()
                    page.set_default_timeout(600_000)
                    frames: list = []
                    page.on("websocket", lambda ws: ws.on(
                        "framereceived", lambda payload: frames.append(len(payload))))
                    r = measure(page, url, renderer, n, frames)
                    r.update(n=n, renderer=renderer, load=os.getloadavg()[0])
                    print(r, flush=True)
                    rows.append(r)
                    page.screenshot(path=str(tmp / f"{renderer}_{n}.png"))
                    ctx.close()
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    df = pd.DataFrame(rows).set_index(["n", "renderer"])
    print(df.to_string())
    num = df.apply(pd.to_numeric, errors="coerce")
    for n in args.sizes:
        if (n, "plotly") in df.index:
            cols = [c for c in num.columns if c not in ("load", "selected")]
            ratio = num.loc[(n, "webgl"), cols] / num.loc[(n, "plotly"), cols]
            print(f"\nn={n:,}: WebGL / plotly (plotly draws at most 100,000 points)")
            print(ratio.round(3).to_string())
    print("screenshots in", tmp)


if __name__ == "__main__":
    main()
