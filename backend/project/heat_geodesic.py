"""Heat geodesic embedding (Huguet et al., NeurIPS 2023) in torch, with landmarks for large n.

Pipeline: alpha-decay kNN affinity -> symmetric normalised Laplacian -> heat kernel
``exp(-t L)`` (float64 Chebyshev expansion or exact eigendecomposition) -> heat-geodesic
distance with the Harnack regularisation ``sigma`` -> metric MDS (classical MDS start,
SMACOF stress majorisation). Above ``n_landmarks`` distinct points the diffusion runs on a
coarsened landmark graph and every point is placed from its landmarks' coordinates.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from backend.device import resolve_device
from backend.errors import InvalidInputError, InvalidParameterError
from backend.graph_ops import knn_adjacency, normalized_laplacian
from backend.params import Param, ParamSpec
from backend.project.knn import KNN_METRICS

__all__ = [
    "HeatGeodesic",
    "HeatGeodesicReport",
    "heat_geodesic_embedding",
    "alpha_decay_affinity",
    "normalized_laplacian",
    "chebyshev_order",
    "chebyshev_heat_kernel",
    "exact_heat_kernel",
    "heat_geodesic_distances",
]

Progress = Callable[[float, str], None]

METHODS = ("auto", "chebyshev", "exact", "landmark")
# Far-pair heat ratio the automatic t aims for: H_ab / ((H_aa + H_bb) / 2) at the two ends of
# the graph's longest shortest path (double BFS sweep). 1e-7 sits 9 orders of magnitude above
# float64 round-off, so no distance saturates, while t stays small enough for local detail.
AUTO_T_RATIO = 1e-7
# Absolute bound on the Chebyshev truncation error of every heat-kernel entry (order="auto").
CHEBYSHEV_TOL = 1e-15
# Heat values below this are round-off, not measurement: their distances are a ceiling.
SATURATION_LEVEL = 1e-14
# The reference's log floor: d^2 = -4t log(H + 1e-16) ...
LOG_FLOOR = 1e-16
DENSE_MAX_POINTS = 10_000
_T_RANGE = (1e-2, 1e5)
_N_SWEEPS = 8  # double BFS sweeps whose end pairs set the automatic t
_MAX_AUTO_ORDER = 50_000
_SEARCH_FACTOR = 3  # candidate neighbours searched per point: 3 * n_neighbors


# ----------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------
@dataclass
class HeatGeodesicReport:
    """What a fit resolved and measured; JSON-able through :meth:`to_dict`.

    Attributes
    ----------
    method : {"chebyshev", "exact", "landmark"}
        Dense Chebyshev, dense eigendecomposition, or diffusion on a landmark graph.
    kernel : {"chebyshev", "eigh", "eigsh"}
        How ``exp(-t L)`` was computed on the diffusion graph: Chebyshev expansion, full
        eigendecomposition, or the lowest eigenpairs (shift-invert Lanczos) until
        ``exp(-t lambda) <= 1e-15``.
    t : float
        Diffusion time used (chosen from the graph when ``t="auto"``).
    t_auto : bool
        Whether ``t`` was chosen from the graph.
    order : int or None
        Chebyshev order (``None`` for the exact kernel).
    kernel_error_bound : float or None
        Bound on the absolute truncation error of every heat-kernel entry (Chebyshev tail,
        or ``exp(-t lambda_r)`` for the lowest ``r`` eigenpairs); None for ``eigh``.
    n_eigenpairs : int or None
        Eigenpairs used (``eigh``: all, ``eigsh``: the lowest ones).
    lambda_max : float
        Upper bound on the Laplacian's spectrum used for the Chebyshev interval.
    far_pair_ratio : float
        Heat ratio ``H_ab / ((H_aa + H_bb) / 2)`` between the two ends of the graph's longest
        shortest path at the chosen ``t``; near 0 means the far pairs saturate.
    saturated_fraction : float
        Fraction of off-diagonal pairs of the diffusion graph whose heat value is below
        ``SATURATION_LEVEL`` (1e-14): their distance is a ceiling, not a measurement.
    n_samples, n_unique, n_duplicates : int
        Rows given, distinct rows embedded, rows that repeat an earlier one.
    n_diffusion_nodes : int
        Nodes of the graph the heat kernel ran on (``n_unique`` or the landmark count).
    diameter_hops : int
        Hop length of the longest shortest path found by the double BFS sweep.
    stress : float
        Normalised stress ``sqrt(sum (E - D)^2 / sum D^2)`` of the final MDS layout.
    n_iter : int
        SMACOF iterations run.
    device, device_reason : str
    timings : dict of str to float
        Seconds per stage: ``graph``, ``kernel``, ``mds``, ``place``.
    """

    method: str
    kernel: str
    t: float
    t_auto: bool
    order: int | None
    kernel_error_bound: float | None
    n_eigenpairs: int | None
    lambda_max: float
    far_pair_ratio: float
    saturated_fraction: float
    n_samples: int
    n_unique: int
    n_duplicates: int
    n_neighbors: int
    n_diffusion_nodes: int
    diameter_hops: int
    sigma: float
    stress: float
    n_iter: int
    device: str
    device_reason: str
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeatGeodesicReport:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


# ----------------------------------------------------------------------------------------
# public estimator
# ----------------------------------------------------------------------------------------
class HeatGeodesic:
    """Heat geodesic embedding: metric MDS of distances read off the graph heat kernel.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the embedding, ``1 <= n_components <= 3``.
    n_neighbors : int, default=10
        Neighbours that set each point's kernel bandwidth (the distance to its
        ``n_neighbors``-th nearest other point). Reference name ``knn``, no default there
        (its README uses 5; its best configuration in our reference run uses 10).
    t : float or "auto", default="auto"
        Diffusion time. ``"auto"`` picks the ``t`` at which the heat ratio between the two
        ends of the graph's longest shortest path is ``AUTO_T_RATIO`` (1e-7), so that the
        diffusion reaches every pair above float64 round-off and no distance saturates.
        Reference name ``tau``, default 10 (its ``"auto"``, an entropy knee, is a different
        rule).
    order : int or "auto", default="auto"
        Chebyshev order. ``"auto"`` takes the smallest order whose coefficient tail bounds the
        truncation error of every heat entry by ``CHEBYSHEV_TOL`` (1e-15), see
        :func:`chebyshev_order`: about ``z + 6 sqrt(z)`` for small ``z = t lambda_max / 2``
        and ``sqrt(2 z ln(1 / tol))`` for large ``z`` (212 instead of the rule of thumb
        ``z = 696`` at t=1000, lambda_max=1.39). Reference name ``order``, default 32.
        Used by the Chebyshev kernel only.
    sigma : float, default=1.0
        Harnack regularisation in ``[0, 1]``: ``sigma=1`` divides each heat value by the mean
        of the two diagonal entries, which removes the density term of the distance.
        Reference name ``harnack_regul``, default 0.
    decay : float, default=40.0
        Exponent of the alpha-decay kernel ``exp(-(d / bandwidth) ** decay)`` (reference
        ``decay``, default 40).
    method : {"auto", "chebyshev", "exact", "landmark"}, default="auto"
        ``"chebyshev"`` and ``"exact"`` compute the dense ``n x n`` heat kernel on all
        distinct points (Chebyshev expansion or eigendecomposition; at most 10,000 points).
        ``"landmark"`` runs the diffusion on a graph coarsened to ``n_landmarks`` landmarks
        and places every point from its landmarks. ``"auto"`` is dense when the number of
        distinct points is at most ``n_landmarks``, else landmark. Under ``"auto"`` and
        ``"landmark"`` the heat kernel (``kernel_``) is Chebyshev when ``order`` is given;
        else, at large ``t`` (``exp(-t lambda) <= 1e-15`` for ``lambda >= lambda_max / 2``),
        the lowest eigenpairs (``"eigsh"``, shift-invert Lanczos); otherwise Chebyshev or a
        full eigendecomposition (``"eigh"``), whichever a flop count says is cheaper.
    n_landmarks : int, default=3000
        Landmarks of the coarsened graph (in ``[10, 10000]``); also the size up to which
        ``"auto"`` stays dense. Dense costs O(n^2) memory and up to O(n^3) time (about 10 s
        at 3,000 points on 2 CPU cores); on the noisy DLA tree (2,500 points) landmarks at
        m = 1,000-2,000 lose 0.01-0.02 row-Spearman against dense.
    max_iter : int, default=300
        Maximum SMACOF iterations (stops once an iteration lowers the normalised stress by
        less than 0.1%).
    random_state : int or None, default=None
        Seed of the landmark choice, the Lanczos start and the MDS start (and of the
        approximate kNN search above 20,000 distinct points).
    device : str or None, default=None
        Torch device (see :func:`backend.device.resolve_device`).
    metric : {"euclidean", "cosine", "manhattan", "correlation"}, default="euclidean"
        Distance of the kNN search on ``X`` (the shared
        :func:`backend.project.knn.knn_graph`; distances recomputed in float64 for the
        kernel). Ignored when ``knn_graph`` is given.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components), float64
        Coordinates in heat-geodesic distance units, centred, rotated to principal axes.
        Exact duplicate rows get identical coordinates.
    t_ : float
        Diffusion time used.
    order_ : int or None
        Chebyshev order used (None for the eigendecomposition kernels).
    lambda_max_ : float
    saturated_fraction_ : float
        See :class:`HeatGeodesicReport`.
    n_components_graph_ : int
        Connected components of the kNN graph (always 1 after a successful fit: a
        disconnected graph raises :class:`~backend.errors.InvalidInputError`).
    method_ : {"chebyshev", "exact", "landmark"}
    kernel_ : {"chebyshev", "eigh", "eigsh"}
        Resolved method and heat-kernel computation (see ``method``).
    distances_ : ndarray of shape (n_diffusion_nodes, n_diffusion_nodes), float64
        Heat-geodesic distances between the diffusion graph's nodes (all distinct points in
        dense mode, the landmarks in landmark mode), symmetrised, zero diagonal.
    landmarks_ : ndarray of shape (n_diffusion_nodes,), int64 or None
        Row of ``X`` of each landmark (landmark mode).
    landmark_labels_ : ndarray of shape (n_samples,), int64 or None
        Landmark cell of every row (landmark mode).
    n_duplicates_ : int
    stress_ : float
    n_iter_ : int
    report_ : HeatGeodesicReport
        All of the above that is small, JSON-able.

    Notes
    -----
    With ``W`` the symmetrised alpha-decay affinity, ``L = I - D^{-1/2} W D^{-1/2}`` and
    ``H = exp(-t L)``, the distance is (Huguet et al. 2023, eq. 6 with the Harnack term)

    .. math:: d_{ij}^2 = -4t \\log(H_{ij} + 10^{-16})
              + \\sigma \\, 4t \\log\\left(\\tfrac{H_{ii} + H_{jj}}{2} + 10^{-16}\\right).

    The Chebyshev expansion on ``[0, lambda_max]`` is
    ``exp(-t lambda) = ive(0, z) + 2 sum_k (-1)^k ive(k, z) T_k(2 lambda / lambda_max - 1)``
    with ``z = t lambda_max / 2``.

    Scale: a degree-K polynomial in ``L`` is exactly zero between nodes more than K hops
    apart, and heat values below ~1e-16 are round-off, so the reference (t=10, K=32,
    dense) saturates 60-80% of its distances and degrades as n grows. Here ``t`` is
    chosen so the farthest pair keeps a heat ratio of 1e-7 (no saturation; measured
    ``far_pair_ratio`` and ``saturated_fraction`` are in ``report_``), the order follows
    ``t``, and above ``n_landmarks`` points the diffusion runs on a coarsened graph: ``m`` landmarks
    drawn uniformly at random, each point assigned to its nearest landmark in hops
    (graph Voronoi cells), ``W_c = A^T W A`` with the diagonal removed (``A`` the n x m
    cell indicator). The coarse graph has the same topology at ``m`` nodes, so its hop
    diameter and the cost of the kernel do not grow with n. Every point is then placed
    at the weighted mean of the landmark coordinates of its own cell and of its
    neighbours' cells (weights: its affinities, itself included). Measured against the
    dense mode: see ``bench/heat_geodesic.py`` and the tests.

    Eigendecomposition kernels are used when cheaper: at the automatic ``t`` every heat
    value is >= ~1e-7 of the diagonal, so their round-off (~1e-15 absolute), which spoils
    the reference's saturated entries (its exact option turns row-Spearman 0.84 into
    0.55), is harmless here. ``"eigsh"`` keeps the lowest ``r`` eigenpairs with
    ``exp(-t lambda_r) <= 1e-15`` (reported as ``kernel_error_bound``): 64 eigenpairs
    carry the whole kernel of the Swiss roll at t ~ 1,300.

    References
    ----------
    G. Huguet, A. Tong, E. De Brouwer, Y. Zhang, G. Wolf, I. Adelstein, S. Krishnaswamy,
    "A Heat Diffusion Perspective on Geodesic Preserving Dimensionality Reduction",
    NeurIPS 2023. Reference code: KrishnaswamyLab/HeatGeo (``heatgeo/embedding.py``).
    K. R. Moon et al., "Visualizing structure and transitions in high-dimensional
    biological data", Nat. Biotechnol. 37 (2019) (alpha-decay kernel, landmarks).
    J. de Leeuw, "Applications of convex analysis to multidimensional scaling" (1977)
    (SMACOF).

    Examples
    --------
    >>> import numpy as np
    >>> from backend.project import HeatGeodesic
    >>> X = np.random.default_rng(0).normal(size=(300, 5))
    >>> emb = HeatGeodesic(random_state=0).fit_transform(X)
    >>> emb.shape
    (300, 2)
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        n_neighbors: int = 10,
        t: float | str = "auto",
        order: int | str = "auto",
        sigma: float = 1.0,
        decay: float = 40.0,
        method: str = "auto",
        n_landmarks: int = 3000,
        max_iter: int = 300,
        random_state: int | None = None,
        device: str | None = None,
        metric: str = "euclidean",
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.t = t
        self.order = order
        self.sigma = sigma
        self.decay = decay
        self.method = method
        self.n_landmarks = n_landmarks
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device

    def fit(
        self,
        X: np.ndarray | None,
        y: None = None,
        *,
        knn_graph: Any = None,
        progress: Progress | None = None,
    ) -> HeatGeodesic:
        """Compute the embedding of ``X`` (or of a precomputed kNN graph).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or None
            Finite vectors, compared with ``metric``; exact duplicate rows are merged
            before the search (any number of them). May be ``None`` when ``knn_graph`` is
            given.
        y : None
            Ignored (scikit-learn API).
        knn_graph : tuple (indices, distances) or scipy sparse matrix, optional
            A precomputed kNN graph used instead of searching ``X``: either the shared
            graph format of :func:`backend.project.knn.knn_graph` (two
            ``(n_samples, k)`` arrays, the row itself in column 0, ``k > n_neighbors``),
            or an ``(n_samples, n_samples)`` sparse matrix whose stored entries of row i
            are distances to its candidate neighbours (diagonal ignored; explicit zeros
            mark exact duplicates, which are merged).
        progress : callable (fraction, message), optional
            Called between stages (graph, kernel, MDS, placement) and during MDS.
            An exception raised inside it propagates and stops the fit.

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError
            A parameter out of range, or ``n_neighbors`` too large for the number of
            distinct points.
        InvalidInputError
            ``X`` not 2-D or with NaN/inf; fewer than 2 distinct points; a malformed
            ``knn_graph``; a disconnected kNN graph (the error's ``component_sizes`` and
            ``component_labels`` attributes describe the components).
        """
        return self._fit(X, knn_graph, progress, _validate_params(self))

    def _fit(self, X, knn_graph, progress, p: dict[str, Any]) -> HeatGeodesic:
        """:meth:`fit` with parameters already validated against :data:`PARAMS` (the job
        layer validates them once, before queueing)."""
        dev = resolve_device(self.device)
        start = time.perf_counter()
        if progress is not None:
            progress(0.0, "graph: nearest neighbours")
        graph = _prepare_graph(X, knn_graph, p)
        emb, report, extras = _fit_core(graph, p, dev.device, dev.reason, progress, start)
        self.embedding_ = emb
        self.report_ = report
        self.t_ = report.t
        self.order_ = report.order
        self.lambda_max_ = report.lambda_max
        self.saturated_fraction_ = report.saturated_fraction
        self.n_components_graph_ = 1
        self.method_ = report.method
        self.kernel_ = report.kernel
        self.n_duplicates_ = report.n_duplicates
        self.stress_ = report.stress
        self.n_iter_ = report.n_iter
        self.distances_ = extras["distances"]
        self.landmarks_ = extras["landmarks"]
        self.landmark_labels_ = extras["landmark_labels"]
        return self

    def fit_transform(
        self,
        X: np.ndarray | None,
        y: None = None,
        *,
        knn_graph: Any = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Fit and return ``embedding_`` (see :meth:`fit`)."""
        return self.fit(X, knn_graph=knn_graph, progress=progress).embedding_


def heat_geodesic_embedding(
    X: np.ndarray | None,
    n_components: int = 2,
    *,
    knn_graph: Any = None,
    progress: Progress | None = None,
    **params: Any,
) -> tuple[np.ndarray, HeatGeodesicReport]:
    """Functional form of :class:`HeatGeodesic`.

    Parameters
    ----------
    X, knn_graph, progress
        As in :meth:`HeatGeodesic.fit`.
    n_components : int, default=2
    **params
        Any keyword parameter of :class:`HeatGeodesic`.

    Returns
    -------
    embedding : ndarray of shape (n_samples, n_components), float64
    report : HeatGeodesicReport

    Raises
    ------
    InvalidParameterError, InvalidInputError
        As :meth:`HeatGeodesic.fit`; an unknown keyword raises InvalidParameterError.
    """
    allowed = {*PARAMS.names, "device"} - {"n_components"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidParameterError(
            f"unknown heat geodesic parameter(s) {unknown}; allowed: {sorted(allowed)}."
        )
    est = HeatGeodesic(n_components, **params).fit(X, knn_graph=knn_graph, progress=progress)
    return est.embedding_, est.report_


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------
PARAMS = ParamSpec(
    Param("n_components", int, 2, low=1, high=3, help="Dimensions of the embedding."),
    Param("n_neighbors", int, 10, low=1, high=200,
          help="Neighbours (the point itself excluded) that set each point's kernel bandwidth."),
    Param("t", float, "auto", low=0.0, high=_T_RANGE[1], low_open=True, auto=True,
          label="diffusion time t",
          help="Diffusion time; 'auto' picks it from the graph so no distance saturates "
               "(the reference's tau, default 10)."),
    Param("order", int, "auto", low=1, high=_MAX_AUTO_ORDER, auto=True,
          help="Chebyshev order; 'auto' bounds the truncation error by 1e-15."),
    Param("sigma", float, 1.0, low=0.0, high=1.0, step=0.1, label="sigma (Harnack regularisation)",
          help="Harnack regularisation: 1 removes the density term of the distance "
               "(the reference's harnack_regul, default 0 there)."),
    Param("decay", float, 40.0, low=1.0, high=1000.0, help="Exponent of the alpha-decay kernel."),
    Param("method", str, "auto", choices=METHODS,
          help="Dense (chebyshev, exact) up to n_landmarks distinct points, else landmark."),
    Param("n_landmarks", int, 3000, low=10, high=DENSE_MAX_POINTS,
          help="Landmarks of the coarsened graph; also the size up to which 'auto' stays dense."),
    Param("max_iter", int, 300, low=0, high=10_000, help="Maximum SMACOF iterations."),
    Param("random_state", int, None, low=0, high=2**32 - 1, nullable=True,
          help="Seed of the landmarks, the Lanczos start and the MDS start."),
    Param("metric", str, "euclidean", choices=KNN_METRICS,
          help="Distance of the kNN search in the original space."),
)
"""The parameters of :class:`HeatGeodesic`, declared once (its ``fit``, the job kind, the
service and the form read this)."""


def _validate_params(est: HeatGeodesic) -> dict[str, Any]:
    return PARAMS.validate({name: getattr(est, name) for name in PARAMS.names},
                           owner="HeatGeodesic")


@dataclass
class _Graph:
    """Candidate neighbours of the distinct points, ascending distances, -1/inf padded."""

    indices: np.ndarray  # (n_unique, k_cand) int64
    distances: np.ndarray  # (n_unique, k_cand) float64
    inverse: np.ndarray  # (n_samples,) row -> distinct point
    representative: np.ndarray  # (n_unique,) first row of each distinct point
    n_samples: int


def _check_finite(X: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(X), -1).any(axis=1))
        raise InvalidInputError(
            f"{what} has {len(rows)} row(s) with NaN or infinite values (first rows: "
            f"{rows[:5].tolist()}); drop or impute them first."
        )


def _prepare_graph(X: Any, knn_graph: Any, p: dict[str, Any]) -> _Graph:
    k = p["n_neighbors"]
    if knn_graph is None:
        if X is None:
            raise InvalidInputError("pass the vectors X or a precomputed knn_graph; got neither.")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] < 1 or not np.issubdtype(X.dtype, np.number):
            raise InvalidInputError(
                f"X must be a 2-D numeric array (n_samples, n_features); got shape {X.shape} "
                f"and dtype {X.dtype}."
            )
        _check_finite(X, "X")
        Xf = np.ascontiguousarray(X, dtype=np.float64)
        _, first, inverse = np.unique(Xf, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        rep = first[order]
        inverse = rank[inverse.ravel()]
        _check_count(len(rep), len(Xf), k)
        k_search = min(len(rep) - 1, _SEARCH_FACTOR * k)
        idx, dist = _knn_search(Xf[rep], k_search, p["metric"], p["random_state"])
        return _Graph(idx, dist, inverse.astype(np.int64), rep.astype(np.int64), len(Xf))
    rows, cols, dist, n = _triplets_from_knn_graph(knn_graph, k)
    if X is not None and np.asarray(X).shape[0] != n:
        raise InvalidInputError(
            f"X has {np.asarray(X).shape[0]} rows but knn_graph describes {n} points."
        )
    return _merge_duplicates(rows, cols, dist, n, k)


def _check_count(n_unique: int, n_samples: int, k: int) -> None:
    dup = f" ({n_samples - n_unique} duplicate rows merged)" if n_unique < n_samples else ""
    if n_unique < 2:
        raise InvalidInputError(
            f"the heat geodesic embedding needs at least 2 distinct points; got {n_unique} "
            f"distinct of {n_samples} rows{dup}."
        )
    if n_unique <= k:
        raise InvalidParameterError(
            f"n_neighbors={k} must be smaller than the number of distinct points "
            f"({n_unique}{dup}); use n_neighbors <= {n_unique - 1}."
        )


# ---- kNN search: the shared graph of backend/project/knn.py ---------------------------
# Convention point with knn.py (issue 12): today ``knn_graph(X, n)`` returns n columns with
# the point itself first. When it returns neighbours EXCLUDING the point, set this to False.
_KNN_GRAPH_INCLUDES_SELF = True


def _knn_search(X: np.ndarray, k: int, metric: str, random_state: int | None):
    """k nearest other points of each row (no duplicates in X), ascending, float64.

    The neighbours come from the shared :func:`backend.project.knn.knn_graph` (one
    exact/approximate rule for every projection; it searches in float32); their distances
    are recomputed in float64, since the alpha-decay kernel raises ``d / bandwidth`` to
    the 40th power.
    """
    from backend.project.knn import knn_graph

    width = k + 1 if _KNN_GRAPH_INCLUDES_SELF else k
    idx, _ = knn_graph(X, width, metric=metric, random_state=random_state)
    idx = idx.astype(np.int64)
    dist = _pair_distances(X, idx, metric)
    if _KNN_GRAPH_INCLUDES_SELF:
        idx, dist = _drop_self(idx, dist, k)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def _pair_distances(X: np.ndarray, idx: np.ndarray, metric: str) -> np.ndarray:
    """float64 distances between each row i and its candidates ``idx[i]``, shape of idx."""
    from sklearn.metrics.pairwise import paired_distances

    A = X
    if metric == "correlation":
        A = X - X.mean(axis=1, keepdims=True)
        metric = "cosine"
    rows = np.repeat(np.arange(len(idx)), idx.shape[1])
    d = paired_distances(A[rows], A[idx.ravel()], metric=metric)  # cosine: 1 - cos
    return np.maximum(d, 0.0).reshape(idx.shape)


def _drop_self(idx: np.ndarray, dist: np.ndarray, k: int):
    rows = np.arange(len(idx))[:, None]
    keep = idx != rows
    # rows where self was not returned: drop the farthest candidate instead
    extra = keep.sum(axis=1) > k
    keep[extra, -1] = False
    return (idx[keep].reshape(len(idx), k), dist[keep].reshape(len(idx), k))


def _triplets_from_knn_graph(g: Any, k: int):
    if isinstance(g, tuple) and len(g) == 2:
        idx, dist = (np.asarray(a) for a in g)
        if idx.ndim != 2 or idx.shape != dist.shape or not np.issubdtype(idx.dtype, np.integer):
            raise InvalidInputError(
                "knn_graph=(indices, distances) needs two arrays of one shape "
                f"(n_samples, k), integer indices; got {idx.shape} {idx.dtype} and "
                f"{dist.shape} {dist.dtype}."
            )
        n, kk = idx.shape
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InvalidInputError(
                f"knn_graph indices must lie in [0, {n - 1}]; found {idx.min()}..{idx.max()}."
            )
        if kk - 1 < k:
            raise InvalidParameterError(
                f"the kNN graph has {kk} columns (the row itself + {kk - 1} neighbours) but "
                f"n_neighbors={k} needs at least {k + 1}; build the graph with "
                f"n_neighbors >= {k + 1} or lower n_neighbors."
            )
        rows = np.repeat(np.arange(n, dtype=np.int64), kk)
        cols, d = idx.astype(np.int64).ravel(), dist.astype(np.float64).ravel()
    elif sp.issparse(g):
        if g.ndim != 2 or g.shape[0] != g.shape[1]:
            raise InvalidInputError(
                f"a sparse knn_graph must be square (n_samples, n_samples); got {g.shape}."
            )
        coo = sp.coo_matrix(g)
        n = g.shape[0]
        rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
        d = coo.data.astype(np.float64)
    else:
        raise InvalidInputError(
            "knn_graph must be a tuple (indices, distances) or a scipy sparse distance "
            f"matrix; got {type(g).__name__}."
        )
    _check_finite(d.reshape(-1, 1) if d.size else np.zeros((0, 1)), "knn_graph distances")
    if d.size and d.min() < 0:
        raise InvalidInputError(
            f"knn_graph distances must be >= 0; found {d.min():.3g}."
        )
    off = rows != cols
    return rows[off], cols[off], d[off], n


def _merge_duplicates(rows, cols, dist, n: int, k: int) -> _Graph:
    """Merge points joined by zero-distance edges; keep each group's nearest candidates."""
    from scipy.sparse.csgraph import connected_components

    zero = dist == 0
    if zero.any():
        z = sp.coo_matrix((np.ones(zero.sum()), (rows[zero], cols[zero])), shape=(n, n))
        _, lab = connected_components(z, directed=False)
        _, rep, inverse = np.unique(lab, return_index=True, return_inverse=True)
        order = np.argsort(rep)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        inverse, rep = rank[inverse], rep[order]
    else:
        inverse, rep = np.arange(n), np.arange(n)
    n_u = len(rep)
    _check_count(n_u, n, k)
    r, c = inverse[rows], inverse[cols]
    keep = r != c
    r, c, d = r[keep], c[keep], dist[keep]
    # one entry per (r, c): the smallest distance
    o = np.lexsort((d, c, r))
    r, c, d = r[o], c[o], d[o]
    first = np.ones(len(r), bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    r, c, d = r[first], c[first], d[first]
    o = np.lexsort((d, r))
    r, c, d = r[o], c[o], d[o]
    counts = np.bincount(r, minlength=n_u)
    short = np.flatnonzero(counts < k)
    if len(short):
        raise InvalidInputError(
            f"{len(short)} point(s) have fewer than n_neighbors={k} distinct neighbours in "
            f"knn_graph (e.g. point {int(short[0])} has {int(counts[short[0]])}), often "
            "because its candidate list is filled with its own duplicates; deduplicate the "
            "rows, pass X instead of knn_graph, or lower n_neighbors."
        )
    kk = min(int(counts.max()), _SEARCH_FACTOR * k)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(r)) - starts[r]
    sel = pos < kk
    idx = np.full((n_u, kk), -1, np.int64)
    dd = np.full((n_u, kk), np.inf)
    idx[r[sel], pos[sel]] = c[sel]
    dd[r[sel], pos[sel]] = d[sel]
    return _Graph(idx, dd, inverse.astype(np.int64), rep.astype(np.int64), n)


# ----------------------------------------------------------------------------------------
# graph
# ----------------------------------------------------------------------------------------
def alpha_decay_affinity(
    indices: np.ndarray,
    distances: np.ndarray,
    n_neighbors: int,
    *,
    decay: float = 40.0,
    thresh: float = 1e-4,
) -> sp.csr_matrix:
    """PHATE's alpha-decay kNN affinity, symmetrised, zero diagonal.

    Parameters
    ----------
    indices : ndarray of shape (n, k_cand), int
        Candidate neighbours of each point (itself excluded), ``-1`` for padding.
    distances : ndarray of shape (n, k_cand), float
        Their distances, ascending along each row (``inf`` for padding).
    n_neighbors : int
        The bandwidth of row i is ``distances[i, n_neighbors - 1]``, its distance to its
        ``n_neighbors``-th nearest other point; must be > 0.
    decay : float, default=40.0
    thresh : float, default=1e-4
        Affinities below it are dropped (graphtools' default).

    Returns
    -------
    W : scipy.sparse.csr_matrix of shape (n, n), float64
        ``(K + K^T) / 2`` with ``K_ij = exp(-(d_ij / bandwidth_i) ** decay)``, entries below
        ``thresh`` dropped before and after symmetrising, zero diagonal. Equal to the
        reference's ``graph.W`` to 1e-15 when the candidates include every point within
        ``bandwidth * (-log thresh) ** (1 / decay)``.

    References
    ----------
    K. R. Moon et al., Nat. Biotechnol. 37 (2019); graphtools ``kNNGraph``
    (KrishnaswamyLab/graphtools ``graphtools/graphs.py``), which the reference HeatGeo uses.
    """
    bw = distances[:, n_neighbors - 1]
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.exp(-np.power(distances / bw[:, None], decay))
    W = knn_adjacency(indices, w, (indices >= 0) & (w >= thresh))
    W.data[W.data < thresh] = 0.0  # graphtools drops them after symmetrising too
    W.eliminate_zeros()
    return W


def _components_error(W: sp.spmatrix, graph: _Graph, k: int) -> InvalidInputError | None:
    from scipy.sparse.csgraph import connected_components

    n_comp, lab = connected_components(W, directed=False)
    if n_comp == 1:
        return None
    row_lab = lab[graph.inverse]
    sizes = np.bincount(row_lab)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty_like(order)
    relabel[order] = np.arange(n_comp)
    sizes = sizes[order]
    shown = ", ".join(str(int(s)) for s in sizes[:10]) + (", ..." if n_comp > 10 else "")
    err = InvalidInputError(
        f"the kNN graph (n_neighbors={k}) has {n_comp} disconnected components of sizes "
        f"[{shown}] rows (largest first); heat cannot flow between components, so every "
        "distance across them would be the same ceiling. Raise n_neighbors, or embed each "
        "component separately (this error's component_labels gives each row's component)."
    )
    err.component_sizes = sizes.tolist()
    err.component_labels = relabel[row_lab]
    return err


def _hop_distances(W: sp.spmatrix, source: int) -> np.ndarray:
    from scipy.sparse.csgraph import shortest_path

    return shortest_path(W, unweighted=True, directed=False, indices=[source])[0]


def _landmark_graph(W: sp.csr_matrix, m: int, rng: np.random.Generator):
    """Coarsen W onto m random landmarks by hop-Voronoi cells: (W_c, landmarks, labels)."""
    from scipy.sparse.csgraph import dijkstra

    n = W.shape[0]
    lm = np.sort(rng.choice(n, size=m, replace=False))
    hops = W.copy()
    hops.data = np.ones_like(hops.data)
    _, _, src = dijkstra(hops, directed=False, indices=lm, min_only=True,
                         return_predecessors=True)
    pos = np.full(n, -1, np.int64)
    pos[lm] = np.arange(m)
    labels = pos[src]
    A = sp.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, m))
    Wc = (A.T @ W @ A).tocsr()
    Wc.setdiag(0.0)
    Wc.eliminate_zeros()
    return Wc, lm, labels, A


