"""The map: a WebGL scatter of a projection, coloured by any column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from components.map.encode import (  # declared once, with the WebGL map
    MAX_CATEGORIES, OTHER, OTHER_COLOR, PALETTE, _natural, fold_categories, is_categorical,
)

_PALETTE = PALETTE  # the name the globe and graph views import

__all__ = ["is_categorical", "scatter_figure", "MAX_CATEGORIES"]



def _hover_text(df: pd.DataFrame, hover: list[str]) -> list[str] | None:
    if not hover:
        return None
    parts = [df["_row"].map(lambda r: f"row {r}")]
    for c in hover:
        parts.append(c + ": " + df[c].astype(str).str.slice(0, 80))
    out = parts[0]
    for p in parts[1:]:
        out = out + "<br>" + p
    return out.tolist()


def scatter_figure(
    df: pd.DataFrame,
    *,
    color: str | None = None,
    hover: list[str] | None = None,
    highlight: np.ndarray | None = None,
    marker_size: float | None = None,
    height: int = 620,
) -> tuple[go.Figure, str | None]:
    """A plotly figure of the points in ``df`` (columns ``_row``, ``x``, ``y``[, ``z``]).

    Parameters
    ----------
    df : DataFrame
        The points to draw (already sampled to the draw budget), with any metadata.
    color : str, optional
        Column to colour by: categorical columns get one trace per category (at most
        30, the rest grouped as "other"), numeric ones a continuous scale with a colour bar.
    hover : list of str, optional
        Columns shown on hover.
    highlight : ndarray of int, optional
        Row ids drawn on top as open black circles (selection, neighbours, search hits).

    Returns
    -------
    fig : plotly Figure
        Each point's ``customdata`` is its row id.
    note : str or None
        What the user should know about the colouring (e.g. categories grouped).
    """
    three_d = "z" in df.columns
    n = len(df)
    size = marker_size or (6 if n < 2_000 else 4 if n < 20_000 else 2.5)
    text = _hover_text(df, hover or [])
    hovertemplate = "%{text}<extra></extra>" if text is not None else "row %{customdata}<extra></extra>"
    note = None
    traces = []

    def make(sub_idx, name, marker, showlegend=True):
        sub = df.iloc[sub_idx] if sub_idx is not None else df
        t = None if text is None else [text[i] for i in (sub_idx if sub_idx is not None else range(n))]
        common = dict(
            mode="markers", name=name, customdata=sub["_row"].to_numpy(), text=t,
            hovertemplate=hovertemplate, marker=marker, showlegend=showlegend,
        )
        if three_d:
            return go.Scatter3d(x=sub["x"], y=sub["y"], z=sub["z"], **common)
        return go.Scattergl(x=sub["x"], y=sub["y"], **common)

    if color is None or color not in df.columns:
        traces.append(make(None, "points", dict(size=size, color="#4e79a7", opacity=0.8), False))
    elif is_categorical(df[color]):
        cats, n_folded = fold_categories(df[color])
        if n_folded:
            note = (f"{color!r} has {len(cats.categories) - 1 + n_folded:,} categories; the "
                    f"{MAX_CATEGORIES} most frequent are coloured, the rest are grey ('other').")
        codes = cats.codes
        for i, cat in enumerate(cats.categories):
            idx = np.flatnonzero(codes == i)
            if cat == OTHER and n_folded:
                traces.append(make(idx, OTHER, dict(size=size, color=OTHER_COLOR, opacity=0.6)))
            elif len(idx):
                traces.append(make(idx, str(cat), dict(size=size, color=PALETTE[i % len(PALETTE)],
                                                       opacity=0.85)))
    else:
        vals = pd.to_numeric(df[color], errors="coerce")
        traces.append(make(None, color, dict(
            size=size, color=vals, colorscale="Viridis", opacity=0.85, showscale=True,
            colorbar=dict(title=dict(text=color)),
        ), False))
    if highlight is not None and len(highlight):
        mask = df["_row"].isin(highlight).to_numpy()
        idx = np.flatnonzero(mask)
        if len(idx):
            traces.append(make(idx, "highlighted", dict(
                size=size + 6, color="rgba(0,0,0,0)", line=dict(color="black", width=1.5)), True))
    fig = go.Figure(traces)
    fig.update_layout(
        height=height, margin=dict(l=0, r=0, t=10, b=0), dragmode="select" if not three_d else "orbit",
        legend=dict(itemsizing="constant", title=dict(text=color or "")), uirevision="map",
    )
    if not three_d:
        fig.update_xaxes(showticklabels=False, title=None)
        fig.update_yaxes(showticklabels=False, title=None, scaleanchor="x", scaleratio=1)
    return fig, note

