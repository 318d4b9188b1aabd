"""Graphs: edge lists with an optional node table, and the networkx example graphs.

A graph enters as an edge list (CSV/TSV: source, target, optional weight) and an
optional node table (one row per node: id plus attributes or labels). The loader
builds a :class:`Graph` (scipy CSR adjacency, node ids, node table, directed flag)
and a :class:`GraphReport` that lists what it found in the data. It never fixes the
data silently: every oddity is either kept and reported, or refused with an
:class:`~backend.errors.InvalidInputError` that says what to do.

What each finding means and what the loader does with it
--------------------------------------------------------
``self_loops``
    Rows with ``source == target``. Kept: the weight is stored once on the
    diagonal (``A[i, i] = w``, counted once in the row sum, scipy's convention).
``duplicate_edges``
    Rows that repeat a node pair already listed (for undirected graphs ``b,a``
    repeats ``a,b``). Combined by the ``duplicates`` option: ``"sum"`` (default;
    a repeated row is one more interaction, scipy's convention), ``"max"``,
    ``"first"``, or ``"error"`` to refuse the file.
``negative_weights``
    Kept in the adjacency. FastRP, Laplacian eigenmaps and the Laplacian
    spectrum refuse such a graph with a message; the Rayleigh quotient accepts it.
``zero_weights``
    A weight-0 edge carries nothing; it is left out of the adjacency (so it
    does not count as a neighbour anywhere) and counted here.
``ids_only_in_edges``
    Ids in the edge list that the node table lacks. Added as nodes whose
    attributes are missing (NaN).
``ids_only_in_nodes``
    Node-table ids that no edge mentions. Kept as isolated nodes.
``isolated_nodes``
    Nodes with no edge to another node (self-loops do not count). Kept; FastRP
    and Laplacian eigenmaps give them a defined embedding (see their docs).
``disconnected``
    More than one (weakly) connected component. Kept; reported because
    spectral methods treat each component separately.

Hard errors (:class:`~backend.errors.InvalidInputError`): an empty file or one with
a header but no rows, missing columns, empty node ids, weights that are missing or
not numbers, non-finite weights, repeated ids in the node table.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from backend.datasets.delimited import detect_separator, first_row_is_header
from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "ENDPOINT_NAMES",
    "EXAMPLE_GRAPHS",
    "Graph",
    "GraphFinding",
    "GraphReport",
    "as_adjacency",
    "edge_list_columns",
    "graph_from_frames",
    "load_edge_list",
    "load_example_graph",
    "node_label_matrix",
]

EXAMPLE_GRAPHS = ("karate_club", "les_miserables", "florentine_families")
DUPLICATE_POLICIES = ("sum", "max", "first", "error")
FINDING_KINDS = (
    "self_loops",
    "duplicate_edges",
    "negative_weights",
    "zero_weights",
    "ids_only_in_edges",
    "ids_only_in_nodes",
    "isolated_nodes",
    "disconnected",
)
_NODE_ID_CANDIDATES = ("id", "node", "node_id", "name")
#: Endpoint column pairs recognised by name (case ignored), in order of preference.
ENDPOINT_NAMES = (
    ("source", "target"), ("src", "dst"), ("from", "to"), ("u", "v"), ("source_id", "target_id"),
    ("src_id", "dst_id"), ("from_id", "to_id"), ("node1", "node2"), ("node_1", "node_2"),
    ("id1", "id2"), ("sender", "receiver"), ("head", "tail"), ("start", "end"),
)
_N_EXAMPLES = 5
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".edges", ".edgelist", ".el")
_INT_RE = re.compile(r"^[+-]?\d+$")

PathOrBuffer = str | os.PathLike | IO[str] | IO[bytes]


@dataclass(frozen=True)
class GraphFinding:
    """One thing the loader found in the data.

    Attributes
    ----------
    kind : str
        One of ``self_loops``, ``duplicate_edges``, ``negative_weights``,
        ``zero_weights``, ``ids_only_in_edges``, ``ids_only_in_nodes``,
        ``isolated_nodes``, ``disconnected``.
    count : int
        How many rows, nodes or components (the message says which).
    action : str
        What the loader did, e.g. ``"kept"``, ``"summed"``, ``"added"``.
    message : str
        A sentence for the user, with numbers and what to do.
    examples : tuple of str
        Up to five example ids or pairs.
    """

    kind: str
    count: int
    action: str
    message: str
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "kind": self.kind,
            "count": int(self.count),
            "action": self.action,
            "message": self.message,
            "examples": list(self.examples),
        }


@dataclass(frozen=True)
class GraphReport:
    """What the loader found, for the user to read.

    Attributes
    ----------
    n_nodes, n_edges : int
        Size of the resulting graph; ``n_edges`` counts node pairs with a non-zero
        weight (an undirected edge once, a self-loop once).
    n_edge_rows : int
        Rows read from the edge list.
    directed, weighted : bool
    n_components : int
        Connected components (weakly connected for a directed graph), isolated
        nodes included, each counting as one.
    findings : tuple of GraphFinding
        Empty when the data had nothing to report.
    largest_component : int or None
        Nodes in the largest connected component (None in reports stored before it was
        recorded).
    """

    n_nodes: int
    n_edges: int
    n_edge_rows: int
    directed: bool
    weighted: bool
    n_components: int
    findings: tuple[GraphFinding, ...] = ()
    largest_component: int | None = None  # nodes; None in reports stored before it was kept

    def get(self, kind: str) -> GraphFinding | None:
        """The finding of this kind, or None when the data had none."""
        for f in self.findings:
            if f.kind == kind:
                return f
        return None

    def count(self, kind: str) -> int:
        """The count of a finding kind; 0 when absent."""
        f = self.get(kind)
        return 0 if f is None else f.count

    def messages(self) -> list[str]:
        """The findings as sentences, in the order they were found."""
        return [f.message for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {
            "n_nodes": int(self.n_nodes),
            "n_edges": int(self.n_edges),
            "n_edge_rows": int(self.n_edge_rows),
            "directed": bool(self.directed),
            "weighted": bool(self.weighted),
            "n_components": int(self.n_components),
            "findings": [f.to_dict() for f in self.findings],
            "largest_component": self.largest_component,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GraphReport:
        """Inverse of :meth:`to_dict`."""
        findings = tuple(
            GraphFinding(
                f["kind"], int(f["count"]), f["action"], f["message"], tuple(f["examples"])
            )
            for f in d["findings"]
        )
        return cls(
            int(d["n_nodes"]), int(d["n_edges"]), int(d["n_edge_rows"]), bool(d["directed"]),
            bool(d["weighted"]), int(d["n_components"]), findings, d.get("largest_component"),
        )


@dataclass(frozen=True, eq=False)
class Graph:
    """A graph with node ids and a node table.

    Attributes
    ----------
    adjacency : scipy.sparse.csr_matrix of shape (n_nodes, n_nodes), float64
        ``adjacency[i, j]`` is the weight of the edge i → j (1.0 for unweighted
        edges). Symmetric when ``directed`` is False. A self-loop is stored once on
        the diagonal. No explicit zeros are stored.
    node_ids : ndarray of shape (n_nodes,)
        The id of each node, int64 when every id in the data is an integer,
        else object (str). Row i of ``adjacency`` and of ``nodes`` is node
        ``node_ids[i]``.
    nodes : pandas.DataFrame of shape (n_nodes, 1 + n_attributes)
        Column ``"id"`` (equal to ``node_ids``) then the node table's other
        columns; missing attributes are NaN. Index 0..n_nodes-1.
    directed : bool
    name : str
    """

    adjacency: sp.csr_matrix
    node_ids: np.ndarray
    nodes: pd.DataFrame
    directed: bool
    name: str = ""

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.adjacency.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of edges: stored pairs, an undirected edge and a self-loop counted once."""
        if self.directed:
            return int(self.adjacency.nnz)
        n_loops = int(np.count_nonzero(self.adjacency.diagonal()))
        return (int(self.adjacency.nnz) - n_loops) // 2 + n_loops

    @property
    def weighted(self) -> bool:
        """True when some stored weight differs from 1."""
        return bool(np.any(self.adjacency.data != 1.0))

    def degrees(self, direction: str = "out") -> np.ndarray:
        """Number of neighbours of each node, self-loops excluded.

        Parameters
        ----------
        direction : {"out", "in", "both"}, default="out"
            For a directed graph: out-neighbours, in-neighbours, or the union.
            The three agree for an undirected graph.

        Returns
        -------
        ndarray of shape (n_nodes,), int64
        """
        if direction not in ("out", "in", "both"):
            raise InvalidParameterError(
                f"direction must be 'out', 'in' or 'both'; got {direction!r}."
            )
        S = self.adjacency.copy()
        S.setdiag(0)
        S.eliminate_zeros()
        S.data[:] = 1.0
        if direction == "in":
            S = S.T.tocsr()
        elif direction == "both" and self.directed:
            S = ((S + S.T) > 0).astype(np.float64).tocsr()
        return np.diff(S.indptr).astype(np.int64)

    def edge_frame(self) -> pd.DataFrame:
        """The edges as a table of node indices.

        Returns
        -------
        pandas.DataFrame
            Columns ``source``, ``target`` (int64 row indices into ``node_ids``)
            and ``weight`` (float64); an undirected edge appears once with
            ``source <= target``.
        """
        A = self.adjacency.tocoo()
        keep = np.ones(A.nnz, dtype=bool) if self.directed else A.row <= A.col
        return pd.DataFrame(
            {
                "source": A.row[keep].astype(np.int64),
                "target": A.col[keep].astype(np.int64),
                "weight": A.data[keep].astype(np.float64),
            }
        )

    def to_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Edge and node tables with node ids, for storage.

        ``graph_from_frames(edges, nodes, directed=g.directed, weight="weight",
        node_id="id")`` rebuilds the same adjacency, node order and node table.

        Returns
        -------
        edges : pandas.DataFrame
            Columns ``source``, ``target`` (node ids) and ``weight``, as
            :meth:`edge_frame`.
        nodes : pandas.DataFrame
            The node table (a copy).
        """
        edges = self.edge_frame()
        edges["source"] = self.node_ids[edges["source"].to_numpy()]
        edges["target"] = self.node_ids[edges["target"].to_numpy()]
        return edges, self.nodes.copy()

    def to_networkx(self):
        """The graph as a networkx ``Graph``/``DiGraph`` on node indices 0..n-1.

        Edge attribute ``weight``; node attributes are the ``nodes`` columns.
        """
        import networkx as nx

        G = nx.DiGraph() if self.directed else nx.Graph()
        G.add_nodes_from(range(self.n_nodes))
        edges = self.edge_frame()
        G.add_weighted_edges_from(
            zip(edges["source"].tolist(), edges["target"].tolist(), edges["weight"].tolist())
        )
        return G


def load_edge_list(
    edges: PathOrBuffer,
    nodes: PathOrBuffer | pd.DataFrame | None = None,
    *,
    directed: bool = False,
    source: str = "auto",
    target: str = "auto",
    weight: str | None = "auto",
    node_id: str = "auto",
    sep: str = "auto",
    header: bool | str = "auto",
    duplicates: str = "sum",
    name: str = "",
) -> tuple[Graph, GraphReport]:
    """Read an edge list file (and an optional node table) into a :class:`Graph`.

    Parameters
    ----------
    edges : path or file-like
        CSV, TSV or whitespace-separated text, UTF-8. A line starting with ``#``
        is a comment; a ``#`` elsewhere is part of the text (ids may contain it).
    nodes : path, file-like, DataFrame or None, default=None
        Node table: one row per node, an id column and any attributes or labels.
    directed : bool, default=False
        Whether an edge ``a,b`` goes only from a to b.
    source, target : str, default="auto"
        Column names of the edge endpoints (ignored without a header). ``"auto"``
        takes the first pair present among :data:`ENDPOINT_NAMES` (``source``/``target``,
        ``src``/``dst``, ``from``/``to``, ``u``/``v``, …; case ignored).
    weight : str or None, default="auto"
        Weight column. ``"auto"`` uses a column named ``weight`` when there is
        one; ``None`` ignores any weight column (every edge weighs 1).
    node_id : str, default="auto"
        Id column of the node table; ``"auto"`` takes the first of ``id``,
        ``node``, ``node_id``, ``name`` that exists.
    sep : str, default="auto"
        Field separator; ``"auto"``: the one that splits the first lines evenly
        (tab, semicolon, comma, pipe, else runs of spaces), the file extension's
        (``.csv``, ``.tsv``, ``.tab``) first when it does
        (:func:`backend.datasets.delimited.detect_separator`).
    header : bool or "auto", default="auto"
        Whether the first line names the columns. Without a header the columns
        are source, target and (if present) weight, in that order. ``"auto"``: no
        header when the first (non-comment) line is numbers like the lines after
        it (:func:`backend.datasets.delimited.first_row_is_header`).
    duplicates : {"sum", "max", "first", "error"}, default="sum"
        How repeated node pairs are combined (see the module notes).
    name : str, default=""
        Name of the graph; defaults to the file name.

    Returns
    -------
    graph : Graph
    report : GraphReport

    Raises
    ------
    InvalidInputError
        Empty file, missing columns, empty ids, missing or non-numeric weights,
        repeated node-table ids.
    InvalidParameterError
        Unknown ``duplicates`` policy or separator.

    Examples
    --------
    >>> import io
    >>> g, report = load_edge_list(io.StringIO("source,target\\na,b\\nb,c\\nc,c\\n"))
    >>> g.n_nodes, g.n_edges, report.count("self_loops")
    (3, 3, 1)
    """
    _check_duplicates(duplicates)
    if not name and isinstance(edges, (str, os.PathLike)):
        name = Path(edges).stem
    edge_df = _read_table(edges, sep=sep, header=header, what="edge list")
    if edge_df.attrs.get("headerless"):
        if edge_df.shape[1] < 2:
            raise InvalidInputError(
                f"the edge list has {edge_df.shape[1]} column; it needs at least 2 "
                "(source, target[, weight])."
            )
        names = ["source", "target", "weight"][: min(3, edge_df.shape[1])]
        edge_df = edge_df.copy()
        edge_df = edge_df.iloc[:, : len(names)]
        edge_df.columns = names
        source, target = "source", "target"
        if weight == "auto" and len(names) < 3:
            weight = None
        elif weight == "auto":
            weight = "weight"
    node_df = None
    if nodes is not None:
        if isinstance(nodes, pd.DataFrame):
            node_df = nodes
        else:
            node_df = _read_node_table(nodes, node_id, sep)
    return graph_from_frames(
        edge_df,
        node_df,
        directed=directed,
        source=source,
        target=target,
        weight=weight,
        node_id=node_id,
        duplicates=duplicates,
        name=name,
    )


def edge_list_columns(data: bytes, filename: str) -> tuple[list[str], str | None, str | None]:
    """The header columns of an edge list, and the endpoint pair recognised by name.

    Reads the first 64 KiB only, so a form can offer the columns before the upload.

    Parameters
    ----------
    data : bytes
        The edge list file.
    filename : str
        Its name (for messages).

    Returns
    -------
    columns : list of str
        The header's columns; empty for a file without a header (its first line is
        numbers: source, target and weight are taken in that order).
    source, target : str or None
        The columns recognised by name (:data:`ENDPOINT_NAMES`), or None.

    Raises
    ------
    InvalidInputError
        If the file is empty or cannot be parsed.
    """
    head = data[:65536]
    if len(data) > len(head) and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]
    buf = io.BytesIO(head)
    buf.name = filename
    df = _read_table(buf, sep="auto", header="auto", what="edge list")
    if df.attrs.get("headerless"):
        return [], None, None
    try:
        source, target = _endpoint_columns(df, "auto", "auto")
    except InvalidInputError:
        source = target = None
    return list(df.columns), source, target


def graph_from_frames(
    edges: pd.DataFrame,
    nodes: pd.DataFrame | None = None,
    *,
    directed: bool = False,
    source: str = "auto",
    target: str = "auto",
    weight: str | None = "auto",
    node_id: str = "auto",
    duplicates: str = "sum",
    name: str = "",
) -> tuple[Graph, GraphReport]:
    """Build a :class:`Graph` from an edge table and an optional node table.

    Same parameters and rules as :func:`load_edge_list`, for data already in
    DataFrames. The inputs are not modified.

    Returns
    -------
    graph : Graph
    report : GraphReport

    Raises
    ------
    InvalidInputError, InvalidParameterError
        As :func:`load_edge_list`.
    """
    _check_duplicates(duplicates)
    if len(edges) == 0:
        raise InvalidInputError(
            "the edge list has no rows; a graph needs at least one edge "
            "(source,target per line)."
        )
    source, target = _endpoint_columns(edges, source, target)
    if weight == "auto":
        weight = "weight" if "weight" in edges.columns else None
    elif weight is not None and weight not in edges.columns:
        raise InvalidInputError(
            f"the edge list has no weight column {weight!r}; its columns are "
            f"{list(map(str, edges.columns))}; choose one of them as the weight, or none for an "
            "unweighted graph."
        )
    src_raw = _id_strings(edges[source], "edge list", source)
    dst_raw = _id_strings(edges[target], "edge list", target)
    w = _weights(edges, weight) if weight is not None else np.ones(len(edges))

    node_table = None
    id_col = None
    if nodes is not None:
        id_col = _node_id_column(nodes, node_id)
        node_table = nodes
        table_ids = _id_strings(nodes[id_col], "node table", id_col)
        _check_unique_ids(table_ids, id_col)
    else:
        table_ids = np.array([], dtype=object)

    findings: list[GraphFinding] = []
    all_raw = np.concatenate([table_ids, src_raw, dst_raw])
    convert = _id_converter(all_raw)
    src_ids = convert(src_raw)
    dst_ids = convert(dst_raw)
    edge_unique = pd.unique(np.concatenate([src_ids, dst_ids]))

    if node_table is not None:
        t_ids = convert(table_ids)
        in_edges = pd.Index(edge_unique)
        in_table = pd.Index(t_ids)
        extra = in_edges.difference(in_table, sort=False)
        extra = _sorted_ids(np.asarray(extra))
        node_ids = np.concatenate([t_ids, extra]) if len(extra) else t_ids
        if len(extra):
            findings.append(
                GraphFinding(
                    "ids_only_in_edges", len(extra), "added",
                    f"{len(extra)} node id(s) appear in the edge list but not in the node table "
                    f"(e.g. {_fmt(extra)}); they were added as nodes with missing attributes. "
                    "Add them to the node table if they should have attributes.",
                    _examples(extra),
                )
            )
        unused = in_table.difference(in_edges, sort=False)
        if len(unused):
            unused = np.asarray(unused)
            findings.append(
                GraphFinding(
                    "ids_only_in_nodes", len(unused), "kept",
                    f"{len(unused)} node(s) of the node table appear in no edge "
                    f"(e.g. {_fmt(unused)}); they were kept as isolated nodes.",
                    _examples(unused),
                )
            )
    else:
        node_ids = _sorted_ids(np.asarray(edge_unique))
    node_ids = np.asarray(node_ids, dtype=np.int64 if _all_int(node_ids) else object)
    n = len(node_ids)
    index = pd.Index(node_ids)
    u = index.get_indexer(src_ids).astype(np.int64)
    v = index.get_indexer(dst_ids).astype(np.int64)

    loops = u == v
    if loops.any():
        ex = node_ids[u[loops]]
        findings.append(
            GraphFinding(
                "self_loops", int(loops.sum()), "kept",
                f"{int(loops.sum())} edge(s) join a node to itself (e.g. {_fmt(ex)}); they were "
                "kept as diagonal entries. Remove those rows if they are export artefacts.",
                _examples(ex),
            )
        )

    a, b = (u, v) if directed else (np.minimum(u, v), np.maximum(u, v))
    key = a * np.int64(n) + b
    order = np.argsort(key, kind="stable")
    k_sorted = key[order]
    first = np.ones(len(k_sorted), dtype=bool)
    first[1:] = k_sorted[1:] != k_sorted[:-1]
    n_dup_rows = int((~first).sum())
    group = np.cumsum(first) - 1
    pair_a, pair_b = a[order][first], b[order][first]
    w_sorted = w[order]
    if n_dup_rows:
        dup_pairs = np.unique(group[~first])
        ex = [f"{node_ids[pair_a[g]]}-{node_ids[pair_b[g]]}" for g in dup_pairs[:_N_EXAMPLES]]
        reverse = ""
        if not directed:
            n_rev = int(np.count_nonzero(np.bincount(group, weights=(u[order] > v[order]))
                                         * np.bincount(group, weights=(u[order] < v[order]))))
            if n_rev:
                reverse = (f" {n_rev} of these pairs are listed in both directions (a,b and b,a),"
                           " which an undirected graph counts as the same edge.")
        if duplicates == "error":
            raise InvalidInputError(
                f"{n_dup_rows} edge row(s) repeat {len(dup_pairs)} node pair(s) already listed "
                f"(e.g. {', '.join(ex)}).{reverse} Remove the repeats, or let them be "
                "combined (summed, by their maximum, or by the first row's weight)."
            )
        verb = {"sum": "summed", "max": "combined by their maximum weight",
                "first": "combined by keeping the first row's weight"}[duplicates]
        findings.append(
            GraphFinding(
                "duplicate_edges", n_dup_rows, verb.split()[0],
                f"{n_dup_rows} edge row(s) repeat {len(dup_pairs)} node pair(s) "
                f"(e.g. {', '.join(ex)}); their weights were {verb} "
                f"(duplicates={duplicates!r}).{reverse}",
                tuple(ex),
            )
        )
    if duplicates == "sum":
        pair_w = np.bincount(group, weights=w_sorted)
    elif duplicates == "max":
        pair_w = np.full(len(pair_a), -np.inf)
        np.maximum.at(pair_w, group, w_sorted)
    else:
        pair_w = w_sorted[first]

    neg = pair_w < 0
    if neg.any():
        ex = [f"{node_ids[i]}-{node_ids[j]}" for i, j in zip(pair_a[neg][:5], pair_b[neg][:5])]
        findings.append(
            GraphFinding(
                "negative_weights", int(neg.sum()), "kept",
                f"{int(neg.sum())} edge(s) have a negative weight (e.g. {', '.join(ex)}); they "
                "were kept. FastRP, Laplacian eigenmaps and the Laplacian spectrum need "
                "non-negative weights (the Rayleigh quotient accepts them): drop those edges or "
                "shift the weights.",
                tuple(ex),
            )
        )
    zero = pair_w == 0
    if zero.any():
        ex = [f"{node_ids[i]}-{node_ids[j]}" for i, j in zip(pair_a[zero][:5], pair_b[zero][:5])]
        findings.append(
            GraphFinding(
                "zero_weights", int(zero.sum()), "left out",
                f"{int(zero.sum())} edge(s) have weight 0 (e.g. {', '.join(ex)}); a weight-0 edge "
                "carries nothing, so they were left out of the adjacency.",
                tuple(ex),
            )
        )
    keep = ~zero
    pa, pb, pw = pair_a[keep], pair_b[keep], pair_w[keep]
    if directed:
        rows, cols, vals = pa, pb, pw
    else:
        off = pa != pb
        rows = np.concatenate([pa, pb[off]])
        cols = np.concatenate([pb, pa[off]])
        vals = np.concatenate([pw, pw[off]])
    adjacency = sp.csr_matrix((vals.astype(np.float64), (rows, cols)), shape=(n, n))
    adjacency.sum_duplicates()
    adjacency.sort_indices()

    offdiag = adjacency.copy()
    offdiag.setdiag(0)
    offdiag.eliminate_zeros()
    nbrs = np.diff(offdiag.indptr) + np.diff(offdiag.tocsc().indptr)
    isolated = np.flatnonzero(nbrs == 0)
    if len(isolated):
        ex = node_ids[isolated]
        findings.append(
            GraphFinding(
                "isolated_nodes", len(isolated), "kept",
                f"{len(isolated)} node(s) have no edge to another node (e.g. {_fmt(ex)}); they "
                "were kept. Graph embeddings place them at a fixed, documented position.",
                _examples(ex),
            )
        )
    from scipy.sparse.csgraph import connected_components

    n_comp, comp = connected_components(adjacency, directed=directed, connection="weak")
    if n_comp > 1:
        sizes = np.bincount(comp)
        findings.append(
            GraphFinding(
                "disconnected", int(n_comp), "kept",
                f"the graph has {n_comp} connected components (the largest has {sizes.max()} of "
                f"{n} nodes, {int((sizes == 1).sum())} are single nodes); spectral methods treat "
                "each component on its own.",
            )
        )

    nodes_df = _node_frame(node_ids, node_table, id_col)
    graph = Graph(adjacency=adjacency, node_ids=node_ids, nodes=nodes_df, directed=bool(directed),
                  name=name)
    report = GraphReport(
        n_nodes=n,
        n_edges=graph.n_edges,
        n_edge_rows=len(edges),
        directed=bool(directed),
        weighted=weight is not None,
        n_components=int(n_comp),
        findings=tuple(sorted(findings, key=lambda f: FINDING_KINDS.index(f.kind))),
        largest_component=int(np.bincount(comp).max()) if n else 0,
    )
    return graph, report


def load_example_graph(name: str) -> tuple[Graph, GraphReport]:
    """One of the graphs that ship with networkx.

    Parameters
    ----------
    name : {"karate_club", "les_miserables", "florentine_families"}
        - ``karate_club``: Zachary's karate club, 34 nodes, 78 weighted edges,
          node attribute ``club`` (2 factions). Integer ids 0..33.
        - ``les_miserables``: character co-occurrence in the novel, 77 nodes,
          254 weighted edges. Ids are character names.
        - ``florentine_families``: marriage ties of Renaissance Florentine
          families, 15 nodes, 20 edges. Ids are family names.

    Returns
    -------
    graph : Graph
    report : GraphReport

    Raises
    ------
    InvalidParameterError
        For an unknown name.

    References
    ----------
    Zachary, "An information flow model for conflict and fission in small
    groups", J. Anthropol. Res. 33 (1977). Knuth, "The Stanford GraphBase"
    (1993). Breiger & Pattison, "Cumulated social roles", Social Networks 8 (1986).
    """
    import networkx as nx

    builders = {
        "karate_club": nx.karate_club_graph,
        "les_miserables": nx.les_miserables_graph,
        "florentine_families": nx.florentine_families_graph,
    }
    if name not in builders:
        raise InvalidParameterError(f"name must be one of {EXAMPLE_GRAPHS}; got {name!r}.")
    G = builders[name]()
    rows = [(a, b, float(d.get("weight", 1.0))) for a, b, d in G.edges(data=True)]
    edges = pd.DataFrame(rows, columns=["source", "target", "weight"])
    weighted = any(w != 1.0 for _, _, w in rows)
    attrs = pd.DataFrame([{"id": v, **d} for v, d in G.nodes(data=True)])
    return graph_from_frames(
        edges, attrs, directed=G.is_directed(), weight="weight" if weighted else None,
        node_id="id", name=name,
    )


def node_label_matrix(
    graph: Graph, labels: pd.DataFrame, *, node: str = "node", label: str = "label"
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label indicator matrix from a long table of (node, label) pairs.

    Parameters
    ----------
    graph : Graph
    labels : pandas.DataFrame
        One row per node-label pair (BlogCatalog's ``labels.csv`` layout).
    node, label : str, default="node", "label"
        Column names.

    Returns
    -------
    indicator : ndarray of shape (n_nodes, n_classes), bool
        ``indicator[i, c]`` is True when node i has class ``classes[c]``. Nodes
        without a row have an all-False row.
    classes : ndarray of shape (n_classes,)
        Sorted label values.

    Raises
    ------
    InvalidInputError
        Missing columns, or label rows whose node id is not in the graph.
    """
    for col in (node, label):
        if col not in labels.columns:
            raise InvalidInputError(
                f"the label table has no column {col!r}; its columns are "
                f"{list(map(str, labels.columns))}; name the node and label columns."
            )
    raw = _id_strings(labels[node], "label table", node)
    ids = _id_converter(np.concatenate([raw, graph.node_ids.astype(str)]))(raw)
    if graph.node_ids.dtype != object:
        ids = np.asarray(ids, dtype=graph.node_ids.dtype) if _all_int(ids) else ids
    rows = pd.Index(graph.node_ids).get_indexer(ids)
    if (rows < 0).any():
        bad = np.asarray(ids)[rows < 0]
        raise InvalidInputError(
            f"{int((rows < 0).sum())} label row(s) name nodes that are not in the graph "
            f"(e.g. {_fmt(bad)}); check that the label table matches the edge list."
        )
    classes, cols = np.unique(labels[label].to_numpy(), return_inverse=True)
    indicator = np.zeros((graph.n_nodes, len(classes)), dtype=bool)
    indicator[rows, cols] = True
    return indicator, classes


