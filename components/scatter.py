"""The map: a WebGL scatter of a projection, coloured by any column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = ["is_categorical", "scatter_figure", "MAX_CATEGORIES", "MISSING_LABEL",
           "category_labels", "category_plan"]

MAX_CATEGORIES = 30
MISSING_LABEL = "(missing)"
_PALETTE = (
    "#4e79a7 #f28e2b #e15759 #76b7b2 #59a14f #edc948 #b07aa1 #ff9da7 #9c755f #bab0ac "
    "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf "
    "#393b79 #637939 #8c6d31 #843c39 #7b4173 #3182bd #e6550d #31a354 #756bb1 #636363"
).split()


def is_categorical(s: pd.Series) -> bool:
    """Colour a column by category (legend) rather than a continuous scale?"""
    if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s):
        return True
    if pd.api.types.is_numeric_dtype(s):
        return pd.api.types.is_integer_dtype(s) and s.nunique() <= 12
    return True


def category_labels(values: pd.Series) -> np.ndarray:
    """Each value as its category label (``str``); missing values are ``"(missing)"``."""
    return values.astype(str).where(values.notna(), MISSING_LABEL).to_numpy(dtype=object)


def category_plan(values: pd.Series) -> tuple[list[str], str | None]:
    """The categories that get a colour, and what to tell the user; one rule for every view.

    Parameters
    ----------
    values : Series
        The whole column (not a drawn sample), so every view counts the same categories.

    Returns
    -------
    keep : list of str
        The ``MAX_CATEGORIES`` (30) most frequent category labels (missing values count as
        the category ``"(missing)"``), in natural order; palette colour ``i`` goes to
        ``keep[i]``, every other category is grey ("other").
    note : str or None
        ``"'col' has N categories; ..."`` when categories were grouped.
    """
    counts = pd.Series(category_labels(values)).value_counts()
    keep = sorted(counts.index[:MAX_CATEGORIES], key=_natural)
    note = None
    if len(counts) > MAX_CATEGORIES:
        missing = " (missing values count as one)" if MISSING_LABEL in counts.index else ""
        note = (f"{values.name!r} has {len(counts):,} categories{missing}; the {MAX_CATEGORIES} "
                "most frequent are coloured, the rest are grey ('other').")
    return keep, note


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
    all_values: pd.Series | None = None,
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
    all_values : Series, optional
        The whole ``color`` column when ``df`` is a drawn sample: categories are counted and
        chosen on it (:func:`category_plan`), as every other view does.

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
    elif is_categorical(df[color] if all_values is None else all_values):
        values = category_labels(df[color])
        keep, note = category_plan(df[color] if all_values is None else all_values)
        for i, cat in enumerate(keep):
            idx = np.flatnonzero(values == cat)
            if len(idx):
                traces.append(make(idx, str(cat), dict(size=size, color=_PALETTE[i % len(_PALETTE)],
                                                       opacity=0.85)))
        rest = np.flatnonzero(~np.isin(values, keep))
        if len(rest):
            traces.append(make(rest, "other", dict(size=size, color="#cccccc", opacity=0.6)))
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


def _natural(v: str):
    try:
        return (0, float(v), "")
    except ValueError:
        return (1, 0.0, v)
