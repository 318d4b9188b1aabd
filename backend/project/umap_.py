"""UMAP on the shared kNN graph: umap-learn's layout optimisation in torch.

The graph is umap-learn's fuzzy simplicial set on our kNN graph (its
``fuzzy_simplicial_set``, vectorised in numpy and scipy: :func:`smooth_knn_dist`,
:func:`membership_strengths`, :func:`fuzzy_graph`), ``a`` and ``b`` come from its
``find_ab_params(1, min_dist)`` (:func:`find_ab_params`), edges are sampled
``epochs_per_sample`` as umap-learn does, with 5 negative samples per positive one, a
linearly decaying learning rate from 1 and gradients clipped at 4. What differs: one
epoch updates all its sampled edges at once from the layout at the start of the epoch
(a batched, Hogwild-free version of umap-learn's sequential loop, the way GPU
implementations do it), which is what makes it fast on the CPU and runs it on CUDA; and
the negative samples are slices of one seeded pool of random rows
(:func:`optimize_layout`). The torch engine never imports umap-learn (no numba compile).

Kernels (:func:`edge_steps`: one epoch's steps on a slice of edges, read only;
:func:`apply_steps`; :func:`layout_epoch`, both on all edges) and a driver
(:func:`optimize_layout`) that owns the loop, the worker threads, progress and
cancellation (checked between groups of edge parts, so a cancel is seen within a
second). The spectral start is our own, cancellable too
(:func:`spectral_init`): the leading eigenvectors of ``I + D^-1/2 W D^-1/2`` (the
smallest of umap-learn's normalised Laplacian) by ARPACK through a linear operator
whose every product checks for a cancel, with bounded iterations; a disconnected graph,
a solver that does not converge in its bound, or more than :data:`SPECTRAL_MAX_ROWS`
rows start from PCA instead (umap-learn's ``init="pca"``), and the report says which.

``engine="umap-learn"`` runs umap-learn itself (the reference; not cancellable inside
its spectral start), ``engine="cuml"`` cuML's UMAP when importable on CUDA.
"""

from __future__ import annotations

import io
import math
import re
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from backend.errors import InvalidInputError, InvalidParameterError
from backend.threads import cpu_threads

__all__ = [
    "umap_embedding", "umap_fit", "UmapReport", "with_self", "fuzzy_graph", "layout_epoch",
    "optimize_layout", "spectral_init", "pca_init", "default_epochs", "UMAP_ENGINES",
    "SPECTRAL_MAX_ROWS", "layout_threads", "edge_steps", "apply_steps", "smooth_knn_dist",
    "membership_strengths", "find_ab_params",
]

UMAP_ENGINES = ("auto", "torch", "umap-learn", "cuml")
#: Above this many rows the start is PCA (the spectral solver's cost grows too fast).
SPECTRAL_MAX_ROWS = 250_000
#: ARPACK restarts allowed to the spectral start before it falls back to PCA.
SPECTRAL_MAXITER = 300
#: Edges per group of parts: the driver checks for a cancel between groups.
EDGE_CHUNK = 4_000_000
#: Edges per part (the unit of work of one layout thread).
PART_EDGES = 1 << 17
#: The negative-sample pool holds this many times :data:`PART_EDGES` rows (see
#: :func:`optimize_layout`).
NEGATIVE_POOL = 8
NEGATIVE_SAMPLE_RATE = 5
CLIP = 4.0

Progress = Callable[[float, str], None]
_TQDM = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class UmapReport:
    """How a UMAP layout was made (for the artifact's sidecar).

    Attributes
    ----------
    engine : str
        ``"torch"``, ``"umap-learn"`` or ``"cuml"``.
    device : str
    init : str
        ``"spectral"`` or ``"pca"``, with the reason for PCA in ``init_note``.
    init_note : str or None
    n_epochs : int
    n_edges : int
        Edges of the fuzzy graph after umap-learn's pruning of weights below
        ``max / n_epochs``.
    a, b : float
        The curve parameters from ``find_ab_params(1.0, min_dist)``.
    seconds : dict
        Wall time of each phase (graph, init, layout).
    note : str or None
        E.g. that the data are 2-dimensional.
    """

    engine: str
    device: str
    init: str
    init_note: str | None
    n_epochs: int
    n_edges: int
    a: float
    b: float
    seconds: dict
    note: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


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


def default_epochs(n_samples: int) -> int:
    """umap-learn's default: 500 epochs up to 10,000 rows, 200 above."""
    return 500 if n_samples <= 10_000 else 200


