"""The shared k-nearest-neighbour graph every projection is built from."""

from __future__ import annotations

import numpy as np

from backend.errors import InvalidInputError, InvalidParameterError

__all__ = ["knn_graph", "KNN_METRICS", "EXACT_MAX_ROWS"]

KNN_METRICS = ("euclidean", "cosine", "manhattan", "correlation")
EXACT_MAX_ROWS = 20_000


def knn_graph(
    X: np.ndarray,
    n_neighbors: int = 15,
    *,
    metric: str = "euclidean",
    method: str = "auto",
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest neighbours of every row, the row itself first.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite float vectors.
    n_neighbors : int, default=15
        Neighbours per row *including the row itself* (umap-learn's convention),
        so each row has ``n_neighbors - 1`` true neighbours. ``2 <= n_neighbors <= n_samples``.
    metric : {"euclidean", "cosine", "manhattan", "correlation"}, default="euclidean"
    method : {"auto", "exact", "nndescent"}, default="auto"
        ``exact`` is scikit-learn's brute-force search; ``nndescent`` is pynndescent's
        approximate search (Dong et al. 2011); ``auto`` uses exact search up to
        20,000 rows.
    random_state : int or None, default=0
        Seed of pynndescent.

    Returns
    -------
    indices : ndarray of shape (n_samples, n_neighbors), int64
        ``indices[i, 0] == i``.
    distances : ndarray of shape (n_samples, n_neighbors), float32
        In the units of ``metric``, ascending along each row; ``distances[:, 0] == 0``.

    Raises
    ------
    InvalidParameterError
        For an unknown metric or method, or ``n_neighbors`` out of range.
    InvalidInputError
        If ``X`` has fewer than ``n_neighbors`` rows or non-finite values.
    """
    if metric not in KNN_METRICS:
        raise InvalidParameterError(f"metric must be one of {KNN_METRICS}; got {metric!r}.")
    if method not in ("auto", "exact", "nndescent"):
        raise InvalidParameterError(
            f"method must be 'auto', 'exact' or 'nndescent'; got {method!r}."
        )
    X = np.asarray(X, dtype=np.float32)
    n = X.shape[0]
    if not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 2:
        raise InvalidParameterError(f"n_neighbors must be an integer >= 2; got {n_neighbors!r}.")
    if n < n_neighbors:
        raise InvalidInputError(
            f"the dataset has {n} rows but n_neighbors={n_neighbors} needs at least "
            f"{n_neighbors}; lower n_neighbors or add rows."
        )
    if not np.isfinite(X).all():
        raise InvalidInputError("the vectors contain NaN or infinite values; drop those rows first.")
    if method == "auto":
        method = "exact" if n <= EXACT_MAX_ROWS else "nndescent"
    if method == "exact":
        idx, dist = _exact(X, n_neighbors, metric)
    else:
        idx, dist = _nndescent(X, n_neighbors, metric, random_state)
    return _self_first(idx, dist)


def _exact(X: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute")
    nn.fit(X)
    dist, idx = nn.kneighbors(X)
    return idx.astype(np.int64), dist.astype(np.float32)


def _nndescent(X, k, metric, random_state):
    from pynndescent import NNDescent

    index = NNDescent(
        X, n_neighbors=k, metric=metric, random_state=random_state, low_memory=True,
        n_jobs=-1, verbose=False,
    )
    idx, dist = index.neighbor_graph
    return idx.astype(np.int64), dist.astype(np.float32)


def _self_first(idx: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Put each row itself in column 0 (duplicates may push it elsewhere or out)."""
    n, k = idx.shape
    rows = np.arange(n)
    ok = idx[:, 0] == rows
    if ok.all():
        dist = dist.copy()
        dist[:, 0] = 0.0
        return idx, dist
    new_idx = np.empty_like(idx)
    new_dist = np.empty_like(dist)
    for i in np.flatnonzero(~ok):
        others = idx[i] != i
        nb, db = idx[i][others][: k - 1], dist[i][others][: k - 1]
        new_idx[i, 0], new_dist[i, 0] = i, 0.0
        new_idx[i, 1:], new_dist[i, 1:] = nb, db
    new_idx[ok], new_dist[ok] = idx[ok], dist[ok]
    new_dist[:, 0] = 0.0
    return new_idx, new_dist
