"""Row blocks on Ray (the session's local ``cluster``, 2 CPUs; the driver on the CPU, since a
CUDA driver keeps these searches on its GPU): the kNN graph, the placement
of the rows outside a UMAP sample and the scored rows of the faithfulness scores equal the
in-process results bit for bit; the kNN and faithfulness jobs record the engine; a killed
worker's block is retried; a failed block is named; a cancel stops the blocks within 2 s."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from backend.client import LocalBackend
from backend.diagnostics.projection import projection_faithfulness
from backend.engines import InProcessEngine, TaskFailedError
from backend.errors import JobCancelled
from backend.jobs import JobSpec
from backend.project.knn import knn_search
from backend.project.large import place_rest
from tests import ray_support

ray = pytest.importorskip("ray")


def _vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Clustered float32 rows with an all-zero row and two exact duplicates."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (8, d))
    X = (centres[rng.integers(0, 8, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)
    X[5] = 0.0
    X[7] = X[8]
    return X


def test_row_blocks_are_aligned_and_cover_every_row():
    from backend.engines import row_blocks

    assert row_blocks(9000, n_workers=2, align=1864) == [
        (0, 1864), (1864, 3728), (3728, 5592), (5592, 7456), (7456, 9000)]
    assert row_blocks(10, n_workers=8) == [(i, i + 1) for i in range(10)]
    assert row_blocks(100, block_rows=30, align=40) == [(0, 40), (40, 80), (80, 100)]
    assert row_blocks(0) == []
    with pytest.raises(ValueError, match=r"row_blocks needs n_rows >= 0 and align, n_workers, "
                                         r"block_rows >= 1; got n_rows=5, align=0"):
        row_blocks(5, align=0)


# exact search: 9,000 rows in 5 blocks of 1,864 rows (its in-process chunk); faiss: 6,000
# rows in 2 blocks of 4,096 (its search chunk). Exact Euclidean: the killed-worker test.
@pytest.mark.parametrize("method, metric, n", [("exact", "cosine", 9000),
                                               ("ivf", "euclidean", 6000),
                                               ("hnsw", "euclidean", 6000)])
def test_knn_graph_in_blocks_equals_in_process_bit_for_bit(cluster, method, metric, n):
    X = _vectors(n, 16)
    here = knn_search(X, 10, method=method, metric=metric, recall_sample=0, device="cpu")
    seen = []
    there = knn_search(X, 10, method=method, metric=metric, recall_sample=0, device="cpu",
                       engine=cluster, progress=lambda f, m: seen.append(m))
    assert np.array_equal(here[0], there[0]) and np.array_equal(here[1], there[1])
    assert there[2].method == method and there[2].n_zero_rows == here[2].n_zero_rows
    blocks = 5 if method == "exact" else 2
    assert there[2].settings == {**here[2].settings, "row_blocks": blocks}
    done = [m for m in seen if "rows" in m and " done (" in m]  # one per finished block
    assert len(done) == blocks and done[-1].endswith(f"({blocks} of {blocks})")
    assert any(m.startswith("kNN graph rows 0-") for m in done)


@pytest.mark.parametrize("n_rest, method", [(10_000, "exact"), (70_000, "ivf")])
def test_placement_in_blocks_equals_in_process_bit_for_bit(cluster, n_rest, method):
    X = _vectors(4000 + n_rest, 16, seed=1)
    Xs, rest = X[:4000], X[4000:]
    Ys = np.random.default_rng(2).normal(size=(4000, 2)).astype(np.float32)
    here, m_here = place_rest(Xs, Ys, rest, 10, device="cpu")
    there, m_there = place_rest(Xs, Ys, rest, 10, device="cpu", engine=cluster)
    assert m_here == m_there == method
    assert there.dtype == np.float32 and there.shape == (n_rest, 2)
    assert np.array_equal(here, there)


@pytest.mark.slow  # compiles umap-learn's numba code (~20 s) unless a UMAP test ran first
def test_quick_map_on_ray_equals_in_process_bit_for_bit(cluster):
    from backend.project.large import quick_map

    X = _vectors(6000, 16, seed=8)
    here, rep_here = quick_map(X, sample_size=1000, random_state=42, device="cpu")
    there, rep_there = quick_map(X, sample_size=1000, random_state=42, device="cpu",
                                  engine=cluster)
    assert rep_here["place_search"] == rep_there["place_search"] == "exact"
    assert np.array_equal(here, there)  # the sample's UMAP here, 5,000 rows placed on Ray


def test_placement_refuses_bad_input():
    from backend.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"place_rest needs Xs \(n_sample, d\).*got "
                                                r"shapes \(5, 3\), \(4, 2\) and \(2, 3\)"):
        place_rest(np.ones((5, 3)), np.ones((4, 2)), np.ones((2, 3)), 2)
    with pytest.raises(InvalidInputError, match=r"n_neighbors must be in \[1, 5\]"):
        place_rest(np.ones((5, 3)), np.ones((5, 2)), np.ones((2, 3)), 6)


def test_faithfulness_in_blocks_equals_in_process_bit_for_bit(cluster):
    # 3,000 rows: 2,000 scored rows in chunks of 1,333, two blocks; the ground truth is a
    # closure (sent once through the object store)
    X = _vectors(3000, 24, seed=3).astype(np.float64)
    X[5] = 1.0
    Y = X[:, :2] + np.random.default_rng(4).normal(0, 0.5, (3000, 2))
    truth = X[:, :3]
    here = projection_faithfulness(X, Y, n_neighbors=10, n_rows=2000, device="cpu",
                                   ground_truth_coordinates=truth)
    there = projection_faithfulness(X, Y, n_neighbors=10, n_rows=2000, device="cpu",
                                    ground_truth_coordinates=truth, engine=cluster)
    assert here.to_dict() == there.to_dict()
    for name, values in here.per_point.items():
        np.testing.assert_array_equal(values, there.per_point[name])
    assert np.isfinite(there.per_point["row_spearman"]).sum() == 2000


def test_knn_and_faithfulness_jobs_on_ray_and_their_sidecars(cluster, tmp_path):
    X = _vectors(4500, 16, seed=5)
    out = {}
    for engine in (InProcessEngine(), cluster):
        b = LocalBackend(tmp_path / engine.name, engine=engine)
        try:
            info = b.store.add_dataset(pd.DataFrame({"i": np.arange(len(X))}), X, name="x",
                                       source="test")
            knn = b.submit(JobSpec("knn", info.id, {"n_neighbors": 15, "metric": "euclidean",
                                                    "device": "cpu"}))
            pca = b.submit(JobSpec("pca", info.id, {"n_components": 2}))
            for job in (knn, pca):
                status = b.wait(job, 120)
                assert status.state == "done", status.error
            faith = b.submit(JobSpec("faithfulness", info.id,
                                     {"projection": pca, "n_neighbors": 10, "n_rows": 2000,
                                      "device": "cpu"}))
            status = b.wait(faith, 120)
            assert status.state == "done", status.error
            out[engine.name] = (
                np.load(b.store.artifact_path(knn, "indices.npy")),
                np.load(b.store.artifact_path(knn, "distances.npy")),
                b.artifact_table(faith, "per_point.parquet"), b.artifact(knn).meta,
                b.artifact(faith).meta)
        finally:
            b.runner.shutdown()
    (i1, d1, p1, k1, f1), (i2, d2, p2, k2, f2) = out["in-process"], out["ray"]
    assert np.array_equal(i1, i2) and np.array_equal(d1, d2)
    pd.testing.assert_frame_equal(p1, p2, check_exact=True)
    assert f1["result"]["faithfulness"] == f2["result"]["faithfulness"]
    for meta in (k2, f2):  # the engine's own description, as for every Ray kind
        assert meta["engine"]["name"] == "ray" and meta["engine"]["address"] == "local"
        assert meta["engine"]["resources"]["CPU"] == 2.0 and meta["engine"]["nodes"] == 1
    assert k2["result"]["knn"]["settings"]["row_blocks"] == 2  # 4,500 rows: 2 of 3,728
    assert f1["engine"]["name"] == "in-process"
    assert "row_blocks" not in k1["result"]["knn"]["settings"]  # in process: no blocks


def test_a_killed_worker_s_block_is_retried(cluster, tmp_path):
    X = _vectors(9000, 16, seed=6)
    here = knn_search(X, 10, method="exact", recall_sample=0, device="cpu")
    marker = tmp_path / "died"
    dying = ray_support.WrappingEngine(ray_support.die_first, str(marker))
    there = knn_search(X, 10, method="exact", recall_sample=0, device="cpu", engine=dying)
    assert marker.exists()  # one block's first attempt killed its worker
    assert np.array_equal(here[0], there[0]) and np.array_equal(here[1], there[1])


def test_a_failed_block_is_named(cluster):
    X = _vectors(9000, 16, seed=6)
    failing = ray_support.WrappingEngine(ray_support.fail_at_row, (4, 1864))  # search_rows' lo
    with pytest.raises(TaskFailedError, match=r"task kNN graph rows 1,864-3,727 failed: "
                                              r"RuntimeError: simulated failure in the block "
                                              r"at row 1864"):
        knn_search(X, 10, method="exact", recall_sample=0, device="cpu", engine=failing)
    failing = ray_support.WrappingEngine(ray_support.fail_at_row, (3, 0))  # score_rows' lo
    with pytest.raises(TaskFailedError, match=r"task faithfulness rows 0-999 of 2,000 scored "
                                              r"failed: RuntimeError: simulated failure"):
        projection_faithfulness(X[:4000], X[:4000, :2], n_rows=2000, device="cpu",
                                engine=failing)


def test_cancel_stops_the_blocks_within_2_s(cluster):
    # 20,000 rows: 24 exact blocks of 838 rows; cancelled once the first is back
    X = _vectors(20_000, 32, seed=7)
    stop = threading.Event()
    cancelled_at = []

    done = []

    def progress(fraction, message):
        if " done (" in message:
            done.append(message)
            if not stop.is_set():
                cancelled_at.append(time.monotonic())
                stop.set()

    with pytest.raises(JobCancelled):
        knn_search(X, 10, method="exact", recall_sample=0, device="cpu", engine=cluster,
                   stop=stop, progress=progress, block_rows=1)
    assert cancelled_at and time.monotonic() - cancelled_at[0] < 2.0
    assert len(done) == 1 and done[0].endswith("(1 of 24)")  # the other 23 never came back
    ray_support.wait_for(lambda: ray.available_resources().get("CPU", 0) == 2.0, 20, "free CPUs")