# ----------------------------------------------------------------------------------------
# heat kernel (pure kernels)
# ----------------------------------------------------------------------------------------
# Kernels take either scipy/numpy operands (CPU: scipy's sparse products are far faster than
# torch's CPU sparse kernels) or torch tensors (an accelerator); they only use ``@``, ``*=``,
# ``-=`` and ``+=``, which both support.
def _use_torch(device: str) -> bool:
    """Torch tensors on accelerators; scipy/numpy on the CPU."""
    return device != "cpu"


def _sparse_operator(M: sp.spmatrix, device: str):
    """``M`` as scipy CSR on the CPU, else as a torch sparse CSR tensor on ``device``."""
    M = sp.csr_matrix(M, dtype=np.float64)
    if not _use_torch(device):
        return M
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(
            torch.from_numpy(M.indptr.astype(np.int64)),
            torch.from_numpy(M.indices.astype(np.int64)),
            torch.from_numpy(M.data),
            size=M.shape, dtype=torch.float64, device=device, check_invariants=False,
        )


def _columns(n: int, cols: list[int] | None, device: str):
    """Identity (cols=None) or unit columns, on the operator's side (numpy or torch)."""
    if not _use_torch(device):
        if cols is None:
            return np.eye(n)
        V = np.zeros((n, len(cols)))
    else:
        import torch

        if cols is None:
            return torch.eye(n, dtype=torch.float64, device=device)
        V = torch.zeros(n, len(cols), dtype=torch.float64, device=device)
    for j, c in enumerate(cols):
        V[c, j] = 1.0
    return V


