"""UMAP (umap-learn) on the shared kNN graph, with progress and cancellation."""

from __future__ import annotations

import io
import re
from typing import Callable

import numpy as np

from backend.errors import InvalidParameterError

__all__ = ["umap_embedding", "with_self"]

_TQDM = re.compile(r"(\d+)/(\d+)")


class _ProgressFile(io.TextIOBase):
    """A file for tqdm that forwards 'n/total' to a progress callback."""

    def __init__(self, progress: Callable[[float, str], None]):
        self._progress = progress

    def write(self, s: str) -> int:
        m = None
        for m in _TQDM.finditer(s):
            pass
        if m is not None:
            done, total = int(m.group(1)), int(m.group(2))
            self._progress(done / max(total, 1), f"UMAP epoch {done}/{total}")
        return len(s)

    def flush(self) -> None:
        pass


def with_self(idx: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """umap-learn's kNN format: the row itself in column 0 at distance 0, then the graph.

    Parameters
    ----------
    idx, dist : ndarray of shape (n_samples, k)
        A graph without the rows themselves (:func:`backend.project.knn.knn_graph`).

    Returns
    -------
    idx, dist : ndarray of shape (n_samples, k + 1), int64 and float32
    """
    n = len(idx)
    idx = np.hstack([np.arange(n, dtype=np.int64)[:, None], np.asarray(idx, np.int64)])
    dist = np.hstack([np.zeros((n, 1), np.float32), np.asarray(dist, np.float32)])
    return idx, dist


def umap_embedding(
    X: np.ndarray,
    knn: tuple[np.ndarray, np.ndarray],
    *,
    n_components: int = 2,
    min_dist: float = 0.1,
    metric: str = "euclidean",
    random_state: int | None = 42,
    n_epochs: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> np.ndarray:
    """UMAP (McInnes et al. 2018) of ``X`` on a precomputed kNN graph.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    knn : (indices, distances), each of shape (n_samples, n_neighbors)
        From :func:`backend.project.knn.knn_graph` (without the row itself). UMAP's own
        ``n_neighbors`` counts the row itself: it is ``n_neighbors + 1`` here.
    n_components : int, default=2
    min_dist : float, default=0.1
        In [0, 1]; how tightly points may pack in the map.
    metric : str, default="euclidean"
        The metric the kNN graph was built with.
    random_state : int or None, default=42
        ``None`` lets umap-learn run in parallel (not reproducible).
    n_epochs : int or None, default=None
        umap-learn's default (200 for large data, 500 for small) when None.
    progress : callable(fraction, message), optional
        Called after each epoch; an exception it raises stops the run.

    Returns
    -------
    ndarray of shape (n_samples, n_components), float32

    References
    ----------
    McInnes, Healy, Melville (2018), arXiv:1802.03426; lmcinnes/umap.
    """
    if not 0.0 <= float(min_dist) <= 1.0:
        raise InvalidParameterError(f"min_dist must be in [0, 1]; got {min_dist!r}.")
    import umap

    idx, dist = with_self(*knn)
    tqdm_kwds = None
    if progress is not None:
        tqdm_kwds = {"disable": False, "file": _ProgressFile(progress), "mininterval": 0.25}
    model = umap.UMAP(
        n_neighbors=idx.shape[1],
        n_components=n_components,
        min_dist=min_dist,
        metric=metric,
        random_state=random_state,
        n_epochs=n_epochs,
        precomputed_knn=(idx, dist, None),
        tqdm_kwds=tqdm_kwds,
        verbose=False,
    )
    import warnings

    with warnings.catch_warnings():
        # umap-learn warns that random_state disables parallelism: we chose that.
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
        emb = model.fit_transform(np.asarray(X, dtype=np.float32))
    return np.asarray(emb, dtype=np.float32)
