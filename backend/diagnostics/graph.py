"""How much of a graph a node embedding keeps, and spectral views of the graph.

- :func:`reconstruction_map`: RESTORE-style reconstruction — for each node, rank all
  others by embedding similarity and score the true neighbours within h hops by
  average precision.
- :func:`node_classification_probe`: one-vs-rest logistic regression on the
  embedding, Micro/Macro-F1 at several training fractions (single- or multi-label).
- :func:`laplacian_spectrum`: eigenvalues of the graph Laplacian.
- :func:`rayleigh_quotient`: spectral energy of a node attribute over the graph,
  against a permutation null.

Graphs are :class:`backend.datasets.graph.Graph` objects or square scipy sparse
adjacency matrices (treated as directed unless symmetric).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from backend.datasets.graph import as_adjacency
from backend.device import resolve_device
from backend.errors import InvalidInputError, InvalidParameterError
from backend.graph_ops import LAPLACIANS
from backend.graph_ops import laplacian as graph_laplacian
from backend.graph_ops import symmetric_adjacency

__all__ = [
    "ProbeResult",
    "RayleighResult",
    "ReconstructionResult",
    "SpectrumResult",
    "laplacian_spectrum",
    "node_classification_probe",
    "rayleigh_quotient",
    "reconstruction_map",
    "UNLABELLED_VALUES",
    "unlabelled_mask",
]

Progress = Callable[[float, str], None] | None

SIMILARITY_METRICS = ("cosine", "dot", "euclidean")
MULTILABEL_PREDICTIONS = ("top_k", "threshold")
_CHUNK_ELEMENTS = 8_000_000
_FULL_SPECTRUM_MAX_NODES = 4000
# Values that mean "no label" in a 1-D label column besides None/NaN: -1 (Planetoid-style
# data marks unlabelled nodes so), the empty string and "unknown" (any case, stripped).
UNLABELLED_VALUES = (-1, "", "unknown")


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ReconstructionResult:
    """Graph reconstruction scores of an embedding.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per hop: ``hop``, ``map`` (mean AP), one ``map@k`` column per k,
        ``n_evaluated`` (query nodes with at least one true neighbour),
        ``n_without_neighbours`` (query nodes left out of that hop's mean) and
        ``mean_true_neighbours``.
    per_node_ap : ndarray of shape (n_queries, n_hops), float64
        AP of each query node per hop; NaN where it had no true neighbour.
    query_nodes : ndarray of shape (n_queries,), int64
        The evaluated node indices, ascending.
    n_nodes : int
    sampled : bool
        True when ``query_nodes`` is a random sample of the nodes.
    metric : str
    exact_hops : bool
    random_state : int
    """

    table: pd.DataFrame
    per_node_ap: np.ndarray
    query_nodes: np.ndarray
    n_nodes: int
    sampled: bool
    metric: str
    exact_hops: bool
    random_state: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the table and the sample description, not per-node values)."""
        return {
            "table": self.table.to_dict(orient="records"),
            "n_nodes": int(self.n_nodes),
            "n_queries": len(self.query_nodes),
            "sampled": bool(self.sampled),
            "metric": self.metric,
            "exact_hops": bool(self.exact_hops),
            "random_state": int(self.random_state),
        }


@dataclass(frozen=True)
class ProbeResult:
    """Node-classification probe scores.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per training fraction: ``train_fraction``, ``n_train``,
        ``n_test``, ``micro_f1``, ``micro_f1_std``, ``macro_f1``,
        ``macro_f1_std`` (mean and population std over repeats).
    scores : pandas.DataFrame
        One row per (training fraction, repeat): ``train_fraction``,
        ``repeat``, ``micro_f1``, ``macro_f1``.
    multilabel : bool
    n_labelled : int
        Nodes with at least one label (the others are left out).
    n_classes : int
    classes : list
    params : dict
        ``C``, ``n_repeats``, ``random_state``, ``multilabel_prediction``, ``solver``.
    n_unlabelled : int
        Nodes left out as unlabelled (see :func:`unlabelled_mask`).
    note : str or None
        Says how many nodes were left out as unlabelled and by which values.
    """

    table: pd.DataFrame
    scores: pd.DataFrame
    multilabel: bool
    n_labelled: int
    n_classes: int
    classes: list
    params: dict
    n_unlabelled: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "table": self.table.to_dict(orient="records"),
            "scores": self.scores.to_dict(orient="records"),
            "multilabel": bool(self.multilabel),
            "n_labelled": int(self.n_labelled),
            "n_classes": int(self.n_classes),
            "classes": [c.item() if hasattr(c, "item") else c for c in self.classes],
            "params": dict(self.params),
            "n_unlabelled": int(self.n_unlabelled),
            "note": self.note,
        }


