"""Foundation timings: first map, cached reopen, a large upload and its UMAP.

Run:  .venv/bin/python bench/foundation.py [--rows 100000] [--dims 384]

Each step goes through the same LocalBackend the app uses, in a fresh workspace:
1. digits UMAP in a fresh process (numba JIT compile included) — the app's first map;
2. the same spec again (served from the store) — reopening a cached map;
3. validating and storing an uploaded rows x dims float32 .npy (parse + hash + write);
4. UMAP of that upload (pynndescent kNN graph + umap-learn layout).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.client import LocalBackend  # noqa: E402
from backend.jobs import JobSpec  # noqa: E402


def _wait(b: LocalBackend, job_id: str) -> float:
    t0 = time.perf_counter()
    st = b.wait(job_id)
    if st.state != "done":
        raise SystemExit(f"job {job_id} ended {st.state}: {st.error}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=384)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        b = LocalBackend(home)
        rows = []
        t0 = time.perf_counter()
        digits = b.add_bundled("digits")
        spec = JobSpec("umap", digits.id, {})
        _wait(b, b.submit(spec))
        rows.append(("first digits map (UMAP, JIT compile included)", time.perf_counter() - t0))
        t0 = time.perf_counter()
        jid = b.submit(spec)
        b.artifact_table(jid, "projection.parquet")
        rows.append(("reopen the cached digits map", time.perf_counter() - t0))

        rng = np.random.default_rng(0)
        centers = rng.normal(size=(20, args.dims)).astype(np.float32) * 4
        X = centers[rng.integers(0, 20, args.rows)] + rng.normal(size=(args.rows, args.dims)).astype(np.float32)
        buf = io.BytesIO()
        np.save(buf, X)
        data = buf.getvalue()
        t0 = time.perf_counter()
        info, _ = b.add_upload(data, "big.npy")
        rows.append((f"upload {args.rows:,} x {args.dims} float32 .npy ({len(data) / 2**20:.0f} MB): "
                     "validate + store", time.perf_counter() - t0))
        t0 = time.perf_counter()
        _wait(b, b.submit(JobSpec("umap", info.id, {})))
        total = time.perf_counter() - t0
        knn = b.jobs(info.id)
        knn_s = next((b.artifact_json(j.artifact_id, "meta.json")["seconds"]
                      for j in knn if j.kind == "knn" and j.artifact_id), float("nan"))
        rows.append((f"UMAP of the upload (kNN graph {knn_s:.1f} s included)", total))
        b.runner.shutdown()
    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  seconds")
    for name, s in rows:
        print(f"{name:<{width}}  {s:8.2f}")


if __name__ == "__main__":
    main()
