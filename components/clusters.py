"""Layers and charts of clusters: names at cluster centres, density contours, linked charts.

Pure drawing: each function takes what the backend returned (tables, grids, facet
counts) and returns plotly objects; no Streamlit, no computation beyond layout.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = ["add_cluster_names", "add_density", "facet_figure", "cluster_centres", "mass_above",
           "MAX_NAMES"]

MAX_NAMES = 40


def cluster_centres(x: np.ndarray, y: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Median position of each cluster (not the unclustered): columns cluster, x, y."""
    df = pd.DataFrame({"cluster": labels, "x": x, "y": y})
    return df[df["cluster"] >= 0].groupby("cluster", as_index=False)[["x", "y"]].median()


def add_cluster_names(fig: go.Figure, centres: pd.DataFrame, names: pd.DataFrame,
                      max_names: int = MAX_NAMES) -> None:
    """Write cluster names at their centres; only the ``max_names`` largest are written.

    ``names`` has columns cluster, name, n_rows (from ``client.cluster_names``).
    """
    lab = names[names["cluster"] >= 0].merge(centres, on="cluster")
    lab = lab.nlargest(max_names, "n_rows")
    fig.add_trace(go.Scattergl(
        x=lab["x"], y=lab["y"], mode="text", text=lab["name"], name="cluster names",
        textfont=dict(size=13, color="#111"), hoverinfo="skip", showlegend=False))


def mass_above(density: np.ndarray) -> np.ndarray:
    """Each cell's share of the probability mass at or above its density (0 = the peak).

    Parameters
    ----------
    density : ndarray of shape (ny, nx), float
        Non-negative densities (a :class:`backend.clusters.DensityGrid`'s ``density``).

    Returns
    -------
    ndarray of shape (ny, nx), float64
        In [0, 1]; the cells with a value <= p together hold a share p of the mass (the
        highest-density region of mass p). All 1 when the density is zero everywhere.
    """
    flat = density.ravel()
    order = np.argsort(flat)[::-1]
    cum = np.cumsum(flat[order], dtype=np.float64)
    out = np.empty_like(cum)
    out[order] = cum / cum[-1] if cum[-1] > 0 else 1.0
    return out.reshape(density.shape)


def add_density(fig: go.Figure, grid) -> None:
    """Contours enclosing 25, 50, 75 and 90 % of the points (highest-density regions).

    ``grid`` is a :class:`backend.clusters.DensityGrid` (density, x, y). Dark lines over
    a light fill stay readable over coloured points.
    """
    fig.add_trace(go.Contour(
        x=grid.x, y=grid.y, z=mass_above(np.asarray(grid.density)),
        contours=dict(start=0.25, end=0.9, size=0.25, coloring="lines"),
        line=dict(width=1.2), colorscale=[[0, "#222"], [1, "#777"]], showscale=False,
        hoverinfo="skip", name="density"))


def facet_figure(facet, selected: list | tuple = ()) -> go.Figure:
    """A bar chart (categories) or histogram (numbers) of a facet; selected bars stand out.

    ``facet`` is a :class:`backend.clusters.Facet`. Bars carry their value (category) or
    bin centre in ``x`` (and its edges in ``customdata``) so a selection reads back as
    values or a range.
    """
    counts = facet.counts
    fig = go.Figure()
    if facet.kind == "category":
        values = counts["value"].astype(str).tolist()
        colours = ["#1f77b4" if (not selected or v in selected) else "#c7d7e8" for v in values]
        fig.add_trace(go.Bar(x=values, y=counts["count"], marker_color=colours,
                             hovertemplate="%{x}: %{y:,}<extra></extra>"))
        fig.update_xaxes(type="category")
    else:
        mid = (counts["low"] + counts["high"]) / 2
        fig.add_trace(go.Bar(x=mid, y=counts["count"], width=(counts["high"] - counts["low"]),
                             marker_color="#1f77b4",
                             customdata=counts[["low", "high"]].to_numpy(),
                             hovertemplate="%{x:.3g}: %{y:,}<extra></extra>"))
    fig.update_layout(height=180, margin=dict(l=10, r=10, t=26, b=10), title=dict(
        text=facet.column, font=dict(size=13)), dragmode="select", bargap=0.05)
    return fig
