import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness

from backend.errors import InvalidInputError, InvalidParameterError
from backend.project import PCA, knn_graph, umap_embedding
from backend.project.knn import knn_search
from backend.project.umap_ import umap_fit


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan", "correlation"])
def test_knn_exact_matches_brute_force_without_self(metric):
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    idx, dist = knn_graph(X, 6, metric=metric, method="exact", device="cpu")
    D = cdist(X.astype(np.float64), X.astype(np.float64),
              {"manhattan": "cityblock"}.get(metric, metric))
    np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1, kind="stable")[:, :6]
    assert idx.shape == (300, 6) and idx.dtype == np.int64 and dist.dtype == np.float32
    assert not (idx == np.arange(300)[:, None]).any()
    np.testing.assert_array_equal(np.sort(idx, 1), np.sort(order, 1))
    np.testing.assert_allclose(dist, np.take_along_axis(D, order, 1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["hnsw", "ivf"])  # nndescent: numba compiles ~60 s
def test_knn_approximate_recall_is_measured(method):
    """Each approximate method reaches recall@10 >= 0.95 on 3,000 clustered rows, and the
    recall it reports is the recall computed here against exact search."""
    from sklearn.datasets import make_blobs

    X = make_blobs(3000, n_features=16, centers=20, random_state=1)[0].astype(np.float32)
    exact, _ = knn_graph(X, 10, method="exact", device="cpu")
    idx, dist, rep = knn_search(X, 10, method=method, random_state=0, recall_sample=3000)
    assert rep.method == method and rep.recall_sample == 3000
    # set recall (no ties in continuous data)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, idx)])
    assert recall >= 0.95 and rep.recall == pytest.approx(recall, abs=2e-3)
    assert not (idx == np.arange(3000)[:, None]).any()
    assert (np.diff(dist, axis=1) >= 0).all()


def test_knn_auto_is_exact_on_small_data():
    X = load_digits().data
    _, _, rep = knn_search(X, 15)
    assert rep.method == "exact" and rep.recall == 1.0


@pytest.mark.parametrize("method", ["exact", "hnsw", "ivf"])
def test_knn_duplicates_are_neighbours_at_zero_self_never(method):
    X = np.repeat(np.arange(300, dtype=np.float32)[:, None], 3, axis=0)  # each point 3 times
    X = np.hstack([X, np.zeros_like(X)])
    idx, dist = knn_graph(X, 4, method=method, device="cpu")
    rows = np.arange(900)[:, None]
    assert not (idx == rows).any()
    # the two copies of each row come first, at distance 0; then the next values at 1
    np.testing.assert_array_equal(np.sort(idx[:, :2], 1) // 3, np.repeat(rows // 3, 2, 1))
    assert (dist[:, :2] == 0).all() and (dist[:, 2:] == 1).all()


def test_knn_all_copies_of_one_row():
    """Every row identical: neighbours are other copies at distance 0."""
    X = np.ones((20, 3), np.float32)
    idx, dist = knn_graph(X, 5, device="cpu")
    assert not (idx == np.arange(20)[:, None]).any() and (dist == 0).all()


def test_knn_zero_row_under_cosine_is_reported():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    X[[7, 9]] = 0.0
    idx, dist, rep = knn_search(X, 3, metric="cosine")
    assert rep.n_zero_rows == 2 and "undefined" in rep.note
    # the two zero rows: each other first at 0, then anything at distance 1
    assert idx[7, 0] == 9 and dist[7, 0] == 0 and (dist[7, 1:] == 1).all()
    assert 7 not in idx[0] or dist[0][list(idx[0]).index(7)] == 1


def test_knn_integer_and_two_dimensional_data():
    X = np.array([[0, 0], [0, 1], [1, 0], [5, 5], [5, 6]], dtype=np.int64)
    idx, dist = knn_graph(X, 1)
    np.testing.assert_array_equal(idx[:, 0], [1, 0, 0, 4, 3])
    np.testing.assert_allclose(dist[:, 0], [1, 1, 1, 1, 1])


def test_knn_errors():
    X = np.zeros((5, 2), np.float32)
    with pytest.raises(InvalidInputError, match="5 rows but n_neighbors=15 needs at least 16"):
        knn_graph(X, 15)
    with pytest.raises(InvalidInputError, match="5 rows but n_neighbors=5"):
        knn_graph(X, 5)
    with pytest.raises(InvalidParameterError, match="metric must be one of"):
        knn_graph(X, 2, metric="hamming2")
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        knn_graph(X, 2, method="annoy")
    with pytest.raises(InvalidInputError, match="2-D numeric"):
        knn_graph(np.zeros(5), 2)
    X[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match=r"1 row\(s\) contain NaN"):
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
    """Our torch layout of digits keeps local structure as umap-learn's does.

    umap-learn 0.5.12 on the same 15-neighbour graph (14 others + the row) measures
    trustworthiness(k=10) 0.9886-0.9890 for seeds 0 and 42 (bench/projection_scale.py
    --digits prints both side by side); ours must be within 0.01 of it, and PCA-2 scores
    0.83 here, so a broken layout fails.
    """
    X = load_digits().data.astype(np.float32)
    knn = knn_graph(X, 14)
    fractions = []
    emb, rep = umap_fit(X, knn, random_state=42, device="cpu",
                        progress=lambda f, m: fractions.append(f))
    assert emb.shape == (1797, 2) and emb.dtype == np.float32
    assert rep.engine == "torch" and rep.init == "spectral" and rep.n_epochs == 500
    t = trustworthiness(X, emb, n_neighbors=10)
    assert t >= 0.9886 - 0.01, t
    assert fractions and fractions[-1] == pytest.approx(1.0) and fractions == sorted(fractions)
    pca_t = trustworthiness(X, PCA(2).fit_transform(X), n_neighbors=10)
    assert pca_t < 0.9


def test_layout_epoch_is_umaps_update_rule():
    """One edge, one epoch, no negative sample due: both ends move by the clipped
    attractive gradient of 1 / (1 + a d^2b), closed form."""
    import torch

    from backend.project.umap_ import layout_epoch

    a, b, alpha = 1.5, 0.8, 0.7
    Y = torch.tensor([[0.0, 0.0], [0.3, 0.4]])
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    head, tail = torch.tensor([0]), torch.tensor([1])
    next_s, next_neg = f64([1.0]), f64([1.0])  # the next negative sample is due at 1.2
    n = layout_epoch(Y, head, tail, f64([1.0]), next_s, f64([0.2]), next_neg, 1, a, b,
                     alpha, torch.Generator().manual_seed(0))
    d2 = 0.25
    coef = -2 * a * b * d2 ** (b - 1) / (a * d2**b + 1)
    g = np.clip(coef * np.array([-0.3, -0.4]), -4, 4) * alpha
    np.testing.assert_allclose(Y[0].numpy(), g, rtol=1e-5)
    np.testing.assert_allclose(Y[1].numpy(), [0.3, 0.4] - g, rtol=1e-5)
    assert n == 1 and next_s.item() == 2.0 and next_neg.item() == 1.0
    # at epoch 2 the edge is due again, with (2 - 1) / 0.2 = 5 negative samples
    layout_epoch(Y, head, tail, f64([1.0]), next_s, f64([0.2]), next_neg, 2, a, b, alpha,
                 torch.Generator().manual_seed(0))
    assert next_s.item() == 3.0 and next_neg.item() == pytest.approx(2.0)


def test_edge_steps_sum_every_due_negative_sample():
    """Two edges with 3 and 7 negative samples due: the first uses 3 rows of the 5-row
    block, the second all 5 and 2 more from the flat batch past it; each head's step is
    the attractive step plus the sum of its clipped repulsive steps (umap-learn's rule)."""
    import torch

    from backend.project.umap_ import edge_steps

    a, b, alpha = 1.58, 0.9, 0.5
    rng = np.random.default_rng(0)
    Y = torch.from_numpy(rng.uniform(0, 3, size=(20, 2)).astype(np.float32))
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    pool = torch.from_numpy(rng.integers(4, 20, size=12))  # exactly the 5 * 2 + 2 needed
    next_neg = f64([0.25, 0.125])
    j, k, to_head, to_tail = edge_steps(
        [Y[:, 0], Y[:, 1]], torch.tensor([0, 1]), torch.tensor([2, 3]), f64([1.0, 1.0]),
        f64([1.0, 1.0]), f64([0.25, 0.125]), next_neg, 1, a, b, alpha, u=0.3, pool=pool)
    assert j.tolist() == [0, 1] and k.tolist() == [2, 3]
    np.testing.assert_allclose(next_neg.numpy(), [1.0, 1.0])
    y = Y.numpy().astype(np.float64)
    rows = {0: [pool[2 * r].item() for r in range(3)],
            1: [pool[2 * r + 1].item() for r in range(5)] + [pool[10].item(), pool[11].item()]}
    for e, (h, t) in enumerate([(0, 2), (1, 3)]):
        d = y[h] - y[t]
        d2 = d @ d
        att = alpha * np.clip(-2 * a * b * d2 ** (b - 1) / (1 + a * d2**b) * d, -4, 4)
        rep = np.zeros(2)
        for r in rows[e]:
            dn = y[h] - y[r]
            dn2 = dn @ dn
            rep += alpha * np.clip(2 * b / ((0.001 + dn2) * (1 + a * dn2**b)) * dn, -4, 4)
        got = np.array([to_head[0][e].item(), to_head[1][e].item()])
        np.testing.assert_allclose(got, att + rep, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose([to_tail[0][e].item(), to_tail[1][e].item()], att,
                                   rtol=1e-4, atol=1e-6)


def test_layout_workers_do_not_change_the_result(monkeypatch):
    """Edge parts computed in worker threads from one snapshot and applied in part order:
    the layout depends on the seed only (several parts and groups here), the start is
    left as it was, and the layout still keeps digits' neighbourhoods."""
    from backend.project import umap_ as U

    monkeypatch.setattr(U, "PART_EDGES", 4096)
    monkeypatch.setattr(U, "EDGE_CHUNK", 3 * 4096)
    X = load_digits().data.astype(np.float32)
    graph = U.fuzzy_graph(knn_graph(X, 14), n_epochs=200)
    assert graph.nnz > 6 * 4096  # at least two groups of three parts
    Y0 = U._initial_layout(X, graph, 2, np.random.RandomState(0), "cpu", None, "auto")[0]
    Y0 = np.asfortranarray(Y0)  # its transpose is C-ordered: still not written to
    start = Y0.copy()
    a, b = U.find_ab_params(1.0, 0.1)
    one = U.optimize_layout(Y0, graph, 100, a, b, random_state=3, workers=1)
    two = U.optimize_layout(Y0, graph, 100, a, b, random_state=3, workers=2)
    np.testing.assert_array_equal(Y0, start)
    np.testing.assert_array_equal(one, two)
    assert one.shape == (1797, 2) and one.dtype == np.float32
    assert trustworthiness(X, one, n_neighbors=10) >= 0.9886 - 0.01


def test_fuzzy_graph_is_umap_learns():
    """Our numpy fuzzy simplicial set equals umap-learn's ``fuzzy_simplicial_set`` on the
    same graph (digits, 15 neighbours with the row itself): same edges, weights within
    float32 rounding; ``a, b`` equal umap-learn's ``find_ab_params``."""
    from umap.umap_ import find_ab_params as ref_ab
    from umap.umap_ import fuzzy_simplicial_set

    from backend.project.umap_ import find_ab_params, fuzzy_graph, smooth_knn_dist, with_self

    X = load_digits().data.astype(np.float32)
    knn = knn_graph(X, 14)
    idx, dist = with_self(*knn)
    ref, sigma, rho = fuzzy_simplicial_set(np.empty((len(X), 1)), 15,
                                           np.random.RandomState(0), "euclidean",
                                           knn_indices=idx, knn_dists=dist)
    ours = fuzzy_graph(knn, n_epochs=10**9).tocsr()  # no pruning
    assert ours.nnz == ref.nnz == 34238
    assert abs(ours - ref.tocsr()).max() < 1e-5
    assert (ours != ours.T).nnz == 0
    s, r = smooth_knn_dist(dist, 15.0)
    np.testing.assert_allclose(s, sigma, rtol=1e-4)
    np.testing.assert_array_equal(r, rho)
    for min_dist in (0.0, 0.1, 0.5):
        assert find_ab_params(1.0, min_dist) == pytest.approx(ref_ab(1.0, min_dist), rel=1e-6)


def test_spectral_init_matches_dense_eigenvectors():
    """The start is the 2nd and 3rd eigenvectors of I + D^-1/2 W D^-1/2 (dense check)."""
    from backend.project.umap_ import fuzzy_graph, spectral_init

    X = np.random.default_rng(0).uniform(size=(300, 2)) * [3, 1]  # connected, gaps clear
    W = fuzzy_graph(knn_graph(X, 10)).toarray().astype(np.float64)
    d = 1 / np.sqrt(W.sum(0))
    vals, vecs = np.linalg.eigh(np.eye(300) + d[:, None] * W * d[None, :])
    assert vals[-1] - vals[-2] > 1e-3 and vals[-3] - vals[-4] > 1e-3
    ref = vecs[:, ::-1][:, 1:3]
    Y = spectral_init(W, 2)
    for j in range(2):
        assert abs(np.corrcoef(Y[:, j], ref[:, j])[0, 1]) > 0.999


def test_umap_cancels_in_every_phase():
    """A progress callback that raises stops the spectral start and the layout."""
    from backend.project.umap_ import spectral_init

    X = load_digits().data.astype(np.float32)[:600]
    knn = knn_graph(X, 10)

    class Stop(Exception):
        pass

    seen = []

    def stop_after(limit):
        def progress(f, m):
            seen.append(m)
            if len(seen) > limit:
                raise Stop
        return progress

    with pytest.raises(Stop):
        umap_fit(X, knn, progress=stop_after(5), device="cpu")
    assert seen[-1].startswith("UMAP epoch ") and int(seen[-1].split()[2].split("/")[0]) <= 5
    import scipy.sparse as sp

    n = 3000
    i = np.arange(n)
    W = sp.coo_matrix((np.ones(2 * n), (np.r_[i, (i + 1) % n], np.r_[(i + 1) % n, i])),
                      shape=(n, n))
    seen.clear()
    with pytest.raises(Stop):
        spectral_init(W, 2, progress=stop_after(0))
    assert seen == ["UMAP: spectral start (50 products)"]


def test_umap_learn_engine_is_the_reference():
    X = load_digits().data.astype(np.float32)[:300]
    emb, rep = umap_fit(X, knn_graph(X, 10), engine="umap-learn", random_state=0)
    assert emb.shape == (300, 2) and rep.engine == "umap-learn"
    with pytest.raises(InvalidParameterError, match="engine must be one of"):
        umap_fit(X, knn_graph(X, 10), engine="rapids")


def test_duplicates_and_tiny_datasets_in_pca_and_umap_jobs(backend):
    """Issue 17 item 17: duplicate rows and 3-15-row datasets in PCA and UMAP (the heat
    geodesic: tests/unit/test_heat_geodesic.py); UMAP on 3 rows works
    without failing inside the spectral start."""
    import pandas as pd

    from backend.kinds import JobSpec

    rng = np.random.default_rng(0)
    dup = np.repeat(rng.normal(size=(8, 4)), 5, axis=0).astype(np.float32)  # 40 rows, 8 distinct
    cliques = None
    for X in (dup, rng.normal(size=(5, 4)).astype(np.float32)):
        info = backend.store.add_dataset(pd.DataFrame({"i": np.arange(len(X))}), X,
                                         name=f"d{len(X)}", source="test")
        cliques = info if X is dup else cliques
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
    # fewer neighbours than copies: the kNN graph is 8 separate cliques (slow in umap-learn's
    # multi-component spectral start); the torch layout gives a finite map that is not collapsed
    status = backend.wait(backend.submit(JobSpec("umap", cliques.id, {"n_neighbors": 4})), 180)
    assert status.state == "done", status.error
    xy = backend.artifact_table(status.artifact_id, "projection.parquet")[["x", "y"]].to_numpy()
    assert np.isfinite(xy).all() and np.ptp(xy, axis=0).min() > 0
    three = backend.store.add_dataset(pd.DataFrame({"i": np.arange(3)}),
                                      rng.normal(size=(3, 4)).astype(np.float32), name="three",
                                      source="test")
    for kind, params in (("umap", {"n_neighbors": 2}), ("pca", {})):
        assert backend.wait(backend.submit(JobSpec(kind, three.id, params)), 60).state == "done"
