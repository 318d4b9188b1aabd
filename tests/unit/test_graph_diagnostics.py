"""Graph diagnostics: reconstruction mAP, classification probe, spectrum, Rayleigh quotient."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

import backend.diagnostics.graph as dg
from backend.datasets.graph import load_example_graph
from backend.diagnostics.graph import (
    laplacian_spectrum,
    node_classification_probe,
    rayleigh_quotient,
    reconstruction_map,
)
from backend.errors import InvalidInputError, InvalidParameterError


def _adj(G) -> sp.csr_matrix:
    return sp.csr_matrix(nx.to_scipy_sparse_array(G, dtype=float))


def _brute_force_ap(X, G, hop, k, exact=False):
    """Per-node AP and AP@k by explicit ranking (ties broken by node index)."""
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    sim = Xn @ Xn.T
    dist = dict(nx.all_pairs_shortest_path_length(G))
    aps, apks = [], []
    for i in G.nodes:
        truth = {j for j, d in dist[i].items() if (d == hop if exact else 1 <= d <= hop)}
        if not truth:
            aps.append(np.nan)
            apks.append(np.nan)
            continue
        ranked = sorted((j for j in G.nodes if j != i), key=lambda j: (-sim[i, j], j))
        hits, total, total_k = 0, 0.0, 0.0
        for r, j in enumerate(ranked, start=1):
            if j in truth:
                hits += 1
                total += hits / r
                if r <= k:
                    total_k += hits / r
        aps.append(total / len(truth))
        apks.append(total_k / min(k, len(truth)))
    return np.array(aps), np.array(apks)


def test_reconstruction_matches_brute_force(monkeypatch):
    G = nx.karate_club_graph()
    X = np.random.default_rng(0).normal(size=(34, 5))
    monkeypatch.setattr(dg, "_CHUNK_ELEMENTS", 34 * 7)  # several chunks
    res = reconstruction_map(X, _adj(G), hops=(1, 2), at_k=(5,))
    for hi, hop in enumerate((1, 2)):
        ap, apk = _brute_force_ap(X, G, hop, 5)
        np.testing.assert_allclose(res.per_node_ap[:, hi], ap, atol=1e-10)
        row = res.table.iloc[hi]
        assert row["map"] == pytest.approx(np.nanmean(ap), abs=1e-10)
        assert row["map@5"] == pytest.approx(np.nanmean(apk), abs=1e-10)
    assert not res.sampled and res.table["n_evaluated"].tolist() == [34, 34]
    assert res.table["mean_true_neighbours"].iloc[0] == pytest.approx(156 / 34)


def test_reconstruction_exact_hops_and_ties():
    G = nx.path_graph(7)
    X = np.ones((7, 3))  # every similarity ties: ranking is by node index
    res = reconstruction_map(X, _adj(G), hops=(2,), at_k=(3,), exact_hops=True)
    ap, apk = _brute_force_ap(X, G, 2, 3, exact=True)
    np.testing.assert_allclose(res.per_node_ap[:, 0], ap, atol=1e-12)
    assert res.table["map@3"].iloc[0] == pytest.approx(np.nanmean(apk))


def test_reconstruction_perfect_embedding_of_cliques():
    G = nx.disjoint_union_all([nx.complete_graph(5) for _ in range(4)])
    X = np.repeat(np.eye(4), 5, axis=0) + 0.01 * np.random.default_rng(1).normal(size=(20, 4))
    res = reconstruction_map(X, _adj(G), hops=(1,), at_k=(4,), metric="euclidean")
    assert res.table["map"].iloc[0] == pytest.approx(1.0)
    assert res.table["map@4"].iloc[0] == pytest.approx(1.0)


def test_reconstruction_isolated_nodes_are_counted_not_scored():
    S = sp.block_diag([_adj(nx.path_graph(4)), sp.csr_matrix((2, 2))]).tocsr()
    X = np.random.default_rng(2).normal(size=(6, 3))
    res = reconstruction_map(X, S, hops=(1,))
    assert res.table["n_evaluated"].iloc[0] == 4
    assert res.table["n_without_neighbours"].iloc[0] == 2
    assert np.isnan(res.per_node_ap[4:, 0]).all()


def test_reconstruction_sampling_is_stated_and_seeded():
    G = nx.connected_watts_strogatz_graph(300, 4, 0.1, seed=0)
    X = np.random.default_rng(3).normal(size=(300, 8))
    a = reconstruction_map(X, _adj(G), n_samples=50, random_state=5)
    b = reconstruction_map(X, _adj(G), n_samples=50, random_state=5)
    assert a.sampled and len(a.query_nodes) == 50 and a.to_dict()["n_queries"] == 50
    np.testing.assert_array_equal(a.query_nodes, b.query_nodes)
    full = reconstruction_map(X, _adj(G), hops=(1,))
    np.testing.assert_allclose(
        a.per_node_ap[:, 0], full.per_node_ap[a.query_nodes, 0], atol=1e-12
    )


def test_reconstruction_errors():
    S = _adj(nx.path_graph(4))
    with pytest.raises(InvalidParameterError, match="metric must be one of"):
        reconstruction_map(np.ones((4, 2)), S, metric="jaccard")
    with pytest.raises(InvalidInputError, match=r"one row per node \(4\)"):
        reconstruction_map(np.ones((3, 2)), S)
    with pytest.raises(InvalidParameterError, match="hops must be"):
        reconstruction_map(np.ones((4, 2)), S, hops=(0,))


def test_probe_separable_single_label():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 40)
    X = np.eye(3)[np.repeat([0, 1, 2], 40)] * 5 + 0.1 * rng.normal(size=(120, 3))
    res = node_classification_probe(X, y, train_fractions=(0.3, 0.6), n_repeats=3)
    np.testing.assert_allclose(res.table["micro_f1"], 1.0)
    np.testing.assert_allclose(res.table["macro_f1"], 1.0)
    assert res.table["n_train"].tolist() == [36, 72]
    assert res.classes == ["a", "b", "c"] and len(res.scores) == 6


def test_probe_drops_unlabelled_nodes():
    X = np.random.default_rng(1).normal(size=(10, 2))
    y = np.array([0, 1] * 4 + [None, None], dtype=object)
    res = node_classification_probe(X, y, train_fractions=(0.5,), n_repeats=1)
    assert res.n_labelled == 8 and res.table["n_test"].iloc[0] == 4


def test_probe_minus_one_empty_and_unknown_are_unlabelled_not_classes():
    """Issue 17 item 19: Planetoid-style -1, "" and "unknown" are left out, with a note."""
    rng = np.random.default_rng(2)
    X = np.eye(2)[np.repeat([0, 1], 10)] * 5 + 0.1 * rng.normal(size=(20, 2))
    ints = np.array([0] * 10 + [1] * 10)
    ints[[0, 11, 12]] = -1
    res = node_classification_probe(X, ints, train_fractions=(0.5,), n_repeats=1)
    assert res.classes == [0, 1] and res.n_classes == 2
    assert res.n_labelled == 17 and res.n_unlabelled == 3
    assert "3 of 20 nodes are unlabelled" in res.note and "-1: 3" in res.note
    text = np.array(["a"] * 10 + ["b"] * 10, dtype=object)
    text[[1, 2]] = ["", "  "]
    text[[13]] = "Unknown"
    text[[14]] = None
    res = node_classification_probe(X, text, train_fractions=(0.5,), n_repeats=1)
    assert res.classes == ["a", "b"] and res.n_unlabelled == 4
    assert "empty: 2" in res.note and "'unknown': 1" in res.note and "missing: 1" in res.note
    assert res.to_dict()["n_unlabelled"] == 4
    mask, note = dg.unlabelled_mask(np.array([3, 4, 5]))
    assert not mask.any() and note is None
    with pytest.raises(InvalidInputError, match="at least 2 classes.*-1"):
        node_classification_probe(X, np.where(ints == 1, -1, 0), train_fractions=(0.5,))


def test_probe_multilabel_top_k_matches_a_manual_split():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier

    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 6))
    Y = (X[:, :3] + 0.5 * rng.normal(size=(200, 3)) > 0.3).astype(int)
    Y[Y.sum(axis=1) == 0, 0] = 1
    res = node_classification_probe(X, Y, train_fractions=(0.5,), n_repeats=1, C=0.5,
                                    random_state=9)
    perm = np.random.default_rng(9).permutation(200)
    tr, te = perm[:100], perm[100:]
    clf = OneVsRestClassifier(LogisticRegression(C=0.5, solver="liblinear")).fit(X[tr], Y[tr])
    proba = clf.predict_proba(X[te])
    k = Y[te].sum(axis=1)
    pred = np.zeros_like(Y[te])
    for i in range(100):
        pred[i, np.argsort(-proba[i], kind="stable")[: k[i]]] = 1
    assert (pred.sum(axis=1) == k).all()
    assert res.table["micro_f1"].iloc[0] == pytest.approx(f1_score(Y[te], pred, average="micro"))
    assert res.table["macro_f1"].iloc[0] == pytest.approx(f1_score(Y[te], pred, average="macro"))
    assert res.multilabel


def test_probe_errors():
    X = np.zeros((10, 2))
    with pytest.raises(InvalidParameterError, match="train_fractions"):
        node_classification_probe(X, np.arange(10) % 2, train_fractions=(1.0,))
    with pytest.raises(InvalidInputError, match="at least 2 classes"):
        node_classification_probe(X, np.zeros(10))
    with pytest.raises(InvalidInputError, match="empty training or test"):
        node_classification_probe(X, np.arange(10) % 2, train_fractions=(0.05,))
    with pytest.raises(InvalidParameterError, match="C must be a positive number"):
        node_classification_probe(X, np.arange(10) % 2, C=0)


def test_spectrum_of_a_path_closed_form():
    n = 9
    S = _adj(nx.path_graph(n))
    full = laplacian_spectrum(S, laplacian="combinatorial")
    np.testing.assert_allclose(full.eigenvalues, 2 - 2 * np.cos(np.pi * np.arange(n) / n),
                               atol=1e-10)
    assert full.complete and full.n_connected_components == 1
    norm = laplacian_spectrum(S)
    np.testing.assert_allclose(norm.eigenvalues, 1 - np.cos(np.pi * np.arange(n) / (n - 1)),
                               atol=1e-10)


def test_spectrum_zero_multiplicity_is_the_component_count():
    S = sp.block_diag([_adj(nx.cycle_graph(6)), _adj(nx.path_graph(3)),
                       sp.csr_matrix((1, 1))]).tocsr()
    full = laplacian_spectrum(S)
    assert full.n_connected_components == 3
    assert int(np.sum(np.abs(full.eigenvalues) < 1e-10)) == 3
    part = laplacian_spectrum(S, n_eigenvalues=6)
    np.testing.assert_allclose(part.eigenvalues, full.eigenvalues[:6], atol=1e-10)
    assert not part.complete


def test_spectrum_refuses_dense_for_large_graphs():
    S = _adj(nx.cycle_graph(4001))
    with pytest.raises(InvalidParameterError, match="n_eigenvalues="):
        laplacian_spectrum(S)
    small = laplacian_spectrum(S, n_eigenvalues=3)
    np.testing.assert_allclose(small.eigenvalues, [0, *(1 - np.cos(2 * np.pi / 4001),) * 2],
                               atol=1e-9)


def test_rayleigh_of_an_eigenvector_is_its_eigenvalue():
    n = 10
    S = _adj(nx.path_graph(n))
    i = np.arange(n)
    u = np.cos(np.pi * 2 * (i + 0.5) / n)  # combinatorial eigenvector, k = 2
    res = rayleigh_quotient(S, u)
    assert res.value == pytest.approx(2 - 2 * np.cos(2 * np.pi / n))
    y = np.cos(np.pi * 3 * i / (n - 1))  # generalised eigenvector of L y = lambda D y, k = 3
    res_n = rayleigh_quotient(S, y, laplacian="normalized")
    assert res_n.value == pytest.approx(1 - np.cos(3 * np.pi / (n - 1)))


def test_rayleigh_smooth_attribute_beats_the_permutation_null():
    g, _ = load_example_graph("karate_club")
    club = (g.nodes["club"] == "Officer").to_numpy(float)
    res = rayleigh_quotient(g, club, n_permutations=99)
    assert res.ratio < 0.5 and res.p_value == pytest.approx(0.01)
    assert res.z_score < -3 and res.n_used == 34
    assert res.to_dict()["laplacian"] == "combinatorial"


def test_rayleigh_leaves_out_missing_values_and_refuses_constants():
    S = _adj(nx.path_graph(5))
    x = np.array([0.0, 1.0, np.nan, 1.0, 0.0])
    res = rayleigh_quotient(S, x, n_permutations=10)
    # induced subgraph: edges 0-1 and 3-4 only; centred x = +-0.5, x^T L x = 2, x^T x = 1
    assert res.n_used == 4 and res.value == pytest.approx(2.0)
    with pytest.raises(InvalidInputError, match="constant"):
        rayleigh_quotient(S, np.ones(5))
    with pytest.raises(InvalidInputError, match=r"one row per node \(5\)"):
        rayleigh_quotient(S, np.ones(4))


def test_rayleigh_negative_weights_only_for_the_combinatorial_form():
    S = _adj(nx.path_graph(3))
    S.data[:2] = -1.0  # edge 0-1 negative
    x = np.array([0.0, 1.0, 3.0])
    # centred: x - 4/3; x^T L x = 0.5 * sum_ij S_ij (x_i - x_j)^2 = -1 * 1 + 1 * 4 = 3
    res = rayleigh_quotient(S, x, n_permutations=5)
    assert res.value == pytest.approx(3.0 / np.sum((x - x.mean()) ** 2))
    with pytest.raises(InvalidInputError, match="non-negative edge weights"):
        rayleigh_quotient(S, x, laplacian="normalized")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_reconstruction_cuda_matches_cpu():
    G = nx.connected_watts_strogatz_graph(200, 6, 0.2, seed=0)
    X = np.random.default_rng(0).normal(size=(200, 8))
    a = reconstruction_map(X, _adj(G), device="cpu")
    b = reconstruction_map(X, _adj(G), device="cuda")
    np.testing.assert_allclose(a.per_node_ap, b.per_node_ap, atol=1e-5)
