"""Heat geodesic embedding: reference graph and distances, quality, scale modes, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist, squareform
from sklearn.neighbors import NearestNeighbors, kneighbors_graph

from backend.datasets.manifolds import dla_tree, dla_tree_backbone, swiss_roll
from backend.diagnostics.projection import row_spearman
from backend.errors import InvalidInputError, InvalidParameterError, JobCancelled
from backend.project import HeatGeodesic, heat_geodesic_embedding
from backend.project.heat_geodesic import (
    HeatGeodesicReport,
    alpha_decay_affinity,
    chebyshev_heat_kernel,
    chebyshev_order,
    exact_heat_kernel,
    heat_geodesic_distances,
    normalized_laplacian,
)

# Reference numbers: heatgeo 0.0.1 (graphtools 1.5.3, pygsp 0.5.1) on swiss_roll(500, 0.1),
# HeatGeo(knn=10, tau=10, order=32, harnack_regul=0): graph.W, graph.lmax and op.dist.
REF_W_NNZ = 6564
REF_W_SUM = 4576.55811357097
REF_LMAX = 1.3519229773266672
REF_DIST = {(0, 0): 11.4488303170023, (0, 3): 26.5824847246632,
            (123, 456): 16.6155113637517, (250, 251): 18.3079336809109}
REF_CEILING = 38.3882072975046  # dist[499, 0]: heat below float64 round-off
# heat_geodesic.md: best reference configuration (knn=10, tau=50, order=64, harnack=1)
REF_SWISS_BEST = 0.858  # embedding row-Spearman, Swiss roll n=2000, noise 0.1
REF_TREE_BEST = 0.901  # embedding row-Spearman, DLA tree, noise std 5
REF_SWISS_D_DIST = 0.908  # distance-matrix row-Spearman of that configuration


def _candidates(X, k):
    d, i = NearestNeighbors(n_neighbors=3 * k + 1).fit(X).kneighbors(X)
    return i[:, 1:], d[:, 1:]


def _score(emb, gt):
    return row_spearman(emb, ground_truth_distances=gt)


@pytest.fixture(scope="module")
def swiss2000():
    X, chart = swiss_roll(2000, 0.1)
    return X, squareform(pdist(chart))


@pytest.fixture(scope="module")
def swiss2000_default(swiss2000):
    X, _ = swiss2000
    return HeatGeodesic(random_state=0).fit(X)


# ------------------------------------------------------------------------ reference graph
def test_alpha_decay_graph_equals_reference():
    X, _ = swiss_roll(500, 0.1)
    W = alpha_decay_affinity(*_candidates(X, 10), 10)
    assert W.nnz == REF_W_NNZ
    assert W.sum() == pytest.approx(REF_W_SUM, rel=1e-12)
    assert abs(W - W.T).max() == 0.0 and W.diagonal().max() == 0.0


def test_reference_distances_reproduced_on_same_laplacian():
    X, _ = swiss_roll(500, 0.1)
    L = normalized_laplacian(alpha_decay_affinity(*_candidates(X, 10), 10))
    H = chebyshev_heat_kernel(L, 10.0, 32, REF_LMAX, np.eye(500))
    D = heat_geodesic_distances(torch.from_numpy(H), 10.0, sigma=0.0).numpy()
    for (i, j), ref in REF_DIST.items():
        assert H[i, j] > 1e-8
        assert D[i, j] == pytest.approx(ref, abs=1e-9)
    # a degree-32 polynomial is exactly 0 between far points: the reference's ceiling
    assert D[499, 0] == pytest.approx(REF_CEILING, abs=1e-9)


def test_dla_backbone_equals_phate_gen_dla():
    M = dla_tree_backbone()  # phate.tree.gen_dla(10, 5, 500, seed=42, sigma=0), phate 1.0.10
    assert M.shape == (2500, 10)
    assert M[1234, 3] == 11.955517950112462
    assert M.sum() == pytest.approx(-12557.864915735114, rel=1e-13)


# --------------------------------------------------------------------------- heat kernel
def _dense_chebyshev(L, t, order, lmax):
    """Independent dense float64 evaluation (numpy, no shared code)."""
    from scipy.special import ive

    n = L.shape[0]
    Ls = 2.0 * L / lmax - np.eye(n)
    c = 2.0 * ive(np.arange(order + 1), t * lmax / 2) * (-1.0) ** np.arange(order + 1)
    T0, T1 = np.eye(n), Ls.copy()
    out = 0.5 * c[0] * T0 + c[1] * T1
    for k in range(2, order + 1):
        T0, T1 = T1, 2.0 * Ls @ T1 - T0
        out += c[k] * T1
    return out


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_chebyshev_matches_dense_float64_and_exact():
    X, _ = swiss_roll(250, 0.1, random_state=3)
    L = normalized_laplacian(alpha_decay_affinity(*_candidates(X, 10), 10))
    lmax = float(np.linalg.eigvalsh(L.toarray())[-1]) * 1.01
    t = 50.0
    order, bound = chebyshev_order(t, lmax)
    assert order >= t * lmax / 2 and bound <= 1e-15
    ref = _dense_chebyshev(L.toarray(), t, order, lmax)
    H_np = chebyshev_heat_kernel(L, t, order, lmax, np.eye(250))
    Lt = torch.from_numpy(L.toarray()).to_sparse_csr()  # the accelerator code path
    H_t = chebyshev_heat_kernel(Lt, t, order, lmax, torch.eye(250, dtype=torch.float64))
    mask = ref > 1e-8
    d_ref = heat_geodesic_distances(torch.from_numpy(ref), t, 1.0).numpy()
    for H in (H_np, H_t.numpy()):
        d = heat_geodesic_distances(torch.from_numpy(np.asarray(H)), t, 1.0).numpy()
        assert np.abs(d - d_ref)[mask].max() <= 1e-9
    exact = exact_heat_kernel(torch.from_numpy(L.toarray()))(t).numpy()
    assert np.abs(H_np - exact).max() <= 1e-12


def test_chebyshev_order_is_minimal_and_certified():
    from scipy.special import ive

    X, _ = swiss_roll(250, 0.1, random_state=3)
    L = normalized_laplacian(alpha_decay_affinity(*_candidates(X, 10), 10))
    lmax = float(np.linalg.eigvalsh(L.toarray())[-1]) * 1.01
    heat = exact_heat_kernel(torch.from_numpy(L.toarray()))
    for t in (1.0, 10.0, 1000.0):
        K, bound = chebyshev_order(t, lmax)
        z = t * lmax / 2
        assert bound <= 1e-15 < 2 * ive(np.arange(K, K + 2000), z).sum()  # K - 1 fails
        H = chebyshev_heat_kernel(L, t, K, lmax, np.eye(250))
        assert np.abs(H - heat(t).numpy()).max() <= 3e-15
    # the e^{-z} factor of the coefficients: far fewer terms than z = t lmax / 2 at large t
    assert chebyshev_order(1000.0, 2.0)[0] < 300 < 1000


def test_harnack_sigma_one_gives_zero_diagonal_and_symmetry():
    H = torch.tensor([[0.5, 0.1], [0.1, 0.3]], dtype=torch.float64)
    D = heat_geodesic_distances(H, 2.0, 1.0)
    assert torch.allclose(torch.diagonal(D), torch.zeros(2, dtype=torch.float64))
    expected = np.sqrt(-8.0 * np.log(0.1 + 1e-16) + 8.0 * np.log(0.4 + 1e-16))
    assert float(D[0, 1]) == pytest.approx(expected, rel=1e-12)


def test_reference_config_d_distances(swiss2000):
    """knn=10, t=50, order=64, sigma=1 with Chebyshev: the reference's distance score."""
    X, gt = swiss2000
    hg = HeatGeodesic(n_neighbors=10, t=50, order=64, sigma=1.0, method="chebyshev",
                      max_iter=0, random_state=0).fit(X)
    assert hg.kernel_ == "chebyshev" and hg.order_ == 64 and hg.t_ == 50
    d = np.asarray(hg.distances_)
    from scipy.stats import rankdata

    a = rankdata(d, axis=1)
    b = rankdata(gt, axis=1)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    score = np.mean((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1)))
    assert score == pytest.approx(REF_SWISS_D_DIST, abs=0.005)
    assert hg.saturated_fraction_ > 0.05  # the reference's t=50, K=64 saturates far pairs


