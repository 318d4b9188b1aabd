import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness

from backend.errors import InvalidInputError, InvalidParameterError
from backend.project import PCA, knn_graph, umap_embedding


def test_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    idx, dist = knn_graph(X, 6)
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    order = np.argsort(D, axis=1, kind="stable")[:, :6]
    assert (idx[:, 0] == np.arange(300)).all() and (dist[:, 0] == 0).all()
    np.testing.assert_array_equal(np.sort(idx, 1), np.sort(order, 1))
    np.testing.assert_allclose(dist, np.take_along_axis(D, order, 1), rtol=1e-5, atol=1e-5)


def test_knn_nndescent_recall():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 10)).astype(np.float32)
    exact, _ = knn_graph(X, 10, method="exact")
    approx, _ = knn_graph(X, 10, method="nndescent", random_state=0)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    assert recall > 0.95


def test_knn_duplicates_keep_self_first():
    X = np.repeat(np.arange(10, dtype=np.float32)[:, None], 3, axis=0)  # each point 3 times
    idx, dist = knn_graph(X, 4)
    assert (idx[:, 0] == np.arange(30)).all()
    assert (idx != idx[:, :1]).sum(1).min() == 3  # self appears once per row


def test_knn_errors():
    X = np.zeros((5, 2), np.float32)
    with pytest.raises(InvalidInputError, match="5 rows but n_neighbors=15"):
        knn_graph(X, 15)
    with pytest.raises(InvalidParameterError, match="metric must be one of"):
        knn_graph(X, 2, metric="hamming2")
    X[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        knn_graph(X, 2)


def test_pca_matches_sklearn():
    from sklearn.decomposition import PCA as SkPCA

    X = load_digits().data
    ours = PCA(3, device="cpu")
    emb = ours.fit_transform(X)
    ref = SkPCA(3, svd_solver="full").fit(X)
    ref_emb = ref.transform(X)
    signs = np.sign((emb * ref_emb).sum(0))
    np.testing.assert_allclose(emb, ref_emb * signs, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-6)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-6)
    with pytest.raises(InvalidParameterError, match=r"n_components must be an integer in \[1, 64\]"):
        PCA(65).fit_transform(X)


def test_umap_on_digits_is_faithful():
    """UMAP of digits keeps local structure: trustworthiness(k=10) above 0.97.

    umap-learn's own test floor on iris is 0.97 (``test_umap_on_iris.py``); on digits
    it measures 0.988 for seeds 0, 1 and 42, so 0.97 leaves room for seed noise while
    still failing for a broken graph (PCA-2 scores 0.83 here).
    """
    X = load_digits().data.astype(np.float32)
    knn = knn_graph(X, 15)
    fractions = []
    emb = umap_embedding(X, knn, random_state=42, progress=lambda f, m: fractions.append(f))
    assert emb.shape == (1797, 2) and emb.dtype == np.float32
    t = trustworthiness(X, emb, n_neighbors=10)
    assert t > 0.97, t
    assert fractions and fractions[-1] == pytest.approx(1.0) and fractions == sorted(fractions)
    pca_t = trustworthiness(X, PCA(2).fit_transform(X), n_neighbors=10)
    assert pca_t < 0.9


def test_umap_progress_can_cancel():
    X = load_digits().data.astype(np.float32)[:300]

    class Stop(Exception):
        pass

    def progress(f, m):
        if f > 0.1:
            raise Stop

    with pytest.raises(Stop):
        umap_embedding(X, knn_graph(X, 10), progress=progress)


def test_duplicates_and_tiny_datasets_in_pca_and_umap_jobs(backend):
    """Issue 17 item 17: duplicate rows and 3-15-row datasets in PCA and UMAP (the heat
    geodesic: tests/unit/test_heat_geodesic.py); UMAP on 3 rows is refused with a reason
    instead of failing inside its spectral start."""
    import pandas as pd

    from backend.kinds import JobSpec

    rng = np.random.default_rng(0)
    dup = np.repeat(rng.normal(size=(8, 4)), 5, axis=0).astype(np.float32)  # 40 rows, 8 distinct
    for X in (dup, rng.normal(size=(5, 4)).astype(np.float32)):
        info = backend.store.add_dataset(pd.DataFrame({"i": np.arange(len(X))}), X,
                                         name=f"d{len(X)}", source="test")
        # duplicates: more neighbours than copies, so the kNN graph is connected (a graph of
        # separate cliques sends umap-learn into a slow multi-component spectral start)
        runs = [("pca", {}), ("umap", {"n_neighbors": 2 if len(X) <= 5 else 7})]
        if len(X) > 5:
            runs.append(("umap", {"n_neighbors": 7, "metric": "cosine", "n_components": 3}))
        for kind, params in runs:
            status = backend.wait(backend.submit(JobSpec(kind, info.id, params)), 180)
            assert status.state == "done", (kind, params, status.error)
            proj = backend.artifact_table(status.artifact_id, "projection.parquet")
            assert len(proj) == len(X) and np.isfinite(proj.drop(columns="_row").to_numpy()).all()
    three = backend.store.add_dataset(pd.DataFrame({"i": np.arange(3)}),
                                      rng.normal(size=(3, 4)).astype(np.float32), name="three",
                                      source="test")
    with pytest.raises(InvalidInputError, match="UMAP's spectral start needs at least 4 rows "
                                                "for a 2-D map; 'three' has 3"):
        backend.submit(JobSpec("umap", three.id, {"n_neighbors": 2}))
    assert backend.wait(backend.submit(JobSpec("pca", three.id, {})), 60).state == "done"
