"""Reading and validating an uploaded vectors file.

Formats: CSV, TSV and other delimited text (separator, decimal mark, encoding and
header detected, each can be chosen), Parquet (a table whose numeric columns, or one
column of lists, are the vectors), NPY (a 2-D array), NPZ (one 2-D array plus optional
1-D arrays of the same length as metadata) and AnnData ``.h5ad`` (``X`` or an ``obsm``
embedding, ``obs`` as metadata), each with an optional metadata CSV.

By default the vectors are the numeric columns that are not index-like (named
``row``/``index``/``id``…, or the integers 0..n-1) and not integer labels (named
``label``/``class``…, or few distinct integers beside real-valued columns); those are
kept as metadata, and the preview and the notes say which and why.

Everything here raises :class:`~backend.errors.InvalidInputError` with a message
the user can act on; nothing is written anywhere, so a bad upload cannot damage
what is stored.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backend.datasets.delimited import TextFormat, detect_text_format, read_delimited
from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "FORMATS",
    "UploadPreview",
    "ParsedUpload",
    "TextFormat",
    "describe_roles",
    "max_upload_bytes",
    "max_upload_rows",
    "check_upload_size",
    "check_upload_rows",
    "upload_size_message",
    "UploadLimits",
    "inspect_upload",
    "parse_upload",
]

FORMATS = ("csv", "tsv", "txt", "parquet", "npy", "npz", "h5ad")
_EXAMPLES = 5
_INDEX_NAMES = frozenset({"row", "rows", "_row", "index", "idx", "id", "key", "uid", "uuid",
                          "rowid", "unnamed: 0", "level_0"})
_INDEX_SUFFIXES = ("_id", "_idx", "_index")
_LABEL_NAMES = frozenset({"label", "labels", "class", "classes", "target", "targets", "cluster",
                          "clusters", "category", "digit", "y_true", "y_pred", "species", "group"})
_FEW_VALUES = 32


def max_upload_bytes() -> int:
    """Upload size limit: ``$LATENT_LENS_MAX_UPLOAD_MB`` (default 1024) megabytes."""
    return int(float(os.environ.get("LATENT_LENS_MAX_UPLOAD_MB", "1024")) * 1024 * 1024)


def max_upload_rows() -> int:
    """Row limit of an upload: ``$LATENT_LENS_MAX_ROWS`` (default 10,000,000)."""
    return int(os.environ.get("LATENT_LENS_MAX_ROWS", "10000000"))


@dataclass(frozen=True)
class UploadPreview:
    """What the upload form needs to offer choices.

    Attributes
    ----------
    format : str
        One of :data:`FORMATS`.
    n_rows : int
    columns, numeric_columns, list_columns : list of str
        Table columns (``obs`` for ``.h5ad``), those holding numbers, those holding lists.
    head : pandas.DataFrame
        The first five rows.
    arrays : list of str
        NPZ: its 2-D arrays; ``.h5ad``: ``X`` and ``obsm/<name>`` embeddings.
    id_guess : str or None
        A unique column named like an id.
    text_format : TextFormat or None
        Delimited text: the separator, decimal mark, encoding and header used.
    vector_columns : list of str
        The default vector columns (numeric, not index-like, not integer labels).
    not_vectors : dict of str -> str
        Numeric columns kept as metadata by default, with the reason.
    notes : list of str
        What reading noticed: the encoding, rows with quoted line breaks or missing fields.
    latitude, longitude : str or None
        Coordinate columns found by name (proposed, the user may change them).
    geo_warning : str or None
        Why that proposal may be wrong (several candidates, values that look swapped).
    """

    format: str
    n_rows: int
    columns: list[str]
    numeric_columns: list[str]
    list_columns: list[str]
    head: pd.DataFrame
    arrays: list[str] = field(default_factory=list)
    id_guess: str | None = None
    text_format: TextFormat | None = None
    vector_columns: list[str] = field(default_factory=list)
    not_vectors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    latitude: str | None = None
    longitude: str | None = None
    geo_warning: str | None = None


@dataclass(frozen=True)
class ParsedUpload:
    """A validated upload: a metadata table, the vectors, and what was noticed.

    ``latitude``/``longitude`` are the coordinate columns the user chose (``None``:
    detect them by name when storing).
    """

    table: pd.DataFrame
    vectors: np.ndarray
    notes: list[str] = field(default_factory=list)
    vector_names: list[str] = field(default_factory=list)
    latitude: str | None = None
    longitude: str | None = None


def _format(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in FORMATS:
        raise InvalidInputError(
            f"{filename!r}: unsupported file type {('.' + ext) if ext else '(no extension)'}; "
            f"upload one of {', '.join('.' + f for f in FORMATS)} (edge lists are added on the "
            "Graph page, model weights on the Weights page)."
        )
    return ext


@dataclass(frozen=True)
class UploadLimits:
    """The size and row limits every upload is checked against (settings of a backend).

    Parameters
    ----------
    max_bytes : int, optional
        Bytes of one upload, all its files together (default :func:`max_upload_bytes`).
    max_rows : int, optional
        Rows of a vectors or text table (default :func:`max_upload_rows`).
    """

    max_bytes: int = field(default_factory=lambda: max_upload_bytes())
    max_rows: int = field(default_factory=lambda: max_upload_rows())


def upload_size_message(what: str, limit: int, n_bytes: int | None = None) -> str:
    """The one message for an upload over the size limit (also the service's HTTP 413).

    ``what`` names the upload (a quoted file name, or "the upload" when the size is unknown).
    """
    def mb(n: int) -> str:
        return f"{n / 2**20:,.{0 if n >= 10 * 2**20 else 2}f} MB"

    size = "" if n_bytes is None else f" is {mb(n_bytes)},"
    return (f"{what}{size} over the {mb(limit)} upload limit; upload a smaller file "
            "or raise LATENT_LENS_MAX_UPLOAD_MB (on the backend service, if you use one).")


def check_upload_size(n_bytes: int, filename: str, limit: int | None = None) -> None:
    """Refuse an empty upload, or one over ``limit`` bytes (default :func:`max_upload_bytes`).

    Every ingestion path (vectors, texts, graphs, model weights, checkpoints) calls this once
    with the total size of the files it received.

    Raises
    ------
    InvalidInputError
        ``n_bytes`` is 0 or over the limit (:func:`upload_size_message`).
    """
    limit = max_upload_bytes() if limit is None else int(limit)
    if n_bytes > limit:
        raise InvalidInputError(upload_size_message(repr(filename), limit, n_bytes))
    if n_bytes == 0:
        raise InvalidInputError(f"{filename!r} is empty (0 bytes).")


def check_upload_rows(n_rows: int, filename: str, limit: int | None) -> None:
    """Refuse an upload of more than ``limit`` rows (``None``: no limit).

    Raises
    ------
    InvalidInputError
        Over the limit (``LATENT_LENS_MAX_ROWS``).
    """
    if limit is not None and n_rows > limit:
        raise InvalidInputError(
            f"{filename!r} has {n_rows:,} rows, over the limit of {limit:,}; upload fewer rows "
            "or raise LATENT_LENS_MAX_ROWS (on the backend service, if you use one).")


def _load_table(
    data: bytes, filename: str, fmt: str, read: dict[str, Any]
) -> tuple[pd.DataFrame, TextFormat | None, list[str]]:
    """A table format read into a DataFrame (string column names), how, and what was noticed."""
    if fmt in ("csv", "tsv", "txt"):
        text_format, notes = detect_text_format(data, filename, **read)
        df, record_notes = read_delimited(data, text_format, filename)
        return df, text_format, [*notes, *record_notes]
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise InvalidInputError(
            f"{filename!r} is not a readable Parquet file ({type(e).__name__}: {e})."
        ) from None
    df.columns = [str(c) for c in df.columns]
    return df, None, []


def _refuse_foreign(data: bytes, filename: str, magic: bytes, kind: str) -> None:
    if data.startswith(magic):
        return
    if data[:1] == b"\x80":  # the pickle protocol marker
        raise InvalidInputError(
            f"{filename!r} is a Python pickle, which is never loaded (it can run code); "
            f"save the array with np.save / np.savez instead."
        )
    raise InvalidInputError(f"{filename!r} is not a valid {kind} file (its header is wrong).")


def _load_npy(data: bytes, filename: str) -> np.ndarray:
    _refuse_foreign(data, filename, b"\x93NUMPY", ".npy")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise InvalidInputError(
                f"{filename!r} holds Python objects (a pickled array), which are never loaded "
                "for safety; save a numeric array with np.save(..., allow_pickle=False)."
            ) from None
        raise InvalidInputError(f"{filename!r} is not a valid .npy file: {e}") from None
    except (OSError, EOFError) as e:
        raise InvalidInputError(f"{filename!r} is not a valid .npy file: {e}") from None
    return arr


def _npz_2d_arrays(data: bytes, filename: str) -> list[str]:
    """Names of the 2-D arrays of an .npz, read from the headers only."""
    import zipfile

    _refuse_foreign(data, filename, b"PK", ".npz")
    out = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                with zf.open(name) as f:
                    major, _ = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if major == 1
                            else np.lib.format.read_array_header_2_0)
                    shape, _, _ = read(f)
                if len(shape) == 2:
                    out.append(name[:-4] if name.endswith(".npy") else name)
    except Exception as e:  # zipfile and numpy raise several types for a corrupt archive
        raise InvalidInputError(f"{filename!r} is not a valid .npz file ({type(e).__name__}).") from None
    if not out:
        raise InvalidInputError(f"{filename!r} holds no 2-D array to use as vectors.")
    return out


def _load_npz(data: bytes, filename: str, array_key: str | None):
    _refuse_foreign(data, filename, b"PK", ".npz")
    try:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise InvalidInputError(
                f"{filename!r} holds Python objects (pickled arrays), which are never loaded; "
                "store numeric or string arrays only."
            ) from None
        raise InvalidInputError(f"{filename!r} is not a valid .npz file: {e}") from None
    except (OSError, EOFError, KeyError) as e:
        raise InvalidInputError(f"{filename!r} is not a valid .npz file: {e}") from None
    except Exception as e:  # zipfile raises BadZipFile and others for a corrupt archive
        raise InvalidInputError(f"{filename!r} is not a valid .npz file ({type(e).__name__}).") from None
    if not arrays:
        raise InvalidInputError(f"{filename!r} holds no arrays.")
    if array_key is None:
        two_d = [k for k, a in arrays.items() if a.ndim == 2]
        preferred = [k for k in ("embeddings", "embedding", "vectors", "X", "x") if k in two_d]
        if preferred:
            array_key = preferred[0]
        elif len(two_d) == 1:
            array_key = two_d[0]
        else:
            raise InvalidInputError(
                f"{filename!r} has {len(two_d)} 2-D arrays ({', '.join(two_d) or 'none'}); "
                "choose the one holding the vectors."
            )
    if array_key not in arrays:
        raise InvalidInputError(f"{filename!r} has no array {array_key!r}; it has {list(arrays)}.")
    vectors = arrays.pop(array_key)
    meta = {k: a for k, a in arrays.items() if a.ndim == 1 and len(a) == len(vectors)}
    return vectors, pd.DataFrame(meta), array_key


def _parse_list_cell(v) -> np.ndarray | None:
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return None
        try:
            return np.asarray(json.loads(s), dtype=np.float64)
        except (json.JSONDecodeError, ValueError, TypeError):
            try:
                return np.asarray([float(x) for x in s.strip("[]()").replace(",", " ").split()])
            except ValueError:
                return None
    if isinstance(v, (list, tuple, np.ndarray)):
        try:
            return np.asarray(v, dtype=np.float64)
        except (ValueError, TypeError):
            return None
    return None


def _looks_like_list_column(s: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return False
    sample = s.dropna().head(20)
    if sample.empty:
        return False
    parsed = [_parse_list_cell(v) for v in sample]
    return all(p is not None and p.ndim == 1 and p.size > 1 for p in parsed)


def _guess_id_column(df: pd.DataFrame) -> str | None:
    """A column named like an id (id, ID, *_id, index, key, obs_names) whose values are unique."""
    for c in df.columns:
        name = str(c).lower()
        if ((name in ("id", "index", "key", "uid", "uuid", "obs_names") or name.endswith("_id"))
                and df[c].is_unique):
            return str(c)
    return None


def _not_numbers(s: pd.Series) -> pd.Series:
    """Which values of ``s`` are present but do not read as numbers (boolean mask)."""
    return pd.to_numeric(s, errors="coerce").isna() & s.notna()


def _numeric_columns(df: pd.DataFrame) -> list[str]:
    return [
        str(c) for c in df.columns
        if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
    ]


def _not_vector_reason(name: str, s: pd.Series, has_real: bool) -> str | None:
    """Why a numeric column is metadata rather than a vector dimension by default, or None."""
    low = name.strip().lower()
    if low in _INDEX_NAMES or low.endswith(_INDEX_SUFFIXES):
        return "named like an index or id"
    if not pd.api.types.is_integer_dtype(s):
        return None
    n = len(s)
    if n > 1 and s.is_monotonic_increasing and s.is_unique:
        first = int(s.iloc[0])
        if int(s.iloc[-1]) - first == n - 1 and first in (0, 1):
            return f"consecutive integers {first}..{first + n - 1}, a row index"
        return "increasing unique integers, an id"
    k = int(s.nunique())
    if low in _LABEL_NAMES:
        return f"integer labels ({k:,} distinct values)"
    if has_real and k <= _FEW_VALUES and k < n / 2:
        return f"only {k} distinct integers beside real-valued columns, labels"
    return None


def _vector_roles(df: pd.DataFrame, id_column: str | None) -> tuple[list[str], dict[str, str]]:
    """The default vector columns, and the numeric columns kept as metadata with the reason."""
    numeric = _numeric_columns(df)
    has_real = any(pd.api.types.is_float_dtype(df[c]) for c in numeric)
    reasons: dict[str, str] = {}
    for c in numeric:
        reason = "the id column" if c == id_column else _not_vector_reason(c, df[c], has_real)
        if reason:
            reasons[c] = reason
    vectors = [c for c in numeric if c not in reasons]
    if not vectors:  # every numeric column looks like metadata: use them all but the id
        vectors = [c for c in numeric if c != id_column]
        reasons = {c: r for c, r in reasons.items() if c == id_column}
    for c in df.columns:  # text columns that are mostly numbers: say why they are not vectors
        if c in numeric or c == id_column or not (pd.api.types.is_object_dtype(df[c])
                                                  or pd.api.types.is_string_dtype(df[c])):
            continue
        s = df[c].dropna().head(10_000)
        text = _not_numbers(s)
        if 0 < int(text.sum()) <= len(s) // 2:
            reasons[c] = (f"mostly numbers, but {int(text.sum()):,} of the first {len(s):,} "
                          f"values are not (e.g. {str(s[text].iloc[0])!r})")
    return vectors, reasons


def describe_roles(vectors: list[str], reasons: dict[str, str]) -> str:
    """One sentence: which columns are the vectors, which numeric ones are not, and why."""
    shown = ", ".join(vectors[:8]) + (f" … ({len(vectors):,} in all)" if len(vectors) > 8 else "")
    text = f"Vectors: {len(vectors):,} numeric column(s) ({shown})."
    if reasons:
        kept = "; ".join(f"{c!r} ({r})" for c, r in list(reasons.items())[:8])
        text += f" Kept as metadata, not vectors: {kept}."
    return text


def _text_options(sep, decimal, encoding, header) -> dict[str, Any]:
    return {"sep": sep, "decimal": decimal, "encoding": encoding, "header": header}


def inspect_upload(
    data: bytes,
    filename: str,
    *,
    sep: str | None = None,
    decimal: str | None = None,
    encoding: str | None = None,
    header: bool | None = None,
    max_bytes: int | None = None,
) -> UploadPreview:
    """Read an upload far enough to offer the choices (columns, arrays, how text is written).

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        Its name; the extension picks the format.
    sep, decimal, encoding, header : optional
        Delimited text only: see :func:`parse_upload`; ``None`` detects.
    max_bytes : int, optional
        Size limit; default :func:`max_upload_bytes`.

    Returns
    -------
    UploadPreview

    Raises
    ------
    InvalidInputError
        For an unsupported type, an empty, oversized or unreadable file.
    """
    fmt = _format(filename)
    check_upload_size(len(data), filename, max_bytes)
    if fmt in ("npy", "npz"):
        if fmt == "npy":
            arr, arrays = _load_npy(data, filename), []
        else:
            arrays = _npz_2d_arrays(data, filename)
            arr, _, _ = _load_npz(data, filename, arrays[0] if len(arrays) > 1 else None)
        shape = arr.shape
        return UploadPreview(fmt, int(shape[0]) if shape else 0, [], [], [], pd.DataFrame(),
                             arrays)
    if fmt == "h5ad":
        from backend.datasets.h5ad import h5ad_matrices

        matrices, obs = h5ad_matrices(data, filename)
        first = next(iter(matrices.values()))
        return UploadPreview(fmt, first[0], list(obs.columns), _numeric_columns(obs), [],
                             obs.head(5), list(matrices), id_guess=_guess_id_column(obs))
    df, text_format, notes = _load_table(data, filename, fmt,
                                         _text_options(sep, decimal, encoding, header))
    if len(df) == 0:  # said now, before the choices: adding it would be refused
        notes = [f"{filename!r} has a header of {df.shape[1]:,} column(s) but no data rows, so "
                 "there is nothing to store. If that line is data, tick 'First row is data'.",
                 *notes]
    from backend.datasets.geo import guess_geo_columns

    lists = [c for c in df.columns if _looks_like_list_column(df[c])]
    id_guess = _guess_id_column(df)
    vectors, reasons = _vector_roles(df, id_guess)
    latitude, longitude, geo_warning = guess_geo_columns(df)
    return UploadPreview(fmt, len(df), list(df.columns), _numeric_columns(df), lists, df.head(5),
                         id_guess=id_guess, text_format=text_format, vector_columns=vectors,
                         not_vectors=reasons, notes=notes, latitude=latitude,
                         longitude=longitude, geo_warning=geo_warning)


def parse_upload(
    data: bytes,
    filename: str,
    *,
    vector_columns: list[str] | None = None,
    list_column: str | None = None,
    id_column: str | None = None,
    array_key: str | None = None,
    metadata: bytes | None = None,
    metadata_filename: str = "metadata.csv",
    drop_nonfinite: bool = False,
    n_neighbors: int = 15,
    sep: str | None = None,
    decimal: str | None = None,
    encoding: str | None = None,
    header: bool | None = None,
    latitude: str | None = None,
    longitude: str | None = None,
    max_bytes: int | None = None,
) -> ParsedUpload:
    """Validate an upload and split it into a metadata table and float32 vectors.

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        Its name; the extension picks the format (csv, tsv, txt, parquet, npy, npz, h5ad).
    vector_columns : list of str, optional
        Table formats: the numeric columns forming the vectors. Default: the numeric
        columns except ``id_column``, index-like columns and integer labels (see the
        module notes; the notes say which were left out). An ``id_column`` listed here
        is left out of the vectors, with a note.
    list_column : str, optional
        Table formats: one column whose cells are lists or arrays (JSON ``[..]`` text
        in CSV). Excludes ``vector_columns``.
    id_column : str, optional
        A column of unique row ids (kept as metadata).
    array_key : str, optional
        NPZ: the array holding the vectors (default: ``embeddings``/``vectors``/``X``,
        else the only 2-D array). ``.h5ad``: ``"X"`` (default) or ``"obsm/<name>"``.
    metadata : bytes, optional
        A CSV with one row per vector (NPY/NPZ/h5ad, or extra columns for a table).
    drop_nonfinite : bool, default=False
        Drop rows with NaN or infinite values instead of refusing the file.
    n_neighbors : int, default=15
        The projection's neighbourhood size (excluding the point itself); the upload
        needs ``n_neighbors + 1`` rows.
    sep : {",", ";", "\\t", "|"}, optional
        Delimited text: the field separator; default detected.
    decimal : {".", ","}, optional
        Delimited text: the decimal mark; default detected.
    encoding : {"utf-8", "utf-16", "cp1252", "latin-1"}, optional
        Delimited text: the encoding; default UTF-8, else detected (with a note).
    header : bool, optional
        Delimited text: whether the first row names the columns (``False``: it is data
        and the columns are ``column_1``, ``column_2``, …); default detected.
    latitude, longitude : str, optional
        Coordinate columns in degrees (metadata or vector columns), carried on the
        result for the store; default: found by name when storing.
    max_bytes : int, optional
        Size limit; default :func:`max_upload_bytes`.

    Returns
    -------
    ParsedUpload
        ``vectors`` is float32 (n_rows, n_dims); ``notes`` lists what was noticed
        (the columns taken as vectors, dropped rows, constant columns, records that
        span lines) for the user to see.

    Raises
    ------
    InvalidInputError
        Empty file, unreadable encoding, no numeric column, ragged or non-numeric
        vectors, NaN/inf (unless dropped), only constant columns, duplicate ids,
        too few rows for ``n_neighbors``, file over the size limit, metadata of
        another length, a missing closing quote.
    InvalidParameterError
        For contradictory options (both ``vector_columns`` and ``list_column``; the
        id column as the list column or as the only vector column) or a column name
        that does not exist.
    """
    fmt = _format(filename)
    check_upload_size(len(data), filename, max_bytes)
    notes: list[str] = []
    if vector_columns is not None and list_column is not None:
        raise InvalidParameterError("choose either vector columns or one list column, not both.")
    if fmt in ("npy", "npz", "h5ad"):
        if fmt == "npy":
            vectors, table = _load_npy(data, filename), pd.DataFrame()
            names = None
        elif fmt == "npz":
            vectors, table, key = _load_npz(data, filename, array_key)
            names = None
            notes.append(f"vectors from array {key!r}" + (
                f"; metadata columns {list(table.columns)}" if len(table.columns) else ""))
        else:
            from backend.datasets.h5ad import read_h5ad

            vectors, table, _, names, h5_notes = read_h5ad(data, filename, array_key)
            notes += h5_notes
        if vectors.ndim != 2:
            raise InvalidInputError(
                f"{filename!r} holds an array of shape {vectors.shape}; the vectors must be a "
                "2-D array (n_rows, n_dims)."
            )
        if not np.issubdtype(vectors.dtype, np.number) or np.issubdtype(vectors.dtype, np.complexfloating):
            raise InvalidInputError(
                f"{filename!r} holds a {vectors.dtype} array; the vectors must be real numbers."
            )
        vectors = vectors.astype(np.float64)
        names = names or [f"dim_{i}" for i in range(vectors.shape[1])]
        if id_column is not None and id_column not in table.columns:
            raise InvalidParameterError(
                f"{filename!r} has no metadata column {id_column!r}; its columns are "
                f"{list(table.columns)}.")
    else:
        table, _, read_notes = _load_table(data, filename, fmt,
                                           _text_options(sep, decimal, encoding, header))
        notes += read_notes
        if len(table) == 0:
            raise InvalidInputError(f"{filename!r} has a header but no rows.")
        for col in [*(vector_columns or []), *([list_column] if list_column else []),
                    *([id_column] if id_column else [])]:
            if col not in table.columns:
                raise InvalidParameterError(
                    f"{filename!r} has no column {col!r}; its columns are {list(table.columns)}."
                )
        if list_column is not None:
            if list_column == id_column:
                raise InvalidParameterError(
                    f"{list_column!r} cannot be both the id column and the column of vectors; "
                    "choose another id column or none.")
            vectors = _vectors_from_list_column(table[list_column], filename, list_column)
            names = [f"{list_column}_{i}" for i in range(vectors.shape[1])]
            table = table.drop(columns=[list_column])
        else:
            if vector_columns is None:
                vector_columns, reasons = _vector_roles(table, id_column)
                if not vector_columns:
                    lists = [c for c in table.columns if _looks_like_list_column(table[c])]
                    hint = (f" Column {lists[0]!r} holds lists: choose it as the vector column."
                            if lists else "")
                    raise InvalidInputError(
                        f"{filename!r} has no numeric column, so there are no vectors to "
                        f"project (columns: {list(table.columns)}).{hint}"
                    )
                if reasons:
                    notes.append(describe_roles(vector_columns, reasons))
            elif id_column in vector_columns:
                vector_columns = [c for c in vector_columns if c != id_column]
                if not vector_columns:
                    raise InvalidParameterError(
                        f"the only vector column chosen, {id_column!r}, is the id column; choose "
                        "at least one other vector column, or another id column.")
                notes.append(f"The id column {id_column!r} was also chosen as a vector column; it "
                             "is kept as the id and left out of the vectors.")
            if not vector_columns:
                raise InvalidParameterError("choose at least one vector column.")
            vectors = _vectors_from_columns(table, vector_columns, filename)
            names = list(vector_columns)
            table = table.drop(columns=vector_columns)
    if metadata is not None:
        meta_ext = metadata_filename.rsplit(".", 1)[-1].lower() if "." in metadata_filename else ""
        if meta_ext not in ("csv", "tsv", "txt"):
            raise InvalidInputError(
                f"the metadata file {metadata_filename!r} is not a CSV/TSV file (.csv, .tsv, .txt);"
                " save it as CSV and upload it again.")
        meta = _load_table(metadata, metadata_filename, meta_ext, {})[0]
        if len(meta) != len(vectors):
            raise InvalidInputError(
                f"the metadata file {metadata_filename!r} has {len(meta):,} rows but "
                f"{filename!r} has {len(vectors):,} vectors; they must match row for row."
            )
        clash = [c for c in meta.columns if c in table.columns]
        if clash:
            meta = meta.rename(columns={c: f"{c}_meta" for c in clash})
        table = pd.concat([table.reset_index(drop=True), meta], axis=1)
    if len(table.columns) == 0:
        table = pd.DataFrame(index=range(len(vectors)))
    if id_column is not None:
        ids = table[id_column]
        dup = ids[ids.duplicated(keep=False)]
        if len(dup):
            ex = ", ".join(map(repr, dup.drop_duplicates().head(_EXAMPLES).tolist()))
            raise InvalidInputError(
                f"the id column {id_column!r} has {ids.duplicated().sum():,} duplicate value(s) "
                f"(e.g. {ex}); ids must be unique — choose another id column or none."
            )
        if ids.isna().any():
            raise InvalidInputError(
                f"the id column {id_column!r} has {int(ids.isna().sum()):,} empty value(s)."
            )
    for coord in (latitude, longitude):
        if coord is not None and coord not in table.columns and coord not in names:
            raise InvalidParameterError(
                f"{filename!r} has no column {coord!r} for the coordinates; its columns are "
                f"{[*table.columns, *names][:20]}.")
    finite = np.isfinite(vectors)
    bad_rows = ~finite.all(axis=1)
    if bad_rows.any():
        n_nan = int(np.isnan(vectors).sum())
        n_inf = int(np.isinf(vectors).sum())
        rows = np.flatnonzero(bad_rows)
        msg = (f"{len(rows):,} of {len(vectors):,} rows contain empty, NaN or infinite values "
               f"({n_nan:,} empty or NaN, {n_inf:,} infinite; first rows: "
               f"{', '.join(str(r) for r in rows[:_EXAMPLES])})")
        if not drop_nonfinite:
            raise InvalidInputError(msg + "; tick 'drop rows with NaN/inf' or fix the file.")
        vectors = vectors[~bad_rows]
        table = table.loc[~bad_rows].reset_index(drop=True)
        notes.append(msg + "; those rows were dropped.")
    if len(vectors) == 0:
        raise InvalidInputError(f"{filename!r} has no rows left to project.")
    if len(vectors) < n_neighbors + 1:
        n = len(vectors)
        raise InvalidInputError(
            f"{n:,} {'row is' if n == 1 else 'rows are'} too few for n_neighbors={n_neighbors}: "
            f"a projection needs at least {n_neighbors + 1}. "
            + (f"Lower n_neighbors to {n - 1} or less, or upload more rows." if n > 1 else
               "A map needs at least 2 rows: upload more rows.")
        )
    const = np.ptp(vectors, axis=0) == 0
    if const.all():
        raise InvalidInputError(
            f"all {vectors.shape[1]} vector column(s) are constant, so every point is the same; "
            "there is nothing to project."
        )
    if const.any():
        cn = [names[i] for i in np.flatnonzero(const)]
        notes.append(
            f"{len(cn)} constant column(s) carry no information and were kept: "
            f"{', '.join(cn[:_EXAMPLES])}{' …' if len(cn) > _EXAMPLES else ''}"
            " (deselect them to drop)."
        )
    big = np.abs(vectors).max()
    if big > np.finfo(np.float32).max:
        raise InvalidInputError(
            f"values up to {big:.3g} do not fit in float32 (max 3.4e38); rescale the vectors."
        )
    return ParsedUpload(table.reset_index(drop=True), vectors.astype(np.float32), notes, names,
                        latitude, longitude)


def _vectors_from_columns(table: pd.DataFrame, columns: list[str], filename: str) -> np.ndarray:
    bad = []
    for c in columns:
        s = table[c]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            wrong = _not_numbers(s)
            if wrong.any():
                ex = s[wrong].head(3).tolist()
                bad.append(f"{c!r} ({int(wrong.sum()):,} non-numeric values, e.g. {ex})")
    if bad:
        raise InvalidInputError(
            f"{filename!r}: vector columns must be numeric; " + "; ".join(bad)
            + ". Deselect those columns or fix the values."
        )
    return table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)


def _vectors_from_list_column(s: pd.Series, filename: str, col: str) -> np.ndarray:
    parsed = [_parse_list_cell(v) for v in s]
    unreadable = [i for i, p in enumerate(parsed) if p is None or p.ndim != 1]
    if unreadable:
        raise InvalidInputError(
            f"{filename!r}: column {col!r} has {len(unreadable):,} cell(s) that are not lists of "
            f"numbers (first rows: {', '.join(map(str, unreadable[:_EXAMPLES]))})."
        )
    lengths = np.array([p.size for p in parsed])
    if (lengths != lengths[0]).any():
        values, counts = np.unique(lengths, return_counts=True)
        common = int(values[counts.argmax()])
        off = np.flatnonzero(lengths != common)
        raise InvalidInputError(
            f"{filename!r}: column {col!r} has ragged vectors — lengths "
            f"{dict(zip(values.tolist(), counts.tolist()))}; {len(off):,} row(s) differ from the "
            f"usual length {common} (first rows: {', '.join(map(str, off[:_EXAMPLES]))}); every "
            "vector must have the same length — fix or remove those rows and upload again."
        )
    return np.stack(parsed).astype(np.float64)
