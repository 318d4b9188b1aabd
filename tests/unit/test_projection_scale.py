"""Projection at scale (issue 14): sampled UMAP, the quick map, bad input, cancelling."""

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness

from app.quick_map import pick_map
from backend.jobs import JobSpec
from backend.project.large import place, project_umap, quick_map


def test_place_is_the_weighted_mean_of_nearest_sample_rows():
    Ys = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]], np.float32)
    # equal distances: the plain mean; a duplicate of sample row 1 (distances 0, 1, 1)
    out = place(Ys, np.array([[0, 1], [1, 0]]), np.array([[1.0, 1.0], [0.0, 1.0]]))
    np.testing.assert_allclose(out[0], [1.0, 0.0])
    w = np.array([1.0, np.exp(-1.0 / 0.5)])  # excess (0, 1), mean excess 0.5
    np.testing.assert_allclose(out[1], (w / w.sum()) @ Ys[[1, 0]], rtol=1e-6)


def test_sampled_umap_places_every_row_and_states_how():
    X = make_blobs(3000, n_features=8, centers=6, random_state=0)[0].astype(np.float32)
    Y, rep = project_umap(X, n_neighbors=10, large_n=1000, sample_size=600,
                          refine_epochs=5, device="cpu")
    assert Y.shape == (3000, 2) and np.isfinite(Y).all()
    assert rep["mode"] == "sampled" and rep["sample_size"] == 600 and rep["threshold"] == 1000
    assert rep["refine_epochs"] == 5 and "600 of 3,000 rows" in rep["description"]
    assert trustworthiness(X, Y, n_neighbors=10) > 0.9


def test_quick_map_covers_every_row():
    X = make_blobs(2500, n_features=8, centers=5, random_state=1)[0]
    Y, rep = quick_map(X, sample_size=500, device="cpu")
    assert Y.shape == (2500, 2) and np.isfinite(Y).all()
    assert rep["kind"] == "quick" and "500 of 2,500 rows" in rep["description"]
    assert trustworthiness(X, Y, n_neighbors=10) > 0.85


def test_pick_map_full_if_done_else_quick():
    assert pick_map("F", "done", "done", "Q") == ("F", "full")
    assert pick_map(None, "running", "done", "Q") == ("Q", "quick")
    assert pick_map(None, "running", "running", None) == (None, "none")
    assert pick_map(None, "failed", "done", "Q") == (None, "none")  # the error is shown


# ----------------------------------------------------------------------------- bad input
def _umap_job(backend, X, params=None, metric="euclidean"):
    ds = backend.store.add_dataset(pd.DataFrame({"a": np.arange(len(X))}),
                                   np.asarray(X, np.float32), name="bad", source="test")
    p = {"n_neighbors": min(15, len(X) - 1), "metric": metric, **(params or {})}
    j = backend.submit(JobSpec("umap", ds.id, p))
    st = backend.wait(j, 120)
    return st, (backend.result(st.artifact_id) if st.state == "done" else None)


def test_three_rows(backend):
    st, res = _umap_job(backend, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert st.state == "done", st.error
    assert res.umap["umap"]["init"] == "pca"  # too few rows for a spectral start


def test_duplicate_rows(backend):
    X = np.repeat(np.random.default_rng(0).normal(size=(40, 5)), 3, axis=0)
    st, res = _umap_job(backend, X, {"n_neighbors": 5})
    assert st.state == "done", st.error
    Y = backend.artifact_table(st.artifact_id, "projection.parquet")
    assert len(Y) == 120 and np.isfinite(Y[["x", "y"]].to_numpy()).all()


def test_zero_row_with_cosine_is_said(backend):
    X = np.random.default_rng(1).normal(size=(60, 5))
    X[4] = 0
    ds = backend.store.add_dataset(pd.DataFrame({"a": np.arange(60)}), X.astype(np.float32),
                                   name="z", source="test")
    st = backend.wait(backend.submit(JobSpec("knn", ds.id, {"n_neighbors": 5,
                                                            "metric": "cosine"})), 60)
    assert st.state == "done", st.error
    res = backend.result(st.artifact_id)
    assert res.knn["n_zero_rows"] == 1 and "undefined" in res.note


def test_integer_and_two_dimensional_data(backend):
    X = np.random.default_rng(2).integers(0, 50, size=(80, 2))
    st, res = _umap_job(backend, X, {"n_neighbors": 5})
    assert st.state == "done", st.error
    assert "2 dimension(s)" in res.note and "could be drawn directly" in res.note


def test_cancel_a_large_projection_within_2_s(backend):
    """Cancel in the kNN step, the fuzzy graph/spectral start and the layout: each stops
    within 2 s and leaves no artifact."""
    X = make_blobs(60_000, n_features=16, centers=30, random_state=3)[0].astype(np.float32)
    ds = backend.store.add_dataset(pd.DataFrame({"a": np.arange(len(X))}), X, name="big",
                                   source="test")
    for seed, phase in ((1, "kNN graph"), (2, "UMAP")):
        j = backend.submit(JobSpec("umap", ds.id, {"random_state": seed,
                                                   "n_neighbors": 10 + seed}))
        deadline = time.monotonic() + 120
        while phase not in backend.status(j).message:
            assert time.monotonic() < deadline, backend.status(j)
            assert backend.status(j).state in ("queued", "running"), backend.status(j)
            time.sleep(0.05)
        t0 = time.monotonic()
        backend.cancel(j)
        st = backend.wait(j, 10)
        assert st.state == "cancelled" and time.monotonic() - t0 < 2.0, (phase, st)
        assert backend.store.artifact_or_none(j) is None
