"""UMAP on the shared kNN graph: umap-learn's layout optimisation in torch.

The graph is umap-learn's own fuzzy simplicial set (``umap.umap_.fuzzy_simplicial_set``
on our kNN graph), ``a`` and ``b`` come from ``umap.umap_.find_ab_params(1, min_dist)``,
edges are sampled ``epochs_per_sample`` as umap-learn does, with 5 negative samples per
positive one, a linearly decaying learning rate from 1 and gradients clipped at 4. What
differs: one epoch updates all its sampled edges at once (a batched, Hogwild-free
version of umap-learn's sequential loop, the way GPU implementations do it), which is
what makes it fast on the CPU and runs it on CUDA.

A pure kernel (:func:`layout_epoch`, one epoch) and a driver (:func:`optimize_layout`)
that owns the loop, progress and cancellation (checked between edge chunks, so a cancel
is seen within a second). The spectral start is our own, cancellable too
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
    "SPECTRAL_MAX_ROWS", "layout_threads",
]

UMAP_ENGINES = ("auto", "torch", "umap-learn", "cuml")
#: Above this many rows the start is PCA (the spectral solver's cost grows too fast).
SPECTRAL_MAX_ROWS = 250_000
#: ARPACK restarts allowed to the spectral start before it falls back to PCA.
SPECTRAL_MAXITER = 300
#: Edges per kernel call: the driver checks for a cancel between calls.
EDGE_CHUNK = 4_000_000
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
def fuzzy_graph(knn: tuple[np.ndarray, np.ndarray], *, metric: str = "euclidean",
                random_state: int | None = 42, n_epochs: int | None = None):
    """umap-learn's fuzzy simplicial set of a kNN graph, pruned as umap-learn prunes it.

    Parameters
    ----------
    knn : (indices, distances), each of shape (n_samples, k)
        Without the rows themselves; umap-learn's ``n_neighbors`` is ``k + 1``.
    metric : str, default="euclidean"
    random_state : int or None, default=42
    n_epochs : int or None
        Weights below ``max / n_epochs`` are dropped (umap-learn's rule).

    Returns
    -------
    scipy.sparse.coo_matrix of shape (n_samples, n_samples), float32
        Symmetric membership strengths.
    """
    from umap.umap_ import fuzzy_simplicial_set

    idx, dist = with_self(*knn)
    n = len(idx)
    rs = np.random.RandomState(random_state)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        graph, _, _ = fuzzy_simplicial_set(
            np.empty((n, 1), np.float32), idx.shape[1], rs, metric,
            knn_indices=idx, knn_dists=dist)
    graph = graph.tocoo()
    graph.sum_duplicates()
    epochs = n_epochs or default_epochs(n)
    graph.data[graph.data < graph.data.max() / float(epochs)] = 0.0
    graph.eliminate_zeros()
    return graph


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
def layout_epoch(Y, head, tail, eps, next_s, eps_neg, next_neg, epoch: int, a: float,
                 b: float, alpha: float, generator, *, move_other: bool = True,
                 gamma: float = 1.0, n_vertices: int | None = None) -> int:
    """One epoch of UMAP's layout optimisation over the given edges, in place.

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
    import torch

    active = (next_s <= epoch).nonzero().squeeze(1)
    if active.numel() == 0:
        return 0
    j, k = head[active], tail[active]
    diff = Y[j] - Y[k]
    # where d2 == 0 the difference is 0 too, so the update is 0 as umap-learn's: flooring
    # d2 only keeps the coefficient finite (no masks needed)
    d2 = (diff * diff).sum(1).clamp_(min=1e-12)
    pb = d2.pow(b)
    coef = pb.mul(-2.0 * a * b).div_(d2).div_(pb.mul_(a).add_(1.0))
    g = diff.mul_(coef[:, None]).clamp_(-CLIP, CLIP).mul_(alpha)
    Y.index_add_(0, j, g)
    if move_other:
        Y.index_add_(0, k, g.neg_())
    ea = eps[active]
    next_s[active] += ea
    # negative samples: as many as are due for each sampled edge
    ena = eps_neg[active]
    nn = ((epoch - next_neg[active]) / ena).floor_().clamp_(min=0)
    next_neg[active] += nn * ena
    jr = torch.repeat_interleave(j, nn.long())
    if jr.numel():
        nv = n_vertices if n_vertices is not None else Y.shape[0]
        kr = torch.randint(nv, (jr.numel(),), generator=generator, device=Y.device)
        diff = Y[jr] - Y[kr]
        d2 = (diff * diff).sum(1)
        coef = (d2 + 0.001).mul_(d2.pow(b).mul_(a).add_(1.0)).reciprocal_().mul_(2.0 * gamma * b)
        g = diff.mul_(coef[:, None]).clamp_(-CLIP, CLIP).mul_(alpha)
        Y.index_add_(0, jr, g)
    return int(active.numel())


def optimize_layout(Y0: np.ndarray, graph, n_epochs: int, a: float, b: float, *,
                    random_state: int | None = 42, device: str = "cpu",
                    progress: Progress | None = None, move_other: bool = True,
                    fixed_rows: np.ndarray | None = None, initial_alpha: float = 1.0,
                    label: str = "UMAP epoch") -> np.ndarray:
    """The driver: ``n_epochs`` of :func:`layout_epoch`, with progress and cancellation.

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
        Called after every chunk of at most :data:`EDGE_CHUNK` edges; an exception it
        raises (``JobCancelled``) stops the loop.
    move_other : bool, default=True
    fixed_rows : ndarray of bool, shape (n,), optional
        Rows that keep their place (their coordinates are restored after each epoch).
    initial_alpha : float, default=1.0
    label : str

    Returns
    -------
    ndarray of shape (n, n_components), float32
    """
    import torch

    dev = torch.device(device)
    coo = graph.tocoo()
    head = torch.from_numpy(coo.row.astype(np.int64)).to(dev)
    tail = torch.from_numpy(coo.col.astype(np.int64)).to(dev)
    eps_np = epochs_per_sample(coo.data.astype(np.float64), n_epochs)
    keep = torch.from_numpy(eps_np > 0).to(dev)
    head, tail = head[keep], tail[keep]
    eps = torch.from_numpy(eps_np).to(dev)[keep]
    eps_neg = eps / NEGATIVE_SAMPLE_RATE
    next_s, next_neg = eps.clone(), eps_neg.clone()
    Y = torch.from_numpy(np.ascontiguousarray(Y0, dtype=np.float32)).to(dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(random_state if random_state is not None else
                        np.random.SeedSequence().entropy % (2**63)))
    fixed = None
    if fixed_rows is not None and fixed_rows.any():
        fixed = torch.from_numpy(np.flatnonzero(fixed_rows)).to(dev)
        anchor = Y[fixed].clone()
    E = head.numel()
    chunks = [(s, min(E, s + EDGE_CHUNK)) for s in range(0, E, EDGE_CHUNK)] or [(0, 0)]
    for epoch in range(n_epochs):
        alpha = initial_alpha * (1.0 - epoch / float(n_epochs))
        for ci, (s, e) in enumerate(chunks):
            layout_epoch(Y, head[s:e], tail[s:e], eps[s:e], next_s[s:e], eps_neg[s:e],
                         next_neg[s:e], epoch, a, b, alpha, gen, move_other=move_other)
            if progress is not None and (len(chunks) > 1 or ci == len(chunks) - 1):
                progress((epoch + (ci + 1) / len(chunks)) / n_epochs,
                         f"{label} {epoch + 1}/{n_epochs}")
        if fixed is not None:
            Y[fixed] = anchor
    return Y.cpu().numpy()


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
    # umap-learn is first imported inside the interruptible call (its import compiles
    # numba code for seconds; it must not hold up a cancel)
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
    from umap.umap_ import find_ab_params  # imported by fuzzy_graph already

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
    """Torch threads of the layout: all cores on an idle CPU, one on a busy one.

    Measured on 2 cores, 100,000 x 64: the layout took 25 s with 2 threads at load 1 and
    44 s with one; at load 10-15 two threads spin against other processes and were 4x
    slower than one (digits: 2.1 s vs 0.5 s for 50 epochs). A no-op on CUDA.
    """
    import contextlib
    import os

    busy = os.getloadavg()[0] >= (os.cpu_count() or 1)
    return cpu_threads(device) if busy else contextlib.nullcontext()


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
