"""UMAP of many rows: fit on a seeded sample, place the rest, refine over all rows.

Up to :data:`LARGE_N` rows the map is a plain UMAP of every row. Above, UMAP is fitted
on a seeded uniform sample of :data:`SAMPLE_SIZE` rows; every other row is placed at the
weighted mean of the map positions of its :data:`PLACE_NEIGHBORS` nearest sample rows
(weights ``exp(-(d - d_1) / s)``, ``d_1`` the nearest distance and ``s`` the mean excess,
a fuzzy membership like umap-learn's ``transform``); then :data:`REFINE_EPOCHS` epochs of
the same layout optimisation run over all rows on the full kNN graph, starting at
learning rate :data:`REFINE_ALPHA` (umap-learn's ``transform`` uses 30 epochs at a
quarter of the rate). Every row is in the map; the sidecar states all of this.

The quick first map (:func:`quick_map`) is the same construction with a
:data:`QUICK_SAMPLE`-row sample and no refinement: seconds at a million rows.

With a distributed engine (a Ray cluster), the placement runs in row blocks: the sample's
vectors and map positions (and the IVF index over the sample, when the search is
approximate) are put into the object store once, each task finds the nearest sample rows
of its block of other rows and places them (:func:`place_rows`), and the driver fills the
map. The sample's UMAP fit and the refinement over all rows stay on the driver.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np

from backend.errors import InvalidInputError

__all__ = ["project_umap", "quick_map", "place", "place_rows", "place_rest", "LARGE_N",
           "SAMPLE_SIZE", "REFINE_EPOCHS",
           "REFINE_ALPHA", "PLACE_NEIGHBORS", "QUICK_SAMPLE"]

#: Above this many rows, UMAP is fitted on a sample.
LARGE_N = 200_000
#: Rows of that sample.
SAMPLE_SIZE = 100_000
#: Refinement epochs over all rows after placing, and their initial learning rate.
REFINE_EPOCHS = 30
REFINE_ALPHA = 0.25
#: Sample rows each other row is placed from.
PLACE_NEIGHBORS = 10
#: Rows of the quick first map's sample.
QUICK_SAMPLE = 5_000

Progress = Callable[[float, str], None]


def place(Y_sample: np.ndarray, idx: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Positions of new rows: the weighted mean of their nearest sample rows' positions.

    Parameters
    ----------
    Y_sample : ndarray of shape (n_sample, n_components)
        Map positions of the sample rows.
    idx : ndarray of shape (n_new, k), int
        The nearest sample rows of each new row (indices into ``Y_sample``), ascending.
    dist : ndarray of shape (n_new, k)
        Their distances.

    Returns
    -------
    ndarray of shape (n_new, n_components), float32
        With weights ``w_j = exp(-(d_j - d_1) / s)``, ``s`` the mean of ``d_j - d_1``
        (all weights equal when every distance is equal, e.g. duplicates).
    """
    d = np.asarray(dist, np.float64)
    excess = d - d[:, :1]
    s = excess.mean(axis=1, keepdims=True)
    w = np.exp(-excess / np.where(s > 0, s, 1.0))
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("ij,ijk->ik", w, Y_sample[idx]).astype(np.float32)


def place_rows(Q: np.ndarray, B: np.ndarray, zq: np.ndarray, zb: np.ndarray, lo: int,
               hi: int, k: int, metric: str, index: tuple | None, drop_self: bool,
               Y_sample: np.ndarray) -> np.ndarray:
    """Engine task: map positions of the rows ``lo:hi`` of ``Q``, placed from their ``k``
    nearest sample rows (:func:`backend.project.knn.search_rows`, then :func:`place`).

    Parameters
    ----------
    Q : ndarray of shape (n_rest, n_features), float32
        The rows to place, prepared for the metric (unit rows for cosine/correlation).
    B : ndarray of shape (n_sample, n_features), float32
        The sample's vectors, prepared the same way.
    zq, zb, lo, hi, k, metric, index, drop_self
        As :func:`backend.project.knn.search_rows` (``drop_self`` is False here).
    Y_sample : ndarray of shape (n_sample, n_components) (any float dtype)
        The sample's map positions.

    Returns
    -------
    ndarray of shape (hi - lo, n_components), float32
    """
    from backend.project.knn import search_rows

    idx, dist = search_rows(Q, B, zq, zb, lo, hi, k, metric, index, drop_self)
    return place(Y_sample, idx, dist)


