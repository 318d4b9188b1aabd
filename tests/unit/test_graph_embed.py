"""FastRP and Laplacian eigenmaps (backend/embed/graph.py)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from backend.datasets.graph import (
    graph_from_frames,
    load_edge_list,
    load_example_graph,
    node_label_matrix,
)
from backend.diagnostics.graph import node_classification_probe
from backend.embed.graph import (
    FastRP,
    LaplacianEigenmaps,
    _very_sparse_projection,
    force_layout,
)
from backend.errors import InvalidInputError, InvalidParameterError



def _path(n: int) -> sp.csr_matrix:
    return sp.csr_matrix(nx.to_scipy_sparse_array(nx.path_graph(n), dtype=float))


def _cycle(n: int) -> sp.csr_matrix:
    return sp.csr_matrix(nx.to_scipy_sparse_array(nx.cycle_graph(n), dtype=float))


def _fastrp_reference(S: np.ndarray, R: np.ndarray, weights, beta) -> np.ndarray:
    """Dense numpy FastRP (Chen et al. 2019, Alg. 1 with the reference code's merge)."""
    row = S.sum(axis=1)
    A = np.divide(S, row[:, None], out=np.zeros_like(S), where=row[:, None] > 0)
    col = S.sum(axis=0)
    L = np.where(col > 0, np.abs(col) ** beta, 0.0)
    N = A @ (L[:, None] * R)
    E = np.zeros_like(R)
    for i, w in enumerate(weights):
        if i:
            N = A @ N
        norm = np.linalg.norm(N, axis=1, keepdims=True)
        E += w * N / np.where(norm > 0, norm, 1)
    return (E - E.mean(axis=0)) / E.std(axis=0)


# ---------------------------------------------------------------------------- FastRP


def test_fastrp_matches_dense_reference_on_karate():
    g, _ = load_example_graph("karate_club")
    weights, beta = (0.5, 1.0, 2.0), -0.5
    est = FastRP(24, iteration_weights=weights, beta=beta, random_state=3)
    E = est.fit_transform(g)
    R, _ = _very_sparse_projection(34, 24, 3.0, 3)
    ref = _fastrp_reference(g.adjacency.toarray(), R.astype(np.float64), weights, beta)
    np.testing.assert_allclose(E, ref, atol=2e-4)
    assert E.dtype == np.float32 and est.direction_ == "undirected"
    assert est.isolated_.size == 0 and est.device_ == "cpu"


def test_fastrp_is_deterministic_and_seeded():
    g, _ = load_example_graph("les_miserables")
    a = FastRP(32, random_state=7).fit_transform(g)
    b = FastRP(32, random_state=7).fit_transform(g)
    c = FastRP(32, random_state=8).fit_transform(g)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1


def test_projection_entries_and_sparsity():
    R, n_zero = _very_sparse_projection(20000, 16, 4.0, 0)
    v = np.sqrt(4.0 / 16)
    assert set(np.unique(R).round(6)) == {-round(v, 6), 0.0, round(v, 6)}
    # P(+) = P(-) = 1/(2s) = 0.125; 320,000 entries, sd of a share about 6e-4
    assert abs((R > 0).mean() - 0.125) < 0.004 and abs((R < 0).mean() - 0.125) < 0.004
    assert n_zero == int((~R.any(axis=1)).sum())


def test_sqrt_n_sparsity_leaves_the_predicted_share_of_zero_rows():
    n, d = 10000, 64
    ring = _cycle(n)
    est = FastRP(d, sparsity="sqrt_n").fit(ring)
    p = (1 - 1 / np.sqrt(n)) ** d  # 0.5256
    sd = np.sqrt(n * p * (1 - p))
    assert est.sparsity_ == 100.0
    assert abs(est.n_zero_projection_rows_ - n * p) < 5 * sd
    assert FastRP(d).fit(ring).n_zero_projection_rows_ == 0  # s = 3: (2/3)^64 ~ 5e-12


def test_isolated_nodes_sit_exactly_at_the_centre():
    edges = pd.DataFrame({"source": [0, 1, 2, 3], "target": [1, 2, 3, 0]})
    nodes = pd.DataFrame({"id": [0, 1, 2, 3, 4, 5]})
    g, report = graph_from_frames(edges, nodes)
    assert report.count("isolated_nodes") == 2
    est = FastRP(8).fit(g)
    E = est.embedding_
    np.testing.assert_array_equal(est.isolated_, [4, 5])
    np.testing.assert_array_equal(E[4:], 0.0)
    np.testing.assert_allclose(E[:4].mean(axis=0), 0.0, atol=1e-5)
    # columns of a 4-cycle are standardised over its 4 nodes (constant columns stay 0)
    std = E[:4].std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-4) | (std < 1e-6))


