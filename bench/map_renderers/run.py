"""Time to first frame of regl-scatterplot vs deck.gl in headless Debian chromium (software WebGL).

Run: `cd bench/map_renderers && npm ci && npm run build && ../../.venv/bin/python run.py`.
"""
import os, sys, time
from pathlib import Path
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

DIST = Path(__file__).resolve().parent / "dist"
sizes = [int(s) for s in (sys.argv[1:] or ["100000", "1000000"])]
NAMES = os.environ.get("RENDERERS", "regl,deck").split(",")
print("load average:", os.getloadavg())
with sync_playwright() as p:
    b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    for n in sizes:
        for name in NAMES:
            pg = b.new_page(viewport={"width": 820, "height": 820})
            errs = []
            pg.on("pageerror", lambda e: errs.append(str(e)))
            pg.on("console", lambda m: errs.append(m.text) if m.type == "error" else None)
            t = time.monotonic()
            page, _, q = name.partition("?")
            pg.goto(f"file://{DIST.parent}/{page}.html?n={n}&{q}")
            try:
                pg.wait_for_function("window.__bench !== undefined", timeout=240_000)
                r = pg.evaluate("window.__bench")
            except Exception as e:  # noqa: BLE001
                r = {"error": str(e)[:200]}
            r["page_total_s"] = round(time.monotonic() - t, 2)
            pg.screenshot(path=str(DIST / f"{page}{q.replace('=', '')}_{n}.png"))
            print(name, n, r, errs[:3], flush=True)
            pg.close()
    b.close()
print("load average:", os.getloadavg())