# ----------------------------------------------------------------------------------------
# graph
# ----------------------------------------------------------------------------------------
def smooth_knn_dist(dist: np.ndarray, k: float, n_iter: int = 64,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """umap-learn's ``smooth_knn_dist`` (``local_connectivity=1``, ``bandwidth=1``),
    vectorised over rows.

    For each row, ``rho`` is the first non-zero distance and ``sigma`` is found by
    bisection (float32, as umap-learn) such that ``sum_j exp(-(d_j - rho) / sigma)``
    over the neighbours after column 0 is within 1e-5 of ``log2(k)``; ``sigma`` is then
    floored at 1e-3 times the row's mean distance (the mean of all distances where
    ``rho`` is 0).

    Parameters
    ----------
    dist : ndarray of shape (n_samples, n_neighbors), float32
        Distances with the row itself in column 0 (:func:`with_self`).
    k : float
        umap-learn's ``n_neighbors`` (``n_neighbors`` here).
    n_iter : int, default=64
        Bisection steps at most.

    Returns
    -------
    sigma, rho : ndarray of shape (n_samples,), float32

    References
    ----------
    lmcinnes/umap 0.5.12, ``umap/umap_.py``: ``smooth_knn_dist``, ``SMOOTH_K_TOLERANCE``,
    ``MIN_K_DIST_SCALE``.
    """
    dist = np.asarray(dist, np.float32)
    n = len(dist)
    target = np.float32(np.log2(k))
    nonzero = dist > 0
    first = np.argmax(nonzero, axis=1)
    rho = np.where(nonzero.any(axis=1), dist[np.arange(n), first], 0).astype(np.float32)
    excess = dist[:, 1:] - rho[:, None]
    big = np.finfo(np.float32).max
    lo, hi = np.zeros(n, np.float32), np.full(n, big, np.float32)
    mid = np.ones(n, np.float32)
    rows = np.arange(n)
    for _ in range(n_iter):
        e = excess[rows]
        m = mid[rows]
        with np.errstate(over="ignore", under="ignore"):
            terms = np.where(e > 0, np.exp(-(e / m[:, None])), np.float32(1.0))
        psum = terms.sum(axis=1, dtype=np.float32)
        going = np.abs(psum - target) >= 1e-5
        rows, m, psum = rows[going], m[going], psum[going]
        if not len(rows):
            break
        over = psum > target
        h = np.where(over, m, hi[rows])
        lw = np.where(over, lo[rows], m)
        hi[rows], lo[rows] = h, lw
        mid[rows] = np.where(~over & (h >= big), m * np.float32(2.0),
                             (lw + h) / np.float32(2.0))
    floor = np.where(rho > 0, dist.mean(axis=1), dist.mean()).astype(np.float32) * 1e-3
    return np.maximum(mid, floor).astype(np.float32), rho


def membership_strengths(idx: np.ndarray, dist: np.ndarray, sigma: np.ndarray,
                         rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """umap-learn's ``compute_membership_strengths``: the directed fuzzy edge weights.

    Parameters
    ----------
    idx, dist : ndarray of shape (n_samples, n_neighbors)
        With the row itself in column 0 (:func:`with_self`); ``-1`` marks a missing
        neighbour (skipped).
    sigma, rho : ndarray of shape (n_samples,), float32
        From :func:`smooth_knn_dist`.

    Returns
    -------
    rows, cols : ndarray of shape (n_edges,), int64
    vals : ndarray of shape (n_edges,), float32
        ``exp(-(d - rho) / sigma)``; 1 where ``d <= rho`` or ``sigma == 0``; 0 for the
        row itself.
    """
    n, k = idx.shape
    excess = np.asarray(dist, np.float32) - rho[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        vals = np.exp(-(excess / sigma[:, None]))
    vals = np.where((excess <= 0) | (sigma[:, None] == 0), np.float32(1.0), vals)
    rows = np.repeat(np.arange(n, dtype=np.int64), k).reshape(n, k)
    vals[idx == rows] = 0.0
    ok = idx != -1
    return rows[ok], np.asarray(idx, np.int64)[ok], vals[ok].astype(np.float32)


def fuzzy_graph(knn: tuple[np.ndarray, np.ndarray], *, metric: str = "euclidean",
                random_state: int | None = 42, n_epochs: int | None = None):
    """umap-learn's fuzzy simplicial set of a kNN graph, pruned as umap-learn prunes it.

    The same computation as ``umap.umap_.fuzzy_simplicial_set`` with the default
    ``set_op_mix_ratio=1`` (the fuzzy union ``A + A^T - A * A^T`` of the directed
    memberships of :func:`membership_strengths`), in numpy and scipy: no numba compile
    (3.8 s on an idle 2-core machine, 10 s at load 4).

    Parameters
    ----------
    knn : (indices, distances), each of shape (n_samples, k)
        Without the rows themselves; umap-learn's ``n_neighbors`` is ``k + 1``.
    metric : str, default="euclidean"
        The graph's metric (the distances are given: not used).
    random_state : int or None, default=42
        Not used (kept for the call signature; the construction is deterministic).
    n_epochs : int or None
        Weights below ``max / n_epochs`` are dropped (umap-learn's rule).

    Returns
    -------
    scipy.sparse.coo_matrix of shape (n_samples, n_samples), float32
        Symmetric membership strengths.
    """
    import scipy.sparse as sp

    idx, dist = with_self(*knn)
    n = len(idx)
    sigma, rho = smooth_knn_dist(dist, float(idx.shape[1]))
    rows, cols, vals = membership_strengths(idx, dist, sigma, rho)
    A = sp.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()
    A.eliminate_zeros()
    At = A.T.tocsr()
    graph = (A + At - A.multiply(At)).tocoo()
    graph.sum_duplicates()
    graph.eliminate_zeros()
    epochs = n_epochs or default_epochs(n)
    graph.data[graph.data < graph.data.max() / float(epochs)] = 0.0
    graph.eliminate_zeros()
    return graph


def find_ab_params(spread: float, min_dist: float) -> tuple[float, float]:
    """umap-learn's ``find_ab_params``: ``a, b`` of ``1 / (1 + a x^(2b))`` fitted by
    least squares (``scipy.optimize.curve_fit``) to 1 below ``min_dist`` and
    ``exp(-(x - min_dist) / spread)`` above, on 300 points of ``[0, 3 spread]``.

    Returns
    -------
    a, b : float
    """
    from scipy.optimize import curve_fit

    def curve(x, a, b):
        return 1.0 / (1.0 + a * x ** (2 * b))

    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    params, _ = curve_fit(curve, xv, yv)
    return float(params[0]), float(params[1])


def epochs_per_sample(weights: np.ndarray, n_epochs: int) -> np.ndarray:
    """umap-learn's ``make_epochs_per_sample``: an edge of weight w is sampled every
    ``max(w) / w`` epochs (-1: never)."""
    out = -np.ones(len(weights), np.float64)
    n = n_epochs * (weights / weights.max())
    out[n > 0] = float(n_epochs) / n[n > 0]
    return out


# ----------------------------------------------------------------------------------------
# initialisation
# ----------------------------------------------------------------------------------------
def _noisy_scale(Y: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """umap-learn's ``noisy_scale_coords`` (max |coord| 10, noise 1e-4), then its rescale
    of every axis to [0, 10]."""
    Y = (Y * (10.0 / max(np.abs(Y).max(), 1e-12))).astype(np.float32)
    Y = Y + rng.normal(scale=1e-4, size=Y.shape).astype(np.float32)
    lo, hi = Y.min(0), Y.max(0)
    return (10.0 * (Y - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)


def spectral_init(graph, n_components: int, *, random_state: int | None = 0,
                  progress: Progress | None = None,
                  maxiter: int = SPECTRAL_MAXITER) -> np.ndarray | None:
    """The spectral start of umap-learn, with bounded work and a cancel check per product.

    The ``n_components`` eigenvectors after the trivial one of the normalised Laplacian
    ``L = I - D^-1/2 W D^-1/2`` with the smallest eigenvalues, found as the largest of
    ``2I - L`` (ARPACK ``which="LA"``, tol 1e-4, umap-learn's ``ncv``; the start vector
    is seeded noise, as umap-learn's all-ones start is itself an eigenvector of a regular
    graph).

    Parameters
    ----------
    graph : scipy.sparse matrix of shape (n, n)
        Symmetric, non-negative, connected.
    n_components : int
    random_state : int or None, default=0
        Seed of ARPACK's start vector.
    progress : callable(fraction, message), optional
        Called every 50 products; an exception it raises stops the solver.
    maxiter : int
        ARPACK restarts before giving up.

    Returns
    -------
    ndarray of shape (n, n_components), float64, or None
        None when the solver did not converge within ``maxiter``.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    n = graph.shape[0]
    W = sp.csr_matrix(graph, dtype=np.float64)
    deg = np.asarray(W.sum(axis=0)).ravel()
    inv = 1.0 / np.sqrt(np.maximum(deg, 1e-300))
    A = sp.diags(inv) @ W @ sp.diags(inv)
    A = A.tocsr()
    count = [0]

    def matvec(v):
        count[0] += 1
        if progress is not None and count[0] % 50 == 0:
            progress(0.0, f"UMAP: spectral start ({count[0]} products)")
        v = np.asarray(v).reshape(-1)
        return v + A @ v

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    k = n_components + 1
    ncv = min(n - 1, max(2 * k + 1, int(np.sqrt(n))))
    try:
        vals, vecs = eigsh(op, k, which="LA", ncv=ncv, tol=1e-4,
                           v0=np.random.default_rng(random_state).normal(size=n),
                           maxiter=maxiter)
    except ArpackNoConvergence:
        return None
    order = np.argsort(-vals)[1:k]
    return vecs[:, order]


def pca_init(X: np.ndarray, n_components: int, *, device: str | None = None) -> np.ndarray:
    """umap-learn's ``init="pca"`` start (before scaling): the first principal components."""
    from backend.project.pca import PCA

    return PCA(n_components, device=device).fit_transform(X).astype(np.float64)


def _initial_layout(X, graph, n_components, rng, device, progress, init):
    """(Y0 float32 in [0, 10], init name, note)."""
    from scipy.sparse.csgraph import connected_components

    n = graph.shape[0]
    note = None
    Y = None
    if init in ("auto", "spectral"):
        n_comp, _ = connected_components(graph, directed=False)
        if n_comp > 1:
            note = (f"the fuzzy graph has {n_comp} connected components: started from PCA "
                    "(umap-learn lays components out one by one)")
        elif n > SPECTRAL_MAX_ROWS and init == "auto":
            note = f"{n:,} rows > {SPECTRAL_MAX_ROWS:,}: started from PCA"
        elif n <= n_components + 2:
            note = "too few rows for a spectral start: started from PCA"
        else:
            Y = spectral_init(graph, n_components, random_state=int(rng.randint(2**31)),
                              progress=progress)
            if Y is None:
                note = (f"the spectral solver did not converge in {SPECTRAL_MAXITER} "
                        "iterations: started from PCA")
    if Y is not None:
        return _noisy_scale(Y, rng), "spectral", None
    if X is None:
        Y = rng.uniform(-10, 10, size=(n, n_components))
        return _noisy_scale(Y, rng), "random", (note or "") + " (no vectors: random start)"
    if np.asarray(X).shape[1] < n_components:
        Xp = np.hstack([X, rng.normal(scale=1e-4, size=(n, n_components - X.shape[1]))])
    else:
        Xp = X
    return _noisy_scale(pca_init(Xp, n_components, device=device), rng), "pca", note


# ----------------------------------------------------------------------------------------
# layout: kernel and driver
# ----------------------------------------------------------------------------------------
def _power(x, p: float):
    """``x ** p`` for ``x >= 0`` as ``exp(p log x)`` (0 at 0): a new tensor.

    Measured on the shared 2-core machine (one thread, 3.5M float32): 7.5 ms against
    9-13 ms for ``torch.pow`` with a float exponent.
    """
    return x.log().mul_(p).exp_()


def _squared_norm(diff):
    """``sum_c diff[c] ** 2`` of a list of per-component tensors: a new tensor."""
    d2 = diff[0] * diff[0]
    for d in diff[1:]:
        d2.addcmul_(d, d)
    return d2


def _attraction(diff, a: float, b: float, alpha: float) -> list:
    """Clipped attractive steps of positive edges (umap-learn's rule), per component.

    Parameters
    ----------
    diff : list of torch.Tensor of shape (n_edges,), float32
        ``y_head - y_tail`` for each map component (overwritten).
    a, b, alpha : float

    Returns
    -------
    list of torch.Tensor of shape (n_edges,)
        ``alpha * clip(-2ab d^(2(b-1)) / (1 + a d^(2b)) * diff, -4, 4)``; 0 where the
        ends coincide (``d2`` is floored at 1e-12 only to keep the coefficient finite;
        the difference is 0 there).
    """
    d2 = _squared_norm(diff).clamp_(min=1e-12)
    pb = _power(d2, b)
    coef = pb.mul(-2.0 * a * b).div_(d2).div_(pb.mul_(a).add_(1.0))
    return [d.mul_(coef).clamp_(-CLIP, CLIP).mul_(alpha) for d in diff]


def _repulsion(diff, due, a: float, b: float, gamma: float, alpha: float) -> list:
    """Summed clipped repulsive steps of the negative samples of each edge, per component.

    Parameters
    ----------
    diff : list of torch.Tensor of shape (m, n_edges), float32
        ``y_head - y_random`` for up to ``m`` negative samples of each edge (overwritten).
    due : torch.Tensor of shape (n_edges,), float
        Negative samples due for each edge; rows at or past it in its column are ignored
        (those past ``m`` are the caller's).
    a, b, gamma, alpha : float

    Returns
    -------
    list of torch.Tensor of shape (n_edges,)
        ``alpha * sum_s clip(2 gamma b / ((0.001 + d2)(1 + a d2^b)) * diff_s, -4, 4)``
        over the due samples ``s`` (umap-learn's rule; a sample at distance 0 adds 0).
    """
    m = diff[0].shape[0]
    d2 = _squared_norm(diff)
    coef = _power(d2, b).mul_(a).add_(1.0).mul_(d2.add_(0.001)).reciprocal_()
    coef.mul_(2.0 * gamma * b)
    # rows below the fewest due samples are all due: only the last rows need a mask
    for r in range(int(due.min()), m):
        coef[r].masked_fill_(due <= r, 0.0)
    return [d.mul_(coef).clamp_(-CLIP, CLIP).sum(0).mul_(alpha) for d in diff]


def _negative_rows(need: int, u: float, pool, generator, n_vertices: int, device):
    """``need`` uniform random rows: a slice of ``pool`` at offset ``u`` (in [0, 1)) of
    its free range (wrapping round when the pool is shorter), else drawn by
    ``generator``."""
    import torch

    if pool is None:
        return torch.randint(n_vertices, (need,), generator=generator, device=device)
    size = len(pool)
    if size >= need:
        off = min(int(u * (size - need + 1)), size - need)
        return pool[off:off + need]
    start = int(u * size)
    return pool[(torch.arange(need, device=device) + start) % size]


def edge_steps(cols, head, tail, eps, next_s, eps_neg, next_neg, epoch: int, a: float,
               b: float, alpha: float, *, u: float = 0.0, pool=None, generator=None,
               gamma: float = 1.0, n_vertices: int | None = None):
    """The steps of one epoch on a slice of edges, from the layout as it is (not written).

    Every edge of the slice due in this epoch (``next_s <= epoch``) and its due negative
    samples (umap-learn's count, ``floor((epoch - next_neg) / eps_neg)``) give the head
    its attractive step plus the sum of its repulsive ones, and the tail minus the
    attractive step; the slice's ``next_s`` and ``next_neg`` are advanced in place.

    Parameters
    ----------
    cols : list of torch.Tensor of shape (n_vertices,), float32
        The layout's coordinate columns (read only).
    head, tail : torch.Tensor of shape (n_edges,), int64
    eps, next_s, eps_neg, next_neg : torch.Tensor of shape (n_edges,), float64
        As :func:`layout_epoch`.
    epoch : int
    a, b, alpha : float
    u : float in [0, 1), default=0
        Where in ``pool`` this slice's negative samples start.
    pool : torch.Tensor of shape (n_pool,), int, optional
        Uniform random rows; when None they are drawn by ``generator``.
    generator : torch.Generator, optional
    gamma : float, default=1.0
    n_vertices : int, optional
        Negative samples are rows ``0 .. n_vertices - 1`` (default: all).

    Returns
    -------
    (j, k, to_head, to_tail) or None
        ``j, k``: int64 tensors of shape (n_due,), the due edges' ends; ``to_head`` and
        ``to_tail``: lists (one per component) of float32 tensors of shape (n_due,).
        None when no edge is due.
    """
    import torch

    active = (next_s <= epoch).nonzero().squeeze(1)
    n_act = active.numel()
    if n_act == 0:
        return None
    j, k = head.index_select(0, active), tail.index_select(0, active)
    next_s.index_add_(0, active, eps.index_select(0, active))
    ena = eps_neg.index_select(0, active)
    due = (epoch - next_neg.index_select(0, active)).div_(ena).floor_().clamp_(min=0)
    next_neg.index_add_(0, active, due * ena)
    yj = [x.index_select(0, j) for x in cols]
    step = _attraction([v - x.index_select(0, k) for v, x in zip(yj, cols)], a, b, alpha)
    m = int(due.max())
    if m == 0:
        return j, k, step, step
    # a (block, n_due) array of samples, block the usual count (on 30,000 clustered rows
    # 70% of the edges have 5 due, 4% 7 to 9: a block of the largest count would be 44%
    # padding), and the samples past the block as one flat batch
    block = min(m, NEGATIVE_SAMPLE_RATE)
    sel = [(due > r).nonzero().squeeze(1) for r in range(block, m)]
    sel = torch.cat(sel) if sel else j[:0]
    nv = n_vertices if n_vertices is not None else len(cols[0])
    kr = _negative_rows(block * n_act + sel.numel(), u, pool, generator, nv, cols[0].device)
    diff = [torch.sub(v[None], x.index_select(0, kr[:block * n_act]).view(block, n_act))
            for v, x in zip(yj, cols)]
    push = _repulsion(diff, due, a, b, gamma, alpha)
    if sel.numel():
        diff = [torch.sub(v.index_select(0, sel), x.index_select(0, kr[block * n_act:]))[None]
                for v, x in zip(yj, cols)]
        for p, extra in zip(push, _repulsion(diff, due.new_ones(sel.numel()), a, b, gamma,
                                             alpha)):
            p.index_add_(0, sel, extra)
    return j, k, [s + p for s, p in zip(step, push)], step


def apply_steps(cols, steps, move_other: bool = True) -> int:
    """Add :func:`edge_steps`' steps to the layout's columns in place; the edges moved."""
    if steps is None:
        return 0
    j, k, to_head, to_tail = steps
    for x, gh, gt in zip(cols, to_head, to_tail):
        x.index_add_(0, j, gh)
        if move_other:
            x.index_add_(0, k, gt, alpha=-1.0)
    return int(j.numel())


def layout_epoch(Y, head, tail, eps, next_s, eps_neg, next_neg, epoch: int, a: float,
                 b: float, alpha: float, generator, *, move_other: bool = True,
                 gamma: float = 1.0, n_vertices: int | None = None) -> int:
    """One epoch of UMAP's layout optimisation over the given edges, in place.

    :func:`edge_steps` on all the edges, then :func:`apply_steps` (a batched step;
    umap-learn updates edge after edge).

    Parameters
    ----------
    Y : torch.Tensor of shape (n_vertices, n_components), float32
        The layout; updated in place.
    head, tail : torch.Tensor of shape (n_edges,), int64
        Edge endpoints (each undirected edge appears in both directions).
    eps, next_s, eps_neg, next_neg : torch.Tensor of shape (n_edges,), float64
        Epochs per sample, epoch of the next sample, and the same for negative samples
        (``next_s`` and ``next_neg`` are advanced in place).
    epoch : int
    a, b : float
        The low-dimensional similarity ``1 / (1 + a d^(2b))``.
    alpha : float
        Learning rate of this epoch.
    generator : torch.Generator
        Draws the negative samples.
    move_other : bool, default=True
        Also move the tail of each positive edge (False: tails are fixed, as in
        umap-learn's ``transform``).
    gamma : float, default=1.0
        Repulsion weight.
    n_vertices : int, optional
        Negative samples are drawn from rows ``0 .. n_vertices - 1`` (default: all).

    Returns
    -------
    int
        Edges sampled in this epoch.
    """
    cols = [Y[:, c] for c in range(Y.shape[1])]
    steps = edge_steps(cols, head, tail, eps, next_s, eps_neg, next_neg, epoch, a, b,
                       alpha, generator=generator, gamma=gamma, n_vertices=n_vertices)
    return apply_steps(cols, steps, move_other)


def optimize_layout(Y0: np.ndarray, graph, n_epochs: int, a: float, b: float, *,
                    random_state: int | None = 42, device: str = "cpu",
                    progress: Progress | None = None, move_other: bool = True,
                    fixed_rows: np.ndarray | None = None, initial_alpha: float = 1.0,
                    label: str = "UMAP epoch", workers: int | None = None) -> np.ndarray:
    """The driver: ``n_epochs`` epochs over all edges, with progress and cancellation.

    The edges are cut into parts of :data:`PART_EDGES`; :func:`edge_steps` runs on the
    parts of a group of at most :data:`EDGE_CHUNK` edges in ``workers`` threads (torch
    releases the GIL inside its operations), all from the layout as it was before the
    group, then :func:`apply_steps` adds their steps in part order. The result depends on
    the seed only, not on ``workers``.

    Parameters
    ----------
    Y0 : ndarray of shape (n, n_components)
    graph : scipy.sparse matrix of shape (n, n)
        Fuzzy graph (edge weights).
    n_epochs : int
    a, b : float
    random_state : int or None
    device : str
    progress : callable(fraction, message), optional
        Called after every group of at most :data:`EDGE_CHUNK` edges; an exception it
        raises (``JobCancelled``) stops the loop.
    move_other : bool, default=True
    fixed_rows : ndarray of bool, shape (n,), optional
        Rows that keep their place (their coordinates are restored after each epoch).
    initial_alpha : float, default=1.0
    label : str
    workers : int or None
        Threads computing parts at once; default: the CPU count on the CPU (run each
        with one torch thread, :func:`layout_threads`), 1 on CUDA.

    Returns
    -------
    ndarray of shape (n, n_components), float32

    Notes
    -----
    The negative samples of a part are a slice, at a seeded random offset, of one pool
    of :data:`NEGATIVE_POOL` ``* PART_EDGES`` uniform random rows drawn at the start:
    within a part they are independent uniform draws as umap-learn's; across parts and
    epochs the pool is reused at other offsets (drawing them afresh cost ~2.6 ns a
    sample on one thread, ~20% of the layout at 100,000 rows).
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    import torch

    dev = torch.device(device)
    coo = graph.tocoo()
    eps_np = epochs_per_sample(coo.data.astype(np.float64), n_epochs)
    keep = eps_np > 0
    head = torch.from_numpy(coo.row[keep].astype(np.int64)).to(dev)
    tail = torch.from_numpy(coo.col[keep].astype(np.int64)).to(dev)
    eps = torch.from_numpy(eps_np[keep]).to(dev)
    eps_neg = eps / NEGATIVE_SAMPLE_RATE
    next_s, next_neg = eps.clone(), eps_neg.clone()
    n = len(Y0)
    # (n_components, n) storage, every coordinate column contiguous; a copy (Y0 is not
    # written to, whatever its memory order)
    Yt = torch.from_numpy(np.array(np.asarray(Y0).T, np.float32, order="C")).to(dev)
    Y = Yt.T
    cols = list(Yt)
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(random_state if random_state is not None else
                        np.random.SeedSequence().entropy % (2**63)))
    pool = torch.randint(n, (NEGATIVE_POOL * PART_EDGES,), generator=gen, device=dev,
                         dtype=torch.int32 if n < 2**31 else torch.int64)
    fixed = None
    if fixed_rows is not None and fixed_rows.any():
        fixed = torch.from_numpy(np.flatnonzero(fixed_rows)).to(dev)
        anchor = Y[fixed].clone()
    E = head.numel()
    parts = [(s, min(E, s + PART_EDGES)) for s in range(0, E, PART_EDGES)]
    per_group = max(1, EDGE_CHUNK // PART_EDGES)
    groups = [range(g, min(len(parts), g + per_group))
              for g in range(0, len(parts), per_group)] or [range(0)]
    if workers is None:
        workers = (os.cpu_count() or 1) if dev.type == "cpu" else 1
    pooled = ThreadPoolExecutor(workers) if workers > 1 and len(parts) > 1 else None
    try:
        for epoch in range(n_epochs):
            alpha = initial_alpha * (1.0 - epoch / float(n_epochs))
            u = torch.rand(len(parts), generator=gen, dtype=torch.float64,
                           device=dev).tolist()

            def part(p, epoch=epoch, alpha=alpha, u=u):
                s, e = parts[p]
                return edge_steps(cols, head[s:e], tail[s:e], eps[s:e], next_s[s:e],
                                  eps_neg[s:e], next_neg[s:e], epoch, a, b, alpha, u=u[p],
                                  pool=pool)

            for gi, group in enumerate(groups):
                steps = list(pooled.map(part, group) if pooled else map(part, group))
                for st in steps:
                    apply_steps(cols, st, move_other)
                if progress is not None and (len(groups) > 1 or gi == len(groups) - 1):
                    progress((epoch + (gi + 1) / len(groups)) / n_epochs,
                             f"{label} {epoch + 1}/{n_epochs}")
            if fixed is not None:
                Y[fixed] = anchor
    finally:
        if pooled is not None:
            pooled.shutdown()
    return np.ascontiguousarray(Y.cpu().numpy())


# ----------------------------------------------------------------------------------------
# the estimator-like entry points
# ----------------------------------------------------------------------------------------
def umap_fit(
    X: np.ndarray | None,
    knn: tuple[np.ndarray, np.ndarray],
    *,
    n_components: int = 2,
    min_dist: float = 0.1,
    metric: str = "euclidean",
    random_state: int | None = 42,
    n_epochs: int | None = None,
    engine: str = "auto",
    init: str = "auto",
    device: str | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, UmapReport]:
    """UMAP (McInnes et al. 2018) of ``X`` on a precomputed kNN graph, with a report.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features) or None
        The vectors (for the PCA start and umap-learn); None: the start is spectral or
        random.
    knn : (indices, distances), each of shape (n_samples, n_neighbors)
        From :func:`backend.project.knn.knn_graph` (without the row itself). UMAP's own
        ``n_neighbors`` counts the row itself: it is ``n_neighbors + 1`` here.
    n_components : int, default=2
    min_dist : float, default=0.1
        In [0, 1]; how tightly points may pack in the map.
    metric : str, default="euclidean"
        The metric the kNN graph was built with.
    random_state : int or None, default=42
    n_epochs : int or None
        umap-learn's default (500 up to 10,000 rows, else 200) when None.
    engine : {"auto", "torch", "umap-learn", "cuml"}, default="auto"
        ``auto``: cuML on CUDA when importable, else the torch layout.
    init : {"auto", "spectral", "pca"}, default="auto"
        ``auto``: spectral when the graph is connected and has at most
        :data:`SPECTRAL_MAX_ROWS` rows, else PCA.
    device : str or None
        Torch device (CUDA when available).
    progress : callable(fraction, message), optional
        Called at least every ~1 s; an exception it raises stops the run.

    Returns
    -------
    embedding : ndarray of shape (n_samples, n_components), float32
    report : UmapReport

    Raises
    ------
    InvalidParameterError
        For ``min_dist`` outside [0, 1], an unknown engine or init, or ``cuml`` asked for
        where it cannot run.
    InvalidInputError
        For a kNN graph of the wrong shape.

    References
    ----------
    McInnes, Healy, Melville (2018), arXiv:1802.03426; lmcinnes/umap (the algorithm and
    every constant here).
    """
    from backend.device import resolve_device

    if not 0.0 <= float(min_dist) <= 1.0:
        raise InvalidParameterError(f"min_dist must be in [0, 1]; got {min_dist!r}.")
    if engine not in UMAP_ENGINES:
        raise InvalidParameterError(f"engine must be one of {UMAP_ENGINES}; got {engine!r}.")
    if init not in ("auto", "spectral", "pca"):
        raise InvalidParameterError(f"init must be 'auto', 'spectral' or 'pca'; got {init!r}.")
    idx, dist = (np.asarray(a) for a in knn)
    if idx.ndim != 2 or idx.shape != dist.shape or len(idx) < 2:
        raise InvalidInputError(
            f"knn must be two arrays of one shape (n_samples, n_neighbors); got {idx.shape} "
            f"and {dist.shape}.")
    n = len(idx)
    dev = resolve_device(device).device
    if engine == "auto":
        engine = "cuml" if dev.startswith("cuda") and _cuml_available() else "torch"
    note = None
    if X is not None and np.asarray(X).shape[1] <= n_components:
        note = (f"the data have {np.asarray(X).shape[1]} dimension(s), no more than the map's "
                f"{n_components}: UMAP still runs (a non-linear re-layout of the same "
                "neighbourhoods), but the data could be drawn directly.")
    epochs = int(n_epochs or default_epochs(n))
    if engine == "umap-learn":
        emb, rep = _umap_learn(X, (idx, dist), n_components, min_dist, metric, random_state,
                               epochs, progress)
        return emb, UmapReport(**{**rep.to_dict(), "note": note})
    if engine == "cuml":
        return _cuml(X, n_components, min_dist, idx.shape[1] + 1, random_state, epochs, note)
    seconds = {}
    t0 = time.perf_counter()
    graph = _call(lambda: fuzzy_graph((idx, dist), metric=metric, random_state=random_state,
                                      n_epochs=epochs), progress, 0.0,
                  "UMAP: fuzzy simplicial set")
    seconds["graph"] = round(time.perf_counter() - t0, 3)
    rng = np.random.RandomState(random_state)
    t0 = time.perf_counter()
    sub = None if progress is None else (lambda f, m: progress(0.02, m))
    Xf = None if X is None else np.asarray(X, dtype=np.float32)
    Y0, init_used, init_note = _initial_layout(Xf, graph, n_components, rng, dev, sub, init)
    seconds["init"] = round(time.perf_counter() - t0, 3)
    a, b = find_ab_params(1.0, float(min_dist))
    t0 = time.perf_counter()
    lay = None if progress is None else (lambda f, m: progress(0.05 + 0.95 * f, m))
    with layout_threads(dev):
        emb = optimize_layout(Y0, graph, epochs, float(a), float(b),
                              random_state=random_state, device=dev, progress=lay)
    seconds["layout"] = round(time.perf_counter() - t0, 3)
    return emb.astype(np.float32), UmapReport(
        engine="torch", device=dev, init=init_used, init_note=init_note, n_epochs=epochs,
        n_edges=int(graph.nnz), a=float(a), b=float(b), seconds=seconds, note=note)


def layout_threads(device: str):
    """One torch thread per layout worker on the CPU (:func:`backend.threads.cpu_threads`);
    the layout runs parts of the edges in parallel threads instead (:func:`optimize_layout`).

    Torch's own threads meet at a barrier in every operation, and an epoch is ~50 small
    operations: on the shared 2-core machine with one other busy process, an elementwise
    operation on 3.5M floats took 7 ms on 2 torch threads and 0.3-1.2 ms on one (at load
    10-15 the old 2-thread layout was 4x slower than one thread). Worker threads only
    meet once per group of parts. A no-op on CUDA.
    """
    return cpu_threads(device)


def umap_embedding(X, knn, **kwargs) -> np.ndarray:
    """:func:`umap_fit` without the report: ndarray (n_samples, n_components), float32."""
    return umap_fit(X, knn, **kwargs)[0]


def _call(fn, progress, fraction, message):
    from backend.project._interrupt import interruptible

    return interruptible(fn, progress, fraction, message)


# ----------------------------------------------------------------------------------------
# other engines
# ----------------------------------------------------------------------------------------
class _ProgressFile(io.TextIOBase):
    """A file for tqdm that forwards 'n/total' to a progress callback."""

    def __init__(self, progress: Progress):
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


def _umap_learn(X, knn, n_components, min_dist, metric, random_state, epochs, progress):
    import umap

    if X is None:
        raise InvalidParameterError("engine='umap-learn' needs the vectors X.")
    idx, dist = with_self(*knn)
    tqdm_kwds = None
    if progress is not None:
        tqdm_kwds = {"disable": False, "file": _ProgressFile(progress), "mininterval": 0.25}
    model = umap.UMAP(
        n_neighbors=idx.shape[1], n_components=n_components, min_dist=min_dist,
        metric=metric, random_state=random_state, n_epochs=epochs,
        precomputed_knn=(idx, dist, None), tqdm_kwds=tqdm_kwds, verbose=False)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
        emb = model.fit_transform(np.asarray(X, dtype=np.float32))
    return np.asarray(emb, np.float32), UmapReport(
        engine="umap-learn", device="cpu", init="spectral", init_note=None, n_epochs=epochs,
        n_edges=int(model.graph_.nnz), a=float(model._a), b=float(model._b),
        seconds={"total": round(time.perf_counter() - t0, 3)})


def _cuml_available() -> bool:
    try:
        import cuml  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False
    return True


def _cuml(X, n_components, min_dist, n_neighbors, random_state, epochs, note):
    """cuML's UMAP (its own kNN graph; runs as one call on the GPU)."""
    if not _cuml_available():
        raise InvalidParameterError(
            "engine='cuml' needs RAPIDS cuML on a CUDA machine (see README, GPU section).")
    if X is None:
        raise InvalidParameterError("engine='cuml' needs the vectors X.")
    from cuml.manifold import UMAP as CuUMAP

    t0 = time.perf_counter()
    model = CuUMAP(n_neighbors=n_neighbors, n_components=n_components, min_dist=min_dist,
                   n_epochs=epochs, random_state=random_state)
    emb = np.asarray(model.fit_transform(np.asarray(X, np.float32)), np.float32)
    return emb, UmapReport(engine="cuml", device="cuda", init="spectral", init_note=None,
                           n_epochs=epochs, n_edges=-1, a=math.nan, b=math.nan,
                           seconds={"total": round(time.perf_counter() - t0, 3)}, note=note)
