"""backend/graph_ops.py: the one kNN graph -> adjacency -> Laplacian module (issue 12)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from backend.graph_ops import knn_adjacency, laplacian, normalized_laplacian, symmetric_adjacency


def _graph_with_isolated_node() -> sp.csr_matrix:
    """A weighted triangle 0-1-2, an edge 3-4, node 5 isolated (with a self-loop)."""
    A = np.zeros((6, 6))
    for i, j, w in ((0, 1, 1.0), (1, 2, 2.0), (0, 2, 0.5), (3, 4, 3.0)):
        A[i, j] = A[j, i] = w
    A[5, 5] = 7.0  # a self-loop is no edge
    return sp.csr_matrix(A)


def test_isolated_node_rule():
    """An isolated node has a zero row and column (L_ii = 0) in both Laplacians, and each
    component, the isolated node included, adds one zero eigenvalue."""
    W = _graph_with_isolated_node()
    for kind in ("normalized", "combinatorial"):
        L = laplacian(W, kind).toarray()
        np.testing.assert_array_equal(L[5], 0.0)
        np.testing.assert_array_equal(L[:, 5], 0.0)
        vals = np.linalg.eigvalsh(L)
        assert int((np.abs(vals) < 1e-12).sum()) == 3  # {0,1,2}, {3,4}, {5}
    # closed forms on the connected part
    A = W.toarray()
    np.fill_diagonal(A, 0.0)
    d = A.sum(axis=1)
    inv = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    expected = np.diag((d > 0).astype(float)) - inv[:, None] * A * inv[None, :]
    np.testing.assert_allclose(normalized_laplacian(W).toarray(), expected, atol=1e-15)
    np.testing.assert_allclose(laplacian(W, "combinatorial").toarray(), np.diag(d) - A,
                               atol=1e-15)
    # the edge 3-4 alone: eigenvalues 0 and 2 (normalised)
    np.testing.assert_allclose(np.linalg.eigvalsh(normalized_laplacian(W).toarray()[3:5, 3:5]),
                               [0.0, 2.0], atol=1e-15)
    with pytest.raises(ValueError, match="kind must be one of"):
        laplacian(W, "signless")


def test_symmetric_and_knn_adjacency():
    S = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 4.0], [0.0, 1.0, 0.0]]))
    np.testing.assert_array_equal(symmetric_adjacency(S, True).toarray(),
                                  [[0, 2, 0], [2, 0, 5], [0, 5, 0]])
    np.testing.assert_array_equal(symmetric_adjacency(S, True, combine="mean").toarray(),
                                  [[0, 1, 0], [1, 0, 2.5], [0, 2.5, 0]])
    idx = np.array([[1, -1], [0, 2], [1, 2]])
    w = np.array([[0.5, 9.0], [0.25, 1.0], [1.0, 3.0]])
    W = knn_adjacency(idx, w)  # padding and the self entry (2, 2) are no edges
    np.testing.assert_array_equal(W.toarray(), [[0, 0.375, 0], [0.375, 0, 1.0], [0, 1.0, 0]])
    assert W.nnz == 4


def test_the_three_callers_are_unchanged():
    """The heat geodesic, Laplacian eigenmaps and the spectrum used three formulas with three
    isolated-node rules; on their inputs (no isolated node reaches the first two) the shared
    module gives the same matrices."""
    from backend.diagnostics.graph import laplacian_spectrum
    from backend.embed.graph import LaplacianEigenmaps
    from backend.project.heat_geodesic import normalized_laplacian as hg_laplacian

    rng = np.random.default_rng(0)
    G = nx.connected_watts_strogatz_graph(60, 4, 0.2, seed=0)
    W = sp.csr_matrix(nx.to_scipy_sparse_array(G, dtype=float))
    W.data = rng.uniform(0.1, 1.0, W.nnz)
    W = ((W + W.T) * 0.5).tocsr()
    # heat geodesic's former formula: I - D^-1/2 W D^-1/2 (no isolated node allowed)
    d = np.asarray(W.sum(axis=1)).ravel()
    s = sp.diags(1.0 / np.sqrt(d))
    old_hg = (sp.identity(60) - s @ W @ s).toarray()
    np.testing.assert_allclose(hg_laplacian(W).toarray(), old_hg, atol=1e-15)
    # diagnostics' former dense formula with its rule (L_ii = 0 for isolated nodes)
    S = sp.block_diag([W, sp.csr_matrix((2, 2))]).tocsr()
    A = S.toarray()
    dd = A.sum(axis=1)
    inv = np.divide(1.0, np.sqrt(dd), out=np.zeros_like(dd), where=dd > 0)
    old_diag = np.diag((dd > 0).astype(float)) - inv[:, None] * A * inv[None, :]
    spec = laplacian_spectrum(S)
    np.testing.assert_allclose(spec.eigenvalues, np.linalg.eigvalsh(old_diag), atol=1e-12)
    assert spec.n_connected_components == 3
    # eigenmaps' former per-component formula (isolated nodes skipped): same eigenpairs
    est = LaplacianEigenmaps(3, eigen_solver="dense").fit(S)
    np.testing.assert_allclose(est.eigenvalues_, np.linalg.eigvalsh(old_hg)[1:4], atol=1e-12)
    np.testing.assert_array_equal(est.embedding_[60:], 0.0)
