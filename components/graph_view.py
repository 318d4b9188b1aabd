"""The Graph page's helpers: the neighbours of nodes, the Laplacian spectrum chart.

The graph itself (nodes with their edges underneath) is the WebGL map with its edge layer
(:func:`components.map.component.map_view`, :func:`components.map.encode.encode_edges`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go


__all__ = ["EDGE_BUDGET", "neighbours_of", "spectrum_figure"]

EDGE_BUDGET = 20_000  # edges drawn by default (the page's "Edge draw budget")


def neighbours_of(edges: pd.DataFrame, rows) -> np.ndarray:
    """Rows joined by an edge (either direction) to any of ``rows``, ``rows`` excluded, sorted."""
    rows = np.asarray(list(rows), dtype=np.int64)
    if len(rows) == 0 or len(edges) == 0:
        return np.zeros(0, dtype=np.int64)
    s = edges["source"].to_numpy(np.int64)
    t = edges["target"].to_numpy(np.int64)
    nb = np.concatenate([t[np.isin(s, rows)], s[np.isin(t, rows)]])
    return np.setdiff1d(np.unique(nb), rows)


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