def as_adjacency(
    graph, *, nonnegative: bool = True, what: str = "this method"
) -> tuple[sp.csr_matrix, bool]:
    """The validated adjacency of a Graph or a square sparse matrix, and whether it is directed.

    Parameters
    ----------
    graph : Graph or scipy.sparse matrix of shape (n_nodes, n_nodes)
        A matrix is treated as directed unless it is symmetric.
    nonnegative : bool, default=True
        Refuse negative weights.
    what : str
        Name of the caller, for error messages.

    Returns
    -------
    adjacency : scipy.sparse.csr_matrix of shape (n_nodes, n_nodes), float64
        A new matrix without explicit zeros.
    directed : bool

    Raises
    ------
    InvalidInputError
        Not a Graph or sparse matrix, not square, empty, non-finite weights, or
        negative weights when ``nonnegative``.
    """
    if isinstance(graph, Graph):
        S, directed = graph.adjacency, graph.directed
    elif sp.issparse(graph):
        S, directed = graph, None
    else:
        raise InvalidInputError(
            f"{what} needs a Graph or a scipy sparse adjacency matrix; got {type(graph).__name__}."
        )
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise InvalidInputError(f"the adjacency matrix must be square; got shape {S.shape}.")
    if S.shape[0] == 0:
        raise InvalidInputError("the graph has no nodes.")
    S = sp.csr_matrix(S, dtype=np.float64, copy=True)
    S.eliminate_zeros()
    if not np.isfinite(S.data).all():
        raise InvalidInputError(
            f"the adjacency has {int((~np.isfinite(S.data)).sum())} non-finite weight(s); "
            "fix them in the edge list."
        )
    if directed is None:
        diff = S - S.T
        directed = bool(diff.nnz and np.abs(diff.data).max() > 0)
    if nonnegative and (S.data < 0).any():
        C = S.tocoo()
        neg = C.data < 0
        n_neg = int(neg.sum() if directed else (neg & (C.row <= C.col)).sum())
        raise InvalidInputError(
            f"{what} needs non-negative edge weights, but {n_neg} edge(s) have a negative "
            "weight; drop those edges or shift the weights first."
        )
    return S, bool(directed)