@dataclass(frozen=True)
class SpectrumResult:
    """Eigenvalues of a graph Laplacian.

    Attributes
    ----------
    eigenvalues : ndarray of shape (n_eigenvalues,), float64
        Ascending. The whole spectrum, or the ``n_eigenvalues`` smallest.
    laplacian : str
    n_nodes : int
    n_connected_components : int
        Also the multiplicity of the eigenvalue 0.
    complete : bool
        True when ``eigenvalues`` is the whole spectrum.
    symmetrized : bool
        True when a directed graph was made undirected as S + Sᵀ.
    """

    eigenvalues: np.ndarray
    laplacian: str
    n_nodes: int
    n_connected_components: int
    complete: bool
    symmetrized: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "eigenvalues": self.eigenvalues.tolist(),
            "laplacian": self.laplacian,
            "n_nodes": int(self.n_nodes),
            "n_connected_components": int(self.n_connected_components),
            "complete": bool(self.complete),
            "symmetrized": bool(self.symmetrized),
        }


@dataclass(frozen=True)
class RayleighResult:
    """Spectral energy of a node attribute.

    Attributes
    ----------
    value : float
        The Rayleigh quotient (see :func:`rayleigh_quotient`); small = smooth.
    null_mean, null_std : float
        Mean and std of the quotient over random permutations of the values.
    ratio : float
        ``value / null_mean``: below 1 the attribute is smoother over the graph
        than chance.
    z_score : float
        ``(value - null_mean) / null_std``.
    p_value : float
        One-sided permutation p-value for "smoother than chance":
        (1 + #{permuted ≤ value}) / (1 + n_permutations).
    n_used : int
        Nodes with finite values (the quotient is taken on their induced subgraph).
    n_nodes : int
    laplacian : str
    n_permutations : int
    """

    value: float
    null_mean: float
    null_std: float
    ratio: float
    z_score: float
    p_value: float
    n_used: int
    n_nodes: int
    laplacian: str
    n_permutations: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in self.__dict__.items()}


# ---------------------------------------------------------------------------- reconstruction