# ------------------------------------------------------------------------------ quality
def test_swiss_roll_default_reaches_reference(swiss2000, swiss2000_default):
    _, gt = swiss2000
    hg = swiss2000_default
    assert _score(hg.embedding_, gt) >= REF_SWISS_BEST - 0.02
    assert hg.method_ == "exact" and hg.saturated_fraction_ == 0.0
    assert hg.report_.far_pair_ratio == pytest.approx(1e-7, rel=0.05)
    assert hg.t_ > 10 * 10  # far above the reference's fixed t=10


def test_dla_tree_default_reaches_reference():
    X, gt = dla_tree(5.0)
    hg = HeatGeodesic(random_state=0).fit(X)
    assert _score(hg.embedding_, gt) >= REF_TREE_BEST - 0.02
    assert hg.saturated_fraction_ == 0.0


def test_landmark_mode_agrees_with_dense(swiss2000, swiss2000_default):
    X, gt = swiss2000
    lm = HeatGeodesic(method="landmark", n_landmarks=800, random_state=0).fit(X)
    assert lm.method_ == "landmark" and lm.distances_.shape == (800, 800)
    assert len(np.unique(lm.landmark_labels_)) == 800
    assert lm.landmark_labels_[lm.landmarks_].tolist() == list(range(800))
    dense = _score(swiss2000_default.embedding_, gt)
    assert abs(_score(lm.embedding_, gt) - dense) <= 0.02