# ---------------------------------------------------------------------------- private


def _check_duplicates(duplicates: str) -> None:
    if duplicates not in DUPLICATE_POLICIES:
        raise InvalidParameterError(
            f"duplicates must be one of {DUPLICATE_POLICIES}; got {duplicates!r}."
        )


def _read_text(src: PathOrBuffer, what: str) -> str:
    if isinstance(src, (str, os.PathLike)):
        try:
            raw = Path(src).read_bytes()
        except OSError as exc:
            raise InvalidInputError(
                f"cannot read the {what} {str(src)!r}: {exc.strerror}."
            ) from exc
    else:
        name = getattr(src, "name", None)
        suffix = Path(name).suffix.lower() if isinstance(name, str) else ""
        if suffix and suffix not in _TEXT_SUFFIXES:
            raise InvalidInputError(
                f"{name!r}: unsupported file type {suffix}; the {what} must be CSV or TSV text "
                f"({', '.join(_TEXT_SUFFIXES)})."
            )
        raw = src.read()
    text = raw.decode("utf-8-sig", errors="replace") if isinstance(raw, bytes) else raw
    return text


def _sniff_sep(src: PathOrBuffer, text: str, sep: str) -> str:
    if sep != "auto":
        if not isinstance(sep, str) or not sep:
            raise InvalidParameterError(f"sep must be 'auto' or a separator string; got {sep!r}.")
        return sep
    name = src if isinstance(src, (str, os.PathLike)) else getattr(src, "name", None)
    ext = Path(name).suffix.lower().lstrip(".") if isinstance(name, (str, os.PathLike)) else ""
    found = detect_separator(text[:65536], "tsv" if ext == "tab" else ext)
    return r"\s+" if found == " " else found


