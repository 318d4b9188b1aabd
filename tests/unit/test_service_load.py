"""Load on loopback: 8 client threads upload, submit, poll and fetch for a few seconds.

No error, no lost job, the service's memory stable. The latencies are printed (``-s``);
``bench/service_load.py`` runs the same load for longer and reports p50/p95.
"""

from __future__ import annotations

import numpy as np

from backend.http_client import HttpBackend
from tests.service_support import TOKEN, run_load, start_service

CLIENTS = 8
LOAD_S = 5  # seconds of load (bench/service_load.py runs it for longer)


def test_eight_clients_no_error_no_lost_job_memory_stable(tmp_path):
    svc = start_service(tmp_path / "home")
    try:
        c = HttpBackend(svc.url, TOKEN)
        shared = c.add_bundled("wine").id

        def load_for(seconds, seed):
            return run_load(lambda: HttpBackend(svc.url, TOKEN), clients=CLIENTS,
                            seconds=seconds, shared_dataset=shared, seed=seed)

        warm = load_for(1, seed=1)
        rss_before = svc.rss_bytes()
        load = load_for(LOAD_S, seed=2)
        rss_after = svc.rss_bytes()
        assert warm.errors == [] and load.errors == []
        assert load.iterations >= CLIENTS  # every client finished at least one round
        # no lost job: every job any client submitted is in the catalogue, done, with its files
        jobs = {j.id: j for j in c.jobs()}
        for job in warm.jobs | load.jobs:
            assert jobs[job].state == "done", jobs[job]
            assert "meta.json" in c.artifact(job).files
        # the clients shared one kNN job per spec: at most 8 specs (n_neighbors 2..9)
        assert len([j for j in jobs.values() if j.kind == "knn"]) <= 8
        growth = (rss_after - rss_before) / 2**20
        print(f"\n{load.iterations} rounds by {CLIENTS} clients in {LOAD_S} s; RSS "
              f"{rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MB")
        for op, xs in load.latencies.items():
            print(f"{op:9s} n={len(xs):5d} p50={np.percentile(xs, 50) * 1e3:7.1f} ms "
                  f"p95={np.percentile(xs, 95) * 1e3:7.1f} ms")
        assert growth < 64, f"the service grew by {growth:.0f} MB under load"
        c.close()
    finally:
        svc.stop()
