"""The graph view: nodes at given positions with their edges drawn underneath (plotly WebGL).

Pure drawing: data in (node positions and attributes, an edge table), a figure out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from components.scatter import _PALETTE, category_labels, category_plan, is_categorical
from components.selection import draw_sample

__all__ = ["EDGE_BUDGET", "graph_figure", "neighbours_of", "spectrum_figure"]

EDGE_BUDGET = 20_000
_EDGE = "rgba(110, 110, 110, 0.45)"
_EDGE_HI = "rgba(20, 20, 20, 0.9)"


def neighbours_of(edges: pd.DataFrame, rows) -> np.ndarray:
    """Rows joined by an edge (either direction) to any of ``rows``, ``rows`` excluded, sorted."""
    rows = np.asarray(list(rows), dtype=np.int64)
    if len(rows) == 0 or len(edges) == 0:
        return np.zeros(0, dtype=np.int64)
    s = edges["source"].to_numpy(np.int64)
    t = edges["target"].to_numpy(np.int64)
    nb = np.concatenate([t[np.isin(s, rows)], s[np.isin(t, rows)]])
    return np.setdiff1d(np.unique(nb), rows)


def _segments(pos: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y arrays of line segments s→t separated by NaN (one trace for every edge)."""
    x = np.full(3 * len(s), np.nan)
    y = np.full(3 * len(s), np.nan)
    x[0::3], x[1::3] = pos[s, 0], pos[t, 0]
    y[0::3], y[1::3] = pos[s, 1], pos[t, 1]
    return x, y