@pytest.mark.slow
@pytest.mark.parametrize("n", [8000, 20000, 100000])
def test_quality_holds_as_n_grows(n):
    X, chart = swiss_roll(n, 0.1)
    emb = HeatGeodesic(random_state=0).fit_transform(X)
    assert row_spearman(emb, ground_truth_coordinates=chart, n_rows=2000) >= 0.85


# ------------------------------------------------------------------------ graph inputs
def test_precomputed_graphs_give_the_same_embedding():
    X, _ = swiss_roll(300, 0.1, random_state=5)
    ref = HeatGeodesic(random_state=1).fit_transform(X)
    G = kneighbors_graph(X, 30, mode="distance")
    assert np.allclose(HeatGeodesic(random_state=1).fit_transform(None, knn_graph=G), ref,
                       atol=1e-8)
    d, i = NearestNeighbors(n_neighbors=31).fit(X).kneighbors(X)  # self first
    emb = HeatGeodesic(random_state=1).fit_transform(X, knn_graph=(i, d))
    assert np.allclose(emb, ref, atol=1e-8)


def test_precomputed_graph_too_few_columns():
    X, _ = swiss_roll(100, 0.1)
    d, i = NearestNeighbors(n_neighbors=8).fit(X).kneighbors(X)
    with pytest.raises(InvalidParameterError, match=r"8 columns .* n_neighbors=10 needs"):
        HeatGeodesic().fit(None, knn_graph=(i, d))


# ---------------------------------------------------------------------------- bad input
def test_disconnected_graph_reports_components():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(60, 3)), rng.normal(size=(40, 3)) + 100.0])
    with pytest.raises(InvalidInputError, match=r"2 disconnected components of sizes \[60, 40\]"
                       ) as exc:
        HeatGeodesic(n_neighbors=5).fit(X)
    assert exc.value.component_sizes == [60, 40]
    assert exc.value.component_labels.tolist() == [0] * 60 + [1] * 40


def test_duplicates_are_merged_and_share_coordinates():
    X, _ = swiss_roll(200, 0.1, random_state=2)
    Xd = np.vstack([X, np.repeat(X[:3], 12, axis=0)])  # 12 more copies each (> n_neighbors)
    hg = HeatGeodesic(random_state=0).fit(Xd)
    assert hg.n_duplicates_ == 36 and hg.embedding_.shape == (236, 2)
    for j in range(3):
        copies = hg.embedding_[200 + 12 * j: 200 + 12 * (j + 1)]
        assert np.array_equal(copies, np.repeat(hg.embedding_[j:j + 1], 12, axis=0))
    assert np.allclose(hg.embedding_[:200], HeatGeodesic(random_state=0).fit_transform(X))


def test_duplicates_in_precomputed_graph_are_merged():
    X, _ = swiss_roll(150, 0.1, random_state=4)
    Xd = np.vstack([X, X[:1]])
    d, i = NearestNeighbors(n_neighbors=31).fit(Xd).kneighbors(Xd)
    emb = HeatGeodesic(random_state=0).fit_transform(None, knn_graph=(i, d))
    assert np.array_equal(emb[0], emb[150])


def test_too_few_points_for_n_neighbors():
    X = np.random.default_rng(0).normal(size=(8, 3))
    with pytest.raises(InvalidParameterError, match=r"n_neighbors=10 must be smaller than the "
                       r"number of distinct points \(8\); use n_neighbors <= 7"):
        HeatGeodesic().fit(X)
    Xd = np.vstack([X, X])  # 16 rows, 8 distinct
    with pytest.raises(InvalidParameterError, match=r"\(8 \(8 duplicate rows merged\)\)"):
        HeatGeodesic().fit(Xd)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(bad):
    X = np.random.default_rng(0).normal(size=(50, 3))
    X[7, 1] = bad
    X[20, 0] = bad
    with pytest.raises(InvalidInputError, match=r"2 row\(s\) with NaN or infinite values "
                       r"\(first rows: \[7, 20\]\)"):
        HeatGeodesic().fit(X)