def _read_table(src: PathOrBuffer, *, sep: str, header: bool | str, what: str) -> pd.DataFrame:
    text = _read_text(src, what)
    # only a line that starts with "#" is a comment: an id may contain "#"
    text = "".join(ln for ln in text.splitlines(keepends=True) if not ln.lstrip().startswith("#"))
    first = next((ln for ln in text.splitlines() if ln.strip()), None)
    if first is None:
        raise InvalidInputError(
            f"the {what} is empty; it needs a header line and one row per item."
        )
    sep = _sniff_sep(src, text, sep)
    if header == "auto":
        header = first_row_is_header(text[:65536], " " if sep == r"\s+" else sep)
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            engine="python" if len(sep) > 1 else "c",
        )
    except pd.errors.ParserError as exc:
        raise InvalidInputError(
            f"the {what} could not be parsed with separator {sep!r}: {exc}. "
            "Check that every line has the same number of fields and uses one separator (tab, "
            "comma, semicolon or spaces)."
        ) from exc
    if len(df) == 0:
        raise InvalidInputError(
            f"the {what} has a header line but no rows (columns {list(map(str, df.columns))})."
        )
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["headerless"] = not header
    return df


def _read_node_table(src: PathOrBuffer, node_id: str, sep: str) -> pd.DataFrame:
    df = _read_table(src, sep=sep, header=True, what="node table")
    id_col = _node_id_column(df, node_id)
    out = df.copy()
    for col in out.columns:
        if col == id_col:
            continue
        s = out[col].replace("", np.nan)
        num = pd.to_numeric(s, errors="coerce")
        out[col] = num if num.notna().sum() == s.notna().sum() else s
    return out


