"""How faithful a 2-D/3-D projection is to the space it came from.

- trustworthiness and continuity at k (Venna & Kaski 2001),
- kNN recall: the share of each point's k original neighbours that stay among its k map
  neighbours,
- mean per-row Spearman correlation of map distances with ground-truth distances (the
  metric of Huguet et al. 2023) and with original-space distances,

as dataset means and per point (for colouring the map). Memory is O(chunk x n), never
n x n: trustworthiness, continuity and the Spearman scores are exact over all rows up to
``n_rows`` points and estimated from ``n_rows`` random rows (each against all n points)
above; the result states which.

With a distributed engine (a Ray cluster), the scored rows go to tasks in row blocks
(:func:`score_rows`): the vectors and the map are put into the object store once, each
task ranks its block of rows against all n points in the in-process chunks and returns
their per-row scores, and the driver assembles them. The kNN recall (one search over all
rows, or the shared graph) stays on the driver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.device import resolve_device
from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "ProjectionFaithfulness",
    "projection_faithfulness",
    "trustworthiness",
    "continuity",
    "knn_recall",
    "row_spearman",
    "score_rows",
]

Progress = Callable[[float, str], None]
METRICS = ("euclidean", "cosine")
_CHUNK_ELEMENTS = 4_000_000


@dataclass
class ProjectionFaithfulness:
    """Projection-faithfulness scores; ``to_dict`` gives the JSON-able summary.

    Attributes
    ----------
    n_samples, n_neighbors : int
    n_rows : int
        Rows over which trustworthiness, continuity and the Spearman scores were computed
        (each against all ``n_samples`` points).
    sampled : bool
        True when ``n_rows < n_samples`` (random rows, ``random_state``); the scores are
        then unbiased estimates of the all-row means.
    random_state : int or None
    metric : str
        Distance of the original space.
    trustworthiness, continuity : float
        In [0, 1]; 1 = no intruders (trustworthiness) / no missing neighbours (continuity).
    knn_recall : float
        Mean over all points of ``|N_k^X(i) & N_k^Y(i)| / k``.
    row_spearman : float or None
        Mean per-row Spearman correlation of map distances with the ground-truth distances
        (None when no ground truth was given).
    row_spearman_original : float
        The same against original-space distances.
    per_point : dict of str to ndarray of shape (n_samples,)
        ``trustworthiness``, ``continuity``, ``row_spearman``, ``row_spearman_original``
        (NaN on rows not computed) and ``knn_recall`` (every row). The per-point
        trustworthiness/continuity average to the dataset values.
    """

    n_samples: int
    n_neighbors: int
    n_rows: int
    sampled: bool
    random_state: int | None
    metric: str
    trustworthiness: float
    continuity: float
    knn_recall: float
    row_spearman: float | None
    row_spearman_original: float
    per_point: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    rank_sample: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Scalars only (per-point arrays excluded), JSON-able."""
        return {k: v for k, v in self.__dict__.items() if k != "per_point"}

    def per_point_frame(self):
        """Per-point scores as a pandas DataFrame with a ``_row`` column."""
        import pandas as pd

        cols = {"_row": np.arange(self.n_samples, dtype=np.int64)}
        cols.update(self.per_point)
        return pd.DataFrame(cols)