def place_rest(Xs: np.ndarray, Ys: np.ndarray, X_rest: np.ndarray,
               n_neighbors: int = PLACE_NEIGHBORS, *, metric: str = "euclidean",
               random_state: int | None = 0, device: str | None = None,
               progress: Progress | None = None, engine: Any = None,
               stop: threading.Event | None = None, block_rows: int | None = None,
               ) -> tuple[np.ndarray, str]:
    """Map positions of rows outside a fitted sample, from their nearest sample rows.

    :func:`backend.project.knn.knn_query` then :func:`place`, here; or, with a distributed
    engine, :func:`place_rows` in row blocks (the same search method, index and
    arithmetic: the same positions bit for bit).

    Parameters
    ----------
    Xs : ndarray of shape (n_sample, n_features)
        The sample's vectors.
    Ys : ndarray of shape (n_sample, n_components)
        Their map positions.
    X_rest : ndarray of shape (n_rest, n_features)
        The rows to place.
    n_neighbors : int, default=10
        Sample rows each row is placed from, ``1 <= n_neighbors <= n_sample``.
    metric, random_state, device : as :func:`backend.project.knn.knn_query`
    progress : callable(fraction, message), optional
        With a distributed engine, called after each finished block.
    engine : backend.engines.Engine, optional
        A distributed engine (Ray): row blocks as tasks; None or in-process: here.
    stop : threading.Event, optional
        With a distributed engine: once set, the block tasks are cancelled and
        ``JobCancelled`` is raised.
    block_rows : int, optional
        Rows per task (rounded up to the in-process row chunk).

    Returns
    -------
    positions : ndarray of shape (n_rest, n_components), float32
    method : str
        The nearest-sample search: ``"exact"`` or ``"ivf"``.

    Raises
    ------
    InvalidInputError
        If the shapes disagree or ``n_neighbors`` is out of range.
    backend.engines.TaskFailedError
        If a block task failed (the message names its rows).
    """
    Xs, X_rest, Ys = np.asarray(Xs), np.asarray(X_rest), np.asarray(Ys)
    m = n_neighbors
    if Xs.ndim != 2 or X_rest.ndim != 2 or Xs.shape[1] != X_rest.shape[1] \
            or Ys.ndim != 2 or len(Ys) != len(Xs):
        raise InvalidInputError(
            f"place_rest needs Xs (n_sample, d), Ys (n_sample, c) and X_rest (n_rest, d); "
            f"got shapes {Xs.shape}, {Ys.shape} and {X_rest.shape}.")
    if not 1 <= m <= len(Xs):
        raise InvalidInputError(
            f"n_neighbors must be in [1, {len(Xs)}] (the sample's rows); got {m}.")
    from backend.device import resolve_device
    from backend.project import knn

    dev = resolve_device(device).device
    if not knn._on_cluster(engine, dev):
        qi, qd, method = knn.knn_query(Xs, X_rest, m, metric=metric, random_state=random_state,
                                       device=device, progress=progress)
        return place(Ys, qi, qd), method
    B, zb = knn._prepare(np.ascontiguousarray(Xs, dtype=np.float32), metric)
    Q, zq = knn._prepare(np.ascontiguousarray(X_rest, dtype=np.float32), metric)
    method = knn._query_method(B, Q, dev)
    Y, _ = knn._query_on(engine, Q, B, zq, zb, m, metric, method, random_state, dev,
                         progress or knn._noop, stop, block_rows, what="placement",
                         fn=place_rows, extra=(engine.put(Ys),))
    return Y, method