def _endpoint_columns(edges: pd.DataFrame, source: str, target: str) -> tuple[str, str]:
    cols = list(map(str, edges.columns))
    if source == "auto" or target == "auto":
        lower = {c.strip().lower(): c for c in cols}
        for a, b in ENDPOINT_NAMES:
            if a in lower and b in lower:
                source = lower[a] if source == "auto" else source
                target = lower[b] if target == "auto" else target
                break
        else:
            known = ", ".join(f"{a}/{b}" for a, b in ENDPOINT_NAMES[:4])
            raise InvalidInputError(
                f"the edge list has no endpoint columns with a known name ({known}, …); its "
                f"columns are {cols}. Choose its source and target columns, or name them source "
                "and target in the header line."
            )
    missing = [c for c in (source, target) if c not in cols]
    if missing:
        raise InvalidInputError(
            f"the edge list has no column {', '.join(map(repr, missing))}; its columns are {cols}. "
            "Choose its source and target columns among them."
        )
    if source == target:
        raise InvalidParameterError(
            f"the source and target must be two different columns; both are {source!r}.")
    return source, target


def _node_id_column(nodes: pd.DataFrame, node_id: str) -> str:
    cols = list(map(str, nodes.columns))
    if node_id == "auto":
        for cand in _NODE_ID_CANDIDATES:
            if cand in cols:
                return cand
        raise InvalidInputError(
            f"the node table has none of the id columns {list(_NODE_ID_CANDIDATES)}; its columns "
            f"are {cols}. Name its id column one of those."
        )
    if node_id not in cols:
        raise InvalidInputError(
            f"the node table has no column {node_id!r}; its columns are {cols}. "
            "Choose one of them as the id column."
        )
    return node_id