def graph_figure(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    *,
    color: str | None = None,
    size_by: str | None = "degree",
    hover: list[str] | None = None,
    selected=None,
    budget: int = EDGE_BUDGET,
    height: int = 640,
) -> tuple[go.Figure, list[str]]:
    """A plotly figure of a graph: edges as grey segments under nodes coloured by ``color``.

    Parameters
    ----------
    nodes : DataFrame
        One row per node, in node order (row i is node ``_row == i``): ``_row``, ``x``, ``y``
        and any attributes.
    edges : DataFrame
        ``source``, ``target`` (node rows), optional ``weight``.
    color : str, optional
        Column to colour by: categorical columns get a legend (at most 30 categories),
        numeric ones a colour scale.
    size_by : str, optional
        Numeric column mapped to marker size (sqrt scale, 5 to 18 px).
    hover : list of str, optional
        Columns shown on hover (the row and ``id`` always are).
    selected : array-like of int, optional
        Selected node rows: drawn with a black ring, their neighbours with an orange one,
        and their edges dark on top of the others.
    budget : int, default=20,000
        Edges drawn at most; beyond it a uniform sample (seeded) is drawn and the notes
        say so. Edges of the selection are always drawn.

    Returns
    -------
    fig : plotly Figure
        Trace 0 holds the edges; each node's ``customdata`` is its row.
    notes : list of str
        What the user must know (an edge sample, categories grouped).
    """
    notes: list[str] = []
    n = len(nodes)
    pos = np.full((int(nodes["_row"].max()) + 1 if n else 0, 2), np.nan)
    pos[nodes["_row"].to_numpy(np.int64)] = nodes[["x", "y"]].to_numpy(np.float64)
    s_all = edges["source"].to_numpy(np.int64)
    t_all = edges["target"].to_numpy(np.int64)
    m = len(s_all)
    drawn = draw_sample(m, budget)
    if len(drawn) < m:
        notes.append(f"{len(drawn):,} of {m:,} edges drawn (a uniform sample; raise the edge "
                     "budget to draw more). Neighbour lists and diagnostics use every edge.")
    ex, ey = _segments(pos, s_all[drawn], t_all[drawn])
    traces: list = [go.Scattergl(x=ex, y=ey, mode="lines", name=f"edges ({len(drawn):,})",
                                 line=dict(color=_EDGE, width=0.9), hoverinfo="skip",
                                 showlegend=False)]
    sel = np.asarray([] if selected is None else list(selected), dtype=np.int64)
    if len(sel):
        inc = np.isin(s_all, sel) | np.isin(t_all, sel)
        hx, hy = _segments(pos, s_all[inc], t_all[inc])
        traces.append(go.Scattergl(x=hx, y=hy, mode="lines", name="edges of the selection",
                                   line=dict(color=_EDGE_HI, width=1.8), hoverinfo="skip",
                                   showlegend=False))

    if size_by and size_by in nodes.columns:
        v = pd.to_numeric(nodes[size_by], errors="coerce").fillna(0).clip(lower=0).to_numpy(float)
        top = v.max() if len(v) and v.max() > 0 else 1.0
        base = 5.0 if n < 2000 else 3.0
        sizes = base + (18.0 - base) * np.sqrt(v / top)
    else:
        sizes = np.full(n, 8.0 if n < 2000 else 4.0)
    text_parts = [nodes["_row"].map(lambda r: f"node {r}")]
    if "id" in nodes.columns:
        text_parts.append("id: " + nodes["id"].astype(str).str.slice(0, 60))
    for c in hover or []:
        if c in nodes.columns and c != "id":
            text_parts.append(c + ": " + nodes[c].astype(str).str.slice(0, 60))
    text = text_parts[0]
    for p in text_parts[1:]:
        text = text + "<br>" + p
    text = text.to_numpy()

    def node_trace(idx, name, marker_color, showlegend=True, **marker):
        sub = nodes.iloc[idx]
        return go.Scattergl(
            x=sub["x"], y=sub["y"], mode="markers", name=name, customdata=sub["_row"].to_numpy(),
            text=text[idx], hovertemplate="%{text}<extra></extra>", showlegend=showlegend,
            marker=dict(size=sizes[idx], color=marker_color, opacity=0.95,
                        line=dict(color="white", width=0.6), **marker),
        )

    all_idx = np.arange(n)
    if color is None or color not in nodes.columns:
        traces.append(node_trace(all_idx, "nodes", "#4e79a7", False))
    elif is_categorical(nodes[color]):
        values = category_labels(nodes[color])
        keep, note = category_plan(nodes[color])
        if note:
            notes.append(note)
        for i, cat in enumerate(keep):
            traces.append(node_trace(np.flatnonzero(values == cat), str(cat),
                                     _PALETTE[i % len(_PALETTE)]))
        rest = np.flatnonzero(~np.isin(values, keep))
        if len(rest):
            traces.append(node_trace(rest, "other", "#cccccc"))
    else:
        vals = pd.to_numeric(nodes[color], errors="coerce").to_numpy(float)
        traces.append(node_trace(all_idx, color, vals, False, colorscale="Viridis",
                                 showscale=True, colorbar=dict(title=dict(text=color))))

    if len(sel):
        row_index = pd.Index(nodes["_row"].to_numpy(np.int64))
        nb = neighbours_of(edges, sel)
        for rows, name, ring, extra in ((nb, "neighbours", "#f28e2b", 5), (sel, "selected", "black", 7)):
            idx = row_index.get_indexer(rows)
            idx = idx[idx >= 0]
            if len(idx):
                sub = nodes.iloc[idx]
                traces.append(go.Scattergl(
                    x=sub["x"], y=sub["y"], mode="markers", name=f"{name} ({len(idx)})",
                    customdata=sub["_row"].to_numpy(), text=text[idx],
                    hovertemplate="%{text}<extra></extra>",
                    marker=dict(size=sizes[idx] + extra, color="rgba(0,0,0,0)",
                                line=dict(color=ring, width=2.2))))
    fig = go.Figure(traces)
    fig.update_layout(
        height=height, margin=dict(l=0, r=0, t=10, b=0), dragmode="select", uirevision="graph",
        plot_bgcolor="white", legend=dict(itemsizing="constant", title=dict(text=color or "")),
        clickmode="event+select",
    )
    fig.update_xaxes(showticklabels=False, title=None, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, title=None, showgrid=False, zeroline=False,
                     scaleanchor="x", scaleratio=1)
    return fig, notes


def spectrum_figure(eigenvalues, *, laplacian: str = "normalized", height: int = 260) -> go.Figure:
    """The Laplacian eigenvalues in ascending order (index on x), zero eigenvalues marked."""
    ev = np.asarray(eigenvalues, dtype=float)
    fig = go.Figure(go.Scatter(
        x=np.arange(1, len(ev) + 1), y=ev, mode="lines+markers", marker=dict(size=4),
        line=dict(color="#4e79a7"), hovertemplate="λ%{x} = %{y:.4f}<extra></extra>",
        name="eigenvalue"))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=24, b=0),
                      title=dict(text=f"{laplacian} Laplacian spectrum", font=dict(size=13)),
                      xaxis_title="index (ascending)", yaxis_title="eigenvalue")
    return fig
