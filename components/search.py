"""Search by meaning: filter controls, the hits table and the search summary (no backend calls)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

__all__ = ["filterable_columns", "filter_controls", "hits_frame", "hits_table_options",
           "search_summary", "MAX_FILTER_CATEGORIES"]

#: A text or category column is offered as a filter when it has at most this many values.
MAX_FILTER_CATEGORIES = 200
STRATEGIES = {
    "exact": "exact scan of every row",
    "prefilter-exact": "exact scan of the rows passing the filters (pre-filtering)",
    "ivf": "IVF index",
    "ivf-postfilter": "IVF index, then the filters (post-filtering with oversampling)",
}


def filterable_columns(table: pd.DataFrame, exclude: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Columns a search can filter on: (categorical, numeric).

    Categorical: category, bool, or text columns with 2 to 200 distinct values (integer
    columns with at most 12 values too); numeric: other number columns with 2+ values.
    """
    cat, num = [], []
    for col in table.columns:
        if col == "_row" or col in exclude:
            continue
        s = table[col]
        n = s.nunique(dropna=True)
        if n < 2:
            continue
        if pd.api.types.is_bool_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype):
            cat.append(col)
        elif pd.api.types.is_numeric_dtype(s):
            (cat if pd.api.types.is_integer_dtype(s) and n <= 12 else num).append(col)
        elif n <= MAX_FILTER_CATEGORIES:
            cat.append(col)
    return cat, num


def _native(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def filter_controls(table: pd.DataFrame, categorical: list[str], numeric: list[str], *,
                    key: str) -> list[dict[str, Any]]:
    """Widgets for metadata filters; returns the chosen filters in the backend's dict form.

    A multiselect picks the columns; then each categorical column gets a multiselect of
    values (a row passes when its value is one of them) and each numeric column a range
    slider (inclusive). A filter that keeps everything is not returned.
    """
    chosen = st.multiselect("Filter on columns", [*categorical, *numeric], key=f"{key}-cols",
                            placeholder="no filter")
    filters: list[dict[str, Any]] = []
    for col in chosen:
        s = table[col]
        if col in categorical:
            values = sorted((_native(v) for v in s.dropna().unique()), key=str)
            picked = st.multiselect(f"{col} is one of", values, key=f"{key}-cat-{col}")
            if picked:
                filters.append({"kind": "category", "column": col, "values": list(picked)})
        else:
            vals = pd.to_numeric(s, errors="coerce").dropna()
            is_int = pd.api.types.is_integer_dtype(s)
            lo, hi = (int(vals.min()), int(vals.max())) if is_int else (float(vals.min()), float(vals.max()))
            low, high = st.slider(f"{col} between", lo, hi, (lo, hi), key=f"{key}-num-{col}")
            if (low, high) != (lo, hi):
                filters.append({"kind": "range", "column": col,
                                "low": None if low == lo else low, "high": None if high == hi else high})
    return filters


def hits_frame(hits: pd.DataFrame, table: pd.DataFrame, text_column: str,
               columns: list[str] | None = None) -> pd.DataFrame:
    """The hits with their text and a few metadata columns: rank, text, score, ..., _row.

    The text comes right after the rank, so a narrow search column shows it whole and the
    metadata columns scroll in beside it (issue 17, item 26)."""
    cols = [c for c in (columns or []) if c in table.columns and c not in (text_column, "_row")]
    out = hits[["rank", "score", "_row"]].merge(table[["_row", text_column, *cols]], on="_row",
                                                how="left")
    return out[["rank", text_column, "score", *cols, "_row"]]


#: The hits table's text column: its width in pixels (it sits in a column two fifths of the
#: page wide, after the small rank column) and the most lines it wraps to.
HITS_TEXT_WIDTH = 270
HITS_MAX_LINES = 6
_CHAR_PX, _LINE_PX = 7.0, 19


def hits_table_options(hits: pd.DataFrame, text_column: str) -> dict[str, Any]:
    """``st.dataframe`` keyword arguments for :func:`hits_frame`'s table.

    The text column gets a fixed width that fits beside the other columns and rows tall
    enough for the longest text to wrap over up to ``HITS_MAX_LINES`` lines, instead of
    being cut off at the column's edge; a longer text shows in full on hover (the cell's
    tooltip). ``_row`` is hidden (the hits are circled on the map).
    """
    longest = (int(hits[text_column].astype(str).str.len().max())
               if text_column in hits.columns and len(hits) else 0)
    per_line = HITS_TEXT_WIDTH / _CHAR_PX
    lines = int(min(HITS_MAX_LINES, max(1, -(-longest // per_line))))
    row_height = 12 + _LINE_PX * lines
    return {
        "hide_index": True,
        "row_height": row_height,
        "height": min(560, 38 + row_height * len(hits)),
        "column_config": {
            "rank": st.column_config.NumberColumn("rank", width="small"),
            "score": st.column_config.NumberColumn("score", format="%.3f", width="small"),
            text_column: st.column_config.TextColumn(
                text_column, width=HITS_TEXT_WIDTH,
                help="Long texts wrap; hover a cell to read all of it."),
            "_row": None,
        },
    }


def search_summary(result) -> str:
    """One line: hits, rows passing the filters (selectivity), strategy, timings."""
    n_hits = len(result.hits)
    parts = [f"**{n_hits}** hit{'s' if n_hits != 1 else ''}"]
    if result.filters:
        parts.append(f"the filters keep **{result.n_passing:,} of {result.n_rows:,} rows "
                     f"({result.selectivity:.1%} selectivity)**")
    else:
        parts.append(f"among {result.n_rows:,} rows")
    how = STRATEGIES.get(result.strategy, result.strategy)
    if result.strategy == "exact" and result.filters:
        how = STRATEGIES["prefilter-exact"]
    if result.index_method == "ivf":
        how += (f" ({result.n_lists:,} lists, n_probe {result.n_probe}, "
                f"recall@10 {result.recall:.3f} measured at build)")
    parts.append(how)
    parts.append(f"{1000 * (result.seconds + result.embed_seconds):.0f} ms"
                 + (f" + {result.index_seconds:.1f} s to build the index" if result.index_seconds > 0.5
                    else ""))
    return " · ".join(parts)