def _id_strings(col: pd.Series, what: str, name: str) -> np.ndarray:
    values = col.astype(str).str.strip().to_numpy(dtype=object)
    bad = col.isna().to_numpy() | (values == "")
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InvalidInputError(
            f"{len(rows)} row(s) of the {what} have an empty {name!r} id (data rows "
            f"{', '.join(str(r + 1) for r in rows[:_N_EXAMPLES])}); fill in or delete those rows."
        )
    return values


def _weights(edges: pd.DataFrame, weight: str) -> np.ndarray:
    raw = edges[weight]
    if raw.dtype == object:
        stripped = raw.astype(str).str.strip()
        num = pd.to_numeric(stripped.replace("", np.nan), errors="coerce")
    else:
        stripped = raw.astype(str)
        num = pd.to_numeric(raw, errors="coerce")
    w = num.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(w)
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(
            f"row {r + 1}: {stripped.iloc[r]!r}" for r in rows[:_N_EXAMPLES]
        )
        raise InvalidInputError(
            f"{len(rows)} edge weight(s) in column {weight!r} are missing, not numbers or not "
            f"finite ({shown}). Fix those rows, or leave the weight column out to treat every "
            "edge as weight 1."
        )
    return w


def _check_unique_ids(ids: np.ndarray, id_col: str) -> None:
    s = pd.Series(ids)
    dup = s[s.duplicated()]
    if len(dup):
        raise InvalidInputError(
            f"the node table has {len(dup)} repeated id(s) in column {id_col!r} (e.g. "
            f"{_fmt(dup.unique())}); it needs one row per node. For multi-label data with one "
            "row per node-label pair, load it with node_label_matrix(graph, table)."
        )


