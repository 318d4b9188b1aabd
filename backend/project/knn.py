"""The shared k-nearest-neighbour graph every projection is built from.

Four ways to build it, one format out: each row's ``n_neighbors`` nearest *other* rows
(the row itself never; a duplicate row is a neighbour at distance 0), ascending, with
distances recomputed exactly in the units of the metric whichever search found them.

- ``exact``: brute force in torch blocks (CPU or CUDA), ``O(n^2 d)``.
- ``hnsw``: faiss ``IndexHNSWFlat`` (Malkov & Yashunin 2018), multi-threaded.
- ``ivf``: faiss ``IndexIVFFlat`` (inverted lists over k-means cells, exact distances
  inside the probed cells), its ``nprobe`` raised until a measured recall reaches 0.95.
- ``nndescent``: pynndescent (Dong et al. 2011), umap-learn's own search.

With a distributed engine (a Ray cluster: :mod:`backend.engines`) the search runs in row
blocks, one Ray task per block (:func:`search_rows`): the searched vectors and the index
(exact: none; ``hnsw``/``ivf``: built and tuned here, serialised) are put into the object
store once, each task searches its rows and returns their neighbours with exact distances,
and the driver assembles the blocks. The blocks are multiples of the row chunks the
in-process search works in, so the graph is the in-process one bit for bit. ``nndescent``
(one whole-graph computation) and a CUDA driver (faster than a cluster's CPUs) stay here.

``auto`` picks exact search up to :data:`EXACT_MAX_ROWS` rows and :data:`EXACT_MAX_WORK`
multiply-adds (on CUDA, up to :data:`EXACT_MAX_ROWS_CUDA` rows), else the approximate method that was fastest at recall@k
>= 0.95 in ``bench/projection_scale.py`` (see :data:`AUTO_APPROXIMATE`). The recall of
an approximate graph is measured on a seeded sample of rows against exact search and
reported (:class:`KnnReport`).
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "knn_graph", "knn_search", "knn_query", "sample_recall", "search_rows", "KnnReport",
    "KNN_METRICS", "KNN_METHODS", "EXACT_MAX_ROWS", "EXACT_MAX_ROWS_CUDA", "AUTO_APPROXIMATE",
    "RECALL_TARGET",
]

KNN_METRICS = ("euclidean", "cosine", "manhattan", "correlation")
KNN_METHODS = ("auto", "exact", "hnsw", "ivf", "nndescent")
#: ``auto`` searches exactly up to this many rows on the CPU when ``n^2 d`` is at most
#: :data:`EXACT_MAX_WORK` (about 2 s on 2 cores) ...
EXACT_MAX_ROWS = 20_000
EXACT_MAX_WORK = 4e9
#: ... and up to this many on CUDA (1M x 1M x 384 in blocks takes seconds on an H200).
EXACT_MAX_ROWS_CUDA = 2_000_000
#: The approximate method ``auto`` uses above those sizes: the faster one at recall >= 0.95
#: in bench/projection_scale.py (2 CPU cores; see README "Projection at scale").
AUTO_APPROXIMATE = "ivf"
#: Recall@k the tuned methods aim for, measured against exact search.
RECALL_TARGET = 0.95
#: Rows of the recall sample (exact neighbours are computed for these only).
RECALL_SAMPLE = 1000
#: k-means iterations of the IVF cells: at 100,000 x 64 clustered rows 10, 4 and 2 gave
#: recall@15 0.970, 0.970 and 0.973 (nprobe 32 each; nprobe is tuned to the recall target
#: anyway), and each iteration cost ~0.6 s of the ~17 s search at load 3.
_IVF_KMEANS_ITER = 4
#: Elements of one score block of exact search (query rows x searched rows).
_EXACT_BLOCK_ELEMENTS = 1 << 24
#: Query rows per faiss search call.
_SEARCH_CHUNK = 4096

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class KnnReport:
    """How a kNN graph was built: what goes into the knn artifact's sidecar.

    Attributes
    ----------
    method : str
        The method that ran (never ``"auto"``).
    recall : float or None
        Mean recall@k against exact search on ``recall_sample`` seeded rows (a returned
        neighbour counts when it is no farther than the exact k-th neighbour); 1.0 for
        exact search; None when not measured.
    recall_sample : int
        Rows the recall was measured on (0 when exact).
    seconds : float
        Wall time of the search, recall measurement excluded.
    recall_seconds : float
        Wall time of the recall measurement.
    n_zero_rows : int
        All-zero rows under the cosine or correlation metric (constant rows for
        correlation): their distances are undefined and taken as 1 to every other row
        and 0 to each other, as pynndescent and umap-learn do.
    settings : dict
        Index settings (e.g. ``nlist``, ``nprobe``, ``M``, ``efSearch``).
    """

    method: str
    recall: float | None
    recall_sample: int
    seconds: float
    recall_seconds: float
    n_zero_rows: int
    settings: dict

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def note(self) -> str | None:
        """A sentence for the page when some rows' distances are undefined."""
        if not self.n_zero_rows:
            return None
        return (f"{self.n_zero_rows:,} row(s) are all zero (or constant, for correlation): "
                "their cosine distances are undefined and were taken as 1 to every other "
                "row; such rows are neighbours only of each other.")


