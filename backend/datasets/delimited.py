"""Delimited text tables (CSV, TSV, semicolon files): how the file is written, and reading it.

:func:`detect_text_format` looks at the bytes and decides the encoding, the field
separator, the decimal mark and whether the first line is a header;
:func:`read_delimited` reads the whole table with pandas under that format and
checks the records against it: when the file has no quotes and no blank lines every
line is one record and the separators must add up; otherwise Python's :mod:`csv`
reader counts *records*, not lines (a properly quoted field may hold a line break,
and that is one record). Whatever does not add up (rows with fewer fields than the header, a
quoted field that swallowed whole lines because a closing quote is missing) is
reported with the rows affected, never merged silently.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "DECIMALS",
    "ENCODINGS",
    "SEPARATORS",
    "TextFormat",
    "detect_separator",
    "detect_text_format",
    "first_row_is_header",
    "read_delimited",
]

#: Field separators offered, with their names.
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", " ": "space"}
#: Decimal marks offered, with their names.
DECIMALS = {".": "point", ",": "comma"}
#: Text encodings offered (``utf-8`` also reads a UTF-8 byte-order mark).
ENCODINGS = ("utf-8", "utf-16", "cp1252", "latin-1")

_SAMPLE_CHARS = 65_536
_SAMPLE_RECORDS = 50
_EXAMPLES = 5
_POINT_NUMBER = re.compile(r"^[+-]?\d*\.\d+(?:[eE][+-]?\d+)?$")
_COMMA_NUMBER = re.compile(r"^[+-]?\d+,\d+(?:[eE][+-]?\d+)?$")
_EXT_SEP = {"csv": ",", "tsv": "\t"}
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class TextFormat:
    """How a delimited text file is written.

    Attributes
    ----------
    sep : str
        Field separator, one of :data:`SEPARATORS`.
    decimal : str
        Decimal mark, ``"."`` or ``","``.
    encoding : str
        One of :data:`ENCODINGS`.
    header : bool
        Whether the first record names the columns (``False``: the first row is data,
        and the columns are named ``column_1``, ``column_2``, …).
    """

    sep: str
    decimal: str
    encoding: str
    header: bool

    def describe(self) -> str:
        """One line for the user, e.g. ``semicolon-separated, decimal comma, UTF-8, …``."""
        return (f"{SEPARATORS.get(self.sep, repr(self.sep))}-separated, decimal "
                f"{DECIMALS.get(self.decimal, repr(self.decimal))}, {self.encoding.upper()}, "
                + ("first row is the header" if self.header else "no header (first row is data)"))


def detect_text_format(
    data: bytes,
    filename: str,
    *,
    sep: str | None = None,
    decimal: str | None = None,
    encoding: str | None = None,
    header: bool | None = None,
) -> tuple[TextFormat, list[str]]:
    """Decide how a delimited text file is written (and check that it decodes).

    Parameters
    ----------
    data : bytes
        The file's content.
    filename : str
        Its name (``.csv`` prefers a comma, ``.tsv`` a tab when the lines allow both).
    sep, decimal, encoding, header : optional
        Fix one aspect of the format; ``None`` detects it (see Notes).

    Returns
    -------
    fmt : TextFormat
    notes : list of str
        What the user should know (e.g. the file was not UTF-8).

    Raises
    ------
    InvalidInputError
        If the bytes are not text in the chosen encoding, hold control bytes as binary
        data does (over 1 % of the first 65,536 characters), or hold only whitespace.
    InvalidParameterError
        For a separator, decimal mark or encoding that is not offered, or the same
        character as separator and decimal mark.

    Notes
    -----
    - encoding: a UTF-16 byte-order mark gives UTF-16; else UTF-8 when the bytes are
      valid UTF-8; else cp1252 (Windows Western), else latin-1 — with a note.
    - separator: among tab, semicolon, comma, pipe and space (a run of spaces is one
      separator, as in GloVe's text files), those that split every one of
      the first 50 records into the same number (≥ 2) of fields; the extension's
      separator when it is one of them, but a semicolon before a comma (a comma that
      splits consistently beside a semicolon is a decimal comma); else the extension's.
    - decimal mark: a comma when the separator is not a comma and numbers are written
      ``1,5`` but never ``1.5``.
    - header: the first record is a header when its numbers are the column positions
      (0, 1, 2, … as pandas writes them) above real numbers, or when, in some column,
      the next records are numbers and it is not; else it is data when, in some column,
      it and the next records are all numbers.
    """
    _check_choice("sep", sep, SEPARATORS)
    _check_choice("decimal", decimal, DECIMALS)
    _check_choice("encoding", encoding, ENCODINGS)
    if sep is not None and sep == decimal:
        raise InvalidParameterError(
            f"the separator and the decimal mark must differ; both are {sep!r}.")
    text, encoding, notes = _decode(data, filename, encoding)
    if not text or text.isspace():
        raise InvalidInputError(f"{filename!r} holds no data (only whitespace).")
    sample = text[:_SAMPLE_CHARS]
    control = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r\f" or ch == "\x7f")
    if control > max(2, len(sample) // 100):  # text files have none; binary bytes many
        raise InvalidInputError(
            f"{filename!r} is not a text file: {control:,} of its first {len(sample):,} "
            "characters are control bytes, as in binary data. Upload the CSV or TSV text "
            "itself, or a binary format under its own extension (.npy, .npz, .parquet, .h5ad).")
    if len(text) > _SAMPLE_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if sep is None:
        sep = detect_separator(sample, ext)
    records = _records(sample, sep)
    if decimal is None:
        decimal = _detect_decimal(records, sep)
    if header is None:
        header = _detect_header(records, decimal)
    return TextFormat(sep, decimal, encoding, bool(header)), notes


def read_delimited(data: bytes, fmt: TextFormat, filename: str) -> tuple[pd.DataFrame, list[str]]:
    """Read a delimited text table under ``fmt`` and check its records.

    Parameters
    ----------
    data : bytes
        The file (see :func:`detect_text_format` for ``fmt``).
    fmt : TextFormat
    filename : str
        For messages.

    Returns
    -------
    table : pandas.DataFrame
        Column names are strings; without a header ``column_1``, ``column_2``, ….
    notes : list of str
        Header names given more than once (pandas tells them apart as ``x``, ``x.1``, …),
        and records that hold quoted line breaks, or have fewer fields than the header
        (their missing values are empty), with the rows affected (0-based data rows,
        1-based lines).

    Raises
    ------
    InvalidInputError
        A line with more fields than the header, a quote that is never closed, or a
        quoted field that holds what look like whole records (a closing quote is
        missing): the message names the rows and lines.
    """
    try:
        df = pd.read_csv(io.BytesIO(data), sep=r"\s+" if fmt.sep == " " else fmt.sep,
                         decimal=fmt.decimal,
                         header=0 if fmt.header else None, encoding=_codec(fmt.encoding))
    except pd.errors.EmptyDataError:
        raise InvalidInputError(f"{filename!r} holds no columns.") from None
    except UnicodeError as e:
        raise InvalidInputError(
            f"{filename!r} cannot be read as {fmt.encoding.upper()} text ({e}); choose another "
            "encoding.") from None
    except pd.errors.ParserError as e:
        raise InvalidInputError(
            f"{filename!r} could not be read as {fmt.describe()}: {e}. Check that every line has "
            "the same number of fields and that every opening quote is closed, or choose another "
            "separator."
        ) from None
    notes = []
    if fmt.header:
        df.columns = [str(c) for c in df.columns]
        head = data[:4 * _SAMPLE_CHARS].decode(_codec(fmt.encoding), errors="replace")
        names = next(_reader(head, fmt.sep), [])
        twice = {n: k for n, k in Counter(names).items() if k > 1}
        if twice:  # pandas numbers the repeats: x, x.1, x.2
            notes.append("columns with the same name were told apart by number: " + "; ".join(
                f"{n!r} {k} times → {', '.join(repr(n if i == 0 else f'{n}.{i}') for i in range(k))}"
                for n, k in list(twice.items())[:_EXAMPLES]) + ".")
    else:
        df.columns = [f"column_{i + 1}" for i in range(df.shape[1])]
    return df, notes + _check_records(data, fmt, df, filename)


# ---------------------------------------------------------------------------- private


def _check_choice(what: str, value, allowed) -> None:
    if value is not None and value not in allowed:
        raise InvalidParameterError(
            f"{what} must be one of {list(allowed)} or None (detect); got {value!r}.")


def _reader(text: str, sep: str):
    """Python's csv reader under pandas' rules: runs of spaces are one separator."""
    return csv.reader(io.StringIO(text), delimiter=sep, skipinitialspace=sep == " ")


def _codec(encoding: str) -> str:
    return "utf-8-sig" if encoding == "utf-8" else encoding


def _decode(data: bytes, filename: str, encoding: str | None) -> tuple[str, str, list[str]]:
    if encoding is not None:
        try:
            return data.decode(_codec(encoding)), encoding, []
        except UnicodeDecodeError as e:
            raise InvalidInputError(
                f"{filename!r} is not {encoding.upper()} text (invalid byte 0x{data[e.start]:02x} "
                f"at byte {e.start:,}); choose another encoding, or save the file as UTF-8."
            ) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16", []
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig"), "utf-8", []
    except UnicodeDecodeError as e:
        where = f"invalid byte 0x{data[e.start]:02x} at byte {e.start:,}"
    try:
        text, fallback = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:  # five bytes cp1252 leaves undefined; latin-1 decodes every byte
        text, fallback = data.decode("latin-1"), "latin-1"
    return text, fallback, [
        f"{filename!r} is not UTF-8 text ({where}); it was read as {fallback.upper()}. "
        "If letters look wrong, choose another encoding."]


def _records(sample: str, sep: str) -> list[list[str]]:
    reader = _reader(sample, sep)
    out = []
    try:
        for rec in reader:
            if rec:
                out.append(rec)
            if len(out) >= _SAMPLE_RECORDS:
                break
    except csv.Error:  # e.g. a NUL byte; the full read reports it
        pass
    return out


def detect_separator(sample: str, ext: str = "") -> str:
    """The field separator of a text sample (the rule of :func:`detect_text_format`).

    Parameters
    ----------
    sample : str
        The first lines of the file (64 KiB is plenty).
    ext : str, default=""
        The file's extension without the dot (``"csv"`` prefers a comma, ``"tsv"`` a tab).

    Returns
    -------
    str
        One of :data:`SEPARATORS` (``" "``: a run of spaces).
    """
    consistent = []
    for cand in SEPARATORS:
        lengths = {len(r) for r in _records(sample, cand)}
        if len(lengths) == 1 and min(lengths) >= 2:
            consistent.append(cand)
    preferred = _EXT_SEP.get(ext)
    if preferred in consistent and not (preferred == "," and ";" in consistent):
        return preferred
    for cand in ("\t", ";", ",", "|", " "):
        if cand in consistent:
            return cand
    if preferred is not None:
        return preferred
    lines = [ln for ln in sample.splitlines() if ln.strip()][:_SAMPLE_RECORDS]
    counts = {c: min((ln.count(c) for ln in lines), default=0) for c in ("\t", ";", ",", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else "\t"


def _detect_decimal(records: list[list[str]], sep: str) -> str:
    if sep == ",":
        return "."
    fields = [f.strip() for r in records for f in r]
    comma = sum(bool(_COMMA_NUMBER.match(f)) for f in fields)
    point = sum(bool(_POINT_NUMBER.match(f)) for f in fields)
    return "," if comma and not point else "."


def _is_number(field: str, decimal: str) -> bool:
    s = field.strip()
    if decimal == "," and "." not in s:
        s = s.replace(",", ".")
    if not s:
        return False
    try:
        float(s)
    except ValueError:
        return False
    return s.lower().lstrip("+-") not in ("nan", "inf", "infinity")


def first_row_is_header(sample: str, sep: str, decimal: str = ".") -> bool:
    """Whether the first record of a text sample names the columns (the rule of
    :func:`detect_text_format`); ``sep`` is one of :data:`SEPARATORS`."""
    return _detect_header(_records(sample, sep), decimal)


def _detect_header(records: list[list[str]], decimal: str) -> bool:
    if not records:
        return True
    first, rest = records[0], records[1:]
    if len(first) > 1 and _column_positions(first) and any(
            _is_number(v, decimal) and not _INTEGER.match(v.strip()) for r in rest for v in r):
        return True  # 0, 1, 2, … above real numbers: pandas' default header
    if not rest:
        return not all(_is_number(f, decimal) for f in first)
    says_data = says_header = False
    for j, field in enumerate(first):
        column = [r[j] for r in rest if j < len(r)]
        if not column or not all(_is_number(v, decimal) for v in column):
            continue
        if _is_number(field, decimal):
            says_data = True
        else:
            says_header = True
    return says_header or not says_data


def _column_positions(record: list[str]) -> bool:
    """Whether the record's numeric fields are 0, 1, 2, … or 1, 2, 3, … (pandas' default header)."""
    numbers = [(j, f.strip()) for j, f in enumerate(record) if _is_number(f, ".")]
    if len(numbers) < 2:
        return False
    return any(all(f == str(j + start) for j, f in numbers) for start in (0, 1))


def _rows(items: list[tuple[int, int, int]]) -> str:
    parts = [f"row {r} (line {a})" if a == b else f"row {r} (lines {a}–{b})"
             for r, a, b in items[:_EXAMPLES]]
    return ", ".join(parts) + (" …" if len(items) > _EXAMPLES else "")


def _lines_are_records(data: bytes, fmt: TextFormat, df: pd.DataFrame) -> bool:
    """The fast check, on the bytes of an ASCII-compatible encoding: without quotes or blank
    lines each line is one record, and then the records are complete exactly when the
    separators add up (longer lines raise in pandas)."""
    if fmt.encoding == "utf-16":
        return False
    if b'"' in data or b"\n\n" in data or b"\r\n\r\n" in data or data.startswith((b"\n", b"\r")):
        return False
    if data.count(b"\r") != data.count(b"\r\n"):
        return False
    n_lines = data.count(b"\n") + (not data.endswith(b"\n"))
    return (n_lines - fmt.header == len(df)
            and data.count(fmt.sep.encode()) == (df.shape[1] - 1) * n_lines)


def _check_records(data: bytes, fmt: TextFormat, df: pd.DataFrame, filename: str) -> list[str]:
    if _lines_are_records(data, fmt, df):
        return []
    text = data.decode(_codec(fmt.encoding))
    n_fields = df.shape[1]
    multi: list[tuple[int, int, int]] = []
    swallowed: list[tuple[int, int, int]] = []
    short: list[tuple[int, int, int]] = []
    row = -1 if fmt.header else 0
    last_line = 0
    reader = _reader(text, fmt.sep)
    try:
        for rec in reader:
            first_line, last_line = last_line + 1, reader.line_num
            if not rec:
                continue
            if row >= 0:
                if last_line > first_line:
                    multi.append((row, first_line, last_line))
                    inner = [ln for f in rec if "\n" in f for ln in f.splitlines()[1:]]
                    if n_fields > 1 and any(ln.count(fmt.sep) >= n_fields - 1 for ln in inner):
                        swallowed.append((row, first_line, last_line))
                if len(rec) < n_fields:
                    short.append((row, first_line, len(rec)))
            row += 1
    except csv.Error as e:
        raise InvalidInputError(
            f"{filename!r} could not be read as {fmt.describe()} near line {reader.line_num:,}: "
            f"{e}."
        ) from None
    if swallowed:
        raise InvalidInputError(
            f"{filename!r}: {len(swallowed):,} quoted field(s) run over several lines and hold what "
            f"look like whole rows ({_rows(swallowed)}): a closing quote is probably missing, so "
            "those lines would be merged into one row. Fix the quotes and upload again."
        )
    notes = []
    if multi:
        notes.append(
            f"{len(multi):,} row(s) hold quoted line breaks and span several lines of the file "
            f"({_rows(multi)}); each was read as one row."
        )
    if short:
        shown = ", ".join(f"row {r} (line {ln}) has {k}" for r, ln, k in short[:_EXAMPLES])
        notes.append(
            f"{len(short):,} row(s) have fewer fields than the {n_fields} columns ({shown}"
            f"{' …' if len(short) > _EXAMPLES else ''}); their missing values are empty."
        )
    if row != len(df):
        notes.append(
            f"{filename!r} holds {row:,} records but {len(df):,} rows were read; check the file "
            "around the rows named above."
        )
    return notes