def _as_torch(X, device: str):
    import torch

    return torch.from_numpy(X) if isinstance(X, np.ndarray) else X.to(device)


def _chebyshev_coefficients(t: float, lambda_max: float, order: int) -> np.ndarray:
    from scipy.special import ive

    z = t * lambda_max / 2.0
    k = np.arange(order + 1)
    c = 2.0 * ive(k, z) * (-1.0) ** k
    c[0] *= 0.5
    return c


def chebyshev_order(t: float, lambda_max: float, tol: float = CHEBYSHEV_TOL) -> tuple[int, float]:
    """Smallest Chebyshev order whose tail bounds every heat entry's error by ``tol``.

    Parameters
    ----------
    t : float
        Diffusion time, > 0.
    lambda_max : float
        Upper end of the expansion interval ``[0, lambda_max]``.
    tol : float, default=1e-15

    Returns
    -------
    order : int
        The smallest ``K >= 1`` with ``2 * sum_{k > K} ive(k, z) <= tol``,
        ``z = t * lambda_max / 2``. Since ``ive(k, z) ~ exp(-k^2 / 2z) / sqrt(2 pi z)``, it
        grows like ``sqrt(2 z ln(1 / tol))`` for large ``z``: below the rule of thumb
        ``order >= z``, which over-resolves the fast-decaying part of ``exp(-t lambda)``.
        It always exceeds the hop distance of every pair whose heat value is above ``tol``
        (a degree-K polynomial is exactly 0 beyond K hops).
    bound : float
        That tail sum: a bound on ``max |H_cheb - exp(-t L)|`` over all entries, since
        ``|T_k(x)| <= 1`` on the spectrum.
    """
    from scipy.special import ive

    z = t * lambda_max / 2.0
    kmax = int(z + 40.0 * np.sqrt(z + 1.0) + 60)
    coef = 2.0 * ive(np.arange(kmax + 2), z)
    tail = np.cumsum(coef[::-1])[::-1]  # tail[j] = sum_{k >= j}
    after = np.append(tail[1:], 0.0)  # after[K] = sum_{k > K}
    ok = np.flatnonzero(after[1:] <= tol) + 1
    K = int(ok[0]) if len(ok) else kmax
    return K, float(after[K])


