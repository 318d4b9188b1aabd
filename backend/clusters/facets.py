"""Linked filters: counts of metadata columns under the other charts' filters, in DuckDB.

Every chart (a *facet*) of a column is counted over the rows that pass every
filter except the ones on that column itself, and the map's row selection
(the usual cross-filter rule: brushing a chart narrows the others, not itself).
DuckDB scans the dataset's Parquet file directly, so a round trip over
1,000,000 rows stays well under a second (see ``bench/clusters.py``).

Filters are :class:`backend.search.CategoryFilter` and
:class:`backend.search.RangeFilter` (or their dict form), the same objects the
search uses; the map's selection is an array of row ids (``_row``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backend.errors import InvalidParameterError
from backend.search import CategoryFilter, RangeFilter, filter_from_dict

__all__ = ["Facet", "FacetCounts", "facet_counts", "filtered_rows", "filtered_table", "OTHER",
           "MISSING"]

ROW = "_row"
OTHER = "(other)"
MISSING = "(missing)"
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")


@dataclass(frozen=True)
class Facet:
    """Counts of one column.

    Attributes
    ----------
    column : str
    kind : {"category", "numeric"}
    counts : DataFrame
        ``"category"``: columns ``value`` (str; ``"(other)"`` sums the values past the
        top ones, ``"(missing)"`` counts nulls) and ``count`` (int64), most frequent first.
        ``"numeric"``: columns ``low``, ``high`` (float64, bin edges over the whole
        column, so bins stay put while filtering) and ``count`` (int64).
    n_distinct : int
        Distinct non-null values among the counted rows (category facets).
    n_counted : int
        Rows counted (passing the other filters).
    """

    column: str
    kind: str
    counts: pd.DataFrame
    n_distinct: int
    n_counted: int


@dataclass(frozen=True)
class FacetCounts:
    """All facets of one request, and how many rows pass every filter."""

    facets: dict[str, Facet]
    n_selected: int
    n_rows: int
    rows: np.ndarray | None = None

    def to_dict(self) -> dict:
        """Plain JSON: each facet's counts as a list of records, the rows as a list."""
        return {"facets": {c: {"column": f.column, "kind": f.kind, "n_distinct": f.n_distinct,
                               "n_counted": f.n_counted,
                               "counts": f.counts.to_dict(orient="list")}
                           for c, f in self.facets.items()},
                "n_selected": self.n_selected, "n_rows": self.n_rows,
                "rows": None if self.rows is None else self.rows.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "FacetCounts":
        facets = {}
        for c, f in d["facets"].items():
            counts = pd.DataFrame(f["counts"])
            if f["kind"] == "category":
                counts = counts.astype({"value": str, "count": "int64"}) if len(counts) else \
                    pd.DataFrame({"value": pd.Series([], dtype=str),
                                  "count": pd.Series([], dtype="int64")})
            else:
                counts = counts.astype({"low": "float64", "high": "float64", "count": "int64"}) \
                    if len(counts) else _empty_numeric()
            facets[c] = Facet(f["column"], f["kind"], counts, int(f["n_distinct"]),
                              int(f["n_counted"]))
        rows = None if d.get("rows") is None else np.asarray(d["rows"], dtype=np.int64)
        return cls(facets, int(d["n_selected"]), int(d["n_rows"]), rows)


def _empty_numeric() -> pd.DataFrame:
    return pd.DataFrame({"low": pd.Series([], dtype="float64"),
                         "high": pd.Series([], dtype="float64"),
                         "count": pd.Series([], dtype="int64")})


def _as_filters(filters: Sequence) -> list:
    out = []
    for item in filters or ():
        flt = filter_from_dict(item) if isinstance(item, dict) else item
        if not isinstance(flt, (CategoryFilter, RangeFilter)):
            raise InvalidParameterError(
                f"filters must be CategoryFilter or RangeFilter objects or dicts; got {item!r}.")
        out.append(flt)
    return out


class _Table:
    """A DuckDB view of one Parquet file plus an optional row-id selection."""

    def __init__(self, path: str | Path, rows: np.ndarray | None):
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET threads TO 2")
        self.con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{_quote(path)}')")
        self.types = {r[0]: r[1] for r in self.con.execute("DESCRIBE t").fetchall()}
        self.n_rows = int(self.con.execute("SELECT count(*) FROM t").fetchall()[0][0])
        self.rows = None
        if rows is not None:
            import pyarrow as pa

            rows = np.asarray(rows, dtype=np.int64).ravel()
            lo, hi = (int(rows.min()), int(rows.max())) if rows.size else (0, 0)
            if rows.size and (lo < 0 or hi >= self.n_rows):
                raise InvalidParameterError(
                    f"selected row ids must be in [0, {self.n_rows - 1}]; got {lo}..{hi}.")
            self.rows = pa.table({ROW: rows})  # duplicates are harmless in the IN (...) below
            self.con.register("sel", self.rows)

    def close(self) -> None:
        self.con.close()

    def numeric(self, column: str) -> bool:
        return self.types[column].split("(")[0] in _NUMERIC or self.types[column].startswith("DECIMAL")

    def check(self, column: str) -> None:
        if column not in self.types or column == ROW:
            raise InvalidParameterError(
                f"column {column!r} is not in the dataset; columns are "
                f"{[c for c in self.types if c != ROW]}.")

    def where(self, filters: list, skip: str | None = None) -> tuple[str, list]:
        """SQL condition and parameters for every filter not on ``skip``, and the selection."""
        parts, args = ["TRUE"], []
        for flt in filters:
            self.check(flt.column)
            if flt.column == skip:
                continue
            col = _ident(flt.column)
            if isinstance(flt, CategoryFilter):
                if not flt.values:
                    raise InvalidParameterError(
                        f"category filter on {flt.column!r} has no values; give at least one.")
                parts.append(f"CAST({col} AS VARCHAR) IN ({', '.join('?' * len(flt.values))})")
                args += [str(v) for v in flt.values]
            else:
                if not self.numeric(flt.column):
                    raise InvalidParameterError(
                        f"range filter needs a numeric column; {flt.column!r} is "
                        f"{self.types[flt.column]}. Filter it by category instead.")
                if flt.low is None and flt.high is None:
                    raise InvalidParameterError(
                        f"range filter on {flt.column!r} has neither low nor high; give a bound.")
                if flt.low is not None:
                    parts.append(f"{col} >= ?")
                    args.append(float(flt.low))
                if flt.high is not None:
                    parts.append(f"{col} <= ?")
                    args.append(float(flt.high))
        if self.rows is not None:
            parts.append(f"{ROW} IN (SELECT {ROW} FROM sel)")
        return " AND ".join(parts), args


    def passing(self, filters: list) -> np.ndarray:
        where, args = self.where(filters)
        got = self.con.execute(f"SELECT {ROW} FROM t WHERE {where}", args).fetchnumpy()
        return np.sort(np.asarray(got[ROW], dtype=np.int64))


def _quote(path: str | Path) -> str:
    return str(path).replace("'", "''")


def _ident(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def facet_counts(
    path: str | Path,
    columns: Sequence[str],
    *,
    filters: Sequence = (),
    rows: np.ndarray | None = None,
    top: int = 20,
    bins: int = 30,
    kinds: dict[str, str] | None = None,
    return_rows: bool = False,
) -> FacetCounts:
    """Cross-filtered counts of metadata columns.

    Parameters
    ----------
    path : path-like
        A dataset's ``table.parquet`` (with the row id column ``_row``).
    columns : sequence of str
        Columns to chart.
    filters : sequence of CategoryFilter, RangeFilter or dict, default=()
        Active chart filters (AND). A column's own filters do not narrow its chart.
    rows : array-like of int, optional
        Row ids selected on the map; narrows every chart.
    top : int, default=20
        Category facets list this many most frequent values; the rest are summed
        as ``"(other)"``.
    bins : int, default=30
        Bins of a numeric facet (equal width over the column's full range).
    kinds : dict of column -> {"category", "numeric"}, optional
        Override: numeric columns are histograms unless set to ``"category"``.
    return_rows : bool, default=False
        Also return the ids of the rows passing every filter and the selection
        (``FacetCounts.rows``, int64, ascending), to dim the others on the map.

    Returns
    -------
    FacetCounts

    Raises
    ------
    InvalidParameterError
        If a column is unknown, a range filter targets a non-numeric column, a
        filter is malformed, ``top``/``bins`` are out of [1, 1000], or a row id is out of range.
    """
    for name, v in (("top", top), ("bins", bins)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1000:
            raise InvalidParameterError(f"{name} must be an integer in [1, 1000]; got {v!r}.")
    flts = _as_filters(filters)
    tab = _Table(path, rows)
    try:
        out = {}
        for column in columns:
            tab.check(column)
            kind = (kinds or {}).get(column) or ("numeric" if tab.numeric(column) else "category")
            if kind not in ("category", "numeric"):
                raise InvalidParameterError(
                    f"kind of {column!r} must be 'category' or 'numeric'; got {kind!r}.")
            if kind == "numeric" and not tab.numeric(column):
                raise InvalidParameterError(
                    f"{column!r} is {tab.types[column]}, not numeric; chart it as a category.")
            where, args = tab.where(flts, skip=column)
            out[column] = (_numeric_facet if kind == "numeric" else _category_facet)(
                tab, column, where, args, top if kind == "category" else bins)
        if return_rows:
            passing = tab.passing(flts)
            return FacetCounts(out, len(passing), tab.n_rows, passing)
        where, args = tab.where(flts)
        n_sel = int(tab.con.execute(f"SELECT count(*) FROM t WHERE {where}", args).fetchall()[0][0])
        return FacetCounts(out, n_sel, tab.n_rows)
    finally:
        tab.close()


def _category_facet(tab: _Table, column: str, where: str, args: list, top: int) -> Facet:
    col = _ident(column)
    df = tab.con.execute(
        f"""WITH g AS (SELECT CAST({col} AS VARCHAR) AS value, count(*) AS count
                       FROM t WHERE {where} GROUP BY 1)
            SELECT value, count, (SELECT count(value) FROM g) AS n_distinct,
                   (SELECT sum(count) FROM g) AS n_counted
            FROM g ORDER BY count DESC, value NULLS LAST LIMIT {top}""", args).df()
    if df.empty:
        return Facet(column, "category", pd.DataFrame({"value": pd.Series([], dtype=str),
                                                       "count": pd.Series([], dtype="int64")}), 0, 0)
    n_distinct, n_counted = int(df["n_distinct"].iloc[0]), int(df["n_counted"].iloc[0])
    counts = df[["value", "count"]].astype({"count": "int64"})
    counts["value"] = counts["value"].astype(object).where(counts["value"].notna(), MISSING)
    rest = n_counted - int(counts["count"].sum())
    if rest > 0:
        counts = pd.concat([counts, pd.DataFrame({"value": [OTHER], "count": [rest]})],
                           ignore_index=True)
    return Facet(column, "category", counts.astype({"value": str}), n_distinct, n_counted)


def _numeric_facet(tab: _Table, column: str, where: str, args: list, bins: int) -> Facet:
    col = _ident(column)
    lo, hi = tab.con.execute(f"SELECT min({col}), max({col}) FROM t").fetchall()[0]
    if lo is None:
        return Facet(column, "numeric", _empty_numeric(), 0, 0)
    lo, hi = float(lo), float(hi)
    width = (hi - lo) / bins if hi > lo else 1.0
    nb = bins if hi > lo else 1
    got = tab.con.execute(
        f"""SELECT least(CAST(floor(({col} - ?) / ?) AS BIGINT), {nb - 1}) AS b, count(*) AS c
            FROM t WHERE ({where}) AND {col} IS NOT NULL GROUP BY 1""",
        [lo, width, *args]).fetchnumpy()
    counts = np.zeros(nb, np.int64)
    counts[np.asarray(got["b"], np.int64)] = np.asarray(got["c"], np.int64)
    edges = lo + width * np.arange(nb + 1)
    if hi == lo:
        edges = np.array([lo, hi])
    frame = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "count": counts})
    return Facet(column, "numeric", frame, int((counts > 0).sum()), int(counts.sum()))


def filtered_rows(path: str | Path, *, filters: Sequence = (), rows: np.ndarray | None = None) -> np.ndarray:
    """Row ids (int64, ascending) passing every filter and the selection. Raises as :func:`facet_counts`."""
    tab = _Table(path, rows)
    try:
        return tab.passing(_as_filters(filters))
    finally:
        tab.close()


def filtered_table(
    path: str | Path, *, filters: Sequence = (), rows: np.ndarray | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The rows passing every filter and the selection (all columns, or ``columns`` plus ``_row``)."""
    tab = _Table(path, rows)
    try:
        for c in columns or ():
            tab.check(c)
        cols = "*" if columns is None else ", ".join(_ident(c) for c in dict.fromkeys([ROW, *columns]))
        where, args = tab.where(_as_filters(filters))
        return tab.con.execute(f"SELECT {cols} FROM t WHERE {where} ORDER BY {ROW}", args).df()
    finally:
        tab.close()