def projection_faithfulness(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    n_neighbors: int = 10,
    metric: str = "euclidean",
    ground_truth_distances: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
    ground_truth_coordinates: np.ndarray | None = None,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
    n_rows: int = 2000,
    random_state: int | None = 0,
    device: str | None = None,
    progress: Progress | None = None,
    max_rows: int | None = None,
    engine: Any = None,
    stop: threading.Event | None = None,
    block_rows: int | None = None,
) -> ProjectionFaithfulness:
    """Trustworthiness, continuity, kNN recall and row-Spearman of a projection.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Original vectors (finite).
    Y : ndarray of shape (n_samples, n_components)
        The projection (finite); Euclidean distances.
    n_neighbors : int, default=10
        k, with ``1 <= k < n_samples / 2``.
    metric : {"euclidean", "cosine"}, default="euclidean"
        Distance in the original space (cosine = Euclidean after L2 normalisation, which
        has the same neighbour ranks).
    ground_truth_distances : ndarray of shape (n_samples, n_samples) or callable, optional
        True distances, or a function ``rows -> (len(rows), n_samples)`` array of them.
    ground_truth_coordinates : ndarray of shape (n_samples, p), optional
        Coordinates whose Euclidean distances are the truth (e.g. the unrolled Swiss roll).
        At most one of the two ground-truth arguments.
    knn : tuple (indices, distances), optional
        The original space's kNN graph in :func:`backend.project.knn.knn_graph`'s format
        (at least ``n_neighbors`` columns, without the row itself), used for the kNN recall of
        every point instead of a new search.
    n_rows : int, default=2000
        Rows scored for trustworthiness, continuity and Spearman: all when
        ``n_samples <= n_rows``, else ``n_rows`` random rows.
    random_state : int or None, default=0
        Seed of the row sample.
    device : str or None, default=None
        Torch device of the distance computations.
    progress : callable (fraction, message), optional
    max_rows : int or None, default=None
        Above this many rows, trustworthiness, continuity and Spearman are computed within
        a seeded uniform sample of ``max_rows`` rows (ranks among the sample, as
        ``trustworthiness(X[s], Y[s])``; ``rank_sample`` in the result says so), so the
        cost no longer grows with n; kNN recall still covers every row (pass the shared
        ``knn`` graph, or it is searched). None: every row is ranked against all n.
    engine : backend.engines.Engine, optional
        A distributed engine scores the rows in blocks, one task each (module docstring;
        the same per-row arithmetic, so the same scores); None or an in-process engine:
        here. Not used from a CUDA device.
    stop : threading.Event, optional
        With a distributed engine: once set, the block tasks are cancelled (``ray.cancel``)
        and ``JobCancelled`` is raised.
    block_rows : int, optional
        Scored rows per task (rounded up to the row chunk); default about four per worker.

    Returns
    -------
    ProjectionFaithfulness

    Raises
    ------
    InvalidInputError
        Shapes that disagree, non-finite values, fewer than 4 points.
    InvalidParameterError
        ``n_neighbors`` out of ``[1, n_samples / 2)``, unknown metric, both ground truths.
    backend.engines.TaskFailedError
        With a distributed engine, if a block task failed (the message names its rows).

    Notes
    -----
    With ``r(i, j)`` the rank of j among i's neighbours in the original space and
    ``U_k(i)`` the map's k nearest neighbours of i that are not among the original k,

    .. math:: T(k) = 1 - \\frac{2}{n k (2n - 3k - 1)} \\sum_i \\sum_{j \\in U_k(i)} (r(i,j) - k)

    and continuity swaps the roles of the two spaces. Per point,
    ``T_i = 1 - 2 / (k (2n - 3k - 1)) * sum_{j in U_k(i)} (r(i,j) - k)``, so ``T`` is their
    mean. Equal to ``sklearn.manifold.trustworthiness`` (ties broken by index).
    Row-Spearman: for each scored row i, the Spearman correlation (average ranks) over all
    n points, self included, of ``||y_i - y_j||`` with the reference distances — the
    evaluation of Huguet et al. (2023).

    References
    ----------
    J. Venna, S. Kaski, "Neighborhood preservation in nonlinear projection methods: an
    experimental study", ICANN 2001. G. Huguet et al., NeurIPS 2023 (row-Spearman).
    """
    import torch

    X, Y = _check_inputs(X, Y)
    n = len(X)
    k = _check_k(n_neighbors, n)
    if metric not in METRICS:
        raise InvalidParameterError(f"metric must be one of {list(METRICS)}; got {metric!r}.")
    if not isinstance(n_rows, (int, np.integer)) or isinstance(n_rows, bool) or n_rows < 1:
        raise InvalidParameterError(f"n_rows must be an integer >= 1; got {n_rows!r}.")
    gt = _ground_truth(ground_truth_distances, ground_truth_coordinates, n)
    if knn is not None:
        knn_idx = _check_knn(knn, n, k)
    if max_rows is not None and n > max_rows and gt is None:
        return _sampled_faithfulness(X, Y, k, metric, knn_idx if knn is not None else None,
                                     n_rows, random_state, device, progress, max_rows,
                                     engine, stop, block_rows)
    dev = resolve_device(device).device

    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise InvalidInputError("cosine metric: X has all-zero rows; drop them first.")
        X = X / norms
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64)).to(dev)
    Yt = torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float64)).to(dev)

    # exact differences in low dimension; the matrix-product form (faster) in high
    x_mode = ("donot_use_mm_for_euclid_dist" if X.shape[1] <= 16
              else "use_mm_for_euclid_dist_if_necessary")
    sampled = n > n_rows
    rows = (np.sort(np.random.default_rng(random_state).choice(n, n_rows, replace=False))
            if sampled else np.arange(n))
    per = {name: np.full(n, np.nan) for name in _ROW_SCORES}
    chunk = max(1, _CHUNK_ELEMENTS // n)
    if engine is not None and engine.distributed and not dev.startswith("cuda"):
        _score_on(engine, per, Xt.numpy(), Yt.numpy(), rows, chunk, k, x_mode, gt, stop,
                  progress, block_rows)
    else:
        for s in range(0, len(rows), chunk):
            r = rows[s:s + chunk]
            for name, values in _score_chunk(Xt, Yt, r, k, x_mode, gt).items():
                per[name][r] = values
            if progress is not None:
                progress(0.9 * min(1.0, (s + len(r)) / len(rows)),
                         f"projection faithfulness: {s + len(r)} of {len(rows)} rows")

    if knn is None:
        knn_idx = _knn_indices(X, k)
    map_idx = _knn_indices(Y, k)
    recall = _set_overlap(knn_idx[:, :k], map_idx[:, :k]) / k
    per["knn_recall"] = recall
    if progress is not None:
        progress(1.0, "projection faithfulness done")
    return ProjectionFaithfulness(
        n_samples=n, n_neighbors=k, n_rows=len(rows), sampled=bool(sampled),
        random_state=random_state, metric=metric,
        trustworthiness=float(np.nanmean(per["trustworthiness"])),
        continuity=float(np.nanmean(per["continuity"])),
        knn_recall=float(recall.mean()),
        row_spearman=None if gt is None else float(np.nanmean(per["row_spearman"])),
        row_spearman_original=float(np.nanmean(per["row_spearman_original"])),
        per_point=per,
    )


def _sampled_faithfulness(X, Y, k, metric, knn_idx, n_rows, random_state, device, progress,
                          max_rows, engine=None, stop=None,
                          block_rows=None) -> ProjectionFaithfulness:
    """Rank-based scores within a seeded sample of ``max_rows`` rows; kNN recall on all."""
    n = len(X)
    rows = np.sort(np.random.default_rng(random_state).choice(n, max_rows, replace=False))
    sub = None if progress is None else (lambda f, m: progress(0.5 * f, m))
    inner = projection_faithfulness(
        X[rows], Y[rows], n_neighbors=k, metric=metric, n_rows=min(n_rows, max_rows),
        random_state=random_state, device=device, progress=sub, engine=engine, stop=stop,
        block_rows=block_rows)
    per = {name: np.full(n, np.nan) for name in
           ("trustworthiness", "continuity", "row_spearman", "row_spearman_original")}
    for name in per:
        per[name][rows] = inner.per_point[name]
    if progress is not None:
        progress(0.55, f"kNN recall of all {n:,} rows")
    if knn_idx is None:
        Xs = X / np.linalg.norm(X, axis=1, keepdims=True) if metric == "cosine" else X
        knn_idx = _knn_indices(Xs, k)
    recall = _set_overlap(knn_idx[:, :k], _knn_indices(Y, k)) / k
    per["knn_recall"] = recall
    if progress is not None:
        progress(1.0, "projection faithfulness done")
    return ProjectionFaithfulness(
        n_samples=n, n_neighbors=k, n_rows=inner.n_rows, sampled=True,
        random_state=random_state, metric=metric, trustworthiness=inner.trustworthiness,
        continuity=inner.continuity, knn_recall=float(recall.mean()), row_spearman=None,
        row_spearman_original=inner.row_spearman_original, per_point=per,
        rank_sample=max_rows)


def trustworthiness(X: np.ndarray, Y: np.ndarray, n_neighbors: int = 10, **kwargs: Any) -> float:
    """Trustworthiness of the map ``Y`` of ``X`` at ``n_neighbors`` (see
    :func:`projection_faithfulness`, whose keyword arguments it accepts)."""
    return projection_faithfulness(X, Y, n_neighbors=n_neighbors, **kwargs).trustworthiness


def continuity(X: np.ndarray, Y: np.ndarray, n_neighbors: int = 10, **kwargs: Any) -> float:
    """Continuity of the map ``Y`` of ``X`` at ``n_neighbors`` (trustworthiness with the
    two spaces swapped; see :func:`projection_faithfulness`)."""
    return projection_faithfulness(X, Y, n_neighbors=n_neighbors, **kwargs).continuity


def knn_recall(
    X: np.ndarray | None,
    Y: np.ndarray,
    n_neighbors: int = 10,
    *,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
    per_point: bool = False,
) -> float | np.ndarray:
    """Share of each point's k original neighbours among its k map neighbours.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or None
        Original vectors (Euclidean kNN); may be None when ``knn`` is given.
    Y : ndarray of shape (n_samples, n_components)
    n_neighbors : int, default=10
    knn : tuple (indices, distances), optional
        Original-space kNN graph (without the row itself), as
        :func:`backend.project.knn.knn_graph`.
    per_point : bool, default=False
        Return the per-point recalls instead of their mean.

    Returns
    -------
    float or ndarray of shape (n_samples,)
        In [0, 1]. O(n k) memory: both neighbour sets come from a kNN search, never n x n.

    Raises
    ------
    InvalidInputError, InvalidParameterError
    """
    Y = np.asarray(Y, dtype=np.float64)
    if knn is None:
        if X is None:
            raise InvalidInputError("knn_recall needs X or a precomputed knn graph.")
        X, Y = _check_inputs(X, Y)
    elif Y.ndim != 2 or not np.isfinite(Y).all():
        raise InvalidInputError(f"Y must be a finite 2-D array; got shape {Y.shape}.")
    n = len(Y)
    k = _check_k(n_neighbors, n)
    a = _check_knn(knn, n, k) if knn is not None else _knn_indices(X, k)
    rec = _set_overlap(a[:, :k], _knn_indices(Y, k)) / k
    return rec if per_point else float(rec.mean())


def row_spearman(
    Y: np.ndarray,
    *,
    ground_truth_distances: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
    ground_truth_coordinates: np.ndarray | None = None,
    n_rows: int = 2000,
    random_state: int | None = 0,
    per_point: bool = False,
) -> float | np.ndarray:
    """Mean per-row Spearman correlation of map distances with ground-truth distances.

    Parameters
    ----------
    Y : ndarray of shape (n_samples, n_components)
    ground_truth_distances, ground_truth_coordinates
        As in :func:`projection_faithfulness` (exactly one).
    n_rows : int, default=2000
        All rows when ``n_samples <= n_rows``, else this many random rows (each over all
        ``n_samples`` columns).
    random_state : int or None, default=0
    per_point : bool, default=False
        Return the per-row correlations (NaN on rows not scored) instead of their mean.

    Returns
    -------
    float or ndarray of shape (n_samples,)

    Raises
    ------
    InvalidInputError, InvalidParameterError

    References
    ----------
    Huguet et al., NeurIPS 2023: the mean over points of the Spearman correlation between
    the embedding's distances from the point and the true geodesic distances (diagonal
    included).
    """
    import torch

    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or len(Y) < 2 or not np.isfinite(Y).all():
        raise InvalidInputError(f"Y must be a finite 2-D array with >= 2 rows; got {Y.shape}.")
    n = len(Y)
    gt = _ground_truth(ground_truth_distances, ground_truth_coordinates, n)
    if gt is None:
        raise InvalidParameterError(
            "row_spearman needs ground_truth_distances or ground_truth_coordinates."
        )
    rows = (np.sort(np.random.default_rng(random_state).choice(n, n_rows, replace=False))
            if n > n_rows else np.arange(n))
    out = np.full(n, np.nan)
    Yt = torch.from_numpy(Y)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for s in range(0, len(rows), chunk):
        r = rows[s:s + chunk]
        dY = torch.cdist(Yt[torch.from_numpy(r)], Yt, compute_mode="donot_use_mm_for_euclid_dist")
        g = torch.from_numpy(np.ascontiguousarray(gt(r), dtype=np.float64))
        out[r] = _row_pearson(_RowRanks(dY).average(), _RowRanks(g).average()).numpy()
    return out if per_point else float(np.nanmean(out))


# ----------------------------------------------------------------------------------------
# scored rows: one chunk (in process), blocks of chunks (engine tasks)
# ----------------------------------------------------------------------------------------
_ROW_SCORES = ("trustworthiness", "continuity", "row_spearman", "row_spearman_original")


def _score_chunk(Xt, Yt, r: np.ndarray, k: int, x_mode: str, gt) -> dict[str, np.ndarray]:
    """Per-row trustworthiness, continuity and Spearman scores of the rows ``r``, each
    ranked against all n points (float64 tensors ``Xt`` (n, d) and ``Yt`` (n, c));
    ``row_spearman`` is NaN without a ground truth ``gt``."""
    import torch

    n = Xt.shape[0]
    dev = Xt.device
    norm = 2.0 / (k * (2.0 * n - 3.0 * k - 1.0))
    rt = torch.from_numpy(r).to(dev)
    rx = _RowRanks(torch.cdist(Xt[rt], Xt, compute_mode=x_mode), rt)
    ry = _RowRanks(torch.cdist(Yt[rt], Yt, compute_mode="donot_use_mm_for_euclid_dist"), rt)
    out = {"trustworthiness": 1.0 - norm * rx.penalty(ry.neighbors(k), k).cpu().numpy(),
           "continuity": 1.0 - norm * ry.penalty(rx.neighbors(k), k).cpu().numpy()}
    rank_y = ry.average()
    out["row_spearman_original"] = _row_pearson(rank_y, rx.average()).cpu().numpy()
    del rx
    out["row_spearman"] = np.full(len(r), np.nan)
    if gt is not None:
        g = torch.from_numpy(np.ascontiguousarray(gt(r), dtype=np.float64)).to(dev)
        out["row_spearman"] = _row_pearson(rank_y, _RowRanks(g).average()).cpu().numpy()
    return out


def score_rows(X: np.ndarray, Y: np.ndarray, rows: np.ndarray, lo: int, hi: int, chunk: int,
               k: int, x_mode: str, gt: Callable | None = None) -> dict[str, np.ndarray]:
    """Engine task: the per-row scores of ``rows[lo:hi]``, chunk by chunk as in process.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
        Original vectors (L2-normalised for the cosine metric); may be read-only.
    Y : ndarray of shape (n_samples, n_components), float64
        The map.
    rows : ndarray of shape (n_scored,), int64
        All scored rows (sorted); this task scores ``rows[lo:hi]``.
    lo, hi : int
        The block, ``0 <= lo < hi <= n_scored``; ``lo`` a multiple of ``chunk``.
    chunk : int
        Rows ranked at once (the in-process chunk: the same arithmetic per chunk).
    k : int
        Neighbourhood size, ``1 <= k < n_samples / 2``.
    x_mode : str
        ``torch.cdist``'s ``compute_mode`` for ``X``.
    gt : callable rows -> ndarray of shape (len(rows), n_samples), optional
        Ground-truth distances.

    Returns
    -------
    dict of str to ndarray of shape (hi - lo,), float64
        ``trustworthiness``, ``continuity``, ``row_spearman`` (NaN without ``gt``),
        ``row_spearman_original``.
    """
    import warnings

    import torch

    with warnings.catch_warnings():  # torch warns about read-only arrays (never written)
        warnings.simplefilter("ignore", UserWarning)
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    block = rows[lo:hi]
    parts = [_score_chunk(Xt, Yt, block[s:s + chunk], k, x_mode, gt)
             for s in range(0, len(block), chunk)]
    return {name: np.concatenate([p[name] for p in parts]) for name in _ROW_SCORES}


def _score_on(engine, per, X, Y, rows, chunk, k, x_mode, gt, stop, progress, block_rows):
    """:func:`score_rows` over blocks of ``rows`` on ``engine``, written into ``per``."""
    from backend.engines import Task, row_blocks

    blocks = row_blocks(len(rows), n_workers=engine.n_workers(), align=chunk,
                        block_rows=block_rows)
    x_ref, y_ref, rows_ref = engine.put(X), engine.put(Y), engine.put(rows)
    gt_ref = None if gt is None else engine.put(gt)
    tasks = [Task(f"faithfulness rows {lo:,}-{hi - 1:,} of {len(rows):,} scored",
                  (x_ref, y_ref, rows_ref, lo, hi, chunk, k, x_mode, gt_ref))
             for lo, hi in blocks]
    report = None if progress is None else (lambda f, m: progress(0.9 * f, m))
    parts = engine.map(score_rows, tasks, stop=stop, progress=report)
    for (lo, hi), part in zip(blocks, parts, strict=True):
        for name in _ROW_SCORES:
            per[name][rows[lo:hi]] = part[name]


# ----------------------------------------------------------------------------------------
# private helpers
# ----------------------------------------------------------------------------------------
def _check_inputs(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise InvalidInputError(
            f"X and Y must be 2-D with one row per point; got shapes {X.shape} and {Y.shape}."
        )
    if len(X) < 4:
        raise InvalidInputError(f"projection faithfulness needs >= 4 points; got {len(X)}.")
    for name, A in (("X", X), ("Y", Y)):
        if not np.isfinite(A).all():
            bad = np.flatnonzero(~np.isfinite(A).all(axis=1))
            raise InvalidInputError(
                f"{name} has {len(bad)} row(s) with NaN or infinite values (first rows: "
                f"{bad[:5].tolist()}); drop them first."
            )
    return X, Y


def _check_k(k: Any, n: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k < n / 2:
        raise InvalidParameterError(
            f"n_neighbors must be an integer in [1, n_samples / 2) = [1, {n / 2:g}); got {k!r}."
        )
    return int(k)


def _check_knn(knn: Any, n: int, k: int) -> np.ndarray:
    if not (isinstance(knn, tuple) and len(knn) == 2):
        raise InvalidInputError("knn must be a tuple (indices, distances).")
    idx = np.asarray(knn[0])
    if idx.ndim != 2 or idx.shape[0] != n or idx.shape[1] < k:
        raise InvalidInputError(
            f"knn indices must have shape ({n}, >= {k}) (neighbours without the row "
            f"itself); got {idx.shape}."
        )
    rows = np.arange(n)[:, None]
    others = idx != rows
    if np.any(others.sum(axis=1) < k):
        raise InvalidInputError(f"knn has rows with fewer than {k} neighbours besides itself.")
    # a graph that lists the row itself (older convention): drop it, keep order
    order = np.argsort(~others, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)[:, :k].astype(np.int64)


def _ground_truth(dist: Any, coords: Any, n: int):
    if dist is not None and coords is not None:
        raise InvalidParameterError(
            "give ground_truth_distances or ground_truth_coordinates, not both."
        )
    if coords is not None:
        C = np.asarray(coords, dtype=np.float64)
        if C.ndim != 2 or len(C) != n or not np.isfinite(C).all():
            raise InvalidInputError(
                f"ground_truth_coordinates must be finite with shape ({n}, p); got {C.shape}."
            )
        from scipy.spatial.distance import cdist

        return lambda r: cdist(C[r], C)
    if dist is None:
        return None
    if callable(dist):
        def from_callable(r):
            g = np.asarray(dist(r), dtype=np.float64)
            if g.shape != (len(r), n) or not np.isfinite(g).all():
                raise InvalidInputError(
                    f"ground_truth_distances(rows) must return finite ({len(r)}, {n}) arrays; "
                    f"got {g.shape}."
                )
            return g
        return from_callable
    G = np.asarray(dist, dtype=np.float64)
    if G.shape != (n, n) or not np.isfinite(G).all():
        raise InvalidInputError(
            f"ground_truth_distances must be finite with shape ({n}, {n}); got {G.shape}."
        )
    return lambda r: G[r]


class _RowRanks:
    """Ranks along each row of a (c, n) distance block, from one stable sort.

    With ``rows`` given, each row's own point (distance 0) is put first, so that ordinal
    rank 0 is the point itself and rank 1 its nearest other point; ties are broken by
    index, as scikit-learn's trustworthiness does.
    """

    def __init__(self, D, rows=None):
        import torch

        if rows is not None:
            D = D.clone()
            D[torch.arange(len(rows), device=D.device), rows] = -1.0
        self.values, self.order = torch.sort(D, dim=1, stable=True)
        self._ordinal = None

    def ordinal(self):
        """0-based ordinal rank of every column."""
        import torch

        if self._ordinal is None:
            c, n = self.order.shape
            pos = torch.arange(n, device=self.order.device).expand(c, n)
            self._ordinal = torch.empty_like(self.order).scatter_(1, self.order, pos)
        return self._ordinal

    def neighbors(self, k: int):
        """Columns of the k nearest other points."""
        return self.order[:, 1:k + 1]

    def penalty(self, others, k: int):
        """Per row: sum of (rank - k) over the columns ``others`` that rank beyond k here."""
        import torch

        r = self.ordinal().gather(1, others)
        return torch.clamp(r - k, min=0).sum(dim=1).double()

    def average(self):
        """1-based ranks, ties given their average rank, float64."""
        import torch

        vals, order = self.values.clamp(min=0.0), self.order  # the point itself back to 0
        c, n = vals.shape
        dev = vals.device
        tie = vals[:, 1:] == vals[:, :-1]
        if not bool(tie.any()):
            return self.ordinal().double() + 1.0
        new = torch.ones_like(vals, dtype=torch.bool)
        new[:, 1:] = ~tie
        gid = torch.cumsum(new.long(), dim=1) - 1 + (torch.arange(c, device=dev) * n)[:, None]
        pos = torch.arange(n, device=dev, dtype=torch.float64).expand(c, n).reshape(-1)
        flat = gid.reshape(-1)
        first = torch.full((c * n,), float(n), dtype=torch.float64, device=dev)
        first = first.scatter_reduce(0, flat, pos, reduce="amin", include_self=True)
        last = torch.full((c * n,), -1.0, dtype=torch.float64, device=dev)
        last = last.scatter_reduce(0, flat, pos, reduce="amax", include_self=True)
        avg = (0.5 * (first[flat] + last[flat]) + 1.0).reshape(c, n)
        return torch.empty_like(avg).scatter_(1, order, avg)


def _row_pearson(a, b):
    import torch

    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    den = torch.sqrt((a * a).sum(dim=1) * (b * b).sum(dim=1))
    return (a * b).sum(dim=1) / den


def _knn_indices(A: np.ndarray, k: int) -> np.ndarray:
    """k nearest other points of every row: exact (scikit-learn, KD-tree in low dimension),
    or the project's kNN graph (its ``auto`` method) above 20,000 rows in more than 20
    dimensions."""
    n, d = A.shape
    if n > 20_000 and d > 20:
        from backend.project.knn import knn_graph

        return knn_graph(A.astype(np.float32), k)[0]
    else:
        from sklearn.neighbors import NearestNeighbors

        _, idx = NearestNeighbors(n_neighbors=min(n, k + 1)).fit(A).kneighbors(A)
    rows = np.arange(n)[:, None]
    others = idx != rows
    order = np.argsort(~others, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)[:, :k]


def _set_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the number of entries of ``a`` present in ``b`` (rows without repeats)."""
    n = len(a)
    sa = np.sort(a, axis=1)
    sb = np.sort(b, axis=1)
    both = np.concatenate([sa, sb], axis=1)
    both.sort(axis=1)
    return (both[:, 1:] == both[:, :-1]).sum(axis=1).astype(np.float64).reshape(n)