def _span(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    if progress is None:
        return None
    return lambda f, m: progress(lo + (hi - lo) * min(max(f, 0.0), 1.0), m)


def _fit_sample_and_place(X, rows, n_neighbors, *, min_dist, metric, n_components,
                          random_state, device, progress, n_epochs=None, engine=None,
                          stop=None):
    """UMAP of ``X[rows]`` and every other row placed from its nearest sample rows."""
    from backend.project.knn import knn_search
    from backend.project.umap_ import umap_fit

    n = len(X)
    Xs = np.ascontiguousarray(X[rows], dtype=np.float32)
    k = min(n_neighbors, len(rows) - 1)
    idx, dist, krep = knn_search(Xs, k, metric=metric, random_state=random_state,
                                 device=device, progress=_span(progress, 0.0, 0.15),
                                 recall_sample=0, engine=engine, stop=stop)
    Ys, urep = umap_fit(Xs, (idx, dist), n_components=n_components, min_dist=min_dist,
                        metric=metric, random_state=random_state, device=device,
                        n_epochs=n_epochs, progress=_span(progress, 0.15, 0.8))
    Y = np.empty((n, n_components), np.float32)
    Y[rows] = Ys
    rest = np.setdiff1d(np.arange(n), rows, assume_unique=True)
    method = None
    if len(rest):
        # placed in blocks so that a cancel is seen between them
        m = min(PLACE_NEIGHBORS, len(rows))
        Y[rest], method = place_rest(Xs, Ys, X[rest], m, metric=metric,
                                      random_state=random_state, device=device,
                                      progress=_span(progress, 0.8, 1.0), engine=engine,
                                      stop=stop)
    return Y, {"sample_knn_method": krep.method, "place_search": method,
               "umap": urep.to_dict()}


def quick_map(X: np.ndarray, *, n_components: int = 2, metric: str = "euclidean",
              sample_size: int = QUICK_SAMPLE, random_state: int | None = 0,
              device: str | None = None, progress: Progress | None = None,
              engine: Any = None, stop: threading.Event | None = None,
              ) -> tuple[np.ndarray, dict]:
    """A first map in seconds: UMAP of a seeded sample, every other row placed from it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        At least 3 rows.
    n_components : int, default=2
    metric : str, default="euclidean"
    sample_size : int, default=5000
        Rows the UMAP is fitted on (all rows when fewer).
    random_state : int or None, default=0
    device : str or None
    progress : callable(fraction, message), optional
    engine : backend.engines.Engine, optional
        A distributed engine places the other rows in row blocks (module docstring).
    stop : threading.Event, optional
        With a distributed engine: once set, the block tasks are cancelled.

    Returns
    -------
    embedding : ndarray of shape (n_samples, n_components), float32
    report : dict
        ``kind`` ("quick"), ``description`` (a sentence for the page), ``sample_size``,
        ``n_rows``, ``place_neighbors``, ``seconds``.

    Raises
    ------
    InvalidInputError
        Fewer than 3 rows.
    """
    X = np.asarray(X)
    n = len(X)
    if n < 3:
        raise InvalidInputError(f"a map needs at least 3 rows; the dataset has {n}.")
    t0 = time.perf_counter()
    rng = np.random.default_rng(random_state)
    m = min(n, sample_size)
    rows = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    Y, info = _fit_sample_and_place(
        X, rows, 15, min_dist=0.1, metric=metric, n_components=n_components,
        random_state=random_state, device=device, progress=progress, n_epochs=200,
        engine=engine, stop=stop)
    desc = (f"Quick map: UMAP of a seeded sample of {m:,} of {n:,} rows; every other row "
            f"placed at the weighted mean of its {PLACE_NEIGHBORS} nearest sample rows.")
    if m == n:
        desc = f"Quick map: UMAP of all {n:,} rows with 200 epochs."
    return Y, {"kind": "quick", "description": desc, "sample_size": m, "n_rows": n,
               "place_neighbors": PLACE_NEIGHBORS, **info,
               "seconds": round(time.perf_counter() - t0, 3)}


def project_umap(
    X: np.ndarray,
    *,
    n_neighbors: int = 15,
    n_components: int = 2,
    min_dist: float = 0.1,
    metric: str = "euclidean",
    random_state: int | None = 42,
    device: str | None = None,
    progress: Progress | None = None,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
    large_n: int = LARGE_N,
    sample_size: int = SAMPLE_SIZE,
    refine_epochs: int = REFINE_EPOCHS,
    engine: Any = None,
    stop: threading.Event | None = None,
) -> tuple[np.ndarray, dict]:
    """The full UMAP map of every row: plain up to ``large_n`` rows, sampled above.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int, default=15
        Neighbours excluding the row itself.
    n_components, min_dist, metric, random_state, device : as :func:`umap_fit`
    progress : callable(fraction, message), optional
    knn : (indices, distances) of shape (n_samples, >= n_neighbors), optional
        The shared kNN graph of all rows (computed here when None).
    large_n, sample_size, refine_epochs : int
        See the module docstring.
    engine : backend.engines.Engine, optional
        A distributed engine searches a missing kNN graph and places the rows outside the
        sample in row blocks (module docstring); the UMAP fits stay here.
    stop : threading.Event, optional
        With a distributed engine: once set, the block tasks are cancelled.

    Returns
    -------
    embedding : ndarray of shape (n_samples, n_components), float32
    report : dict
        ``mode`` ("full" or "sampled"), and for "sampled" the threshold, sample size,
        placement and refinement; the UMAP report; seconds per phase.
    """
    from backend.project.knn import knn_search
    from backend.project.umap_ import (find_ab_params, fuzzy_graph, layout_threads,
                                       optimize_layout, umap_fit)

    X = np.asarray(X)
    n = len(X)
    seconds: dict = {}
    t0 = time.perf_counter()
    knn_report = None
    if knn is None and n <= large_n:
        i, d, r = knn_search(X, n_neighbors, metric=metric, random_state=random_state,
                             device=device, progress=_span(progress, 0.0, 0.2),
                             engine=engine, stop=stop)
        knn, knn_report = (i, d), r.to_dict()
        seconds["knn"] = round(time.perf_counter() - t0, 3)
    if n <= large_n:
        t1 = time.perf_counter()
        k_idx, k_dist = knn[0][:, :n_neighbors], knn[1][:, :n_neighbors]
        emb, urep = umap_fit(X, (k_idx, k_dist), n_components=n_components,
                             min_dist=min_dist, metric=metric, random_state=random_state,
                             device=device, progress=_span(progress, 0.2, 1.0))
        seconds["umap"] = round(time.perf_counter() - t1, 3)
        return emb, {"mode": "full", "threshold": large_n, "umap": urep.to_dict(),
                     "knn": knn_report, "seconds": seconds}
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
    t1 = time.perf_counter()
    Y, info = _fit_sample_and_place(
        X, rows, n_neighbors, min_dist=min_dist, metric=metric, n_components=n_components,
        random_state=random_state, device=device, progress=_span(progress, 0.0, 0.55),
        engine=engine, stop=stop)
    seconds["sample_fit_and_place"] = round(time.perf_counter() - t1, 3)
    if knn is None:
        t1 = time.perf_counter()
        i, d, r = knn_search(X, n_neighbors, metric=metric, random_state=random_state,
                             device=device, progress=_span(progress, 0.55, 0.8),
                             engine=engine, stop=stop)
        knn, knn_report = (i, d), r.to_dict()
        seconds["knn"] = round(time.perf_counter() - t1, 3)
    t1 = time.perf_counter()
    from backend.device import resolve_device
    from backend.project._interrupt import interruptible

    graph = interruptible(
        lambda: fuzzy_graph((knn[0][:, :n_neighbors], knn[1][:, :n_neighbors]),
                            metric=metric, random_state=random_state,
                            n_epochs=refine_epochs),
        _span(progress, 0.8, 0.8), 0.0, "UMAP: fuzzy graph of all rows")
    a, b = find_ab_params(1.0, float(min_dist))
    dev = resolve_device(device).device
    with layout_threads(dev):
        Y = optimize_layout(Y, graph, refine_epochs, float(a), float(b),
                            random_state=random_state, device=dev,
                            progress=_span(progress, 0.8, 1.0),
                            initial_alpha=REFINE_ALPHA, label="refining all rows: epoch")
    seconds["refine"] = round(time.perf_counter() - t1, 3)
    return Y.astype(np.float32), {
        "mode": "sampled", "threshold": large_n, "sample_size": len(rows), "n_rows": n,
        "place_neighbors": PLACE_NEIGHBORS, "refine_epochs": refine_epochs,
        "refine_alpha": REFINE_ALPHA, "knn": knn_report, **info, "seconds": seconds,
        "description": (
            f"UMAP fitted on a seeded sample of {len(rows):,} of {n:,} rows (above "
            f"{large_n:,} rows); the other rows placed at the weighted mean of their "
            f"{PLACE_NEIGHBORS} nearest sample rows, then {refine_epochs} epochs over all "
            "rows on the full kNN graph.")}