def knn_graph(
    X: np.ndarray,
    n_neighbors: int = 15,
    *,
    metric: str = "euclidean",
    method: str = "auto",
    random_state: int | None = 0,
    device: str | None = None,
    progress: Progress | None = None,
    engine: Any = None,
    stop: threading.Event | None = None,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` nearest other rows of every row.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite vectors (any numeric dtype; searched in float32).
    n_neighbors : int, default=15
        Neighbours per row, *excluding the row itself*; ``1 <= n_neighbors < n_samples``.
    metric : {"euclidean", "cosine", "manhattan", "correlation"}, default="euclidean"
    method : {"auto", "exact", "hnsw", "ivf", "nndescent"}, default="auto"
        See the module docstring.
    random_state : int or None, default=0
        Seed of the approximate indexes and of the recall sample.
    device : str or None, default=None
        Torch device of exact search (CUDA when available).
    progress : callable(fraction, message), optional
        Called between blocks of work (at most ~1 s apart; with a distributed engine
        after each finished row block); an exception it raises (e.g. ``JobCancelled``)
        stops the search.
    engine : backend.engines.Engine, optional
        A distributed engine (a Ray cluster) searches in row blocks, one task each (see
        the module docstring); None or an in-process engine: here.
    stop : threading.Event, optional
        With a distributed engine: once set, the outstanding block tasks are cancelled
        (``ray.cancel``) and ``JobCancelled`` is raised.
    block_rows : int, optional
        Rows per block task (rounded up to the in-process row chunk); default: about
        four blocks per worker.

    Returns
    -------
    indices : ndarray of shape (n_samples, n_neighbors), int64
        Never the row itself; ascending distance along each row.
    distances : ndarray of shape (n_samples, n_neighbors), float32
        In the units of ``metric`` (cosine: ``1 - cos``), exact.

    Raises
    ------
    InvalidParameterError
        For an unknown metric or method, or ``n_neighbors`` out of range.
    InvalidInputError
        If ``X`` is not 2-D, has too few rows for ``n_neighbors``, or non-finite values.
    backend.engines.TaskFailedError
        With a distributed engine, if a block task failed (the message names its rows).
    """
    idx, dist, _ = knn_search(X, n_neighbors, metric=metric, method=method,
                              random_state=random_state, device=device, progress=progress,
                              recall_sample=0, engine=engine, stop=stop,
                              block_rows=block_rows)
    return idx, dist


def knn_search(
    X: np.ndarray,
    n_neighbors: int = 15,
    *,
    metric: str = "euclidean",
    method: str = "auto",
    random_state: int | None = 0,
    device: str | None = None,
    progress: Progress | None = None,
    recall_sample: int = RECALL_SAMPLE,
    engine: Any = None,
    stop: threading.Event | None = None,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray, KnnReport]:
    """:func:`knn_graph` plus a :class:`KnnReport` with the measured recall.

    Parameters are those of :func:`knn_graph`, and ``recall_sample`` (int, default=1000):
    rows on which an approximate graph's recall is measured against exact search
    (0: not measured; always here, on the driver).

    Returns
    -------
    indices, distances : as :func:`knn_graph`
    report : KnnReport
    """
    from backend.device import resolve_device

    if metric not in KNN_METRICS:
        raise InvalidParameterError(f"metric must be one of {KNN_METRICS}; got {metric!r}.")
    if method not in KNN_METHODS:
        raise InvalidParameterError(f"method must be one of {KNN_METHODS}; got {method!r}.")
    X = np.asarray(X)
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise InvalidInputError(
            f"X must be a 2-D numeric array (n_samples, n_features); got shape {X.shape} "
            f"and dtype {X.dtype}.")
    n = X.shape[0]
    k = n_neighbors
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidParameterError(f"n_neighbors must be an integer >= 1; got {k!r}.")
    k = int(k)
    if n < k + 1:
        raise InvalidInputError(
            f"the dataset has {n} rows but n_neighbors={k} needs at least {k + 1} (the "
            f"neighbours exclude the row itself); lower n_neighbors to at most "
            f"{max(n - 1, 1)} or add rows.")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise InvalidInputError(
            f"{len(bad)} row(s) contain NaN or infinite values (first rows: "
            f"{bad[:5].tolist()}); drop those rows first.")
    dev = resolve_device(device).device
    report = _progress_or_noop(progress)
    Z, zero = _prepare(X, metric)
    if method == "auto":
        if dev.startswith("cuda"):
            small = n <= EXACT_MAX_ROWS_CUDA
        else:
            small = n <= EXACT_MAX_ROWS and float(n) * n * X.shape[1] <= EXACT_MAX_WORK
        method = "exact" if small else AUTO_APPROXIMATE
    t0 = time.perf_counter()
    settings: dict = {}
    if _on_cluster(engine, dev) and method != "nndescent":
        index = None
        if method == "hnsw":
            index = _hnsw_index(Z, k + 1, metric, settings, report), None
        elif method == "ivf":
            index = _ivf_index(Z, k + 1, metric, random_state, settings, dev, report)
        lo = 0.6 if method == "hnsw" else 0.2 if method == "ivf" else 0.0
        idx, dist, settings["row_blocks"] = _search_on(
            engine, Z, Z, zero, zero, k, metric, index, drop_self=True, what="kNN graph",
            stop=stop, progress=lambda f, m: report(lo + (0.95 - lo) * f, m),
            block_rows=block_rows)
    else:
        if method == "exact":
            idx = _exact_search(Z, Z, k + 1, metric, dev, report)
        elif method == "hnsw":
            idx = _hnsw(Z, k + 1, metric, random_state, settings, report)
        elif method == "ivf":
            idx = _ivf(Z, k + 1, metric, random_state, settings, dev, report)
        else:
            idx = _nndescent(X, k + 1, metric, random_state, report)
        idx = _drop_self(idx, k)
        dist = exact_distances(Z, idx, metric, zero)
        idx, dist = _sort_rows(idx, dist)
    seconds = time.perf_counter() - t0
    recall, m, t1 = (1.0, 0, time.perf_counter()) if method == "exact" else (None, 0, 0.0)
    if method != "exact" and recall_sample > 0:
        t1 = time.perf_counter()
        report(0.97, f"kNN graph: measuring recall on {min(recall_sample, n):,} rows")
        m = min(recall_sample, n)
        recall = sample_recall(Z, idx, dist, metric, n_sample=m, random_state=random_state,
                               device=dev, zero=zero)
    rep = KnnReport(method=method, recall=None if recall is None else round(recall, 4),
                    recall_sample=m, seconds=round(seconds, 3),
                    recall_seconds=round(time.perf_counter() - t1, 3) if m else 0.0,
                    n_zero_rows=int(zero.sum()), settings=settings)
    report(1.0, f"kNN graph done ({method})")
    return idx, dist, rep


# ----------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------
def _prepare(X: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Vectors to search (unit rows for cosine/correlation) and the all-zero rows mask."""
    if metric in ("cosine", "correlation"):
        Z = X - X.mean(axis=1, keepdims=True) if metric == "correlation" else X
        norms = np.linalg.norm(Z, axis=1)
        zero = norms == 0
        Z = Z / np.where(zero, 1.0, norms)[:, None]
        return np.ascontiguousarray(Z, dtype=np.float32), zero
    return X, np.zeros(len(X), bool)


def exact_distances(Z: np.ndarray, idx: np.ndarray, metric: str,
                    zero: np.ndarray | None = None, block: int = 65536) -> np.ndarray:
    """Distances from each row of ``Z`` to the rows ``idx`` names, computed directly.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features), float32
        Searched vectors (:func:`_prepare`'d: unit rows for cosine/correlation).
    idx : ndarray of shape (n_queries, k), int
        Row ``i`` of ``idx`` holds neighbours of row ``i`` of ``Z`` (``n_queries <= n``).
    metric : str
    zero : ndarray of shape (n_samples,), bool, optional
        All-zero rows (cosine/correlation): distance 1 to others, 0 to each other.

    Returns
    -------
    ndarray of shape (n_queries, k), float32
    """
    z = zero if zero is not None else np.zeros(len(Z), bool)
    return _pair_distances(Z[: len(idx)], Z, idx, metric, z[: len(idx)], z, block)


def _sort_rows(idx: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def _drop_self(idx: np.ndarray, k: int, offset: int = 0) -> np.ndarray:
    """k columns without the row itself (when self was not returned, drop the last);
    row ``i`` of ``idx`` is row ``offset + i`` of the searched vectors."""
    rows = offset + np.arange(len(idx))[:, None]
    keep = idx != rows
    keep &= idx >= 0  # faiss pads missing results with -1
    extra = keep.sum(axis=1) - k
    if (extra < 0).any():
        raise InvalidInputError(
            f"the search found fewer than n_neighbors={k} neighbours for "
            f"{int((extra < 0).sum())} row(s); use method='exact' or lower n_neighbors.")
    # drop surplus candidates from the end of each row
    csum = np.cumsum(keep, axis=1)
    keep &= csum <= k
    return idx[keep].reshape(len(idx), k).astype(np.int64)


# ----------------------------------------------------------------------------------------
# exact search in torch blocks
# ----------------------------------------------------------------------------------------
def _exact_rows(n_searched: int, block_elements: int = _EXACT_BLOCK_ELEMENTS) -> int:
    """Query rows per score block of :func:`_exact_search` against ``n_searched`` rows."""
    return max(1, block_elements // max(n_searched, 1))


def _exact_search(Q: np.ndarray, Z: np.ndarray, k: int, metric: str, device: str,
                  progress: Progress, block_elements: int = _EXACT_BLOCK_ELEMENTS) -> np.ndarray:
    """Indices of the k nearest rows of ``Z`` (self included) for every row of ``Q``."""
    import torch

    dev = torch.device(device)
    with warnings.catch_warnings():  # Z may be a read-only memory map; it is only read here
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        Zt = torch.from_numpy(Z).to(dev)
    sq = (Zt * Zt).sum(1)
    rows = _exact_rows(len(Z), block_elements)
    out = np.empty((len(Q), k), np.int64)
    last = time.monotonic()
    for s in range(0, len(Q), rows):
        q = torch.from_numpy(Q[s:s + rows]).to(dev)
        if metric == "manhattan":
            score = -torch.cdist(q, Zt, p=1)
        else:  # -|q - z|^2 + |q|^2, the same order as -|q - z|^2
            score = 2.0 * (q @ Zt.T) - sq[None, :]
        out[s:s + len(q)] = torch.topk(score, k, dim=1).indices.cpu().numpy()
        if time.monotonic() - last > 0.5:
            last = time.monotonic()
            progress(0.95 * min(1.0, (s + len(q)) / len(Q)), "kNN graph: exact search")
    return out


def sample_recall(Z: np.ndarray, idx: np.ndarray, dist: np.ndarray, metric: str, *,
                  n_sample: int = RECALL_SAMPLE, random_state: int | None = 0,
                  device: str | None = "cpu", zero: np.ndarray | None = None) -> float:
    """Mean recall@k of a kNN graph on a seeded sample of rows, against exact search.

    A returned neighbour is a hit when its distance is no larger than the exact k-th
    neighbour's (so ties and duplicates are not counted as misses).

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features), float32
        The searched vectors (unit rows for cosine/correlation).
    idx, dist : ndarray of shape (n_samples, k)
        The graph (without the rows themselves).
    metric : str
    n_sample : int, default=1000
    random_state : int or None, default=0
    device : str or None, default="cpu"
    zero : ndarray of shape (n_samples,), bool, optional

    Returns
    -------
    float in [0, 1]
    """
    n, k = idx.shape
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(n, size=min(n_sample, n), replace=False))
    truth = _exact_search(Z[rows], Z, k + 1, metric, device or "cpu", lambda f, m: None)
    # distances of the exact candidates (self excluded) from each sampled row
    z = zero if zero is not None else np.zeros(n, bool)
    dz = _pair_distances(Z[rows], Z, truth, metric, z[rows], z)
    dz[truth == rows[:, None]] = np.inf
    kth = np.sort(dz, axis=1)[:, k - 1]
    tol = 1e-5 * np.maximum(1.0, kth)
    return float((dist[rows] <= (kth + tol)[:, None]).mean())


# ----------------------------------------------------------------------------------------
# faiss
# ----------------------------------------------------------------------------------------
def _faiss_metric(metric: str):
    import faiss

    return faiss.METRIC_L1 if metric == "manhattan" else faiss.METRIC_L2


def _chunked_search(index, Z: np.ndarray, k: int, progress: Progress, lo: float, what: str,
                    chunk: int = _SEARCH_CHUNK, params=None) -> np.ndarray:
    out = np.empty((len(Z), k), np.int64)
    for s in range(0, len(Z), chunk):
        _, I = index.search(Z[s:s + chunk], k, params=params)
        out[s:s + chunk] = I
        progress(lo + (0.95 - lo) * min(1.0, (s + chunk) / len(Z)), what)
    return out


def _hnsw(Z, k, metric, random_state, settings, progress):
    index = _hnsw_index(Z, k, metric, settings, progress)
    return _chunked_search(index, Z, k, progress, 0.6, "kNN graph: HNSW search")


def _hnsw_index(Z, k, metric, settings, progress):
    """faiss HNSW-Flat index of ``Z`` (its settings recorded in ``settings``)."""
    import faiss

    n, d = Z.shape
    M, ef_c, ef_s = 32, 80, max(64, 2 * k)
    index = faiss.IndexHNSWFlat(d, M, _faiss_metric(metric))
    index.hnsw.efConstruction = ef_c
    index.hnsw.efSearch = ef_s
    settings.update(M=M, efConstruction=ef_c, efSearch=ef_s)
    chunk = 4096
    for s in range(0, n, chunk):
        index.add(Z[s:s + chunk])
        progress(0.6 * min(1.0, (s + chunk) / n), f"kNN graph: HNSW index {min(s + chunk, n):,}/{n:,}")
    return index


def _ivf(Z, k, metric, random_state, settings, device, progress, queries=None):
    """IVF-Flat on ``Z``, searched by ``queries`` (default: ``Z``); ``nprobe`` raised by
    sqrt(2) from 8 (8, 11, 16, 23, 32, ...) until the recall on 200 query rows reaches
    the target (+0.01). (Doubling overshot: at 100,000 x 384 clustered rows, nprobe 23
    gives recall 0.979 on 1,000 rows and 32 gives 0.994 for 28% more search.)"""
    index, params = _ivf_index(Z, k, metric, random_state, settings, device, progress, queries)
    return _chunked_search(index, Z if queries is None else queries, k, progress, 0.2,
                           "kNN graph: IVF search", params=params)


def _ivf_index(Z, k, metric, random_state, settings, device, progress, queries=None):
    """The tuned IVF-Flat index of :func:`_ivf` and its search parameters (``nprobe``)."""
    import faiss

    n, d = Z.shape
    Q = Z if queries is None else queries
    nlist = int(min(65536, max(8, 4 * math.sqrt(n)), max(8, n // 40)))
    rng = np.random.default_rng(random_state)
    train = Z[np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))]
    # k-means one iteration per call, so a cancel is seen between iterations
    km = faiss.Kmeans(d, nlist, niter=1, seed=int(random_state or 0) % (2**31), verbose=False)
    centroids = train[rng.choice(len(train), size=nlist, replace=False)].copy()
    for it in range(_IVF_KMEANS_ITER):
        km.train(train, init_centroids=centroids)
        centroids = km.centroids
        progress(0.02 + 0.08 * (it + 1) / _IVF_KMEANS_ITER,
                 f"kNN graph: IVF k-means ({nlist} cells) {it + 1}/{_IVF_KMEANS_ITER}")
    quantizer = faiss.IndexFlat(d, _faiss_metric(metric))
    quantizer.add(centroids)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, _faiss_metric(metric))
    chunk = 65536
    for s in range(0, n, chunk):
        index.add(Z[s:s + chunk])
        progress(0.1 + 0.05 * min(1.0, (s + chunk) / n), "kNN graph: IVF index")
    # tune nprobe on a small sample of queries against exact search
    rows = np.sort(rng.choice(len(Q), size=min(200, len(Q)), replace=False))
    truth = _exact_search(Q[rows], Z, k, metric, device, lambda f, m: None)
    kth = _pair_distances(Q[rows], Z, truth, metric).max(axis=1)
    nprobe, step = 8, 0
    while True:
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, nlist))
        _, I = index.search(Q[rows], k, params=params)
        got = _pair_distances(Q[rows], Z, np.maximum(I, 0), metric)
        got[I < 0] = np.inf
        recall = float((got <= (kth + 1e-5 * np.maximum(1, kth))[:, None]).mean())
        progress(0.18, f"kNN graph: nprobe={nprobe} gives recall {recall:.3f}")
        if recall >= RECALL_TARGET + 0.01 or nprobe >= nlist:
            break
        step += 1
        nprobe = int(round(8 * 2 ** (step / 2)))
    nprobe = min(nprobe, nlist)
    settings.update(nlist=nlist, nprobe=nprobe, tuning_recall=round(recall, 4))
    return index, faiss.SearchParametersIVF(nprobe=nprobe)


def knn_query(base: np.ndarray, queries: np.ndarray, n_neighbors: int, *,
              metric: str = "euclidean", random_state: int | None = 0,
              device: str | None = None, progress: Progress | None = None,
              engine: Any = None, stop: threading.Event | None = None,
              block_rows: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The ``n_neighbors`` nearest rows of ``base`` for every row of ``queries``.

    Exact (torch blocks) when ``len(base) * len(queries) * d`` is at most
    :data:`EXACT_MAX_WORK` or on CUDA, else faiss IVF tuned to recall 0.95.

    Parameters
    ----------
    base : ndarray of shape (n_base, n_features)
    queries : ndarray of shape (n_queries, n_features)
    n_neighbors : int
        ``1 <= n_neighbors <= n_base``.
    metric, random_state, device, progress, engine, stop, block_rows : as :func:`knn_graph`
        (with a distributed engine, blocks of query rows are tasks; the IVF index is
        built and tuned here).

    Returns
    -------
    indices : ndarray of shape (n_queries, n_neighbors), int64
        Rows of ``base``, ascending distance.
    distances : ndarray of shape (n_queries, n_neighbors), float32
    method : str
        ``"exact"`` or ``"ivf"``.
    """
    from backend.device import resolve_device

    dev = resolve_device(device).device
    report = _progress_or_noop(progress)
    B, zb = _prepare(np.ascontiguousarray(base, dtype=np.float32), metric)
    Q, zq = _prepare(np.ascontiguousarray(queries, dtype=np.float32), metric)
    k = int(n_neighbors)
    method = _query_method(B, Q, dev)
    if _on_cluster(engine, dev):
        (idx, dist), _ = _query_on(engine, Q, B, zq, zb, k, metric, method, random_state, dev,
                                   report, stop, block_rows)
        return idx, dist, method
    if method == "exact":
        idx = _exact_search(Q, B, k, metric, dev, report)
    else:
        idx = _ivf(B, k, metric, random_state, {}, dev, report, queries=Q)
    dist = _pair_distances(Q, B, idx, metric, zq, zb)
    idx, dist = _sort_rows(idx, dist)
    return idx, dist, method


# ----------------------------------------------------------------------------------------
# row blocks on a distributed engine
# ----------------------------------------------------------------------------------------
def _on_cluster(engine: Any, device: str) -> bool:
    """Whether the search goes to the engine: a distributed one, from a CPU driver."""
    return engine is not None and engine.distributed and not device.startswith("cuda")


def _query_method(B: np.ndarray, Q: np.ndarray, device: str) -> str:
    """:func:`knn_query`'s search: exact up to :data:`EXACT_MAX_WORK` (or on CUDA), else IVF."""
    work = float(len(B)) * len(Q) * B.shape[1]
    return "exact" if device.startswith("cuda") or work <= EXACT_MAX_WORK or len(B) < 400 \
        else "ivf"


def _query_on(engine, Q, B, zq, zb, k, metric, method, random_state, device, report, stop,
              block_rows, what="kNN query", fn=None, extra=()):
    """:func:`knn_query` of the prepared ``Q`` against ``B`` in row blocks on ``engine``
    (the IVF index built and tuned here): ``((indices, distances), n_blocks)``, or
    ``(fn's outputs concatenated, n_blocks)`` with ``fn`` (a kernel with
    :func:`search_rows`'s arguments and ``extra``)."""
    index = None if method == "exact" else _ivf_index(B, k, metric, random_state, {}, device,
                                                      report, queries=Q)
    lo = 0.0 if method == "exact" else 0.2
    idx, dist, n_blocks = _search_on(engine, Q, B, zq, zb, k, metric, index, drop_self=False,
                                     what=what, stop=stop, block_rows=block_rows, fn=fn,
                                     extra=extra,
                                     progress=lambda f, m: report(lo + (1.0 - lo) * f, m))
    return ((idx, dist) if fn is None else idx), n_blocks


def _search_on(engine, Q, B, zq, zb, k, metric, index, *, drop_self, what, stop, progress,
               block_rows=None, fn=None, extra=()):
    """:func:`search_rows` (or ``fn``) over blocks of the rows of ``Q``, one engine task
    each: ``(indices, distances, n_blocks)`` assembled in row order (or ``fn``'s outputs
    concatenated, with ``None`` for the distances).

    ``Q``, ``B``, the zero masks and the serialised index go to the engine once
    (:meth:`Engine.put`); the blocks are multiples of the in-process row chunk (exact:
    :func:`_exact_rows`; faiss: :data:`_SEARCH_CHUNK`), so each block's arithmetic is
    the in-process one."""
    from backend.engines import Task, row_blocks

    align = _exact_rows(len(B)) if index is None else _SEARCH_CHUNK
    blocks = row_blocks(len(Q), n_workers=engine.n_workers(), align=align,
                        block_rows=block_rows)
    b_ref = engine.put(B)
    q_ref = b_ref if Q is B else engine.put(Q)
    zb_ref = engine.put(zb)
    zq_ref = zb_ref if zq is zb else engine.put(zq)
    blob = None if index is None else engine.put(_serialize_index(*index))
    tasks = [Task(f"{what} rows {lo:,}-{hi - 1:,}",
                  (q_ref, b_ref, zq_ref, zb_ref, lo, hi, k, metric, blob, drop_self, *extra))
             for lo, hi in blocks]
    parts = engine.map(fn or search_rows, tasks, stop=stop, progress=progress)
    if fn is not None:
        return np.concatenate(parts), None, len(blocks)
    idx = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, k), np.int64)
    dist = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, k), np.float32)
    return idx, dist, len(blocks)


def search_rows(Q: np.ndarray, B: np.ndarray, zq: np.ndarray, zb: np.ndarray, lo: int,
                hi: int, k: int, metric: str, index: tuple | None = None,
                drop_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Engine task: the ``k`` nearest rows of ``B`` for the rows ``lo:hi`` of ``Q``.

    The same steps as the in-process search, on one block of query rows (CPU).

    Parameters
    ----------
    Q : ndarray of shape (n_queries, n_features), float32
        Query vectors, prepared (unit rows for cosine/correlation); may be read-only
        (from Ray's object store).
    B : ndarray of shape (n_base, n_features), float32
        Searched vectors, prepared the same way (``Q`` itself for a kNN graph).
    zq, zb : ndarray of shape (n_queries,) and (n_base,), bool
        All-zero rows (cosine/correlation): distance 1 to others, 0 to each other.
    lo, hi : int
        The block of query rows, ``0 <= lo < hi <= n_queries``.
    k : int
        Neighbours per row (not counting the row itself when ``drop_self``).
    metric : str
        One of :data:`KNN_METRICS`.
    index : tuple (ndarray of uint8, dict), optional
        A serialised faiss index (:func:`_serialize_index`) of ``B``; None: exact search.
    drop_self : bool, default=False
        The queries are the searched rows (a kNN graph): search ``k + 1`` and drop the
        row itself.

    Returns
    -------
    indices : ndarray of shape (hi - lo, k), int64
        Rows of ``B``, ascending distance.
    distances : ndarray of shape (hi - lo, k), float32
        Exact, in the units of ``metric``.

    Raises
    ------
    InvalidInputError
        If the index found fewer than ``k`` neighbours for a row.
    """
    import warnings

    q = Q[lo:hi]
    width = k + 1 if drop_self else k
    with warnings.catch_warnings():  # torch warns about read-only arrays (never written)
        warnings.simplefilter("ignore", UserWarning)
        if index is None:
            cand = _exact_search(q, B, width, metric, "cpu", _noop)
        else:
            faiss_index, params = _load_index(index)
            cand = _chunked_search(faiss_index, q, width, _noop, 0.0, "", params=params)
    if drop_self:
        cand = _drop_self(cand, k, offset=lo)
    dist = _pair_distances(q, B, cand, metric, zq[lo:hi], zb)
    return _sort_rows(cand, dist)


def _serialize_index(index, params) -> tuple[np.ndarray, dict]:
    """A faiss index as ``(bytes, search settings)`` for tasks (picklable)."""
    import faiss

    settings = {}
    if params is not None:
        settings["nprobe"] = int(params.nprobe)
    if hasattr(index, "hnsw"):
        settings["efSearch"] = int(index.hnsw.efSearch)
    return faiss.serialize_index(index), settings


def _load_index(index: tuple) -> tuple[Any, Any]:
    """The faiss index and search parameters of :func:`_serialize_index`'s tuple.

    Read again by every block task (about a second per 1.5 GB, against minutes of search
    for such an index's block), so that no idle worker keeps an index after its job."""
    import faiss

    blob, settings = index
    loaded = faiss.deserialize_index(np.asarray(blob))
    params = None
    if "nprobe" in settings:
        params = faiss.SearchParametersIVF(nprobe=settings["nprobe"])
    if "efSearch" in settings:
        loaded.hnsw.efSearch = settings["efSearch"]
    return loaded, params


def _noop(fraction: float, message: str) -> None:
    return None


def _pair_distances(Q, B, cand, metric, zq=None, zb=None, block: int = 65536):
    """Distances from each row of Q to the rows of B that ``cand`` names, in blocks."""
    out = np.empty(cand.shape, np.float32)
    per = max(1, block // max(1, cand.shape[1]))
    for s in range(0, len(Q), per):
        c = cand[s:s + per]
        diff = B[c] - Q[s:s + per][:, None, :]
        if metric == "manhattan":
            d = np.abs(diff).sum(-1)
        else:
            d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            if metric in ("cosine", "correlation"):
                d = 0.5 * d * d
        if zq is not None and (zq.any() or zb.any()):
            a, b = zq[s:s + per][:, None], zb[c]
            d[a != b] = 1.0
            d[a & b] = 0.0
        out[s:s + per] = d
    return out


def _nndescent(X, k, metric, random_state, progress):
    """pynndescent; not interruptible inside (used only when asked for by name)."""
    from pynndescent import NNDescent

    progress(0.05, "kNN graph: NN-descent (cannot be cancelled midway)")
    index = NNDescent(X, n_neighbors=k, metric=metric, random_state=random_state,
                      low_memory=True, n_jobs=-1, verbose=False)
    idx, _ = index.neighbor_graph
    return idx.astype(np.int64)


def _progress_or_noop(progress: Progress | None) -> Progress:
    return progress if progress is not None else (lambda f, m: None)
