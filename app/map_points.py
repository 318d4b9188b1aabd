"""What the Map page's WebGL map needs, loaded and encoded once per dataset and projection.

Everything here is cached with ``st.cache_resource`` (shared, never copied): a rerun after a
selection, a colour change or a click does no O(rows) pandas work. Treat the returned frames
as read-only.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from app.clusters_panel import cluster_column
from components.clusters import cluster_centres
from components.map.encode import (EncodedColor, EncodedCoords, EncodedDensity, encode_color,
                                   encode_coords, encode_density, encode_labels, visible_rows)
from components.selection import rows_in_selection

__all__ = ["projection", "dataset_table", "row_index", "coords", "colors", "selected_rows",
           "rows_of", "row_of_id", "table_options", "describe_row", "density",
           "cluster_labels"]


@st.cache_resource(show_spinner=False, max_entries=4)
def dataset_table(_client, dataset_id: str) -> pd.DataFrame:
    """The dataset's metadata table (``_row`` and columns), shared by reruns and sessions."""
    return _client.table(dataset_id)


@st.cache_resource(show_spinner=False, max_entries=4)
def projection(_client, art_id: str) -> pd.DataFrame:
    """``_row``, ``x``, ``y``[, ``z``] of a projection artifact."""
    return _client.artifact_table(art_id, "projection.parquet")


@st.cache_resource(show_spinner=False, max_entries=4)
def row_index(_client, dataset_id: str) -> pd.Index:
    """Row id -> position in :func:`dataset_table` (select rows by id, never by merging)."""
    return pd.Index(dataset_table(_client, dataset_id)["_row"].to_numpy())


@st.cache_resource(show_spinner=False, max_entries=4)
def coords(_client, art_id: str, budget: int) -> EncodedCoords:
    """The projection's points to draw (finite, at most ``budget``), Arrow-encoded."""
    p = projection(_client, art_id)
    return encode_coords(art_id, p["_row"].to_numpy(), p["x"].to_numpy(), p["y"].to_numpy(), budget)


@st.cache_resource(show_spinner=False, max_entries=16)
def colors(_client, art_id: str, dataset_id: str, column: str | None, budget: int,
           scores_id: str | None = None, scores_column: str | None = None,
           clustering: tuple[str, int] | None = None, names: tuple = ()) -> EncodedColor:
    """The colour column for the drawn points, aligned with the projection's rows.

    ``column`` is a dataset column, or (with ``scores_id``) ``scores_column`` of that artifact's
    ``per_point.parquet`` (faithfulness per point), or (with ``clustering``, ``(artifact id,
    level)``) each row's cluster name; ``names`` (the level's names) only keys the cache, so a
    renamed cluster recolours.
    """
    enc = coords(_client, art_id, budget)
    if column is None:
        return encode_color(None, enc.positions)
    rows = projection(_client, art_id)["_row"].to_numpy()
    if clustering is not None:
        named = cluster_column(_client, clustering, len(dataset_table(_client, dataset_id)))
        values = pd.Series(named.to_numpy()[rows] if len(named) else [None] * len(rows))
    elif scores_id is not None:
        pp = _client.artifact_table(scores_id, "per_point.parquet")
        values = pd.Series(pp[scores_column].to_numpy(), index=pp["_row"].to_numpy()).reindex(rows)
    else:
        pos = row_index(_client, dataset_id).get_indexer(rows)
        col = dataset_table(_client, dataset_id)[column]
        values = col.iloc[np.where(pos >= 0, pos, 0)].reset_index(drop=True)
        if (pos < 0).any():
            values = values.where(pd.Series(pos >= 0))
    return encode_color(values.reset_index(drop=True), enc.positions, label=column)