def reconstruction_map(
    embedding: np.ndarray,
    graph,
    *,
    hops: Sequence[int] = (1, 2, 3),
    metric: str = "cosine",
    at_k: Sequence[int] = (10, 100),
    n_samples: int | None = 5000,
    exact_hops: bool = False,
    random_state: int = 0,
    device: str | None = None,
    progress: Progress = None,
) -> ReconstructionResult:
    """Mean average precision of graph reconstruction from an embedding (RESTORE).

    For each query node i, every other node is ranked by similarity to i in the
    embedding; the true neighbours are the nodes within ``h`` hops of i
    (shortest-path distance 1..h, or exactly h with ``exact_hops``). Ties in the
    ranking are broken by node index.

    Parameters
    ----------
    embedding : ndarray of shape (n_nodes, n_components)
    graph : Graph or scipy.sparse matrix of shape (n_nodes, n_nodes)
        Edge weights are ignored (any stored edge is a hop). A directed graph is
        followed along its edges (out-neighbours). Self-loops are ignored.
    hops : sequence of int, default=(1, 2, 3)
    metric : {"cosine", "dot", "euclidean"}, default="cosine"
        Similarity: cosine, inner product, or negative Euclidean distance. An
        all-zero vector has cosine 0 with every node.
    at_k : sequence of int, default=(10, 100)
        Cut-offs of the mAP@k columns.
    n_samples : int or None, default=5000
        Number of query nodes: all nodes when None or when the graph has at most
        this many, else a uniform sample without replacement (seeded by
        ``random_state``); the result says which.
    exact_hops : bool, default=False
    random_state : int, default=0
    device : str or None, default=None
        Torch device for the similarity and sorting.
    progress : callable(fraction, message) or None
        Called after each chunk of query nodes.

    Returns
    -------
    ReconstructionResult

    Raises
    ------
    InvalidParameterError
        Unknown metric, hops or k not positive integers, bad ``n_samples``.
    InvalidInputError
        Embedding and graph of different sizes, non-finite embedding.

    Notes
    -----
    With rel_r = 1 when the r-th ranked node is a true neighbour and m_i true
    neighbours,

    .. math::
        AP(i) = \\frac{1}{m_i} \\sum_r P@r \\; rel_r, \\qquad
        AP@k(i) = \\frac{1}{\\min(k, m_i)} \\sum_{r \\le k} P@r \\; rel_r,

    and mAP is the mean over query nodes with m_i > 0 (nodes without true
    neighbours are counted in ``n_without_neighbours`` rather than scored 0, a
    quirk of GEM's undirected evaluation). Memory is O(chunk · n): the n×n
    similarity matrix is never held.

    References
    ----------
    Yip et al., "RESTORE: Graph Embedding Assessment Through Reconstruction",
    arXiv:2308.14659 (2023). Goyal & Ferrara, "Graph embedding techniques,
    applications, and performance: A survey", Knowl.-Based Syst. 151 (2018),
    MAP definition; reference code palash1992/GEM ``gem/evaluation/metrics.py``.
    """
    import torch

    if metric not in SIMILARITY_METRICS:
        raise InvalidParameterError(f"metric must be one of {SIMILARITY_METRICS}; got {metric!r}.")
    hops = _positive_ints(hops, "hops")
    at_k = _positive_ints(at_k, "at_k")
    B = _binary_structure(graph)
    n = B.shape[0]
    X = _embedding(embedding, n)
    if n_samples is not None and (
        not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 1
    ):
        raise InvalidParameterError(
            f"n_samples must be a positive integer or None; got {n_samples!r}."
        )
    if n < 2:
        raise InvalidInputError("reconstruction needs a graph with at least 2 nodes.")
    sampled = n_samples is not None and n > n_samples
    if sampled:
        rng = np.random.default_rng(random_state)
        queries = np.sort(rng.choice(n, size=int(n_samples), replace=False)).astype(np.int64)
    else:
        queries = np.arange(n, dtype=np.int64)

    dev = torch.device(resolve_device(device).device)
    T = torch.from_numpy(X).to(dev)
    if metric == "cosine":
        norm = torch.linalg.vector_norm(T, dim=1, keepdim=True)
        T = T / torch.where(norm > 0, norm, torch.ones_like(norm))
    sq = (T * T).sum(dim=1) if metric == "euclidean" else None
    max_hop = max(hops)
    chunk = int(max(1, min(1024, _CHUNK_ELEMENTS // n)))
    ranks = torch.arange(1, n + 1, device=dev, dtype=torch.float64)
    ap = np.full((len(queries), len(hops)), np.nan)
    apk = np.full((len(queries), len(hops), len(at_k)), np.nan)
    m_count = np.zeros((len(queries), len(hops)), dtype=np.int64)

    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk]
        b = len(q)
        within = _within_hops(B, q, max_hop)  # list over h of (b, n) bool arrays, self excluded
        scores = T[q] @ T.T
        if metric == "euclidean":
            scores = 2.0 * scores - sq[None, :]
        rows = torch.arange(b, device=dev)
        qt = torch.from_numpy(q).to(dev)
        scores[rows, qt] = -torch.inf
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices
        del scores
        order = order[:, : n - 1]  # the query itself is last
        for hi, h in enumerate(hops):
            truth = within[h - 1]
            if exact_hops and h > 1:
                truth = truth & ~within[h - 2]
            truth_t = torch.from_numpy(truth).to(dev)
            m = truth_t.sum(dim=1).double()
            rel = truth_t.gather(1, order).double()
            prec = rel.cumsum(dim=1) / ranks[: n - 1]
            hits = prec * rel
            safe_m = torch.where(m > 0, m, torch.ones_like(m))
            ap_chunk = hits.sum(dim=1) / safe_m
            mc = m.cpu().numpy().astype(np.int64)
            m_count[start : start + b, hi] = mc
            ok = mc > 0
            ap[start : start + b, hi] = np.where(ok, ap_chunk.cpu().numpy(), np.nan)
            cum_hits = hits.cumsum(dim=1)
            for ki, k in enumerate(at_k):
                kk = min(k, n - 1)
                denom = torch.clamp(torch.minimum(m, torch.full_like(m, float(k))), min=1.0)
                val = (cum_hits[:, kk - 1] / denom).cpu().numpy()
                apk[start : start + b, hi, ki] = np.where(ok, val, np.nan)
        if progress is not None:
            progress(min(1.0, (start + b) / len(queries)), f"reconstruction: {start + b} of "
                     f"{len(queries)} nodes")

    rows_out = []
    for hi, h in enumerate(hops):
        ok = m_count[:, hi] > 0
        row = {"hop": int(h), "map": float(np.nanmean(ap[:, hi])) if ok.any() else float("nan")}
        for ki, k in enumerate(at_k):
            row[f"map@{k}"] = float(np.nanmean(apk[:, hi, ki])) if ok.any() else float("nan")
        row["n_evaluated"] = int(ok.sum())
        row["n_without_neighbours"] = int((~ok).sum())
        row["mean_true_neighbours"] = float(m_count[ok, hi].mean()) if ok.any() else 0.0
        rows_out.append(row)
    return ReconstructionResult(
        table=pd.DataFrame(rows_out),
        per_node_ap=ap,
        query_nodes=queries,
        n_nodes=n,
        sampled=bool(sampled),
        metric=metric,
        exact_hops=bool(exact_hops),
        random_state=int(random_state),
    )


# ---------------------------------------------------------------------------- probe


def unlabelled_mask(values) -> tuple[np.ndarray, str | None]:
    """Which entries of a 1-D label column mean "no label", and a note saying so.

    Parameters
    ----------
    values : array-like of shape (n,)
        Any hashable values.

    Returns
    -------
    mask : ndarray of shape (n,), bool
        True for None/NaN, ``-1`` (number or the string ``"-1"``), the empty (or blank)
        string and ``"unknown"`` in any case: :data:`UNLABELLED_VALUES`.
    note : str or None
        ``"N of M nodes are unlabelled (-1: a, empty: b, ...) and left out ..."``, or None
        when every entry is labelled.
    """
    s = pd.Series(np.asarray(values, dtype=object))
    missing = s.isna().to_numpy()
    text = s.astype(str).str.strip().str.lower().to_numpy()
    num = pd.to_numeric(s, errors="coerce").to_numpy(np.float64)
    minus_one = (num == -1) & ~missing
    empty = (text == "") & ~missing
    unknown = (text == "unknown") & ~missing
    mask = missing | minus_one | empty | unknown
    if not mask.any():
        return mask, None
    parts = [f"{name}: {int(m.sum()):,}" for name, m in
             (("missing", missing), ("-1", minus_one), ("empty", empty), ("'unknown'", unknown))
             if m.any()]
    note = (f"{int(mask.sum()):,} of {len(mask):,} nodes are unlabelled ({', '.join(parts)}) "
            "and left out of the probe; -1, empty and 'unknown' are not classes.")
    return mask, note


def node_classification_probe(
    embedding: np.ndarray,
    labels,
    *,
    train_fractions: Sequence[float] = (0.1, 0.5, 0.9),
    n_repeats: int = 5,
    C: float = 1.0,
    multilabel_prediction: str = "top_k",
    random_state: int = 0,
    n_jobs: int | None = None,
    progress: Progress = None,
) -> ProbeResult:
    """Micro/Macro-F1 of one-vs-rest logistic regression on the embedding.

    The protocol of DeepWalk's ``scoring.py`` as used by node2vec and FastRP:
    shuffle the labelled nodes, train on the first ``fraction`` of them, test on
    the rest, repeat ``n_repeats`` times and average.

    Parameters
    ----------
    embedding : ndarray of shape (n_nodes, n_components)
    labels : array-like of shape (n_nodes,) or (n_nodes, n_classes)
        1-D: one class per node (any hashable; None/NaN, -1, "" and "unknown" =
        unlabelled, see :func:`unlabelled_mask`). 2-D: a
        0/1 or bool indicator matrix (dense or scipy sparse) for multi-label
        data; rows without any label are unlabelled. Unlabelled nodes are left
        out.
    train_fractions : sequence of float, default=(0.1, 0.5, 0.9)
        Each in (0, 1).
    n_repeats : int, default=5
        Shuffles per fraction.
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression (the FastRP
        paper uses 0.1).
    multilabel_prediction : {"top_k", "threshold"}, default="top_k"
        Multi-label only. ``"top_k"`` predicts, for each test node, its k most
        probable classes with k its true number of labels (the DeepWalk
        protocol behind the published numbers; it uses the test label count).
        ``"threshold"`` predicts every class with probability > 0.5.
    random_state : int, default=0
        Seed of the shuffles.
    n_jobs : int or None, default=None
        Parallel one-vs-rest fits (scikit-learn ``n_jobs``).
    progress : callable(fraction, message) or None

    Returns
    -------
    ProbeResult

    Raises
    ------
    InvalidParameterError
        For fractions outside (0, 1), ``n_repeats`` < 1, ``C`` <= 0, an unknown
        prediction mode.
    InvalidInputError
        Embedding and labels of different lengths, fewer than 2 classes, a
        training or test split with no node.

    Notes
    -----
    The classifier is ``OneVsRestClassifier(LogisticRegression(C=C,
    solver="liblinear"))``, the scikit-learn default solver when the published
    numbers were made (scikit-learn < 0.22). Micro-F1 pools all (node, class)
    decisions; Macro-F1 averages per-class F1 over all classes (a class absent
    from both truth and prediction in a split scores 0, as in the reference).

    References
    ----------
    Perozzi, Al-Rfou & Skiena, "DeepWalk", KDD 2014, §5 (reference code
    phanein/deepwalk ``example_graphs/scoring.py``). Chen et al., "Fast and
    Accurate Network Embeddings via Very Sparse Random Projection", CIKM 2019,
    §5.2 (GTmac/FastRP notebooks).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier

    fractions = _fractions(train_fractions)
    if not isinstance(n_repeats, (int, np.integer)) or isinstance(n_repeats, bool) or n_repeats < 1:
        raise InvalidParameterError(f"n_repeats must be an integer >= 1; got {n_repeats!r}.")
    if not isinstance(C, (int, float, np.number)) or not np.isfinite(C) or C <= 0:
        raise InvalidParameterError(f"C must be a positive number; got {C!r}.")
    if multilabel_prediction not in MULTILABEL_PREDICTIONS:
        raise InvalidParameterError(
            f"multilabel_prediction must be one of {MULTILABEL_PREDICTIONS}; got "
            f"{multilabel_prediction!r}."
        )
    X = np.asarray(embedding, dtype=np.float64)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise InvalidInputError(
            "the embedding must be a 2-D array of finite numbers; got shape "
            f"{X.shape}{' with non-finite values' if X.ndim == 2 else ''}."
        )
    Y, classes, multilabel, labelled, note = _label_targets(labels, X.shape[0])
    X = X[labelled]
    m = X.shape[0]
    rng = np.random.default_rng(random_state)
    perms = [rng.permutation(m) for _ in range(n_repeats)]

    rows = []
    total = len(fractions) * n_repeats
    for fi, frac in enumerate(fractions):
        n_train = int(frac * m)
        if n_train < 1 or n_train >= m:
            raise InvalidInputError(
                f"train_fraction={frac} of {m} labelled nodes leaves an empty training or test "
                "split; use fractions that keep at least one node on each side."
            )
        for r, perm in enumerate(perms):
            tr, te = perm[:n_train], perm[n_train:]
            clf = OneVsRestClassifier(
                LogisticRegression(C=float(C), solver="liblinear"), n_jobs=n_jobs
            )
            with warnings.catch_warnings():
                # classes missing from a small training split get a constant predictor
                warnings.simplefilter("ignore", UserWarning)
                if multilabel:
                    clf.fit(X[tr], Y[tr])
                    proba = clf.predict_proba(X[te])
                    pred = _multilabel_predict(proba, Y[te], multilabel_prediction)
                    truth = Y[te]
                    avg_kw = {"zero_division": 0}
                else:
                    clf.fit(X[tr], Y[tr])
                    pred = clf.predict(X[te])
                    truth = Y[te]
                    avg_kw = {"labels": np.arange(len(classes)), "zero_division": 0}
                micro = f1_score(truth, pred, average="micro", **avg_kw)
                macro = f1_score(truth, pred, average="macro", **avg_kw)
            rows.append({"train_fraction": frac, "repeat": r, "micro_f1": float(micro),
                         "macro_f1": float(macro), "n_train": n_train, "n_test": m - n_train})
            if progress is not None:
                done = fi * n_repeats + r + 1
                progress(done / total, f"probe: fraction {frac:g}, repeat {r + 1} of {n_repeats}")
    scores = pd.DataFrame(rows)
    g = scores.groupby("train_fraction", sort=False)
    table = pd.DataFrame(
        {
            "train_fraction": list(g.groups.keys()),
            "n_train": g["n_train"].first().to_numpy(),
            "n_test": g["n_test"].first().to_numpy(),
            "micro_f1": g["micro_f1"].mean().to_numpy(),
            "micro_f1_std": g["micro_f1"].std(ddof=0).to_numpy(),
            "macro_f1": g["macro_f1"].mean().to_numpy(),
            "macro_f1_std": g["macro_f1"].std(ddof=0).to_numpy(),
        }
    )
    return ProbeResult(
        table=table,
        scores=scores[["train_fraction", "repeat", "micro_f1", "macro_f1"]],
        multilabel=multilabel,
        n_labelled=int(m),
        n_classes=len(classes),
        classes=list(classes),
        params={"C": float(C), "n_repeats": int(n_repeats), "random_state": int(random_state),
                "multilabel_prediction": multilabel_prediction, "solver": "liblinear"},
        n_unlabelled=int(len(labelled) - m),
        note=note,
    )


# ---------------------------------------------------------------------------- spectra


def laplacian_spectrum(
    graph,
    *,
    laplacian: str = "normalized",
    n_eigenvalues: int | None = None,
    eigen_solver: str = "auto",
    random_state: int = 0,
) -> SpectrumResult:
    """Eigenvalues of the graph Laplacian.

    Parameters
    ----------
    graph : Graph or scipy.sparse matrix of shape (n_nodes, n_nodes)
        Non-negative weights. A directed graph is made undirected as S + Sᵀ;
        self-loops are left out.
    laplacian : {"normalized", "combinatorial"}, default="normalized"
        I - D^{-1/2} S D^{-1/2} (eigenvalues in [0, 2]; an isolated node
        contributes a 0, the rule of :mod:`backend.graph_ops`) or D - S.
    n_eigenvalues : int or None, default=None
        None: the whole spectrum (dense, graphs up to 4000 nodes). Otherwise the
        ``n_eigenvalues`` smallest, computed per connected component with the
        sparse solver of :class:`~backend.embed.graph.LaplacianEigenmaps`.
    eigen_solver : {"auto", "dense", "shift_invert", "lanczos"}, default="auto"
        As :class:`~backend.embed.graph.LaplacianEigenmaps` (used when
        ``n_eigenvalues`` is given).
    random_state : int, default=0

    Returns
    -------
    SpectrumResult

    Raises
    ------
    InvalidParameterError
        Unknown Laplacian, ``n_eigenvalues`` out of [1, n_nodes], or a whole
        spectrum asked of a graph above 4000 nodes.
    InvalidInputError
        Negative or non-finite weights.

    References
    ----------
    Chung, "Spectral Graph Theory", AMS (1997), ch. 1 (normalised Laplacian;
    the multiplicity of 0 is the number of connected components).
    """
    from scipy.linalg import eigvalsh
    from scipy.sparse.csgraph import connected_components

    from backend.embed.graph import LaplacianEigenmaps

    if laplacian not in LAPLACIANS:
        raise InvalidParameterError(f"laplacian must be one of {LAPLACIANS}; got {laplacian!r}.")
    S, directed = as_adjacency(graph, what="the Laplacian spectrum")
    n = S.shape[0]
    S = symmetric_adjacency(S, directed)
    n_comp, _ = connected_components(S, directed=False)
    if n_eigenvalues is None:
        if n > _FULL_SPECTRUM_MAX_NODES:
            raise InvalidParameterError(
                f"the whole spectrum of a graph with {n} nodes needs a dense {n}×{n} "
                f"eigensolve (limit {_FULL_SPECTRUM_MAX_NODES} nodes); pass n_eigenvalues=... "
                "for the smallest ones."
            )
        vals = eigvalsh(graph_laplacian(S, laplacian).toarray())
        return SpectrumResult(vals, laplacian, n, int(n_comp), True, bool(directed))
    if (
        not isinstance(n_eigenvalues, (int, np.integer)) or isinstance(n_eigenvalues, bool)
        or not 1 <= n_eigenvalues <= n
    ):
        raise InvalidParameterError(
            f"n_eigenvalues must be None or an integer in [1, {n}]; got {n_eigenvalues!r}."
        )
    zeros = np.zeros(min(n_comp, n_eigenvalues))
    k = min(n_eigenvalues, n - n_comp)
    if k == 0 or n_eigenvalues <= n_comp:
        vals = zeros
    else:
        le = LaplacianEigenmaps(
            k, laplacian=laplacian, eigen_solver=eigen_solver, random_state=random_state,
            components="smallest",
        ).fit(S)
        vals = np.sort(np.concatenate([np.zeros(n_comp), le.eigenvalues_]))[:n_eigenvalues]
    complete = len(vals) == n
    return SpectrumResult(np.asarray(vals, dtype=np.float64), laplacian, n, int(n_comp),
                          bool(complete), bool(directed))


def rayleigh_quotient(
    graph,
    values,
    *,
    laplacian: str = "combinatorial",
    n_permutations: int = 199,
    random_state: int = 0,
) -> RayleighResult:
    """Spectral energy (Rayleigh quotient) of a node attribute over the graph.

    Parameters
    ----------
    graph : Graph or scipy.sparse matrix of shape (n_nodes, n_nodes)
        Weights may be negative for the combinatorial form (not for the
        normalised one, whose degrees must be positive). A directed graph is
        made undirected as S + Sᵀ; self-loops contribute nothing.
    values : array-like of shape (n_nodes,) or (n_nodes, n_columns)
        Numeric attribute(s); a 2-D input (e.g. a one-hot label matrix) gives
        the trace form Σ_c x_cᵀ L x_c / Σ_c x_cᵀ x_c. Rows with a NaN are left
        out: the quotient is taken on the subgraph induced by the other nodes.
    laplacian : {"combinatorial", "normalized"}, default="combinatorial"
        ``"combinatorial"``: xᵀ(D - S)x / xᵀx with x centred (its mean removed),
        in [0, λ_max]. ``"normalized"``: xᵀ(D - S)x / xᵀDx with x centred by its
        degree-weighted mean, in [0, 2]; scale-free in the degrees.
    n_permutations : int, default=199
        Random permutations of the values among the used nodes for the null.
    random_state : int, default=0

    Returns
    -------
    RayleighResult

    Raises
    ------
    InvalidParameterError
        Unknown Laplacian, ``n_permutations`` < 1.
    InvalidInputError
        Values of the wrong length, non-numeric, fewer than 2 finite rows, a
        constant attribute (its quotient is 0/0), or negative weights with
        ``laplacian="normalized"``.

    Notes
    -----
    .. math::
        x^\\top (D - S) x = \\tfrac12 \\sum_{i,j} S_{ij} (x_i - x_j)^2,

    small when neighbours carry similar values. The permutation null keeps the
    values and the graph and breaks their link.

    References
    ----------
    Shuman et al., "The emerging field of signal processing on graphs", IEEE
    Signal Process. Mag. 30 (2013), eq. 5 (graph Laplacian quadratic form).
    """
    if laplacian not in LAPLACIANS:
        raise InvalidParameterError(
            f"laplacian must be 'combinatorial' or 'normalized'; got {laplacian!r}."
        )
    if (
        not isinstance(n_permutations, (int, np.integer)) or isinstance(n_permutations, bool)
        or n_permutations < 1
    ):
        raise InvalidParameterError(
            f"n_permutations must be an integer >= 1; got {n_permutations!r}."
        )
    S, directed = as_adjacency(
        graph, nonnegative=laplacian == "normalized", what="the normalized Rayleigh quotient"
    )
    if directed:
        S = (S + S.T).tocsr()
    n = S.shape[0]
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            "values must be numeric; encode a categorical attribute as a one-hot matrix "
            "(pandas.get_dummies) first."
        ) from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != n:
        raise InvalidInputError(
            f"values must have one row per node ({n}); got shape {np.shape(values)}."
        )
    used = np.isfinite(x).all(axis=1)
    if used.sum() < 2:
        raise InvalidInputError(
            f"only {int(used.sum())} node(s) have finite values; the quotient needs at least 2."
        )
    if not used.all():
        idx = np.flatnonzero(used)
        S = S[idx][:, idx].tocsr()
        x = x[idx]
    S = S.tocoo()
    off = S.row != S.col
    r, c, w = S.row[off], S.col[off], S.data[off]
    deg = np.bincount(r, weights=w, minlength=x.shape[0])

    def quotient(v: np.ndarray) -> float:
        if laplacian == "combinatorial":
            v = v - v.mean(axis=0)
            den = float((v * v).sum())
        else:
            total = deg.sum()
            mean = (deg[:, None] * v).sum(axis=0) / total if total else v.mean(axis=0)
            v = v - mean
            den = float((deg[:, None] * v * v).sum())
        num = 0.5 * float((w[:, None] * (v[r] - v[c]) ** 2).sum())
        return num / den if den > 0 else float("nan")

    value = quotient(x)
    if not np.isfinite(value):
        raise InvalidInputError(
            "the attribute is constant over the used nodes (or, for the normalized form, over "
            "all nodes with edges), so its Rayleigh quotient is 0/0; choose another attribute."
        )
    rng = np.random.default_rng(random_state)
    null = np.array([quotient(x[rng.permutation(x.shape[0])]) for _ in range(n_permutations)])
    null_mean = float(np.nanmean(null))
    null_std = float(np.nanstd(null))
    return RayleighResult(
        value=float(value),
        null_mean=null_mean,
        null_std=null_std,
        ratio=float(value / null_mean) if null_mean else float("nan"),
        z_score=float((value - null_mean) / null_std) if null_std > 0 else float("nan"),
        p_value=float((1 + np.sum(null <= value)) / (1 + n_permutations)),
        n_used=int(x.shape[0]),
        n_nodes=int(n),
        laplacian=laplacian,
        n_permutations=int(n_permutations),
    )


# ---------------------------------------------------------------------------- private


def _positive_ints(values: Sequence[int], name: str) -> tuple[int, ...]:
    try:
        out = tuple(values)
    except TypeError:
        out = (values,)
    if not out or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in out
    ):
        raise InvalidParameterError(
            f"{name} must be a non-empty sequence of integers >= 1; got {values!r}."
        )
    return tuple(int(v) for v in out)


def _fractions(values: Sequence[float]) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"train_fractions must be a sequence of numbers in (0, 1); got {values!r}."
        ) from None
    if not out or not all(0.0 < v < 1.0 for v in out):
        raise InvalidParameterError(
            f"train_fractions must be a non-empty sequence of numbers in (0, 1); got {values!r}."
        )
    return out


def _binary_structure(graph) -> sp.csr_matrix:
    """0/1 CSR of the edges (any non-zero weight), self-loops removed; out-edges when directed."""
    B, _ = as_adjacency(graph, nonnegative=False, what="reconstruction")
    B.data = np.ones_like(B.data)
    B.setdiag(0)
    B.eliminate_zeros()
    return B.astype(np.float32)


def _embedding(embedding: np.ndarray, n: int) -> np.ndarray:
    X = np.asarray(embedding, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != n:
        raise InvalidInputError(
            f"the embedding must have one row per node ({n}); got shape {X.shape}."
        )
    if not np.isfinite(X).all():
        raise InvalidInputError("the embedding contains NaN or infinite values.")
    return np.ascontiguousarray(X)


def _within_hops(B: sp.csr_matrix, q: np.ndarray, max_hop: int) -> list[np.ndarray]:
    """For query rows q: bool (len(q), n) masks of nodes within 1..max_hop hops, self excluded."""
    reach = B[q]
    reach.data[:] = 1.0
    out = []
    rows = np.arange(len(q))
    for h in range(1, max_hop + 1):
        if h > 1:
            reach = reach + reach @ B
            reach.data[:] = 1.0
        dense = reach.toarray() > 0
        dense[rows, q] = False
        out.append(dense)
    return out


def _label_targets(labels, n: int):
    """(Y for the labelled rows, classes, multilabel, labelled mask, note)."""
    if sp.issparse(labels):
        L = labels.toarray()
    else:
        L = np.asarray(labels, dtype=object if not hasattr(labels, "dtype") else None)
    if L.ndim == 2:
        if L.shape[0] != n:
            raise InvalidInputError(
                f"the label matrix must have one row per node ({n}); got shape {L.shape}."
            )
        try:
            Lb = L.astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError("a 2-D label matrix must hold 0/1 or booleans.") from None
        if not np.isin(Lb, (0.0, 1.0)).all():
            raise InvalidInputError("a 2-D label matrix must hold 0/1 or booleans.")
        Lb = Lb.astype(np.int64)
        labelled = Lb.any(axis=1)
        if L.shape[1] < 2:
            raise InvalidInputError(f"the probe needs at least 2 classes; got {L.shape[1]}.")
        n_un = int((~labelled).sum())
        note = (f"{n_un:,} of {n:,} nodes have no label and are left out of the probe."
                if n_un else None)
        return Lb[labelled], np.arange(L.shape[1]), True, labelled, note
    if L.ndim != 1 or L.shape[0] != n:
        raise InvalidInputError(
            f"labels must have one entry per node ({n}) or be an (n, n_classes) indicator; got "
            f"shape {L.shape}."
        )
    unlabelled, note = unlabelled_mask(L)
    labelled = ~unlabelled
    classes, y = np.unique(pd.Series(L)[labelled].to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise InvalidInputError(
            f"the probe needs at least 2 classes; got {len(classes)}"
            f"{' (' + note + ')' if note else ''}.")
    return y.astype(np.int64), classes, False, labelled, note


def _multilabel_predict(proba: np.ndarray, truth: np.ndarray, mode: str) -> np.ndarray:
    if mode == "threshold":
        return (proba > 0.5).astype(np.int64)
    k = truth.sum(axis=1)
    order = np.argsort(-proba, axis=1, kind="stable")
    pred = np.zeros_like(truth)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(proba.shape[1])[None, :].repeat(len(order), 0), 1)
    pred[ranks < k[:, None]] = 1
    return pred
