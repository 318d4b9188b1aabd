"""Job kinds of text: embed a text column, search the embeddings by meaning.

``text_embed`` runs on a dataset of kind ``"text"`` (see :mod:`backend.datasets.text_table`)
and stores the embeddings as a NEW dataset of kind ``"vectors"`` whose rows are the texts that
embedded: rows whose cell is empty, missing or not text are **left out** (never silently: the
sidecar counts them per reason and ``cells.parquet`` lists every one, with the truncated
texts). The new table keeps every column of the text dataset, plus ``source_row`` (the row
of the text dataset) and ``truncated`` (the text was longer than the model's 256 tokens and
was cut). The Map page projects it like any other dataset.

``search`` (a job; the app calls :func:`search_dataset` through the client instead, since a
search is short and a job per keystroke would fill the store) embeds a query and returns
the nearest rows by cosine similarity among those passing metadata filters
(:class:`backend.search.VectorIndex`: exact up to 100,000 rows, an IVF index beyond). Fitted
indexes are kept in this process, a few at a time, per workspace, dataset and device; an
embedding job of more than 100,000 texts builds its IVF index before it ends.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError, InvalidParameterError
from backend.jobs import JobContext, JobKind, register
from backend.params import Param, ParamSpec
from backend.results import Result
from backend.store import DatasetInfo, Store

__all__ = [
    "EXACT_MAX_ROWS",
    "MAX_FILTERS",
    "MAX_K",
    "MAX_QUERY_CHARS",
    "TextSearchResult",
    "clear_index_cache",
    "search_dataset",
    "validate_search",
]

MAX_BATCH = 1024
MAX_K = 1000
MAX_QUERY_CHARS = 2000
MAX_FILTERS = 16
MAX_FILTER_VALUES = 1000
#: Largest dataset searched exactly; an IVF index (faiss) beyond.
EXACT_MAX_ROWS = 100_000
_INDEX_CACHE_SIZE = 4
_SAMPLE_SEED = 0


def _free_name(columns, name: str) -> str:
    while name in columns:
        name += "_"
    return name


# ---------------------------------------------------------------------------------------
# text_embed


TEXT_EMBED_PARAMS = ParamSpec(
    Param("column", str, "auto", auto=True, column=True, label="Text column to embed",
          help="The column of texts; 'auto': the dataset's text column."),
    Param("batch_size", int, 32, low=1, high=MAX_BATCH, label="Batch size",
          help="Texts per forward pass (sorted by length first); larger batches help most on a GPU."),
    Param("max_rows", int, None, low=1, high=2**62, nullable=True, label="Rows to embed",
          help="Fewer than all: a seeded uniform random sample of that many rows, for a quick "
               "first look at a large table; null: every row."),
)


@dataclass(frozen=True)
class TextEmbedResult(Result):
    """Embeddings of a text column, stored as the vectors dataset ``derived_dataset``;
    ``cells.parquet`` lists the rows left out or truncated."""

    derived_dataset: str
    n_source_rows: int
    n_texts: int
    sampled: bool
    n_embedded: int
    n_truncated: int
    n_empty: int
    n_missing: int
    n_non_text: int
    n_left_out: int
    max_tokens: int
    model: str
    model_package: str
    batch_size: int
    embed_seconds: float
    label_column: str | None
    texts_per_second: float | None


def _check_text_embed(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    out = dict(p)
    if out["column"] == "auto":
        out["column"] = info.extra.get("text_column")
    if not isinstance(out["column"], str) or out["column"] not in info.columns:
        raise InvalidParameterError(
            f"column must name a column of {info.name!r} (text columns: "
            f"{info.extra.get('text_columns', info.columns)[:20]}); got {p['column']!r}.")
    if out["max_rows"] is not None and out["max_rows"] >= info.n_rows:
        out["max_rows"] = None  # every row: the same job as without a limit
    return out


def run_text_embed(ctx: JobContext) -> TextEmbedResult:
    """Embed a text column with all-MiniLM-L6-v2; store the embeddings as a new dataset."""
    from backend.datasets.text_table import guess_label_column
    from backend.embed.text import MODEL_NAME, TextEmbedder

    p = ctx.params
    col = p["column"]
    ctx.progress(0.01, "reading the texts")
    table = ctx.table()
    n_source = len(table)
    if p["max_rows"] is not None:
        rng = np.random.default_rng(_SAMPLE_SEED)
        table = table.iloc[np.sort(rng.choice(n_source, p["max_rows"], replace=False))]
        table = table.reset_index(drop=True)
    ctx.progress(0.03, "loading all-MiniLM-L6-v2")
    embedder = TextEmbedder(p["batch_size"], device=ctx.device)
    emb, report = embedder.encode_with_report(
        table[col], progress=lambda f, m: ctx.progress(0.05 + 0.88 * f, m),
        engine=ctx.engine, stop=ctx.stop_event)
    source_rows = table["_row"].to_numpy(np.int64)

    status = np.full(len(table), "", dtype=object)
    for rows, what in ((report.truncated_rows, "truncated"), (report.empty_rows, "empty"),
                       (report.missing_rows, "missing"), (report.non_text_rows, "non-text")):
        status[np.asarray(rows, dtype=np.int64)] = what
    flagged = np.flatnonzero(status != "")
    ctx.save_parquet("cells.parquet", pd.DataFrame({
        "source_row": source_rows[flagged],
        "status": status[flagged].astype(str),
        "value": [str(v)[:200] for v in table[col].to_numpy()[flagged]],
    }))
    left_out = np.isin(status, ["empty", "missing", "non-text"])
    kept = np.flatnonzero(~left_out)
    if len(kept) == 0:
        raise InvalidInputError(
            f"column {col!r} has no text to embed: {report.n_empty:,} empty, "
            f"{report.n_missing:,} missing and {report.n_non_text:,} non-text cells of "
            f"{len(table):,}; choose a column of text."
        )

    ctx.progress(0.95, "storing the embeddings")
    src = ctx.dataset
    derived = table.iloc[kept].reset_index(drop=True)
    source_col = _free_name(derived.columns, "source_row")
    derived = derived.rename(columns={"_row": source_col})
    trunc_col = _free_name(derived.columns, "truncated")
    derived[trunc_col] = status[kept] == "truncated"
    id_col = src.extra.get("id_column")
    label = guess_label_column(derived, src.extra.get("label_column"),
                               exclude=(col, source_col, trunc_col, *([id_col] if id_col else ())))
    counts = {"n_source_rows": n_source, "n_texts": int(report.n_texts),
              "sampled": p["max_rows"] is not None, "n_embedded": int(report.n_embedded),
              "n_truncated": int(report.n_truncated), "n_empty": report.n_empty,
              "n_missing": report.n_missing, "n_non_text": report.n_non_text,
              "n_left_out": int(left_out.sum()), "max_tokens": int(report.max_tokens)}
    sample = f", a sample of {len(table):,}" if p["max_rows"] is not None else ""
    info = ctx.store.add_dataset(
        derived, emb[kept], name=f"{src.name} → text embeddings ({col}{sample})",
        source=f"texts of {src.name!r} embedded by {MODEL_NAME}",
        extra={"derived_from": src.id, "job_id": ctx.job_id, "text_column": col, "label_column": label,
               "id_column": id_col, "source_row_column": source_col,
               "truncated_column": trunc_col, "text_model": MODEL_NAME,
               "model_package": report.model_package, "text_embedding": counts},
    )
    if len(kept) > EXACT_MAX_ROWS:  # build the search index now, not on the first search
        ctx.progress(0.96, "building the search index")
        _index(ctx.store, info, ctx.device,
               progress=lambda f, m: ctx.progress(0.96 + 0.04 * f, f"search index: {m}"))
    ctx.progress(1.0, "done")
    seconds = float(report.seconds)
    return TextEmbedResult(
        derived_dataset=info.id, **counts, model=report.model,
        model_package=report.model_package, batch_size=report.batch_size,
        embed_seconds=round(seconds, 3), label_column=label,
        texts_per_second=round(report.n_embedded / seconds, 1) if seconds > 0 else None)


# ---------------------------------------------------------------------------------------
# search


@dataclass(frozen=True)
class SearchStats(Result):
    """What a search measured (shared by :class:`TextSearchResult` and the ``search`` job).

    Attributes
    ----------
    selectivity : float
        Fraction of the rows that pass the filters (1.0 without filters).
    n_passing, n_rows : int
        Rows passing the filters (and embedded), rows searched.
    strategy : str
        "exact", "prefilter-exact", "ivf" or "ivf-postfilter" (see ``VectorIndex.search``).
    index_method : str
        "exact" or "ivf".
    recall : float
        Recall@10 of the index measured when it was built (1.0 for exact).
    n_lists, n_probe : int or None
        IVF settings (None for exact).
    n_exact_fallbacks : int
    seconds, embed_seconds, index_seconds : float
        Search time, query embedding time, and the index build time (0 when it was cached).
    """

    selectivity: float
    n_passing: int
    n_rows: int
    strategy: str
    index_method: str
    recall: float
    n_lists: int | None
    n_probe: int | None
    n_exact_fallbacks: int
    seconds: float
    embed_seconds: float
    index_seconds: float


@dataclass(frozen=True, eq=False)
class TextSearchResult(SearchStats):
    """The nearest rows of one text query (see :func:`search_dataset`): the
    :class:`SearchStats` and

    Attributes
    ----------
    hits : pandas.DataFrame
        ``_row`` (int64, row of the searched dataset), ``rank`` (int64, 1-based), ``score``
        (float32, cosine similarity), best first; fewer than ``k`` rows when fewer pass.
    query : str
    k : int
    filters : list of dict
        The filters as applied (normalised dict form of :mod:`backend.search`).
    """

    hits: pd.DataFrame = field(repr=False)
    query: str
    k: int
    filters: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; the hits as ``rows`` and ``scores`` lists, best first."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "hits"}
        out["rows"] = [int(r) for r in self.hits["_row"]]
        out["scores"] = [float(s) for s in self.hits["score"]]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TextSearchResult":
        d = dict(d)
        rows = np.asarray(d.pop("rows"), dtype=np.int64)
        scores = np.asarray(d.pop("scores"), dtype=np.float32)
        hits = pd.DataFrame({"_row": rows, "rank": np.arange(1, len(rows) + 1, dtype=np.int64),
                             "score": scores})
        return cls(hits=hits, **d)


def _require_text_embedding(info: DatasetInfo) -> None:
    from backend.embed.text import MODEL_NAME, TextEmbedder

    if (info.kind != "vectors" or not info.extra.get("text_column")
            or info.extra.get("text_model") != MODEL_NAME or info.n_dims != TextEmbedder.dim):
        raise InvalidInputError(
            f"dataset {info.name!r} holds no text embeddings to search; embed a text column "
            "on the Text page first and search the dataset it makes."
        )


def _take_number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidParameterError(f"{what} must be a finite number or null; got {value!r}.")
    return float(value)


def _take_filters(raw: Any, info: DatasetInfo) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)) or len(raw) > MAX_FILTERS:
        raise InvalidParameterError(
            f"filters must be a list of at most {MAX_FILTERS} filters; got {str(raw)[:200]}.")
    out = []
    for f in raw:
        kind = f.get("kind") if isinstance(f, dict) else None
        if kind not in ("category", "range"):
            raise InvalidParameterError(
                "each filter must be {'kind': 'category', 'column': ..., 'values': [...]} or "
                f"{{'kind': 'range', 'column': ..., 'low': ..., 'high': ...}}; got {str(f)[:200]}.")
        allowed = {"kind", "column", "values"} if kind == "category" else {
            "kind", "column", "low", "high"}
        extra = sorted(set(f) - allowed)
        if extra:
            raise InvalidParameterError(f"unknown key(s) {extra} in the {kind} filter {str(f)[:200]}.")
        col = f.get("column")
        if not isinstance(col, str) or col not in info.columns:
            raise InvalidParameterError(
                f"filter column {col!r} is not a column of {info.name!r}; columns: "
                f"{info.columns[:30]}.")
        if kind == "category":
            values = f.get("values")
            if (not isinstance(values, (list, tuple)) or not 1 <= len(values) <= MAX_FILTER_VALUES
                    or not all(isinstance(v, (str, int, float, bool)) for v in values)
                    or any(isinstance(v, float) and not math.isfinite(v) for v in values)):
                raise InvalidParameterError(
                    f"the category filter on {col!r} needs 'values': a list of 1 to "
                    f"{MAX_FILTER_VALUES} strings or numbers; got {str(values)[:200]}.")
            out.append({"kind": "category", "column": col, "values": list(values)})
        else:
            low = _take_number(f.get("low"), f"low of the range filter on {col!r}")
            high = _take_number(f.get("high"), f"high of the range filter on {col!r}")
            if low is None and high is None:
                raise InvalidParameterError(f"the range filter on {col!r} needs low, high or both.")
            if low is not None and high is not None and low > high:
                raise InvalidParameterError(
                    f"the range filter on {col!r} has low={low} > high={high}.")
            out.append({"kind": "range", "column": col, "low": low, "high": high})
    return out


def _parse_query(v: Any, name: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise InvalidParameterError("type a query: query must be a non-empty text.")
    if len(v) > MAX_QUERY_CHARS:
        raise InvalidParameterError(
            f"the query has {len(v):,} characters; at most {MAX_QUERY_CHARS:,} are allowed.")
    return v.strip()


def _parse_filters(v: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(v, (list, tuple)) or len(v) > MAX_FILTERS:
        raise InvalidParameterError(
            f"filters must be a list of at most {MAX_FILTERS} filters; got {str(v)[:200]}.")
    return list(v)


SEARCH_PARAMS = ParamSpec(
    Param("query", str, None, nullable=True, parse=_parse_query, help="1 to 2,000 characters."),
    Param("k", int, 10, low=1, high=MAX_K, label="Hits (k)", help="Hits wanted."),
    Param("filters", list, None, nullable=True, parse=_parse_filters,
          help="Category filters {kind: category, column, values} and range filters "
               "{kind: range, column, low, high}, all of which must hold."),
)


@dataclass(frozen=True)
class SearchJobResult(SearchStats):
    """A search as a job: ``hits.parquet`` (``_row``, ``rank``, ``score``) and its stats."""

    n_hits: int


def _check_search(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    if p["query"] is None:
        raise InvalidParameterError("type a query: query must be a non-empty text.")
    _require_text_embedding(info)
    return {**p, "filters": _take_filters(p["filters"], info)}


def validate_search(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    """Check a search: ``query`` (1 to 2,000 characters), ``k`` (1..1000, default 10) and
    ``filters`` (a list of category/range filter dicts, at most 16) on a text embedding."""
    return SEARCH.validate(p, info)


_INDEXES: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
_INDEX_LOCK = threading.Lock()
_BUILD_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}


def clear_index_cache() -> None:
    """Forget the fitted indexes of this process."""
    with _INDEX_LOCK:
        _INDEXES.clear()
        _BUILD_LOCKS.clear()


def _index(store: Store, info: DatasetInfo, device: str, progress=None):
    """The fitted VectorIndex of a dataset (built once per process, workspace and device;
    the least recently used of more than four is dropped). Returns (index, build seconds)."""
    from backend.search import VectorIndex

    key = (str(store.root), info.id, device)
    with _INDEX_LOCK:
        if key in _INDEXES:
            _INDEXES.move_to_end(key)
            return _INDEXES[key], 0.0
        lock = _BUILD_LOCKS.setdefault(key, threading.Lock())
    with lock:  # two searches of a new dataset build its index once
        with _INDEX_LOCK:
            if key in _INDEXES:
                return _INDEXES[key], 0.0
        t0 = time.perf_counter()
        index = VectorIndex("auto", exact_max_rows=EXACT_MAX_ROWS, device=device).fit(
            store.vectors(info.id), metadata=store.table(info.id), progress=progress)
        with _INDEX_LOCK:
            _INDEXES[key] = index
            while len(_INDEXES) > _INDEX_CACHE_SIZE:
                old, _ = _INDEXES.popitem(last=False)
                _BUILD_LOCKS.pop(old, None)
        return index, time.perf_counter() - t0


def _search(store: Store, info: DatasetInfo, params: dict[str, Any], device: str,
            progress=None) -> TextSearchResult:
    from backend.embed.text import TextEmbedder

    index, index_s = _index(store, info, device, progress)
    t0 = time.perf_counter()
    query = TextEmbedder(1, device=device).encode([params["query"]])
    embed_s = time.perf_counter() - t0
    res = index.search(query, params["k"], filters=params["filters"])
    hits = pd.DataFrame({"_row": res.hits["_row"].to_numpy(np.int64),
                         "rank": res.hits["rank"].to_numpy(np.int64),
                         "score": res.hits["score"].to_numpy(np.float32)})
    return TextSearchResult(
        hits=hits, query=params["query"], k=params["k"], filters=params["filters"],
        selectivity=float(res.selectivity), n_passing=int(res.n_passing), n_rows=int(res.n_rows),
        strategy=res.strategy, index_method=index.method_, recall=float(index.recall_),
        n_lists=index.n_lists_, n_probe=index.n_probe_,
        n_exact_fallbacks=int(res.n_exact_fallbacks), seconds=round(float(res.seconds), 5),
        embed_seconds=round(embed_s, 5), index_seconds=round(index_s, 4),
    )


def search_dataset(store: Store, dataset_id: str, query: str, k: int = 10,
                   filters: list[dict[str, Any]] | None = None, *,
                   device: str | None = None) -> TextSearchResult:
    """The ``k`` rows of a text-embedding dataset nearest to ``query`` (cosine similarity),
    among those passing every filter.

    Parameters
    ----------
    store : Store
    dataset_id : str
        A dataset made by a ``text_embed`` job (kind "vectors", ``extra["text_column"]``).
    query : str
        1 to 2,000 characters; embedded with the same model as the rows.
    k : int, default=10
        Hits wanted, 1 to 1,000.
    filters : list of dict, optional
        ``{"kind": "category", "column": c, "values": [...]}`` (equality with any value) or
        ``{"kind": "range", "column": c, "low": a, "high": b}`` (inclusive, either bound may be
        None), all of which must hold; applied inside the search (pre- or post-filtering by
        selectivity, see :class:`backend.search.VectorIndex`).
    device : str, optional
        Torch device of the query embedding and the exact scan.

    Returns
    -------
    TextSearchResult

    Raises
    ------
    InvalidInputError
        If the dataset holds no text embeddings.
    InvalidParameterError
        For an empty or too long query, ``k`` out of range, a malformed filter, a filter
        column that does not exist, or a range filter on a non-numeric column.
    """
    from backend.device import resolve_device

    info = store.dataset(dataset_id)
    params = validate_search({"query": query, "k": k, "filters": filters}, info)
    return _search(store, info, params, resolve_device(device).device)


def run_search(ctx: JobContext) -> SearchJobResult:
    """A search as a job: ``hits.parquet`` (``_row``, ``rank``, ``score``) and the summary."""
    res = _search(ctx.store, ctx.dataset, ctx.params, ctx.device,
                  progress=lambda f, m: ctx.progress(0.9 * f, f"building the index: {m}"))
    ctx.save_parquet("hits.parquet", res.hits)
    ctx.progress(1.0, "done")
    out = res.to_dict()
    del out["rows"], out["scores"], out["query"], out["k"], out["filters"]
    return SearchJobResult(**out, n_hits=int(len(res.hits)))


TEXT_EMBED = register(JobKind(
    "text_embed", params=TEXT_EMBED_PARAMS, run=run_text_embed, result=TextEmbedResult,
    files=("cells.parquet",), dataset_kinds=("text",), check=_check_text_embed,
    title="Text embedding"))
SEARCH = register(JobKind(
    "search", params=SEARCH_PARAMS, run=run_search, result=SearchJobResult,
    files=("hits.parquet",), check=_check_search, title="Search", quick=True))