def selected_rows(proj: pd.DataFrame, selection: dict | None, color: EncodedColor,
                  hidden=()) -> np.ndarray | None:
    """Row ids inside the selection, tested against EVERY row of the projection.

    Rows of hidden legend categories are left out (they are neither drawn nor selectable).
    The last answer is kept in the session: reruns with the same selection cost nothing.
    """
    if not selection:
        return None
    key = json.dumps([id(proj), selection, sorted(hidden), color.color_id], sort_keys=True)
    memo = st.session_state.get("_map_selection_memo")
    if memo and memo[0] == key:
        return memo[1]
    rows = rows_in_selection(proj, selection)
    mask = visible_rows(color, hidden)
    if rows is not None and mask is not None:
        hidden_rows = proj["_row"].to_numpy()[~mask]
        rows = rows[~np.isin(rows, hidden_rows)]
    st.session_state["_map_selection_memo"] = (key, rows)
    return rows


def rows_of(table: pd.DataFrame, index: pd.Index, rows) -> pd.DataFrame:
    """The table's rows with these ids, in this order (positions from the cached index), ``_row`` first."""
    pos = index.get_indexer(np.asarray(rows))
    out = table.iloc[pos[pos >= 0]]
    return out[["_row", *[c for c in out.columns if c != "_row"]]]


def table_options(columns, id_column: str | None) -> dict:
    """``st.dataframe`` keyword arguments that show rows by the dataset's id column.

    With an id column (chosen at upload) it comes first and the internal ``_row`` is hidden
    (issue 17, item 24); without one, ``_row`` is the only id and stays first.
    """
    if not id_column or id_column not in columns:
        return {"hide_index": True}
    order = [id_column, *[c for c in columns if c not in (id_column, "_row")]]
    return {"hide_index": True, "column_order": order}


@st.cache_resource(show_spinner=False, max_entries=4)
def _id_index(_client, dataset_id: str, id_column: str) -> pd.Series:
    """Id (as text) -> ``_row``, built once per dataset (the id column is unique)."""
    table = dataset_table(_client, dataset_id)
    return pd.Series(table["_row"].to_numpy(), index=table[id_column].astype(str).to_numpy())


def row_of_id(_client, dataset_id: str, id_column: str, value: str) -> int | None:
    """The ``_row`` whose ``id_column`` reads ``value`` (compared as text), or None; a
    lookup in a cached index, so a rerun does no O(rows) work."""
    row = _id_index(_client, dataset_id, id_column).get(str(value).strip())
    return None if row is None else int(row)


def describe_row(table: pd.DataFrame, index: pd.Index, row: int, columns) -> str:
    """``"column: value · …"`` of one row (each value cut at 80 characters); "" when the row id
    is not in the table or no column is asked for."""
    one = rows_of(table, index, [row])
    if not len(one) or not columns:
        return ""
    return " · ".join(f"{col}: {str(one.iloc[0][col])[:80]}" for col in columns if col in one.columns)


@st.cache_resource(show_spinner=False, max_entries=4)
def density(_client, art_id: str) -> EncodedDensity:
    """The projection's density grid (``client.density``) as the map's layer, one byte a cell."""
    grid = _client.density(art_id)
    return encode_density(grid.density, grid.x, grid.y)


@st.cache_resource(show_spinner=False, max_entries=8)
def _centres(_client, art_id: str, clustering: tuple[str, int]) -> pd.DataFrame:
    p = projection(_client, art_id)
    labels = _client.cluster_labels(*clustering)
    rows = p["_row"].to_numpy()
    if len(rows) and rows.max() >= len(labels):
        return pd.DataFrame({"cluster": [], "x": [], "y": []})
    return cluster_centres(p["x"].to_numpy(), p["y"].to_numpy(), labels[rows])


def cluster_labels(_client, art_id: str, clustering: tuple[str, int]) -> list[list]:
    """Names of the clusters of ``clustering`` (artifact id, level) at their median position
    on this projection, largest first (:func:`components.map.encode.encode_labels`).

    The centres are cached per projection and clustering; the names are read on every call,
    so a rename shows at once. Empty when the clustering does not cover the projection's rows.
    """
    return encode_labels(_centres(_client, art_id, clustering), _client.cluster_names(*clustering))