def _tail_bound(t: float, lambda_max: float, order: int) -> float:
    from scipy.special import ive

    z = t * lambda_max / 2.0
    k = np.arange(order + 1, order + int(z + 40.0 * np.sqrt(z + 1.0) + 60))
    return float(2.0 * ive(k, z).sum())


def chebyshev_heat_kernel(L, t: float, order: int, lambda_max: float, V):
    """``exp(-t L) @ V`` by a Chebyshev expansion of order ``order`` on ``[0, lambda_max]``.

    Parameters
    ----------
    L : scipy sparse matrix or torch.Tensor of shape (n, n), float64
        Symmetric Laplacian with spectrum in ``[0, lambda_max]`` (torch: sparse CSR or dense).
    t : float
        Diffusion time, > 0.
    order : int
        Polynomial degree K >= 1.
    lambda_max : float
    V : ndarray or torch.Tensor of shape (n, c), float64
        Same library as ``L`` (numpy with scipy, torch with torch); the identity gives the
        dense kernel.

    Returns
    -------
    ndarray or torch.Tensor of shape (n, c), float64

    Notes
    -----
    ``exp(-t lambda) = ive(0, z) + 2 sum_{k=1}^K (-1)^k ive(k, z) T_k(x)``,
    ``z = t lambda_max / 2``, ``x = 2 lambda / lambda_max - 1``, by the recurrence
    ``T_{k+1} = 2 x T_k - T_{k-1}``: the expansion pygsp's ``compute_cheby_coeff`` /
    ``cheby_op`` evaluate for the reference (``heatgeo/heat_filter.py``).
    """
    c = _chebyshev_coefficients(t, lambda_max, order)
    a = 2.0 / lambda_max
    t_prev = V
    t_cur = L @ V
    t_cur *= a
    t_cur -= V
    out = c[0] * V + c[1] * t_cur
    for k in range(2, order + 1):
        t_next = L @ t_cur
        t_next *= 2.0 * a
        t_next -= t_cur
        t_next -= t_cur
        t_next -= t_prev
        out += c[k] * t_next
        t_prev, t_cur = t_cur, t_next
    return out