def test_self_influence_gives_isolated_nodes_their_own_vectors():
    edges = pd.DataFrame({"source": [0, 1], "target": [1, 2]})
    g, _ = graph_from_frames(edges, pd.DataFrame({"id": [0, 1, 2, 3, 4]}))
    E = FastRP(16, self_influence=1.0, standardize=False).fit_transform(g)
    R, _ = _very_sparse_projection(5, 16, 3.0, 0)
    for i in (3, 4):
        np.testing.assert_allclose(E[i], R[i] / np.linalg.norm(R[i]), atol=1e-6)
    assert np.abs(E[3] - E[4]).max() > 0.1


def test_directed_graph_directions():
    S = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float))
    out = FastRP(8, direction="out").fit(S)
    np.testing.assert_array_equal(out.isolated_, [2])  # the sink has no successor
    np.testing.assert_array_equal(out.embedding_[2], 0.0)
    assert out.directed_ and out.direction_ == "out"
    inn = FastRP(8, direction="in").fit(S)
    np.testing.assert_array_equal(inn.isolated_, [0])
    reversed_out = FastRP(8, direction="out").fit_transform(S.T.tocsr())
    np.testing.assert_array_equal(inn.embedding_, reversed_out)
    both = FastRP(8, direction="both").fit_transform(S)
    np.testing.assert_array_equal(both, FastRP(8).fit_transform((S + S.T).tocsr()))


def test_fastrp_parameter_and_input_errors():
    S = _path(4)
    with pytest.raises(InvalidParameterError, match="iteration_weights"):
        FastRP(8, iteration_weights=(0, 0)).fit(S)
    with pytest.raises(InvalidParameterError, match="sparsity must be a number >= 1"):
        FastRP(8, sparsity=0.5).fit(S)
    with pytest.raises(InvalidParameterError, match="direction must be one of"):
        FastRP(8, direction="sideways").fit(S)
    with pytest.raises(InvalidParameterError, match="n_components must be an integer >= 1; got 0"):
        FastRP(0).fit(S)
    S_neg = S.copy()
    S_neg.data[:] = -1.0
    with pytest.raises(InvalidInputError, match="non-negative edge weights"):
        FastRP(8).fit(S_neg)
    with pytest.raises(InvalidInputError, match="must be square"):
        FastRP(8).fit(sp.csr_matrix((3, 4)))


def test_fastrp_progress_is_called():
    calls = []
    FastRP(8, iteration_weights=(1, 1)).fit(_path(5), progress=lambda f, m: calls.append((f, m)))
    assert calls[-1] == (1.0, "FastRP: done") and len(calls) == 3


def test_fastrp_blogcatalog_published_numbers(shared_data):
    """Chen et al. 2019 settings: d=512, weights [0,0,1,6.67], beta=-0.64, C=0.1, 5 shuffles.

    The authors' notebook reports Micro/Macro-F1 0.372/0.228 at 10% training.
    """
    g, _ = load_edge_list(shared_data / "graphs" / "blogcatalog" / "edges.csv")
    Y, _ = node_label_matrix(g, pd.read_csv(shared_data / "graphs" / "blogcatalog" / "labels.csv"))
    E = FastRP(512, iteration_weights=(0, 0, 1, 6.67), beta=-0.64).fit_transform(g)
    res = node_classification_probe(E, Y, train_fractions=(0.1,), n_repeats=5, C=0.1)
    row = res.table.iloc[0]
    assert res.multilabel and res.n_labelled == 10312 and res.n_classes == 39
    assert abs(row["micro_f1"] - 0.372) < 0.01, row.to_dict()
    assert abs(row["macro_f1"] - 0.228) < 0.01, row.to_dict()


@pytest.mark.slow
def test_fastrp_blogcatalog_published_numbers_reference_sparsity(shared_data):
    """Same check with the reference code's s = sqrt(n)."""
    g, _ = load_edge_list(shared_data / "graphs" / "blogcatalog" / "edges.csv")
    Y, _ = node_label_matrix(g, pd.read_csv(shared_data / "graphs" / "blogcatalog" / "labels.csv"))
    est = FastRP(512, iteration_weights=(0, 0, 1, 6.67), beta=-0.64, sparsity="sqrt_n")
    E = est.fit_transform(g)
    row = node_classification_probe(E, Y, train_fractions=(0.1,), n_repeats=5, C=0.1).table.iloc[0]
    assert abs(row["micro_f1"] - 0.372) < 0.01 and abs(row["macro_f1"] - 0.228) < 0.01