def _id_converter(all_raw: np.ndarray):
    """Ids become int64 when every id is an integer literal and no two differ only in form."""
    strs = pd.unique(np.asarray(all_raw, dtype=object))
    if len(strs) and all(_INT_RE.match(x) for x in strs):
        as_int = np.array([int(x) for x in strs], dtype=object)
        if len(set(as_int.tolist())) == len(strs) and all(
            -(2**63) <= x < 2**63 for x in as_int.tolist()
        ):
            return lambda raw: np.asarray(raw).astype(np.int64)
    return lambda raw: np.asarray(raw, dtype=object)


def _all_int(ids: np.ndarray) -> bool:
    return np.asarray(ids).dtype.kind in "iu" or all(
        isinstance(x, (int, np.integer)) for x in np.asarray(ids).tolist()
    )


def _sorted_ids(ids: np.ndarray) -> np.ndarray:
    if len(ids) == 0:
        return ids
    if _all_int(ids):
        return np.sort(np.asarray(ids, dtype=np.int64))
    return np.asarray(sorted(map(str, ids)), dtype=object)


def _node_frame(
    node_ids: np.ndarray, table: pd.DataFrame | None, id_col: str | None
) -> pd.DataFrame:
    out = pd.DataFrame({"id": node_ids})
    if table is None:
        return out
    attrs = table.drop(columns=[id_col]).reset_index(drop=True)
    if "id" in attrs.columns:
        attrs = attrs.rename(columns={"id": "id_attribute"})
    attrs = attrs.reindex(range(len(node_ids)))
    return pd.concat([out, attrs], axis=1)


def _fmt(values) -> str:
    return ", ".join(map(str, list(values)[:_N_EXAMPLES]))


def _examples(values) -> tuple[str, ...]:
    return tuple(str(v) for v in list(values)[:_N_EXAMPLES])