def exact_heat_kernel(L_dense):
    """``exp(-t L)`` by one symmetric eigendecomposition; returns a function of ``t``.

    Parameters
    ----------
    L_dense : torch.Tensor of shape (n, n), float64, dense, symmetric

    Returns
    -------
    callable
        ``heat(t) -> torch.Tensor (n, n)``, ``U diag(exp(-t w)) U^T`` from one
        ``torch.linalg.eigh``. Absolute error about 1e-15 per entry.
    """
    import torch

    w, U = torch.linalg.eigh(L_dense)

    def heat(t: float):
        return (U * torch.exp(-t * w)) @ U.T

    return heat


def heat_geodesic_distances(H, t: float, sigma: float = 1.0, floor: float = LOG_FLOOR):
    """Heat-geodesic distances from a heat kernel (the reference's formula).

    Parameters
    ----------
    H : torch.Tensor of shape (n, n), float64
        Heat kernel ``exp(-t L)``; negative round-off is clipped to 0.
    t : float
    sigma : float, default=1.0
        Harnack regularisation (reference ``harnack_regul``).
    floor : float, default=1e-16
        Added inside the logarithms, as the reference does.

    Returns
    -------
    torch.Tensor of shape (n, n), float64
        ``sqrt(max(0, -4t log(H_ij + floor) + sigma 4t log((H_ii + H_jj) / 2 + floor)))``;
        not symmetrised, diagonal as computed (0 when ``sigma == 1``).

    References
    ----------
    Huguet et al. (2023), eq. 6 and the Harnack regularisation (section 4.1);
    KrishnaswamyLab/HeatGeo ``heatgeo/embedding.py`` (``metric_computation``).
    """
    import torch

    H = torch.clamp(H, min=0.0)
    d2 = -4.0 * t * torch.log(H + floor)
    if sigma:
        diag = torch.diagonal(H)
        d2 += sigma * 4.0 * t * torch.log(0.5 * (diag[:, None] + diag[None, :]) + floor)
    return torch.sqrt(torch.clamp(d2, min=0.0))