def test_fastrp_cora_single_label_floor(shared_data):
    """Cora, defaults (d=128, weights (0,1,1), beta=0), C=1: measured 0.59 / 0.73 Micro-F1."""
    g, _ = load_edge_list(shared_data / "graphs" / "cora" / "edges.csv", nodes=shared_data / "graphs" / "cora" / "nodes.csv")
    E = FastRP(128).fit_transform(g)
    res = node_classification_probe(E, g.nodes["label"].to_numpy(), train_fractions=(0.1, 0.5))
    micro = res.table["micro_f1"].to_numpy()
    assert not res.multilabel and res.n_classes == 7
    assert micro[0] > 0.56 and micro[1] > 0.70, res.table.to_dict("records")


# ---------------------------------------------------------------------------- eigenmaps


@pytest.mark.parametrize("solver", ["dense", "shift_invert", "lanczos"])
def test_eigenmaps_path_normalized_closed_form(solver):
    n, k = 30, 3
    est = LaplacianEigenmaps(k, eigen_solver=solver).fit(_path(n))
    j = np.arange(1, k + 1)
    np.testing.assert_allclose(est.eigenvalues_, 1 - np.cos(np.pi * j / (n - 1)), atol=1e-10)
    i = np.arange(n)
    deg = np.r_[1, np.full(n - 2, 2), 1]
    for c, kk in enumerate(j):
        y = est.embedding_[:, c]
        expected = np.cos(np.pi * kk * i / (n - 1))
        expected /= np.sqrt((deg * expected**2).sum())  # y^T D y = 1
        np.testing.assert_allclose(y, expected, atol=1e-8)  # sign fixed: node 0 positive
    assert est.n_connected_components_ == 1 and abs(est.trivial_eigenvalues_[0]) < 1e-10


def test_eigenmaps_path_combinatorial_closed_form():
    n = 12
    est = LaplacianEigenmaps(4, laplacian="combinatorial", eigen_solver="shift_invert")
    est.fit(_path(n))
    j = np.arange(1, 5)
    np.testing.assert_allclose(est.eigenvalues_, 2 - 2 * np.cos(np.pi * j / n), atol=1e-10)
    i = np.arange(n)
    for c, kk in enumerate(j):
        u = np.cos(np.pi * kk * (i + 0.5) / n)
        np.testing.assert_allclose(est.embedding_[:, c], u / np.linalg.norm(u), atol=1e-8)


def test_eigenmaps_cycle_pairs_span_the_fourier_modes():
    n = 12
    est = LaplacianEigenmaps(4, eigen_solver="shift_invert").fit(_cycle(n))
    lam = 1 - np.cos(2 * np.pi * np.array([1, 1, 2, 2]) / n)
    np.testing.assert_allclose(est.eigenvalues_, lam, atol=1e-10)
    i = np.arange(n)
    for pair, k in ((slice(0, 2), 1), (slice(2, 4), 2)):
        Q, _ = np.linalg.qr(est.embedding_[:, pair])
        F = np.stack([np.cos(2 * np.pi * k * i / n), np.sin(2 * np.pi * k * i / n)], axis=1)
        residual = F - Q @ (Q.T @ F)
        assert np.abs(residual).max() < 1e-8


def test_eigenmaps_two_components_and_an_isolated_node():
    # path of 5 (nodes 0-4), path of 8 (nodes 5-12), isolated node 13
    S = sp.block_diag([_path(5), _path(8), sp.csr_matrix((1, 1))]).tocsr()
    est = LaplacianEigenmaps(5, components="smallest").fit(S)
    union = np.sort(np.r_[1 - np.cos(np.pi * np.arange(1, 5) / 4),
                          1 - np.cos(np.pi * np.arange(1, 8) / 7)])
    np.testing.assert_allclose(est.eigenvalues_, union[:5], atol=1e-10)
    assert est.n_connected_components_ == 3
    np.testing.assert_allclose(est.trivial_eigenvalues_, 0.0, atol=1e-10)
    np.testing.assert_array_equal(est.isolated_, [13])
    np.testing.assert_array_equal(est.embedding_[13], 0.0)
    labels = est.component_labels_
    for c, comp in enumerate(est.eigenvector_component_):
        assert np.all(est.embedding_[labels != comp, c] == 0)
    # the longer path has the smaller eigenvalues: 1-cos(pi/7) < 1-cos(pi/4)
    assert est.eigenvector_component_[0] == labels[5]


