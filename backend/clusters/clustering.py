"""Cluster levels: several granularities of one clustering, coarse to fine.

Two interchangeable methods behind one switch, with one output shape
(:class:`ClusterLevels`):

- ``"hdbscan"`` (fast-hdbscan): the minimum spanning tree of the mutual
  reachability graph and its single-linkage tree are computed ONCE; each level
  is the excess-of-mass selection of the condensed tree built from that tree
  with a different ``min_cluster_size`` (a ladder growing by a factor of
  sqrt(2)). Condensing and selecting costs milliseconds at 1,797 points, so the
  levels cost a fraction of the spanning tree (``bench/clusters.py``). Points
  HDBSCAN leaves out are the explicit label -1 ("Unclustered"). The tree
  functions come from ``fast_hdbscan.cluster_trees`` (pinned 0.3.4), the steps of
  its ``clusters_from_spanning_tree`` without re-sorting per level.
- ``"kmeans"`` (scikit-learn): one fit at the finest ``n_clusters`` (KMeans up to
  50,000 rows, MiniBatchKMeans beyond); coarser levels merge the centroids by
  Ward linkage (scipy), so the levels nest.

PLSCAN (fast-hdbscan's multi-resolution layers) was measured on the digits map
and not used: its finer layers leave 20-41 % of the points unclustered, where
the ``min_cluster_size`` ladder on the same tree leaves under 3 %.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.errors import InvalidInputError
from backend.params import AUTO, Param, ParamSpec

__all__ = ["ClusterLevels", "cluster_levels", "check_rows", "METHODS", "PARAMS", "UNCLUSTERED"]

METHODS = ("hdbscan", "kmeans")
UNCLUSTERED = -1
_MINIBATCH_ROWS = 50_000
_LADDER_START = 5

#: The parameters of :func:`cluster_levels` (the ``cluster`` job kind extends them).
PARAMS = ParamSpec(
    Param("method", str, "hdbscan", choices=METHODS,
          help="HDBSCAN finds dense groups and leaves sparse points unclustered; KMeans splits "
               "every point into n_clusters groups."),
    Param("min_cluster_size", int, AUTO, low=2, high=10**7, auto=True,
          help="HDBSCAN: smallest group called a cluster at the first level shown; 'auto' is "
               "the square root of the row count."),
    Param("min_samples", int, 10, low=1, high=1000,
          help="HDBSCAN: neighbours defining the local density (higher: smoother, more "
               "points unclustered)."),
    Param("n_clusters", int, 8, low=2, high=10_000,
          help="KMeans: clusters of the finest level; coarser levels merge them."),
    Param("random_state", int, 42, low=0, high=2**32 - 1, nullable=True,
          help="KMeans seed (HDBSCAN is deterministic)."),
)


@dataclass(frozen=True)
class ClusterLevels:
    """Labelings of the same points at several granularities.

    Attributes
    ----------
    labels : ndarray of shape (n_levels, n_samples), dtype int32
        Row ``i`` is level ``i``; levels go from coarse (fewest clusters) to fine.
        Clusters are numbered 0, 1, ... by decreasing size within each level;
        ``-1`` marks points left unclustered (HDBSCAN noise). Every point has a label.
    n_clusters : list of int
        Clusters per level, not counting the unclustered group.
    noise_fraction : list of float
        Share of points labelled -1 per level, in [0, 1].
    level_params : list of dict
        What produced each level, e.g. ``{"min_cluster_size": 40}`` or ``{"n_clusters": 10}``.
    default_level : int
        The level shown first.
    method : str
        ``"hdbscan"`` or ``"kmeans"``.
    note : str or None
        A fact the user should know (e.g. all points identical).
    """

    labels: np.ndarray
    n_clusters: list[int]
    noise_fraction: list[float]
    level_params: list[dict[str, Any]]
    default_level: int
    method: str
    note: str | None = None

    @property
    def n_levels(self) -> int:
        return int(self.labels.shape[0])


def cluster_levels(
    X: np.ndarray,
    *,
    method: str = "hdbscan",
    min_cluster_size: int | str = "auto",
    min_samples: int = 10,
    n_clusters: int = 8,
    random_state: int | None = 42,
    progress: Callable[[float, str], None] | None = None,
) -> ClusterLevels:
    """Cluster points at several granularities from one run.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The points: original vectors or map coordinates. Finite values.
    method : {"hdbscan", "kmeans"}, default="hdbscan"
        The clustering algorithm.
    min_cluster_size : int or "auto", default="auto"
        HDBSCAN: the smallest group called a cluster at the default level; the
        ladder of levels always contains it. ``"auto"`` is ``round(sqrt(n_samples))``
        (at least 5). Ignored by KMeans.
    min_samples : int, default=10
        HDBSCAN: neighbours defining the core distance (density smoothing). Must be
        below ``n_samples``. Ignored by KMeans.
    n_clusters : int, default=8
        KMeans: clusters of the finest (default) level; coarser levels halve it
        down to 2. Ignored by HDBSCAN.
    random_state : int or None, default=42
        KMeans seed. HDBSCAN is deterministic.
    progress : callable (fraction, message), optional
        Called as work advances.

    Returns
    -------
    ClusterLevels

    Raises
    ------
    InvalidParameterError
        If a parameter is out of range or ``method`` is unknown.
    InvalidInputError
        If ``X`` is not 2-D, has non-finite values, or has too few rows for the parameters.

    References
    ----------
    .. [1] Campello, Moulavi, Sander (2013). "Density-based clustering based on hierarchical
       density estimates." PAKDD. doi:10.1007/978-3-642-37456-2_14
    .. [2] McInnes, Healy (2017). "Accelerated hierarchical density based clustering."
       ICDMW. doi:10.1109/ICDMW.2017.12 (fast-hdbscan: github.com/TutteInstitute/fast_hdbscan)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))])
    >>> lv = cluster_levels(X, method="kmeans", n_clusters=2)
    >>> lv.n_clusters
    [2]
    """
    p = PARAMS.validate({"method": method, "min_cluster_size": min_cluster_size,
                         "min_samples": min_samples, "n_clusters": n_clusters,
                         "random_state": random_state}, owner="cluster_levels")
    return _cluster_levels(np.asarray(X), progress=progress, **p)


def _cluster_levels(X: np.ndarray, *, method: str, min_cluster_size: int | str, min_samples: int,
                    n_clusters: int, random_state: int | None,
                    progress: Callable[[float, str], None] | None = None) -> ClusterLevels:
    """:func:`cluster_levels` on validated parameters (the job calls this)."""
    if X.ndim != 2 or X.shape[0] == 0:
        raise InvalidInputError(f"points must be a non-empty 2-D array; got shape {X.shape}.")
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise InvalidInputError(f"{bad:,} of {X.shape[0]:,} points have NaN or infinite values; "
                                "remove or impute them before clustering.")
    n = X.shape[0]
    check_rows(n, method=method, min_samples=min_samples, n_clusters=n_clusters,
               min_cluster_size=min_cluster_size)
    mcs = max(_LADDER_START, round(math.sqrt(n))) if min_cluster_size == AUTO else min_cluster_size
    if _all_identical(X):
        return ClusterLevels(
            labels=np.zeros((1, n), np.int32), n_clusters=[1], noise_fraction=[0.0],
            level_params=[{}], default_level=0, method=method,
            note=f"all {n:,} points are identical: one cluster.")
    if method == "hdbscan":
        return _hdbscan_levels(X, mcs, min_samples, progress)
    return _kmeans_levels(X, n_clusters, random_state, progress)


def check_rows(n_rows: int, *, method: str, min_samples: int, n_clusters: int,
               min_cluster_size: int | str) -> None:
    """Raise InvalidInputError when ``n_rows`` points are too few for the parameters."""
    if method == "hdbscan":
        if n_rows <= min_samples:
            raise InvalidInputError(
                f"the data has {n_rows:,} rows; HDBSCAN with min_samples={min_samples} needs at "
                f"least {min_samples + 1}. Lower min_samples to at most {max(n_rows - 1, 1)}, "
                "or use KMeans.")
        if min_cluster_size != AUTO and min_cluster_size > n_rows:
            raise InvalidInputError(
                f"the data has {n_rows:,} rows, fewer than min_cluster_size={min_cluster_size}; "
                "lower min_cluster_size.")
    elif n_clusters > n_rows:
        raise InvalidInputError(
            f"the data has {n_rows:,} rows, fewer than n_clusters={n_clusters}; "
            f"lower n_clusters to at most {n_rows}.")


def _all_identical(X: np.ndarray) -> bool:
    return bool((X == X[0]).all())


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0.. by decreasing size (ties by old id); -1 stays -1."""
    out = np.full(labels.shape, UNCLUSTERED, np.int32)
    kept = labels >= 0
    if not kept.any():
        return out
    ids, counts = np.unique(labels[kept], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    lut = np.empty(int(ids.max()) + 1, np.int32)
    lut[order] = np.arange(len(order), dtype=np.int32)
    out[kept] = lut[labels[kept]]
    return out


def _ladder(n: int, mcs: int) -> list[int]:
    """Sizes from max(5, n / 10,000) to n / 2 by factors of sqrt(2), plus ``mcs``: levels
    of at most ~10,000 clusters, each step splitting rather than collapsing the clusters."""
    sizes = {mcs}
    s = float(max(_LADDER_START, n / 10_000))
    while s <= n / 2:
        sizes.add(int(round(s)))
        s *= math.sqrt(2.0)
    return sorted(v for v in sizes if v >= 2)


def _hdbscan_levels(X, mcs, min_samples, progress) -> ClusterLevels:
    from fast_hdbscan.cluster_trees import (
        cluster_tree_from_condensed_tree,
        condense_tree,
        extract_eom_clusters,
        get_cluster_label_vector,
        mst_to_linkage_tree,
    )
    from fast_hdbscan.hdbscan import compute_minimum_spanning_tree

    report = progress or (lambda f, m: None)
    n = X.shape[0]
    report(0.05, f"HDBSCAN: spanning tree of {n:,} points")
    data = np.ascontiguousarray(X, dtype=np.float64 if X.shape[1] <= 3 else np.float32)
    mst, _, _ = compute_minimum_spanning_tree(data, min_samples=int(min_samples))
    # The single-linkage tree is shared by every level (the steps of fast-hdbscan's
    # clusters_from_spanning_tree, with the sort and linkage done once).
    sorted_mst = mst[np.lexsort((mst.T[1], mst.T[0], mst.T[2]))]
    linkage = mst_to_linkage_tree(sorted_mst)
    sizes = _ladder(n, mcs)
    seen: dict[bytes, int] = {}
    levels: list[tuple[int, np.ndarray]] = []
    for i, size in enumerate(sizes):
        report(0.6 + 0.35 * i / len(sizes), f"HDBSCAN: level with min_cluster_size={size}")
        condensed = condense_tree(linkage, min_cluster_size=int(size))
        selected = extract_eom_clusters(condensed, cluster_tree_from_condensed_tree(condensed))
        lab = get_cluster_label_vector(condensed, selected, 0.0, n_samples=n)
        lab = _relabel_by_size(np.asarray(lab))
        key = lab.tobytes()
        if lab.max() < 0 or key in seen:  # no cluster at all, or the same as a smaller size
            if size == mcs and key in seen:
                levels[seen[key]] = (size, lab)  # the requested size names its level
            continue
        seen[key] = len(levels)
        levels.append((size, lab))
    if not levels:  # no size found any cluster: every point is noise
        levels = [(mcs, np.full(n, UNCLUSTERED, np.int32))]
    levels.sort(key=lambda sl: (int(sl[1].max()) + 1, -sl[0]))  # coarse -> fine
    default = min(range(len(levels)), key=lambda i: (abs(math.log(levels[i][0] / mcs)), i))
    report(1.0, "HDBSCAN done")
    return _levels("hdbscan", [({"min_cluster_size": s}, lab) for s, lab in levels], default)


def _kmeans_levels(X, n_clusters, random_state, progress) -> ClusterLevels:
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.cluster import KMeans, MiniBatchKMeans

    report = progress or (lambda f, m: None)
    n = X.shape[0]
    n_distinct = len(np.unique(X, axis=0)) if n <= 100_000 else n
    if n_distinct < n_clusters:
        raise InvalidInputError(
            f"the data has only {n_distinct} distinct points, fewer than n_clusters={n_clusters}; "
            f"lower n_clusters to at most {n_distinct}.")
    report(0.05, f"KMeans: {n_clusters} clusters of {n:,} points")
    data = np.ascontiguousarray(X, dtype=np.float32)
    est_cls = MiniBatchKMeans if n > _MINIBATCH_ROWS else KMeans
    est = est_cls(n_clusters=n_clusters, random_state=random_state, n_init=3)
    fine = est.fit_predict(data)
    report(0.8, "KMeans: merging centroids into coarser levels")
    levels = []
    ks = [n_clusters >> j for j in range(1, n_clusters.bit_length()) if n_clusters >> j >= 2]
    if ks:
        # Ward linkage of the centroids (unweighted by cluster size): nearby centroids merge
        # first, and every coarse cluster is a union of fine ones, so the levels nest.
        Z = linkage(est.cluster_centers_.astype(np.float64), method="ward")
        for k in sorted(ks):
            merged = fcluster(Z, t=k, criterion="maxclust") - 1
            levels.append(({"n_clusters": k}, _relabel_by_size(merged[fine])))
    levels.append(({"n_clusters": n_clusters}, _relabel_by_size(fine)))
    report(1.0, "KMeans done")
    return _levels("kmeans", levels, len(levels) - 1)


def _levels(method: str, levels: list[tuple[dict, np.ndarray]], default: int) -> ClusterLevels:
    labels = np.stack([lab for _, lab in levels]).astype(np.int32)
    return ClusterLevels(
        labels=labels,
        n_clusters=[int(lab.max()) + 1 for _, lab in levels],
        noise_fraction=[float((lab < 0).mean()) for _, lab in levels],
        level_params=[p for p, _ in levels],
        default_level=int(default),
        method=method,
    )
