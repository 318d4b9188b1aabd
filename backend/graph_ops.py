"""One graph module: kNN graph -> symmetric adjacency -> graph Laplacian.

Used by the projections (heat geodesic), the node embeddings (Laplacian eigenmaps) and the
graph diagnostics (Laplacian spectrum), so that all of them build the same matrices.

Isolated-node rule (the one rule everywhere)
--------------------------------------------
A node without an edge to another node (degree 0; self-loops do not count) has an all-zero
row and column in the Laplacian, normalised or not: ``L_ii = 0``. It is a connected
component of its own and contributes one zero eigenvalue, so the multiplicity of 0 is the
number of connected components, isolated nodes included (Chung 1997, §1.1), and no
``1 / sqrt(0)`` appears. This is the convention of
``scipy.sparse.csgraph.laplacian(normed=True)``, which computes it.

Callers that cannot use such a node say so rather than relying on the rule: the heat
geodesic refuses a disconnected kNN graph, Laplacian eigenmaps give isolated nodes a zero
vector and report them (``isolated_``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["LAPLACIANS", "knn_adjacency", "symmetric_adjacency", "laplacian",
           "normalized_laplacian"]

LAPLACIANS = ("normalized", "combinatorial")


def knn_adjacency(indices: np.ndarray, weights: np.ndarray, keep: np.ndarray | None = None
                  ) -> sp.csr_matrix:
    """Symmetric adjacency ``(K + K^T) / 2`` of a kNN graph, zero diagonal.

    Parameters
    ----------
    indices : ndarray of shape (n, k), int
        Neighbours of each point (``-1`` for padding, ignored).
    weights : ndarray of shape (n, k), float
        ``K[i, indices[i, j]] = weights[i, j]``.
    keep : ndarray of shape (n, k), bool, optional
        Entries to use (default: every non-padding entry).

    Returns
    -------
    W : scipy.sparse.csr_matrix of shape (n, n), float64
        Symmetric, non-negative when the weights are, no stored zeros, zero diagonal (a
        point listed as its own neighbour is no edge).
    """
    n = len(indices)
    use = indices >= 0 if keep is None else keep & (indices >= 0)
    rows = np.broadcast_to(np.arange(n)[:, None], indices.shape)[use]
    K = sp.csr_matrix((np.asarray(weights, dtype=np.float64)[use], (rows, indices[use])),
                      shape=(n, n))
    return symmetric_adjacency(K, directed=True, combine="mean")


def symmetric_adjacency(S: sp.spmatrix, directed: bool, *, combine: str = "sum"
                        ) -> sp.csr_matrix:
    """An undirected adjacency without self-loops.

    Parameters
    ----------
    S : sparse matrix of shape (n, n)
        Non-negative weights; ``S[i, j]`` is the edge i -> j.
    directed : bool
        Whether ``S`` may be asymmetric: it is then made undirected, as ``S + S^T``
        (``combine="sum"``: a reciprocated pair weighs twice, the convention of the node
        embeddings and diagnostics) or ``(S + S^T) / 2`` (``"mean"``: the kNN kernel
        convention of PHATE/graphtools).
    combine : {"sum", "mean"}, default="sum"

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n, n), float64
        Diagonal removed, explicit zeros eliminated.
    """
    W = sp.csr_matrix(S, dtype=np.float64, copy=True)
    if directed:
        W = (W + W.T).tocsr()
        if combine == "mean":
            W.data *= 0.5
    W.setdiag(0.0)
    W.eliminate_zeros()
    return W


def laplacian(W: sp.spmatrix, kind: str = "normalized") -> sp.csr_matrix:
    """Graph Laplacian of a symmetric adjacency, with the module's isolated-node rule.

    Parameters
    ----------
    W : sparse matrix of shape (n, n)
        Symmetric, non-negative; its diagonal is ignored.
    kind : {"normalized", "combinatorial"}, default="normalized"
        ``I - D^{-1/2} W D^{-1/2}`` (spectrum in ``[0, 2]``) or ``D - W``.

    Returns
    -------
    L : scipy.sparse.csr_matrix of shape (n, n), float64
        Rows and columns of isolated nodes are all zero (``L_ii = 0``).

    References
    ----------
    F. Chung, "Spectral Graph Theory", AMS (1997), §1.1; U. von Luxburg, "A tutorial on
    spectral clustering", Stat. Comput. 17 (2007), §3.
    """
    from scipy.sparse.csgraph import laplacian as csgraph_laplacian

    if kind not in LAPLACIANS:
        raise ValueError(f"kind must be one of {LAPLACIANS}; got {kind!r}.")
    A = sp.csr_matrix(W, dtype=np.float64, copy=True)
    A.setdiag(0.0)
    A.eliminate_zeros()
    return sp.csr_matrix(csgraph_laplacian(A, normed=kind == "normalized"))


def normalized_laplacian(W: sp.spmatrix) -> sp.csr_matrix:
    """Symmetric normalised Laplacian ``I - D^{-1/2} W D^{-1/2}`` (:func:`laplacian`).

    Parameters
    ----------
    W : sparse matrix of shape (n, n)
        Symmetric, non-negative affinities.

    Returns
    -------
    L : scipy.sparse.csr_matrix of shape (n, n), float64
        Spectrum in ``[0, 2]``; an isolated node has a zero row and column.
    """
    return laplacian(W, "normalized")