def test_single_point_and_identical_points():
    with pytest.raises(InvalidInputError, match="at least 2 distinct points; got 1 distinct"):
        HeatGeodesic(n_neighbors=1).fit(np.ones((1, 4)))
    with pytest.raises(InvalidInputError, match=r"got 1 distinct of 30 rows \(29 duplicate"):
        HeatGeodesic(n_neighbors=1).fit(np.ones((30, 4)))


def test_tiny_input_works():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.1], [3.0, 0.0]])
    emb = HeatGeodesic(n_neighbors=2, random_state=0).fit_transform(X)
    # a path graph: the order along the first axis is kept
    assert np.all(np.diff(emb[:, 0]) > 0) or np.all(np.diff(emb[:, 0]) < 0)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "fast"}, "method must be one of"),
    ({"t": -1.0}, r"t must be 'auto' or a number in \(0, 100,000\]; got -1.0"),
    ({"order": 0}, "order must be 'auto' or an integer"),
    ({"sigma": 2.0}, r"sigma must be a number in \[0, 1\]; got 2.0"),
    ({"n_neighbors": 0}, "n_neighbors must be an integer"),
    ({"n_landmarks": 5}, "n_landmarks must be an integer in"),
    ({"n_components": 4}, "n_components must be an integer in"),
])
def test_parameter_validation(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        HeatGeodesic(**kwargs).fit(np.zeros((5, 2)))


def test_dense_method_refuses_huge_input():
    X, _ = swiss_roll(10_001, 0.5)
    with pytest.raises(InvalidParameterError, match="limit 10000 distinct points"):
        HeatGeodesic(method="exact").fit(X)


# ------------------------------------------------------------------ driver & API surface
def test_progress_stages_and_cancel():
    X, _ = swiss_roll(300, 0.1)
    seen = []
    HeatGeodesic(random_state=0).fit(X, progress=lambda f, m: seen.append((f, m)))
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    text = " ".join(m for _, m in seen)
    for stage in ("graph", "kernel", "MDS"):
        assert stage in text

    def cancel(f, m):
        if m.startswith("kernel"):
            raise JobCancelled("stop")

    with pytest.raises(JobCancelled):
        HeatGeodesic().fit(X, progress=cancel)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_accelerator_code_path_gives_the_same_embedding(monkeypatch):
    """The torch-tensor branches (used on CUDA) run here on CPU tensors."""
    from backend.project import heat_geodesic as hg_module

    kernels = set()
    for n, noise, method in ((200, 0.5, "chebyshev"), (200, 0.5, "landmark"),
                             (300, 0.1, "exact")):
        X, _ = swiss_roll(n, noise, random_state=6)
        kw = {"method": "auto" if method == "exact" else method, "n_landmarks": 100,
              "random_state": 0}
        if method == "exact":  # dense, large t: the lowest eigenpairs
            kw["n_landmarks"] = 300
        ref = HeatGeodesic(**kw).fit(X)
        with monkeypatch.context() as m:
            m.setattr(hg_module, "_use_torch", lambda device: True)
            got = HeatGeodesic(**kw).fit(X)
        kernels.add(got.kernel_)
        assert got.t_ == pytest.approx(ref.t_, rel=1e-9) and got.kernel_ == ref.kernel_
        assert np.allclose(got.distances_, ref.distances_, rtol=1e-9, atol=1e-9)
        scale = np.abs(ref.embedding_).max()
        assert np.abs(got.embedding_ - ref.embedding_).max() <= 1e-6 * scale
    assert kernels == {"chebyshev", "eigh", "eigsh"}


def test_functional_form_and_report_roundtrip():
    X, _ = swiss_roll(300, 0.1)
    emb, report = heat_geodesic_embedding(X, 3, random_state=0, method="exact")
    assert emb.shape == (300, 3)
    d = json.loads(json.dumps(report.to_dict()))
    assert HeatGeodesicReport.from_dict(d) == report
    assert report.kernel == "eigh" and report.n_eigenpairs == 300
    with pytest.raises(InvalidParameterError, match="unknown heat geodesic parameter"):
        heat_geodesic_embedding(X, knn=5)


def test_embedding_preserves_distances_of_a_line():
    """Points on a curve in 3-D: the 1-D embedding is monotone in arc length."""
    s = np.linspace(0, 6, 120)
    X = np.column_stack([np.cos(s), np.sin(s), 0.3 * s])
    emb = HeatGeodesic(1, n_neighbors=4, random_state=0).fit_transform(X)[:, 0]
    assert abs(np.corrcoef(emb, s)[0, 1]) > 0.999
    gt = np.abs(s[:, None] - s[None, :])
    D = cdist(emb[:, None], emb[:, None])
    assert abs(np.corrcoef(D.ravel(), gt.ravel())[0, 1]) > 0.99


# ------------------------------------------------------- issue 17 item 17: duplicates, tiny data
@pytest.mark.parametrize("method", ["chebyshev", "exact", "landmark"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_many_duplicates_work_with_every_method_and_metric(method, metric):
    X, _ = swiss_roll(40, 0.1, random_state=3)
    Xd = np.repeat(X, 8, axis=0)  # every row 8 times: more copies than n_neighbors
    hg = HeatGeodesic(3, n_neighbors=5, method=method, n_landmarks=20, metric=metric,
                      random_state=0).fit(Xd)
    assert hg.n_duplicates_ == 280 and hg.embedding_.shape == (320, 3)
    assert np.isfinite(hg.embedding_).all()
    np.testing.assert_array_equal(hg.embedding_[::8].repeat(8, axis=0), hg.embedding_)


def test_metric_is_used_by_the_search():
    X, _ = swiss_roll(120, 0.1, random_state=6)
    X = X + np.array([30.0, 30.0, 30.0])  # no zero vector
    scaled = X * np.random.default_rng(0).uniform(0.5, 2.0, size=(len(X), 1))
    cos = HeatGeodesic(n_neighbors=6, metric="cosine", random_state=0)
    # cosine ignores each row's length: the same embedding for rescaled rows
    np.testing.assert_allclose(cos.fit_transform(scaled), cos.fit_transform(X), atol=1e-6)
    euc = HeatGeodesic(n_neighbors=6, random_state=0)
    assert not np.allclose(euc.fit_transform(scaled), euc.fit_transform(X), atol=1e-3)
    with pytest.raises(InvalidParameterError, match="metric must be one of"):
        HeatGeodesic(metric="hamming").fit(X)


@pytest.mark.parametrize("n", [3, 4, 5, 8, 12, 15])
def test_datasets_of_3_to_15_rows_with_small_n_neighbors(n):
    t = np.linspace(0.0, 3.0, n)
    X = np.column_stack([t, np.sin(t), 0.01 * np.cos(7 * t)])
    for k in sorted({1, 2, min(3, n - 1)}):
        if k >= n:
            continue
        try:
            emb = HeatGeodesic(n_neighbors=k, random_state=0).fit_transform(X)
        except InvalidInputError as e:  # a 1-NN graph may fall apart: said, not crashed
            assert k == 1 and "disconnected components" in str(e)
            continue
        assert emb.shape == (n, 2) and np.isfinite(emb).all()
    with pytest.raises(InvalidParameterError, match=rf"n_neighbors={n} must be smaller than "
                                                    rf"the number of distinct points \({n}\)"):
        HeatGeodesic(n_neighbors=n).fit(X)


def test_heat_geodesic_job_on_duplicates_and_tiny_datasets(backend):
    """The job failed on duplicate rows (the shared 15-neighbour graph's candidates were all
    copies) and on datasets under 15 rows, and its message named n_neighbors + 1."""
    import pandas as pd

    from backend.jobs import JobSpec

    X, _ = swiss_roll(30, 0.1, random_state=1)
    Xd = np.repeat(X, 6, axis=0).astype(np.float32)
    dup = backend.store.add_dataset(pd.DataFrame({"i": np.arange(180)}), Xd, name="dup",
                                    source="test")
    for params in ({}, {"n_components": 3, "metric": "cosine", "method": "exact"}):
        status = backend.wait(backend.submit(JobSpec("heat_geodesic", dup.id, params)), 120)
        assert status.state == "done", status.error
        proj = backend.artifact_table(status.artifact_id, "projection.parquet")
        xy = proj[["x", "y"]].to_numpy()
        np.testing.assert_array_equal(xy[::6].repeat(6, axis=0), xy)
        assert backend.result(status.artifact_id).heat_geodesic["n_duplicates"] == 150
    t = np.linspace(0.0, 3.0, 6)
    tiny = backend.store.add_dataset(
        pd.DataFrame({"i": np.arange(6)}),
        np.column_stack([t, np.sin(t)]).astype(np.float32), name="tiny", source="test")
    status = backend.wait(backend.submit(JobSpec("heat_geodesic", tiny.id,
                                                 {"n_neighbors": 2})), 60)
    assert status.state == "done", status.error
    with pytest.raises(InvalidInputError, match=r"6 rows, too few for n_neighbors=6 "
                                                r"\(needs at least 7\)"):
        backend.submit(JobSpec("heat_geodesic", tiny.id, {"n_neighbors": 6}))
