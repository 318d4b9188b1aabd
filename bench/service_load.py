"""Load benchmark of the backend service: 8 client threads on loopback for a minute.

Each client uploads a small distinct CSV, submits its PCA, polls ``status`` until it is done,
fetches the projection (Parquet) and its sidecar (JSON), and submits a kNN graph of a shared
dataset whose specs the other clients submit too (one computation per spec). Reported:
p50/p95/max latency per operation over HTTP, side by side with the same load on the
in-process LocalBackend (the reference: ratio = HTTP / in-process), errors, lost jobs, and
the service's resident memory every 10 s.

Run from the repository root (about 2.5 minutes with the defaults):

    python bench/service_load.py                    # 8 clients, 60 s each side
    python bench/service_load.py --seconds 10       # a quick look
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.client import LocalBackend  # noqa: E402
from backend.http_client import HttpBackend  # noqa: E402
from tests.service_support import TOKEN, run_load, start_service  # noqa: E402


def _stats(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1e3
    return {"n": len(a), "p50_ms": np.percentile(a, 50), "p95_ms": np.percentile(a, 95),
            "max_ms": a.max()} if len(a) else {"n": 0}


def _lost(backend, jobs: set[str]) -> int:
    states = {j.id: j.state for j in backend.jobs()}
    return sum(1 for j in jobs if states.get(j) != "done")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="ll-load-") as tmp:
        # reference: the same load on an in-process LocalBackend shared by the threads
        local = LocalBackend(Path(tmp) / "local")
        shared = local.add_bundled("wine").id
        run_load(lambda: local, clients=args.clients, seconds=3, shared_dataset=shared, seed=1)
        ref = run_load(lambda: local, clients=args.clients, seconds=args.seconds,
                       shared_dataset=shared, seed=2)
        ref_lost = _lost(local, ref.jobs)
        local.runner.shutdown()

        svc = start_service(Path(tmp) / "service")
        try:
            client = HttpBackend(svc.url, TOKEN)
            shared = client.add_bundled("wine").id

            def make():
                return HttpBackend(svc.url, TOKEN)

            run_load(make, clients=args.clients, seconds=3, shared_dataset=shared, seed=1)
            rss = [(0.0, svc.rss_bytes())]
            stop = threading.Event()
            t0 = time.monotonic()

            def sample():
                while not stop.wait(10):
                    rss.append((time.monotonic() - t0, svc.rss_bytes()))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            res = run_load(make, clients=args.clients, seconds=args.seconds,
                           shared_dataset=shared, seed=2)
            stop.set()
            sampler.join()
            rss.append((time.monotonic() - t0, svc.rss_bytes()))
            lost = _lost(client, res.jobs)
            client.close()
        finally:
            svc.stop()

    rows = []
    for op in res.latencies:
        h, r = _stats(res.latencies[op]), _stats(ref.latencies[op])
        rows.append({"operation": op, "n_http": h["n"], "p50_http_ms": h.get("p50_ms"),
                     "p95_http_ms": h.get("p95_ms"), "max_http_ms": h.get("max_ms"),
                     "n_local": r["n"], "p50_local_ms": r.get("p50_ms"),
                     "p95_local_ms": r.get("p95_ms"),
                     "p50_ratio": h.get("p50_ms", np.nan) / r.get("p50_ms", np.nan),
                     "p95_ratio": h.get("p95_ms", np.nan) / r.get("p95_ms", np.nan)})
    print(f"\n{args.clients} clients x {args.seconds:.0f} s on loopback "
          f"(ratio = HTTP / in-process LocalBackend)")
    with pd.option_context("display.width", 200, "display.float_format", "{:.1f}".format):
        print(pd.DataFrame(rows).to_string(index=False))
    print(f"\nrounds: HTTP {res.iterations}, in-process {ref.iterations}; jobs: HTTP "
          f"{len(res.jobs)}, in-process {len(ref.jobs)}")
    print(f"errors: HTTP {len(res.errors)}, in-process {len(ref.errors)}; lost jobs: HTTP {lost}, "
          f"in-process {ref_lost}")
    for e in (res.errors + ref.errors)[:10]:
        print("  ", e)
    print("service RSS (MB) at t = " + ", ".join(f"{t:.0f} s: {b / 2**20:.0f}" for t, b in rss))
    print(f"RSS growth over the run: {(rss[-1][1] - rss[0][1]) / 2**20:+.1f} MB")


if __name__ == "__main__":
    main()
