"""Job kinds of graphs: node embeddings, a layout with communities, reconstruction diagnostics.

A graph dataset (kind ``"graph"``) stores its node table as the dataset table (one row per
node, ``_row`` = node index; an ``id`` column and the attributes, plus ``degree``), zero-width
vectors, and its edges as ``edges.parquet`` (``source``, ``target`` node indices and
``weight``; an undirected edge once with ``source <= target``). ``extra`` holds
``directed``, the loader's report (``graph_report``: sizes and findings) and the
``label_column`` when one is known.

* ``graph_embed`` stores FastRP or Laplacian eigenmaps as a NEW ``"vectors"`` dataset (the
  node table, ``extra["derived_from"]``/``["graph_dataset"]``), so the Map page and every
  projection work on it; its sidecar returns ``{"derived_dataset": id}``.
* ``graph_layout``: force-directed positions (optional) and Louvain communities,
  ``layout.parquet`` with ``_row, [x, y,] community, degree``.
* ``graph_diagnostics``: RESTORE reconstruction mAP (1..3 hops) of an embedding and of a random
  embedding of the same shape, the node-classification probe when a label column exists, the
  Laplacian spectrum, and the Rayleigh quotient of a numeric node attribute.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from backend.errors import InvalidInputError, InvalidParameterError
from backend.jobs import JobContext, JobKind, register
from backend.params import Param, ParamSpec
from backend.results import Result
from backend.store import DatasetInfo, Store

__all__ = [
    "EDGES_FILE",
    "EMBED_METHODS",
    "GRAPH_LABEL_COLUMNS",
    "graph_dataset_parts",
    "stored_graph",
]

EDGES_FILE = "edges.parquet"
EMBED_METHODS = ("fastrp", "eigenmaps")
#: Label column of each bundled example graph (None: it has no node labels).
GRAPH_LABEL_COLUMNS = {"karate_club": "club", "les_miserables": None, "florentine_families": None}
FORCE_MAX_NODES = 3000
SPECTRUM_FULL_MAX = 2000
MAX_CLASSES = 200


# ---------------------------------------------------------------------------------------
# storage


def graph_dataset_parts(graph, report, *, label_column: str | None = None):
    """The table, the edges file and the ``extra`` of a graph dataset.

    Returns
    -------
    table : DataFrame
        The node table (``id`` and attributes) with a ``degree`` column added (neighbours,
        self-loops excluded; for a directed graph in and out together) unless one exists.
    edges : bytes
        ``edges.parquet``: ``source``, ``target`` (int64 node indices), ``weight``.
    extra : dict
    """
    table = graph.nodes.copy()
    if "degree" not in table.columns:
        table["degree"] = graph.degrees("both")
    buf = io.BytesIO()
    graph.edge_frame().to_parquet(buf, index=False)
    if label_column is None:
        label_column = _guess_label_column(table)
    extra = {
        "directed": bool(graph.directed),
        "weighted": bool(report.weighted),
        "n_edges": int(graph.n_edges),
        "graph_report": report.to_dict(),
        "label_column": label_column,
        "edges_file": EDGES_FILE,
    }
    return table, buf.getvalue(), extra


def _guess_label_column(table: pd.DataFrame) -> str | None:
    """A node-table column that looks like a class label (2..MAX_CLASSES values, repeated)."""
    for col in ("label", "labels", "class", "club", "community", "group", "category"):
        if col in table.columns and 2 <= table[col].nunique() <= MAX_CLASSES:
            return col
    return None


def stored_graph(store: Store, info: DatasetInfo):
    """The :class:`~backend.datasets.graph.Graph` of a stored graph dataset.

    Raises
    ------
    InvalidInputError
        If the dataset is not a graph.
    """
    from backend.datasets.graph import Graph

    if info.kind != "graph":
        raise InvalidInputError(
            f"dataset {info.name!r} is of kind {info.kind!r}, not a graph; add a graph on the "
            "Graph page (an edge list, or a bundled example)."
        )
    edges = pd.read_parquet(store.dataset_file(info.id, EDGES_FILE))
    n = info.n_rows
    s = edges["source"].to_numpy(np.int64)
    t = edges["target"].to_numpy(np.int64)
    w = edges["weight"].to_numpy(np.float64)
    directed = bool(info.extra.get("directed", False))
    if not directed:
        off = s != t
        s, t, w = np.concatenate([s, t[off]]), np.concatenate([t, s[off]]), np.concatenate([w, w[off]])
    A = sp.csr_matrix((w, (s, t)), shape=(n, n))
    A.sum_duplicates()
    A.eliminate_zeros()
    nodes = store.table(info.id).drop(columns=["_row"])
    ids = nodes["id"].to_numpy() if "id" in nodes.columns else np.arange(n)
    return Graph(A, ids, nodes, directed, info.name)


def _node_table(ctx: JobContext) -> pd.DataFrame:
    return ctx.table().drop(columns=["_row"])


# ---------------------------------------------------------------------------------------
# graph_embed


def _weights_list(v: Any) -> list[float]:
    if isinstance(v, str):
        try:
            v = [float(x) for x in v.replace(";", ",").split(",") if x.strip()]
        except ValueError:
            raise InvalidParameterError(
                f"iteration_weights must be numbers separated by commas, e.g. '0, 1, 1'; got {v!r}."
            ) from None
    if (not isinstance(v, (list, tuple)) or not 1 <= len(v) <= 10
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
        raise InvalidParameterError(
            f"iteration_weights must be a list of 1 to 10 numbers (one per power); got {v!r}.")
    if not any(float(x) != 0 for x in v) or not all(np.isfinite(float(x)) for x in v):
        raise InvalidParameterError(
            f"iteration_weights must be finite with at least one non-zero weight; got {list(v)}.")
    return [float(x) for x in v]


def _parse_weights(v: Any, name: str) -> list[float]:
    return _weights_list(v)


def _parse_fractions(v: Any, name: str) -> list[float]:
    if (not isinstance(v, (list, tuple)) or not 1 <= len(v) <= 9
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < 1
                       for f in v)):
        raise InvalidParameterError(f"{name} must be 1 to 9 numbers in (0, 1); got {v!r}.")
    return [float(f) for f in v]


def _parse_sparsity(v: Any, name: str) -> float | str:
    if v == "sqrt_n":
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1.0 <= v <= 1e6:
        raise InvalidParameterError(f"{name} must be 'sqrt_n' or a number in [1, 1e6]; got {v!r}.")
    return float(v)


GRAPH_EMBED_PARAMS = ParamSpec(
    Param("method", str, "fastrp", choices=EMBED_METHODS, help="FastRP or Laplacian eigenmaps."),
    Param("n_components", int, 64, low=1, high=2048, label="n_components (d)",
          help="Dimensions of the node embedding (eigenmaps: at most the largest connected "
               "component's size - 1)."),
    Param("iteration_weights", list, [0.0, 1.0, 1.0], parse=_parse_weights,
          help="FastRP: alpha_i of A¹, A², …; the paper's BlogCatalog setting is 0, 0, 1, 6.67."),
    Param("beta", float, 0.0, low=-2.0, high=2.0, step=0.01, label="β (degree normalisation)",
          help="FastRP: negative values down-weight hubs."),
    Param("sparsity", object, 3.0, parse=_parse_sparsity, label="sparsity s",
          help="FastRP: 3 gives every node a non-zero random vector; 'sqrt_n' is the paper's "
               "choice and leaves many zero rows at small d."),
    Param("self_influence", float, 0.0, low=0.0, high=100.0, help="FastRP: weight of A⁰."),
    Param("normalize_powers", bool, True, help="FastRP: L2-normalise each power's rows."),
    Param("direction", str, "both", choices=("both", "out", "in"),
          help="FastRP on directed graphs: which edges propagate."),
    Param("laplacian", str, "normalized", choices=("normalized", "combinatorial"),
          help="Eigenmaps: the Laplacian decomposed."),
    Param("random_state", int, 0, low=0, high=2**32 - 1, nullable=True, help="Seed."),
)
GRAPH_LAYOUT_PARAMS = ParamSpec(
    Param("force", bool, None, nullable=True,
          help=f"Force-directed positions (O(n²) per iteration; at most {FORCE_MAX_NODES:,} "
               "nodes); null: when the graph is small enough."),
    Param("iterations", int, 50, low=1, high=1000, help="Force layout iterations."),
    Param("resolution", float, 1.0, low=0.01, high=100.0, help="Louvain resolution."),
    Param("random_state", int, 0, low=0, high=2**32 - 1, nullable=True, help="Seed."),
)
GRAPH_DIAGNOSTICS_PARAMS = ParamSpec(
    Param("embedding", str, None, store_id=True,
          help="Id of a node embedding of this graph (the dataset a graph_embed job made)."),
    Param("label_column", str, "auto", auto=True, nullable=True, column=True,
          label="Label column (probe)",
          help="Node labels for the classification probe; 'auto': the graph's label column."),
    Param("attribute", str, None, nullable=True, column=True,
          label="Attribute (Rayleigh quotient)",
          help="A numeric node attribute whose smoothness over the graph is measured."),
    Param("metric", str, "cosine", choices=("cosine", "dot", "euclidean"),
          help="Similarity that ranks nodes in the reconstruction."),
    Param("n_samples", int, 2000, low=10, high=20_000, help="Nodes ranked in the reconstruction."),
    Param("train_fractions", list, [0.1, 0.5, 0.9], parse=_parse_fractions,
          help="Training shares of the probe."),
    Param("n_repeats", int, 5, low=1, high=20, help="Probe repeats per training share."),
    Param("C", float, 1.0, low=1e-4, high=1e4, help="Inverse regularisation of the probe."),
    Param("n_eigenvalues", int, "auto", auto=True, low=1, high=1000,
          help=f"Laplacian eigenvalues computed; 'auto': all up to {SPECTRUM_FULL_MAX:,} nodes, "
               "else 100."),
    Param("baseline", bool, True, help="Also score a random embedding of the same shape."),
    Param("random_state", int, 0, low=0, high=2**32 - 1, nullable=True, help="Seed."),
)


@dataclass(frozen=True)
class GraphEmbedResult(Result):
    """A node embedding, stored as the vectors dataset ``derived_dataset``."""

    derived_dataset: str
    embed_seconds: float
    embedding_report: dict[str, Any]


@dataclass(frozen=True)
class GraphLayoutResult(Result):
    """``layout.parquet``: ``_row``, [``x``, ``y``,] ``community``, ``degree``."""

    n_communities: int
    modularity: float
    community_weights: str


@dataclass(frozen=True)
class GraphDiagnosticsResult(Result):
    """``graph_diagnostics.json`` (and ``spectrum.npy`` when computed)."""

    embedding: str


def _check_graph_embed(p: dict[str, Any], info: DatasetInfo) -> None:
    if p["method"] == "eigenmaps":
        # each connected component is embedded on its own (components="separate"), so the
        # largest one bounds d: it has `largest - 1` non-trivial eigenvectors
        report = info.extra.get("graph_report", {})
        n_comp = int(report.get("n_components", 1))
        largest = report.get("largest_component")
        hi = max(1, int(largest) - 1 if largest else info.n_rows - n_comp)
        if p["n_components"] > hi:
            where = (f"its largest connected component has {int(largest):,} of {info.n_rows:,} "
                     "nodes" if largest else f"{info.n_rows:,} nodes, {n_comp} component(s)")
            raise InvalidParameterError(
                f"n_components must be at most {hi} for Laplacian eigenmaps of {info.name!r} "
                f"({where}); got {p['n_components']}.")


def _check_graph_layout(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    if p["force"] and info.n_rows > FORCE_MAX_NODES:
        raise InvalidParameterError(
            f"the force layout is O(n²) per iteration and {info.name!r} has {info.n_rows:,} "
            f"nodes (limit {FORCE_MAX_NODES:,}); place the nodes by a projection of their "
            "embedding instead (force=False).")
    if p["force"] is None:
        return {**p, "force": info.n_rows <= FORCE_MAX_NODES}
    return None


def _check_graph_diagnostics(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    if p["embedding"] is None:
        raise InvalidParameterError(
            f"embedding must be the id of a node embedding of {info.name!r} (the dataset a "
            "graph_embed job made); got None.")
    out = dict(p)
    if out["label_column"] == "auto":
        label = info.extra.get("label_column")
        out["label_column"] = label if label in info.columns else None
    if out["n_eigenvalues"] == "auto":
        out["n_eigenvalues"] = None if info.n_rows <= SPECTRUM_FULL_MAX else 100
    elif out["n_eigenvalues"] > info.n_rows:
        raise InvalidParameterError(
            f"n_eigenvalues must be at most the {info.n_rows:,} nodes; got {out['n_eigenvalues']}.")
    return out


def run_graph_embed(ctx: JobContext) -> GraphEmbedResult:
    from backend.embed.graph import FastRP, LaplacianEigenmaps

    p = ctx.params
    ctx.progress(0.02, "reading the graph")
    graph = stored_graph(ctx.store, ctx.dataset)
    t0 = time.perf_counter()
    prog = lambda f, m: ctx.progress(0.05 + 0.85 * f, m)  # noqa: E731
    report: dict[str, Any] = {}
    if p["method"] == "fastrp":
        est = FastRP(p["n_components"], iteration_weights=tuple(p["iteration_weights"]),
                     beta=p["beta"], sparsity=p["sparsity"], self_influence=p["self_influence"],
                     normalize_powers=p["normalize_powers"], direction=p["direction"],
                     random_state=p["random_state"], device=ctx.device)
        emb = est.fit_transform(graph, progress=prog)
        report = {"n_isolated": int(len(est.isolated_)), "sparsity": float(est.sparsity_),
                  "n_zero_projection_rows": int(est.n_zero_projection_rows_),
                  "direction": est.direction_}
        title = (f"FastRP d={p['n_components']}, weights {p['iteration_weights']}, "
                 f"β={p['beta']:g}")
    else:
        est = LaplacianEigenmaps(p["n_components"], laplacian=p["laplacian"],
                                 random_state=p["random_state"])
        emb = est.fit_transform(graph, progress=prog)
        report = {"eigenvalues": np.asarray(est.eigenvalues_).tolist(),
                  "n_connected_components": int(est.n_connected_components_),
                  "n_isolated": int(len(est.isolated_)), "eigen_solver": est.eigen_solver_,
                  "symmetrized": bool(est.symmetrized_), "components": est.components,
                  "n_outside_largest": est.n_outside_largest_, "n_zero_rows": est.n_zero_rows_}
        if est.n_connected_components_ > 1:
            report["note"] = (
                f"{est.n_connected_components_:,} connected components; the "
                f"{est.n_outside_largest_:,} nodes outside the largest are embedded per "
                "component (column j = the j-th eigenvector of the node's own component), "
                + (f"{est.n_zero_rows_:,} isolated node(s) sit at 0." if est.n_zero_rows_
                   else "no node sits at 0."))
        title = f"Laplacian eigenmaps d={p['n_components']} ({p['laplacian']})"
    seconds = time.perf_counter() - t0
    emb = np.asarray(emb, dtype=np.float32)
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():  # e.g. weights near float32's range overflow the powers' sum: store nothing
        raise InvalidInputError(
            f"the {title} embedding overflowed: {int(bad.sum()):,} of {len(emb):,} nodes got "
            "NaN or infinite coordinates, so nothing was stored. Use smaller iteration_weights "
            "(e.g. '0, 1, 1') or a smaller beta.")
    ctx.progress(0.92, "storing the node embedding")
    src = ctx.dataset
    derived = ctx.store.add_dataset(
        _node_table(ctx), emb,
        name=f"{src.name} → {title}",
        source=f"{title} of the graph {src.name!r}",
        extra={"derived_from": src.id, "job_id": ctx.job_id, "graph_dataset": src.id,
               "label_column": src.extra.get("label_column"), "graph_embedding": p["method"],
               "graph_embed_params": {k: v for k, v in p.items() if k != "device"},
               "feature_names": [f"e{i}" for i in range(emb.shape[1])]},
    )
    ctx.progress(1.0, "done")
    return GraphEmbedResult(derived_dataset=derived.id, embed_seconds=round(seconds, 4),
                            embedding_report=report)


# ---------------------------------------------------------------------------------------
# graph_layout


def run_graph_layout(ctx: JobContext) -> GraphLayoutResult:
    import networkx as nx

    from backend.embed.graph import force_layout

    p = ctx.params
    ctx.progress(0.02, "reading the graph")
    graph = stored_graph(ctx.store, ctx.dataset)
    out = pd.DataFrame({"_row": np.arange(graph.n_nodes, dtype=np.int64)})
    if p["force"]:
        ctx.progress(0.1, "force-directed layout")
        pos = force_layout(graph, iterations=p["iterations"], random_state=p["random_state"])
        out["x"], out["y"] = pos[:, 0], pos[:, 1]
    ctx.progress(0.6, "Louvain communities")
    G = graph.to_networkx()
    if graph.directed:
        G = G.to_undirected()
    negative = graph.adjacency.nnz and graph.adjacency.data.min() < 0
    comms = nx.community.louvain_communities(
        G, weight=None if negative else "weight", resolution=p["resolution"],
        seed=p["random_state"])
    comms = sorted(comms, key=lambda c: (-len(c), min(c)))  # community 0 is the largest
    label = np.zeros(graph.n_nodes, dtype=np.int64)
    for i, c in enumerate(comms):
        label[list(c)] = i
    out["community"] = label
    out["degree"] = graph.degrees("both")
    modularity = float(nx.community.modularity(G, comms, weight=None if negative else "weight"))
    ctx.save_parquet("layout.parquet", out)
    ctx.progress(1.0, "done")
    return GraphLayoutResult(n_communities=len(comms), modularity=modularity,
                             community_weights="unweighted" if negative else "weight")


# ---------------------------------------------------------------------------------------
# graph_diagnostics


def run_graph_diagnostics(ctx: JobContext) -> GraphDiagnosticsResult:
    from backend.diagnostics.graph import (
        laplacian_spectrum,
        node_classification_probe,
        rayleigh_quotient,
        reconstruction_map,
        unlabelled_mask,
    )

    p = ctx.params
    graph = stored_graph(ctx.store, ctx.dataset)
    emb_info = ctx.store.dataset(p["embedding"])
    if emb_info.extra.get("graph_dataset") != ctx.dataset.id or emb_info.n_rows != graph.n_nodes:
        raise InvalidInputError(
            f"dataset {emb_info.name!r} is not a node embedding of {ctx.dataset.name!r}; "
            "embed this graph first (graph_embed) and pass the dataset it made.")
    X = np.array(ctx.store.vectors(emb_info.id), dtype=np.float32)  # writable for torch
    result: dict[str, Any] = {"embedding": emb_info.id, "embedding_name": emb_info.name,
                              "n_nodes": graph.n_nodes, "n_dims": int(X.shape[1])}
    span = 0.45 if p["baseline"] else 0.6
    rec = reconstruction_map(
        X, graph, metric=p["metric"], n_samples=p["n_samples"], random_state=p["random_state"],
        device=ctx.device, progress=lambda f, m: ctx.progress(span * f, f"reconstruction: {m}"))
    result["reconstruction"] = rec.to_dict()
    if p["baseline"]:
        rng = np.random.default_rng(p["random_state"])
        R = rng.standard_normal(X.shape).astype(np.float32)
        base = reconstruction_map(
            R, graph, metric=p["metric"], n_samples=p["n_samples"],
            random_state=p["random_state"], device=ctx.device,
            progress=lambda f, m: ctx.progress(0.45 + 0.15 * f, f"random baseline: {m}"))
        result["reconstruction_random"] = base.to_dict()
    nodes = _node_table(ctx)
    label = p["label_column"]
    result["probe"] = None
    if label is not None:
        ctx.progress(0.62, f"node-classification probe on {label!r}")
        values = nodes[label]
        unlabelled, unlabelled_note = unlabelled_mask(values.to_numpy())
        n_classes = values[~unlabelled].nunique()
        if not 2 <= n_classes <= MAX_CLASSES:
            result["probe_note"] = (f"{label!r} has {n_classes} distinct label values; the "
                                    f"probe needs 2 to {MAX_CLASSES} classes."
                                    + (f" {unlabelled_note}" if unlabelled_note else ""))
        else:
            labels = values.astype(object).where(values.notna(), None).to_numpy()
            try:
                probe = node_classification_probe(
                    X, labels, train_fractions=p["train_fractions"], n_repeats=p["n_repeats"],
                    C=p["C"], random_state=p["random_state"],
                    progress=lambda f, m: ctx.progress(0.62 + 0.2 * f, f"probe: {m}"))
                result["probe"] = probe.to_dict()
                result["probe_label"] = label
            except InvalidInputError as e:
                result["probe_note"] = str(e)
    ctx.progress(0.85, "Laplacian spectrum")
    try:
        spec = laplacian_spectrum(graph, n_eigenvalues=p["n_eigenvalues"],
                                  random_state=p["random_state"])
        ctx.save_npy("spectrum.npy", spec.eigenvalues)
        result["spectrum"] = {k: v for k, v in spec.to_dict().items() if k != "eigenvalues"}
    except InvalidInputError as e:
        result["spectrum"] = None
        result["spectrum_note"] = str(e)
    result["rayleigh"] = None
    if p["attribute"] is not None:
        ctx.progress(0.95, f"Rayleigh quotient of {p['attribute']!r}")
        values = pd.to_numeric(nodes[p["attribute"]], errors="coerce").to_numpy(np.float64)
        try:
            result["rayleigh"] = rayleigh_quotient(graph, values, random_state=p["random_state"]).to_dict()
            result["rayleigh_attribute"] = p["attribute"]
        except InvalidInputError as e:
            result["rayleigh_note"] = str(e)
    ctx.save_json("graph_diagnostics.json", result)
    ctx.progress(1.0, "done")
    return GraphDiagnosticsResult(embedding=emb_info.id)


GRAPH_EMBED = register(JobKind(
    "graph_embed", params=GRAPH_EMBED_PARAMS, run=run_graph_embed, result=GraphEmbedResult,
    dataset_kinds=("graph",), check=_check_graph_embed, title="Node embedding"))
GRAPH_LAYOUT = register(JobKind(
    "graph_layout", params=GRAPH_LAYOUT_PARAMS, run=run_graph_layout, result=GraphLayoutResult,
    files=("layout.parquet",), dataset_kinds=("graph",), check=_check_graph_layout,
    title="Layout and communities"))
GRAPH_DIAGNOSTICS = register(JobKind(
    "graph_diagnostics", params=GRAPH_DIAGNOSTICS_PARAMS, run=run_graph_diagnostics,
    result=GraphDiagnosticsResult, files=("graph_diagnostics.json",), dataset_kinds=("graph",),
    check=_check_graph_diagnostics, title="Graph diagnostics"))