def test_eigenmaps_many_components_leave_no_node_at_zero_but_isolated_ones():
    """Issue 17 item 20: with components="separate" (the default) every component is
    embedded in the same columns; "smallest" leaves the smaller components at 0."""
    # paths of 9, 5, 3 and 2 nodes and one isolated node
    sizes = [9, 5, 3, 2]
    S = sp.block_diag([*(_path(m) for m in sizes), sp.csr_matrix((1, 1))]).tocsr()
    n = S.shape[0]
    est = LaplacianEigenmaps(4).fit(S)
    assert est.n_zero_rows_ == 1 and est.n_outside_largest_ == n - 9
    assert est.embedding_[:-1].any(axis=1).all()  # only the isolated node 19 is zero
    np.testing.assert_array_equal(est.embedding_[-1], 0.0)
    start = 0
    for m in sizes:  # column j = the j-th non-trivial eigenvector of the path of m nodes
        block = est.embedding_[start:start + m]
        for j in range(1, min(4, m - 1) + 1):
            ref = LaplacianEigenmaps(j).fit(_path(m)).embedding_[:, j - 1]
            np.testing.assert_allclose(block[:, j - 1], ref, atol=1e-10)
        assert not block[:, min(4, m - 1):].any()  # a small path has fewer eigenvectors
        start += m
    np.testing.assert_allclose(est.eigenvalues_, 1 - np.cos(np.pi * np.arange(1, 5) / 8),
                               atol=1e-10)  # the largest component's
    old = LaplacianEigenmaps(4, components="smallest").fit(S)
    assert old.n_zero_rows_ > 1  # the behaviour the issue describes
    with pytest.raises(InvalidParameterError, match="largest connected component \\(9 nodes\\)"):
        LaplacianEigenmaps(9).fit(S)
    with pytest.raises(InvalidParameterError, match="components must be one of"):
        LaplacianEigenmaps(2, components="all").fit(S)


def test_eigenmaps_sparse_solvers_agree_on_a_larger_graph():
    G = nx.connected_watts_strogatz_graph(1500, 6, 0.1, seed=1)
    S = sp.csr_matrix(nx.to_scipy_sparse_array(G, dtype=float))
    a = LaplacianEigenmaps(4, eigen_solver="shift_invert").fit(S)
    b = LaplacianEigenmaps(4, eigen_solver="lanczos").fit(S)
    c = LaplacianEigenmaps(4).fit(S)
    assert (a.eigen_solver_, b.eigen_solver_) == ("shift_invert", "lanczos")
    assert c.eigen_solver_ in ("lanczos", "shift_invert")
    for other in (b, c):
        np.testing.assert_allclose(a.eigenvalues_, other.eigenvalues_, atol=1e-8)
        np.testing.assert_allclose(a.embedding_, other.embedding_, atol=1e-6)


def test_eigenmaps_symmetrizes_directed_and_ignores_self_loops():
    S = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float))
    est = LaplacianEigenmaps(1).fit(S)
    assert est.symmetrized_
    np.testing.assert_allclose(est.eigenvalues_, [1.0], atol=1e-12)  # path of 3


def test_eigenmaps_errors():
    msg = r"n_components=5 is more than the 3 non-trivial"
    with pytest.raises(InvalidParameterError, match=msg):
        LaplacianEigenmaps(5).fit(_path(4))
    with pytest.raises(InvalidParameterError, match="laplacian must be one of"):
        LaplacianEigenmaps(1, laplacian="signless").fit(_path(4))
    with pytest.raises(InvalidParameterError, match="eigen_solver must be one of"):
        LaplacianEigenmaps(1, eigen_solver="amg").fit(_path(4))


# ---------------------------------------------------------------------------- layout


def test_force_layout_is_seeded_and_bounded():
    g, _ = load_example_graph("karate_club")
    a = force_layout(g, random_state=1)
    b = force_layout(g, random_state=1)
    assert a.shape == (34, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() <= 1.0 + 1e-6
    with pytest.raises(InvalidInputError, match="34 nodes \\(limit 10\\)"):
        force_layout(g, max_nodes=10)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_fastrp_cuda_matches_cpu():
    g, _ = load_example_graph("les_miserables")
    kw = {"iteration_weights": (0, 1, 1, 2), "beta": -0.5, "random_state": 2}
    cpu = FastRP(32, device="cpu", **kw).fit_transform(g)
    gpu = FastRP(32, device="cuda", **kw).fit(g)
    assert gpu.device_ == "cuda"
    np.testing.assert_allclose(gpu.embedding_, cpu, atol=1e-4)