def _lanczos_lambda_max(L, n: int, steps: int, rng: np.random.Generator, device: str) -> float:
    """Largest eigenvalue of symmetric ``L`` plus its Ritz residual, by Lanczos (numpy)."""
    if not _use_torch(device):
        def matvec(x):
            return L @ x
    else:
        import torch

        def matvec(x):
            return (L @ torch.from_numpy(x).to(device)[:, None])[:, 0].cpu().numpy()

    steps = min(steps, n)
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    Q = np.zeros((steps, n))
    alpha, beta = [], []
    b = 0.0
    for j in range(steps):
        Q[j] = v
        w = matvec(v)
        a = float(w @ v)
        w = w - a * v - (b * Q[j - 1] if j else 0.0)
        w -= Q[: j + 1].T @ (Q[: j + 1] @ w)  # full reorthogonalisation
        b = float(np.linalg.norm(w))
        alpha.append(a)
        beta.append(b)
        if b < 1e-12:
            break
        v = w / b
    T = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
    theta, S = np.linalg.eigh(T)
    return float(theta[-1] + abs(beta[-1] * S[-1, -1]))


# ----------------------------------------------------------------------------------------
# MDS (pure kernels)
# ----------------------------------------------------------------------------------------
def _classical_mds(D: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Top eigenvectors of ``-1/2 J D^2 J`` scaled by sqrt(eigenvalue) (ARPACK), float64.

    Negative eigenvalues (a non-Euclidean D) give zero coordinates on that axis.
    """
    from scipy.sparse.linalg import eigsh

    n = D.shape[0]
    B = D * D
    rm = B.mean(axis=1)
    B -= rm[:, None]
    B -= rm[None, :]
    B += rm.mean()
    B *= -0.5
    if n <= n_components + 2:
        w, U = np.linalg.eigh(B)
        w, U = w[::-1][:n_components], U[:, ::-1][:, :n_components]
    else:
        w, U = eigsh(B, k=n_components, which="LA", v0=rng.standard_normal(n), tol=1e-8)
        o = np.argsort(-w)
        w, U = w[o], U[:, o]
    return U * np.sqrt(np.clip(w, 0.0, None))


def _smacof_step(D, Y, chunk: int):
    """One Guttman transform of unweighted SMACOF, ``Y <- B(Y) Y / n``.

    Returns the new ``Y`` and the raw stress ``sum_ij (E_ij - D_ij)^2`` of the input ``Y``.
    numpy arrays are processed in blocks of ``chunk`` rows so the temporaries stay in
    cache and every operation is single-threaded (torch's CPU intra-op threads spin-wait
    on a busy 2-core machine: 36-60 ms against 5 ms per iteration at n = 1,000); torch
    tensors (an accelerator) in one block.
    """
    n, dim = Y.shape
    if isinstance(D, np.ndarray):
        out = np.empty_like(Y)
        stress = 0.0
        for s in range(0, n, chunk):
            yc = Y[s:s + chunk]
            E = np.subtract.outer(yc[:, 0], Y[:, 0])
            E *= E
            for j in range(1, dim):
                T = np.subtract.outer(yc[:, j], Y[:, j])
                T *= T
                E += T
            np.sqrt(E, out=E)
            Dc = D[s:s + chunk]
            T = E - Dc
            stress += float(np.einsum("ij,ij->", T, T))
            np.maximum(E, 1e-12, out=E)  # D_ii = 0, so R_ii = 0
            R = np.divide(Dc, E, out=E)
            out[s:s + chunk] = R.sum(axis=1)[:, None] * yc - R @ Y
        return out / n, stress
    import torch

    E = torch.cdist(Y, Y, compute_mode="donot_use_mm_for_euclid_dist")
    stress = float(torch.linalg.vector_norm(E - D)) ** 2
    E.clamp_(min=1e-12)
    R = torch.div(D, E, out=E)
    return (R.sum(dim=1, keepdim=True) * Y - R @ Y) / n, stress


def _principal_axes(Y: np.ndarray) -> np.ndarray:
    """Centre, rotate to principal axes, orient each axis to positive skewness."""
    Y = Y - Y.mean(axis=0)
    _, _, Vt = np.linalg.svd(Y, full_matrices=False)
    Y = Y @ Vt.T
    sign = np.sign((Y ** 3).sum(axis=0))
    sign[sign == 0] = 1.0
    return Y * sign


# ----------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------
def _far_pairs(W: sp.spmatrix, rng: np.random.Generator, n_sweeps: int = _N_SWEEPS):
    """Ends of long shortest paths (in hops): a double BFS sweep from node 0 and from
    ``n_sweeps - 1`` random nodes. Returns the distinct pairs, longest first, and the
    longest hop length."""
    n = W.shape[0]
    starts = [0] + rng.integers(0, n, size=n_sweeps - 1).tolist()
    found = {}
    for s in starts:
        a = int(np.argmax(_hop_distances(W, s)))
        h = _hop_distances(W, a)
        b = int(np.argmax(h))
        found[(min(a, b), max(a, b))] = int(h[b])
    pairs = sorted(found, key=lambda ab: -found[ab])
    return pairs, found[pairs[0]]


def _pair_ratio(L, lam: float, pairs: list[tuple[int, int]], t: float, device: str) -> float:
    """Smallest ``H_ab / ((H_aa + H_bb) / 2)`` over the pairs at time t (Chebyshev on
    the endpoints' columns)."""
    nodes = sorted({v for ab in pairs for v in ab})
    col = {v: j for j, v in enumerate(nodes)}
    K, _ = chebyshev_order(t, lam)
    Hc = chebyshev_heat_kernel(L, t, K, lam, _columns(L.shape[0], nodes, device))
    Hc = Hc if isinstance(Hc, np.ndarray) else Hc.cpu().numpy()
    ratios = []
    for a, b in pairs:
        hab = max(0.5 * (Hc[b, col[a]] + Hc[a, col[b]]), 0.0)
        ratios.append(hab / (0.5 * (Hc[a, col[a]] + Hc[b, col[b]])))
    return float(min(ratios))


def _auto_t(L, lam: float, pairs: list[tuple[int, int]], device: str) -> float:
    """t where the far-pair ratio reaches AUTO_T_RATIO: doubling bracket, log bisection."""
    lo_lim, hi_lim = _T_RANGE

    def reached(t: float) -> bool:
        return _pair_ratio(L, lam, pairs, t, device) >= AUTO_T_RATIO

    lo, hi = 1.0, 1.0
    if reached(1.0):
        while True:
            hi = lo
            lo /= 2.0
            if lo < lo_lim:
                return lo_lim
            if not reached(lo):
                break
    else:
        while not reached(hi):
            lo = hi
            hi *= 2.0
            if hi > hi_lim:
                return hi_lim
    for _ in range(7):  # bracket ratio 2 -> 2^(1/128): t within 0.6%
        mid = float(np.sqrt(lo * hi))
        if reached(mid):
            hi = mid
        else:
            lo = mid
    return float(np.sqrt(lo * hi))


def _chebyshev_cheaper(order: int, nnz: int, n: int) -> bool:
    """Cost model in dense flops: Chebyshev ``2 K nnz n`` at ~4x the cost per flop of
    BLAS-3 (sparse x dense products) against eigendecomposition + one product ``~6 n^3``."""
    return 8.0 * order * nnz * n < 6.0 * float(n) ** 3


def _lowest_eigenpairs(Ls: sp.csr_matrix, t: float, rng: np.random.Generator):
    """Lowest eigenpairs of L until ``exp(-t lambda_r) <= CHEBYSHEV_TOL``, or None.

    Shift-invert Lanczos (ARPACK) around -1e-3, doubling the count from 64 up to n / 4.
    """
    from scipy.sparse.linalg import eigsh

    n = Ls.shape[0]
    r = min(64, n // 4)
    while r >= 2:
        w, U = eigsh(Ls.tocsc(), k=r, sigma=-1e-3, which="LM", v0=rng.standard_normal(n))
        o = np.argsort(w)
        w, U = w[o], U[:, o]
        bound = float(np.exp(-t * w[-1]))
        if bound <= CHEBYSHEV_TOL:
            return w, U, bound
        if r >= n // 4:
            return None
        r = min(2 * r, n // 4)
    return None


def _heat_on_graph(Ls, Lop, t, lam, order, bound, kernel, device, rng):
    """Dense heat kernel of the diffusion graph with the requested or cheapest method.

    Returns (H torch (n, n), kernel used, order or None, error bound or None, n_eigenpairs).
    """
    import torch

    n = Ls.shape[0]
    if kernel == "auto":
        lam_cut = -np.log(CHEBYSHEV_TOL) / t  # eigenvalues above it do not matter
        if lam_cut < 0.5 * lam:  # large t: a few eigenpairs carry the kernel
            pairs = _lowest_eigenpairs(Ls, t, rng)
            if pairs is not None:
                w, U, eb = pairs
                Ut = torch.from_numpy(np.ascontiguousarray(U)).to(device)
                wt = torch.from_numpy(w).to(device)
                return (Ut * torch.exp(-t * wt)) @ Ut.T, "eigsh", None, eb, len(w)
        kernel = "chebyshev" if _chebyshev_cheaper(order, Ls.nnz, n) else "eigh"
    if kernel == "chebyshev":
        H = _as_torch(chebyshev_heat_kernel(Lop, t, order, lam, _columns(n, None, device)),
                      device)
        return 0.5 * (H + H.T), "chebyshev", order, bound, None
    H = exact_heat_kernel(torch.from_numpy(Ls.toarray()).to(device))(t)
    return H, "eigh", None, None, n


def _fit_core(graph: _Graph, p: dict[str, Any], device: str, device_reason: str,
              progress: Progress | None, start: float):
    import torch

    def report_progress(f: float, msg: str) -> None:
        if progress is not None:
            progress(f, msg)

    timings: dict[str, float] = {}
    t0 = start
    rng = np.random.default_rng(p["random_state"])
    k = p["n_neighbors"]
    n_u = len(graph.representative)

    report_progress(0.02, "graph: alpha-decay kNN affinity")
    W = alpha_decay_affinity(graph.indices, graph.distances, k, decay=p["decay"])
    err = _components_error(W, graph, k)
    if err is not None:
        raise err
    method = p["method"]
    if method == "auto":
        method = "landmark" if n_u > p["n_landmarks"] else "dense"
    elif method in ("chebyshev", "exact") and n_u > DENSE_MAX_POINTS:
        raise InvalidParameterError(
            f"method={method!r} builds dense {n_u} x {n_u} matrices (limit "
            f"{DENSE_MAX_POINTS} distinct points); use method='landmark' or 'auto'."
        )
    landmarks = labels = A = None
    if method == "landmark":
        m = min(p["n_landmarks"], n_u)
        report_progress(0.10, f"graph: coarsening to {m} landmarks")
        Wd, landmarks, labels, A = _landmark_graph(W, m, rng)
    else:
        Wd = W
    timings["graph"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    report_progress(0.25, "kernel: spectrum bound and diffusion time")
    n_d = Wd.shape[0]
    Ls = normalized_laplacian(Wd)
    Lop = _sparse_operator(Ls, device)
    lam = min(2.0, 1.01 * _lanczos_lambda_max(Lop, n_d, 60, rng, device))
    pairs, diam = _far_pairs(Wd, rng)
    t_auto = p["t"] == "auto"
    t = _auto_t(Lop, lam, pairs, device) if t_auto else p["t"]
    if p["order"] == "auto":
        order, bound = chebyshev_order(t, lam)
    else:
        order, bound = p["order"], _tail_bound(t, lam, p["order"])
    if method == "exact":
        kernel = "eigh"
    elif method == "chebyshev" or p["order"] != "auto":
        kernel = "chebyshev"
    else:
        kernel = "auto"
    report_progress(0.35, f"kernel: heat kernel at t={t:.3g} on {n_d} nodes")
    H, kernel, order, bound, n_pairs = _heat_on_graph(Ls, Lop, t, lam, order, bound, kernel,
                                                      device, rng)
    hd = torch.diagonal(H)
    low = int((H < SATURATION_LEVEL).sum()) - int((hd < SATURATION_LEVEL).sum())
    saturated = low / (n_d * (n_d - 1)) if n_d > 1 else 0.0
    far_ratio = min(float(torch.clamp(H[a, b], min=0.0) / (0.5 * (hd[a] + hd[b])))
                    for a, b in pairs)
    D = heat_geodesic_distances(H, t, p["sigma"])
    del H, hd
    D = 0.5 * (D + D.T)
    D.fill_diagonal_(0.0)
    distances = D.cpu().numpy()
    timings["kernel"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    report_progress(0.55, "MDS: classical start")
    Yc = _classical_mds(distances, p["n_components"], rng)
    if not _use_torch(device):
        Dm, Y = distances, Yc
    else:
        Dm, Y = D, torch.from_numpy(Yc).to(device)
    del D
    chunk = max(1, 65536 // n_d)
    d_norm2 = float((distances * distances).sum())
    stress = prev = None
    n_iter = 0
    if d_norm2 > 0:
        for n_iter in range(1, p["max_iter"] + 1):
            Y, raw = _smacof_step(Dm, Y, chunk)
            stress = np.sqrt(raw / d_norm2)  # of the iterate before this step
            if prev is not None and prev - stress <= 1e-3 * prev:
                break
            prev = stress
            if n_iter % 10 == 0:
                report_progress(0.55 + 0.35 * n_iter / p["max_iter"],
                                f"MDS: stress majorisation, iteration {n_iter}, "
                                f"stress {stress:.4f}")
        stress = float(np.sqrt(_smacof_step(Dm, Y, chunk)[1] / d_norm2))
    else:
        stress = 0.0
    Yc = Y if isinstance(Y, np.ndarray) else Y.double().cpu().numpy()
    del Dm
    timings["mds"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    report_progress(0.92, "placing points")
    if method == "landmark":
        P = (W + sp.identity(n_u, format="csr")) @ A
        P = sp.diags(1.0 / np.asarray(P.sum(axis=1)).ravel()) @ P
        Y_u = P @ Yc
    else:
        Y_u = Yc
    emb = _principal_axes(Y_u)[graph.inverse]
    timings["place"] = time.perf_counter() - t3
    report_progress(1.0, "heat geodesic embedding done")

    report = HeatGeodesicReport(
        method=method if method != "dense" else (
            "chebyshev" if kernel == "chebyshev" else "exact"),
        kernel=kernel, t=float(t), t_auto=t_auto, order=order, kernel_error_bound=bound,
        n_eigenpairs=n_pairs, lambda_max=float(lam),
        far_pair_ratio=far_ratio, saturated_fraction=saturated, n_samples=graph.n_samples,
        n_unique=n_u, n_duplicates=graph.n_samples - n_u, n_neighbors=k,
        n_diffusion_nodes=n_d, diameter_hops=diam, sigma=p["sigma"], stress=stress,
        n_iter=n_iter, device=device, device_reason=device_reason,
        timings={s: round(v, 4) for s, v in timings.items()},
    )
    extras = {
        "distances": distances,
        "landmarks": None if landmarks is None else graph.representative[landmarks],
        "landmark_labels": None if labels is None else labels[graph.inverse],
    }
    return emb, report, extras
