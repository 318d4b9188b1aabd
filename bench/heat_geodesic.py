"""Heat geodesic embedding: ours against the reference package, side by side, then alone.

Run from the repository root:

    .venv/bin/python bench/heat_geodesic.py [--sizes 1000,2000,4000,8000]
        [--large 20000,50000,100000] [--reference-python /work/venvs/heatgeo/bin/python]
        [--skip-reference] [--skip-tree] [--json out.json]

The reference is PyPI ``heatgeo`` 0.0.1 in its own virtual environment (recipe in
``shared/data/reference/heat_geodesic.md``); without it the reference columns are skipped.
Every run is a fresh subprocess (one method, one size); its peak resident memory is the
kernel's VmHWM of that process (interpreter and imports included; Linux only).

Rows
----
- Swiss roll (noise 0.1) at ``--sizes``: ours with default parameters against
  ``HeatGeo(knn=5)`` (the reference's defaults, t=10, order 32) and, up to 2,000 points,
  its best configuration ``HeatGeo(knn=10, tau=50, order=64, harnack_regul=1)``.
- DLA tree (2,500 points, noise std 5): the same three.
- Swiss roll at ``--large``: ours alone (the reference is dense n x n: 6.5 GB at 8,000).

Columns: wall time and CPU time (process), ratio reference / ours on wall time, peak RSS,
and quality = mean per-row Spearman correlation of embedding distances with the
ground-truth geodesics over the rows of min(n, 2000) random points (all n columns).
On a shared machine wall time moves with the load; the CPU columns do less.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE_PYTHON = "/work/venvs/heatgeo/bin/python"
REF_DEFAULT = {"knn": 5}
REF_BEST = {"knn": 10, "tau": 50, "order": 64, "harnack_regul": 1.0}

# Run inside the reference's virtual environment: load X, time fit_transform, save the
# embedding, print one JSON line.
_REFERENCE_CHILD = r"""
import contextlib, io, json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
from heatgeo.embedding import HeatGeo
X = np.load(sys.argv[1])
kw = json.loads(sys.argv[3])
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    w0, c0 = time.perf_counter(), time.process_time()
    emb = HeatGeo(**kw).fit_transform(X)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
np.save(sys.argv[2], np.asarray(emb, dtype=np.float64))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"time_s": wall, "cpu_s": cpu, "peak_rss_mb": int(hwm) / 1024}))
"""


def _peak_rss_mb() -> float:
    """This process's resident high-water mark (VmHWM; unlike ``ru_maxrss`` it does not
    inherit the parent's size across fork + exec). Linux only."""
    with open("/proc/self/status") as f:
        return int(next(x for x in f if x.startswith("VmHWM")).split()[1]) / 1024


def _ours_child(x_path: str, out_path: str) -> None:
    import scipy.sparse.csgraph  # noqa: F401  imports outside the timer, as the reference's
    import scipy.sparse.linalg  # noqa: F401
    import sklearn.neighbors  # noqa: F401
    import torch  # noqa: F401

    from backend.project import HeatGeodesic

    X = np.load(x_path)
    w0, c0 = time.perf_counter(), time.process_time()
    hg = HeatGeodesic(random_state=0).fit(X)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    np.save(out_path, hg.embedding_)
    r = hg.report_
    print(json.dumps({
        "time_s": wall, "cpu_s": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "method": r.method, "kernel": r.kernel, "t": r.t, "order": r.order,
        "n_diffusion_nodes": r.n_diffusion_nodes, "saturated_fraction": r.saturated_fraction,
        "timings": r.timings,
    }))


def _run(cmd: list[str], timeout: float) -> dict | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    except subprocess.CalledProcessError as exc:
        return {"error": (exc.stderr or exc.stdout).strip().splitlines()[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _score(emb: np.ndarray, truth: dict) -> float:
    from backend.diagnostics.projection import row_spearman

    return row_spearman(emb, n_rows=2000, random_state=0, **truth)


def _case(label: str, X: np.ndarray, truth: dict, configs: list[tuple[str, dict | None]],
          ref_python: str | None, timeout: float, tmp: Path) -> list[dict]:
    x_path = tmp / "x.npy"
    np.save(x_path, X)
    rows = []
    for name, kw in configs:
        out = tmp / "emb.npy"
        if kw is None:
            cmd = [sys.executable, __file__, "--child", str(x_path), str(out)]
        elif ref_python is None:
            continue
        else:
            cmd = [ref_python, "-c", _REFERENCE_CHILD, str(x_path), str(out), json.dumps(kw)]
        res = _run(cmd, timeout)
        res.update({"data": label, "n": len(X), "method": name})
        if "error" not in res:
            res["row_spearman"] = _score(np.load(out), truth)
        rows.append(res)
        _print_row(res, rows)
    return rows


HEADER = ("| data | n | method | wall s | CPU s | ref/ours wall | peak RSS MB | row-Spearman |"
          " notes |\n|---|---|---|---|---|---|---|---|---|")


def _print_row(r: dict, rows: list[dict]) -> None:
    if "error" in r:
        print(f"| {r['data']} | {r['n']} | {r['method']} | - | - | - | - | - | {r['error']} |",
              flush=True)
        return
    ours = next((o for o in rows if o["method"] == "ours" and "error" not in o), None)
    ratio = ("" if ours is None or r["method"] == "ours"
             else f"{r['time_s'] / ours['time_s']:.1f}x")
    notes = ""
    if r["method"] == "ours":
        notes = (f"{r['kernel']} on {r['n_diffusion_nodes']} nodes, "
                 f"t={r['t']:.3g}, stages {r['timings']}")
    print(f"| {r['data']} | {r['n']} | {r['method']} | {r['time_s']:.1f} | {r['cpu_s']:.1f} | "
          f"{ratio} | {r['peak_rss_mb']:.0f} | {r['row_spearman']:.3f} | {notes} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1000,2000,4000,8000")
    ap.add_argument("--large", default="20000,50000,100000")
    ap.add_argument("--reference-python", default=os.environ.get("HEATGEO_PYTHON",
                                                                   REFERENCE_PYTHON))
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--skip-tree", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.child:
        _ours_child(*args.child)
        return

    from backend.datasets.manifolds import dla_tree, swiss_roll

    ref = None if args.skip_reference else args.reference_python
    if ref is not None and not Path(ref).exists():
        print(f"reference python {ref} not found: reference columns skipped")
        ref = None
    print(f"CPU cores: {os.cpu_count()}, load average at start: {os.getloadavg()}")
    print(HEADER)
    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for n in [int(s) for s in args.sizes.split(",") if s]:
            X, chart = swiss_roll(n, 0.1)
            configs = [("ours", None), ("heatgeo knn=5 (defaults)", REF_DEFAULT)]
            if n <= 2000:
                configs.append(("heatgeo knn=10 t=50 K=64 harnack=1", REF_BEST))
            results += _case("swiss roll", X, {"ground_truth_coordinates": chart}, configs,
                             ref, args.timeout, tmp)
        if not args.skip_tree:
            X, gt = dla_tree(5.0)
            results += _case("DLA tree", X, {"ground_truth_distances": gt},
                             [("ours", None), ("heatgeo knn=5 (defaults)", REF_DEFAULT),
                              ("heatgeo knn=10 t=50 K=64 harnack=1", REF_BEST)],
                             ref, args.timeout, tmp)
        for n in [int(s) for s in args.large.split(",") if s]:
            X, chart = swiss_roll(n, 0.1)
            results += _case("swiss roll", X, {"ground_truth_coordinates": chart},
                             [("ours", None)], None, args.timeout, tmp)
    print(f"load average at end: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
