"""Search by meaning: nearest rows to a query vector by cosine similarity, with metadata filters.

Up to ``exact_max_rows`` rows the search is exact (chunked torch matmul).
Beyond, an inverted-file index (faiss ``IndexIVFFlat`` over unit vectors) is
built and its ``n_probe`` tuned at fit time until a measured recall reaches
``target_recall``. Filters (categorical equality, numeric ranges) are applied
inside the search, with a strategy chosen from the filter's selectivity as
recommended by the filtered-ANN benchmark of Iff et al. (2025): when few rows
pass, an exact scan of just those rows (pre-filtering; recall 1); when many
pass, the index is searched for more neighbours than asked for and the
non-passing ones are dropped (post-filtering with oversampling), with an
exact scan of the passing rows as the fallback when too few survive.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backend.device import DeviceResolution, resolve_device
from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "CategoryFilter",
    "RangeFilter",
    "SearchResult",
    "VectorIndex",
    "filter_mask",
    "filter_from_dict",
]

_METHODS = ("auto", "exact", "ivf")


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class CategoryFilter:
    """Keep rows whose ``column`` equals one of ``values``.

    Parameters
    ----------
    column : str
        Metadata column.
    values : tuple
        Accepted values; a row passes when its value equals any of them.
        Missing values never pass.
    """

    column: str
    values: tuple

    def to_dict(self) -> dict:
        return {"kind": "category", "column": self.column, "values": list(self.values)}


@dataclass(frozen=True)
class RangeFilter:
    """Keep rows whose numeric ``column`` lies in ``[low, high]`` (inclusive).

    Parameters
    ----------
    column : str
        Numeric metadata column.
    low, high : float or None, default=None
        Bounds, inclusive; ``None`` leaves that side open. Missing values never pass.
    """

    column: str
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict:
        return {"kind": "range", "column": self.column, "low": self.low, "high": self.high}


Filter = CategoryFilter | RangeFilter


def filter_from_dict(data: dict) -> Filter:
    """Rebuild a filter from its ``to_dict()`` form.

    Raises
    ------
    InvalidParameterError
        If ``data["kind"]`` is not "category" or "range", or keys are missing.
    """
    kind = data.get("kind") if isinstance(data, dict) else None
    try:
        if kind == "category":
            return CategoryFilter(column=data["column"], values=tuple(data["values"]))
        if kind == "range":
            return RangeFilter(column=data["column"], low=data.get("low"), high=data.get("high"))
    except KeyError as missing:
        raise InvalidParameterError(f"filter {data!r} lacks the key {missing}.") from None
    raise InvalidParameterError(
        f"filter kind must be 'category' or 'range'; got {kind!r} in {data!r}."
    )


def filter_mask(metadata: pd.DataFrame, filters: Sequence[Filter | dict]) -> np.ndarray:
    """Rows of ``metadata`` that pass every filter (logical AND).

    Parameters
    ----------
    metadata : pandas.DataFrame of n_rows rows
    filters : sequence of CategoryFilter, RangeFilter or their dict form

    Returns
    -------
    ndarray of shape (n_rows,), dtype bool

    Raises
    ------
    InvalidParameterError
        If a filter names a missing column, a range filter targets a
        non-numeric column or has ``low > high`` or no bound, or a category
        filter has no values.
    """
    mask = np.ones(len(metadata), dtype=bool)
    for item in filters:
        flt = filter_from_dict(item) if isinstance(item, dict) else item
        if not isinstance(flt, (CategoryFilter, RangeFilter)):
            raise InvalidParameterError(
                f"filters must hold CategoryFilter or RangeFilter objects or dicts; got {type(item).__name__}."
            )
        if flt.column not in metadata.columns:
            raise InvalidParameterError(
                f"filter column {flt.column!r} is not in the metadata; columns are {list(metadata.columns)}."
            )
        column = metadata[flt.column]
        if isinstance(flt, CategoryFilter):
            if len(flt.values) == 0:
                raise InvalidParameterError(
                    f"category filter on {flt.column!r} has no values; give at least one."
                )
            mask &= column.isin(list(flt.values)).to_numpy(dtype=bool)
        else:
            if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                raise InvalidParameterError(
                    f"range filter needs a numeric column; {flt.column!r} has dtype {column.dtype}. "
                    "Use a CategoryFilter for it."
                )
            if flt.low is None and flt.high is None:
                raise InvalidParameterError(
                    f"range filter on {flt.column!r} has neither low nor high; give at least one bound."
                )
            if flt.low is not None and flt.high is not None and flt.low > flt.high:
                raise InvalidParameterError(
                    f"range filter on {flt.column!r} has low={flt.low} > high={flt.high}."
                )
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            passing = ~np.isnan(values)
            if flt.low is not None:
                passing &= values >= flt.low
            if flt.high is not None:
                passing &= values <= flt.high
            mask &= passing
    return mask


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class SearchResult:
    """Nearest rows of one or more queries.

    Attributes
    ----------
    hits : pandas.DataFrame
        One row per hit, best first within each query: ``query`` (int64,
        position of the query), ``rank`` (int64, 1-based), ``_row``
        (int64, row position in the indexed matrix), ``score`` (float32,
        cosine similarity in [-1, 1]). A query gets fewer than ``k`` hits
        when fewer rows pass the filter.
    selectivity : float
        Fraction of the indexed rows that pass the filters (1.0 without filters).
    n_passing : int
        Rows that pass the filters and have an embedding (non-zero vector).
    n_rows : int
        Rows in the index.
    strategy : str
        "exact" (full scan), "prefilter-exact" (scan of the passing rows),
        "ivf" (index, no filter) or "ivf-postfilter" (index with oversampling).
    n_exact_fallbacks : int
        Queries of an "ivf-postfilter" search that were answered by an exact
        scan of the passing rows because too few index hits passed.
    seconds : float
        Wall time of the search.
    """

    hits: pd.DataFrame = field(repr=False)
    selectivity: float
    n_passing: int
    n_rows: int
    strategy: str
    n_exact_fallbacks: int
    seconds: float

    def to_dict(self) -> dict:
        """JSON-able form; ``hits`` as a dict of column lists."""
        return {
            "hits": {c: self.hits[c].tolist() for c in self.hits.columns},
            "selectivity": self.selectivity,
            "n_passing": self.n_passing,
            "n_rows": self.n_rows,
            "strategy": self.strategy,
            "n_exact_fallbacks": self.n_exact_fallbacks,
            "seconds": self.seconds,
        }


# --------------------------------------------------------------------------- index


class VectorIndex:
    """Cosine-similarity search over the rows of an embedding matrix, with filters.

    Parameters
    ----------
    method : {"auto", "exact", "ivf"}, default="auto"
        "exact": chunked matmul over all rows. "ivf": faiss inverted-file
        index over unit vectors. "auto": exact up to ``exact_max_rows`` rows
        with an embedding, else ivf.
    exact_max_rows : int, default=100_000
        Largest row count searched exactly by "auto"; also the largest
        filtered subset that an ivf index scans exactly (pre-filtering).
    n_lists : int or "auto", default="auto"
        Inverted lists (k-means cells) of the ivf index; "auto" is
        ``round(sqrt(n))``, at most ``n // 39`` so that each cell has 39
        training points (faiss's floor).
    target_recall : float in (0, 1], default=0.95
        ``n_probe`` (cells visited per query) is doubled from 1 until the
        recall@10 measured at fit time reaches this value.
    oversample : float >= 1, default=2.0
        Post-filtering asks the index for ``ceil(oversample * k / selectivity)``
        neighbours, doubling while fewer than ``k`` of them pass.
    n_recall_queries : int, default=200
        Rows used as queries to measure recall at fit time.
    working_memory : float, default=256
        MiB that one block of an exact scan may use (its scores, plus the
        gathered rows when scanning a filtered subset); the scan runs block
        by block and merges the top-k. Also bounds the rows normalised at a
        time while building the ivf index.
    device : {None, "auto", "cpu", "cuda", "cuda:N"}, default=None
        Device of the exact scans; the ivf index runs on the CPU.
    random_state : int, default=0
        Seed of the training sample, k-means and recall queries.

    Attributes
    ----------
    method_ : str
        "exact" or "ivf".
    n_rows_ : int
        Rows indexed.
    n_valid_ : int
        Rows with a usable embedding; all-zero rows (texts that could not be
        embedded) are never returned.
    n_lists_, n_probe_ : int or None
        Index settings (None for exact).
    recall_ : float
        Recall@10 measured at fit: for ``n_recall_queries`` random rows, the
        fraction of their 10 exact nearest neighbours (the row itself
        excluded) that the index returns. 1.0 for exact.
    device_ : DeviceResolution
    fit_seconds_ : float

    Notes
    -----
    Scores are cosine similarities :math:`x_i^\\top q / (\\lVert x_i\\rVert \\lVert q\\rVert)`.
    The matrix is not copied for exact search on the CPU (a float32,
    C-contiguous array, memory-mapped or not, is used in place); the ivf index
    holds its own normalised copy.

    References
    ----------
    Iff, Brügger, Chrapek, Besta, Hoefler (2025), Benchmarking Filtered
    Approximate Nearest Neighbor Search Algorithms on Transformer-based
    Embedding Vectors, arXiv:2507.21989 (strategy per selectivity).
    Jégou, Douze, Schmid (2011), Product quantization for nearest neighbor
    search, IEEE TPAMI 33(1) (inverted file). Douze et al. (2024), The Faiss
    library, arXiv:2401.08281; reference implementation facebookresearch/faiss.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 16)).astype(np.float32)
    >>> meta = pd.DataFrame({"group": rng.choice(["a", "b"], 1000)})
    >>> index = VectorIndex().fit(X, metadata=meta)
    >>> res = index.search(X[0], k=5, filters=[CategoryFilter("group", ("a",))])
    >>> res.strategy, len(res.hits)
    ('exact', 5)
    """

    def __init__(
        self,
        method: str = "auto",
        *,
        exact_max_rows: int = 100_000,
        n_lists: int | str = "auto",
        target_recall: float = 0.95,
        oversample: float = 2.0,
        n_recall_queries: int = 200,
        working_memory: float = 256,
        device: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.exact_max_rows = exact_max_rows
        self.n_lists = n_lists
        self.target_recall = target_recall
        self.oversample = oversample
        self.n_recall_queries = n_recall_queries
        self.working_memory = working_memory
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> None:
        if self.method not in _METHODS:
            raise InvalidParameterError(f"method must be one of {_METHODS}; got {self.method!r}.")
        for name in ("exact_max_rows", "n_recall_queries"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise InvalidParameterError(f"{name} must be an integer >= 1; got {value!r}.")
        if self.n_lists != "auto" and (not _is_int(self.n_lists) or self.n_lists < 1):
            raise InvalidParameterError(f"n_lists must be 'auto' or an integer >= 1; got {self.n_lists!r}.")
        if not isinstance(self.working_memory, (int, float)) or not self.working_memory > 0:
            raise InvalidParameterError(f"working_memory must be a number of MiB > 0; got {self.working_memory!r}.")
        if not isinstance(self.target_recall, (int, float)) or not 0 < self.target_recall <= 1:
            raise InvalidParameterError(f"target_recall must be in (0, 1]; got {self.target_recall!r}.")
        if not isinstance(self.oversample, (int, float)) or not self.oversample >= 1:
            raise InvalidParameterError(f"oversample must be a number >= 1; got {self.oversample!r}.")
        if not _is_int(self.random_state):
            raise InvalidParameterError(f"random_state must be an integer; got {self.random_state!r}.")

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        X: np.ndarray,
        metadata: pd.DataFrame | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> VectorIndex:
        """Index the rows of ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Embeddings (any float dtype; float32 C-contiguous avoids a copy).
            Rows need not be normalised; all-zero rows are never returned.
        metadata : pandas.DataFrame of n_rows rows, optional
            Columns that filters can use, aligned with the rows of ``X``.
        progress : callable (fraction, message), optional
            Called between stages of an ivf build.

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError
            If a parameter is out of range, or ``method="ivf"`` with fewer
            rows than ``n_lists``.
        InvalidInputError
            If ``X`` is not 2-D, has no valid rows or non-finite values, or
            ``metadata`` has a different number of rows.
        """
        import torch

        start = time.perf_counter()
        self._check_params()
        if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            shape = getattr(X, "shape", None)
            raise InvalidInputError(f"X must be a non-empty 2-D array (n_rows, n_features); got shape {shape}.")
        if metadata is not None and len(metadata) != X.shape[0]:
            raise InvalidInputError(
                f"metadata has {len(metadata)} rows but X has {X.shape[0]}; they must be aligned row by row."
            )
        self.device_: DeviceResolution = resolve_device(self.device)
        data = np.ascontiguousarray(X, dtype=np.float32)
        with warnings.catch_warnings():  # a read-only memmap is only read here
            warnings.simplefilter("ignore", UserWarning)
            self._X = torch.from_numpy(data).to(self.device_.device)
        norms = torch.linalg.vector_norm(self._X, dim=1)
        if not bool(torch.isfinite(norms).all()):
            bad = int((~torch.isfinite(norms)).sum())
            raise InvalidInputError(f"X has {bad} rows with NaN or infinite values; fix or drop them first.")
        self._valid = (norms > 0).cpu().numpy()
        self._inv_norm = torch.where(norms > 0, 1.0 / norms.clamp(min=1e-30), torch.zeros_like(norms))
        self._metadata = metadata
        self.n_rows_ = int(X.shape[0])
        self.n_valid_ = int(self._valid.sum())
        if self.n_valid_ == 0:
            raise InvalidInputError(f"all {self.n_rows_} rows of X are zero vectors; nothing can be searched.")

        use_ivf = self.method == "ivf" or (self.method == "auto" and self.n_valid_ > self.exact_max_rows)
        self._ivf = None
        self.n_lists_ = self.n_probe_ = None
        self.recall_ = 1.0
        if use_ivf:
            self._fit_ivf(data, progress)
            self.method_ = "ivf"
        else:
            self.method_ = "exact"
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _fit_ivf(self, data: np.ndarray, progress: Callable[[float, str], None] | None) -> None:
        try:
            import faiss
        except ImportError:
            raise ImportError(
                "An approximate index needs faiss; install it with `pip install faiss-cpu`, "
                "or use method='exact'."
            ) from None
        rng = np.random.default_rng(self.random_state)
        valid_rows = np.flatnonzero(self._valid)
        n_lists = (
            max(1, min(round(math.sqrt(self.n_valid_)), self.n_valid_ // 39))
            if self.n_lists == "auto"
            else int(self.n_lists)
        )
        if n_lists > self.n_valid_:
            raise InvalidParameterError(
                f"n_lists={n_lists} exceeds the {self.n_valid_} rows with an embedding; "
                "use fewer lists or method='exact'."
            )
        dim = data.shape[1]
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = int(self.random_state)
        train_rows = np.sort(rng.choice(valid_rows, size=min(len(valid_rows), 64 * n_lists), replace=False))
        if progress is not None:
            progress(0.0, f"training {n_lists} inverted lists on {len(train_rows)} rows")
        index.train(_unit_rows(data, train_rows))
        step = self._rows_per_block(0, gather=True)
        for begin in range(0, len(valid_rows), step):
            rows = valid_rows[begin : begin + step]
            index.add_with_ids(_unit_rows(data, rows), rows.astype(np.int64))
            if progress is not None:
                done = begin + len(rows)
                progress(0.1 + 0.8 * done / len(valid_rows), f"indexed {done} of {len(valid_rows)} rows")
        self._ivf = index
        self.n_lists_ = n_lists
        if progress is not None:
            progress(0.9, "measuring recall")
        self.n_probe_, self.recall_ = self._tune_n_probe(rng, valid_rows)
        if progress is not None:
            progress(1.0, f"recall@10 {self.recall_:.3f} with n_probe={self.n_probe_}")

    def _tune_n_probe(self, rng: np.random.Generator, valid_rows: np.ndarray) -> tuple[int, float]:
        """Smallest power-of-two n_probe whose leave-one-out recall@10 reaches target_recall."""
        k = min(10, self.n_valid_ - 1)
        if k < 1:
            return self.n_lists_, 1.0
        rows = np.sort(rng.choice(valid_rows, size=min(self.n_recall_queries, len(valid_rows)), replace=False))
        queries = self._unit_queries(rows)
        truth = _without_self(self._exact(queries, k + 1, None)[1].cpu().numpy(), rows, k)
        n_probe = 1
        while True:
            found = _without_self(self._ivf_search(queries.cpu().numpy(), k + 1, n_probe)[1], rows, k)
            hits = sum(len(set(t) & set(f)) for t, f in zip(truth, found))
            recall = hits / sum(len(t) for t in truth)
            if recall >= self.target_recall or n_probe >= self.n_lists_:
                return n_probe, recall
            n_probe = min(2 * n_probe, self.n_lists_)

    # ------------------------------------------------------------------ search

    def search(
        self,
        query: np.ndarray,
        k: int = 10,
        *,
        filters: Sequence[Filter | dict] | None = None,
    ) -> SearchResult:
        """Rows most similar to ``query`` (cosine), among those passing ``filters``.

        Parameters
        ----------
        query : ndarray of shape (n_features,) or (n_queries, n_features)
            Query embedding(s), e.g. ``TextEmbedder().encode([text])``.
        k : int, default=10
            Hits per query.
        filters : sequence of CategoryFilter, RangeFilter or dicts, optional
            All must hold (AND). Needs ``metadata`` at fit.

        Returns
        -------
        SearchResult
            Hits with scores, the filter's selectivity and the strategy used.

        Raises
        ------
        InvalidParameterError
            If ``k`` < 1, filters are given without metadata, or a filter is invalid.
        InvalidInputError
            If the query has the wrong shape, non-finite values or zero norm.
        """
        start = time.perf_counter()
        if not hasattr(self, "method_"):
            raise InvalidParameterError("this VectorIndex is not fitted yet; call fit(X) first.")
        if not _is_int(k) or k < 1:
            raise InvalidParameterError(f"k must be an integer >= 1; got {k!r}.")
        queries = self._check_query(query)
        if filters:
            if self._metadata is None:
                raise InvalidParameterError(
                    "filters were given but the index has no metadata; pass metadata=... to fit()."
                )
            passing = filter_mask(self._metadata, filters)
            selectivity = float(passing.mean())
            candidates = passing & self._valid
        else:
            selectivity = 1.0
            candidates = None
        n_passing = self.n_valid_ if candidates is None else int(candidates.sum())
        k_eff = min(int(k), n_passing)
        fallbacks = 0

        if k_eff == 0:
            scores = np.zeros((len(queries), 0), np.float32)
            ids = np.zeros((len(queries), 0), np.int64)
            strategy = "prefilter-exact" if candidates is not None else self.method_
        elif self.method_ == "exact":
            scores, ids = self._exact(queries, k_eff, candidates)
            scores, ids = scores.cpu().numpy(), ids.cpu().numpy()
            strategy = "exact"
        elif candidates is None:
            scores, ids = self._ivf_search(queries.cpu().numpy(), k_eff, self.n_probe_)
            strategy = "ivf"
        elif n_passing <= self.exact_max_rows:
            scores, ids = self._exact(queries, k_eff, candidates)
            scores, ids = scores.cpu().numpy(), ids.cpu().numpy()
            strategy = "prefilter-exact"
        else:
            scores, ids, fallbacks = self._postfilter(queries, k_eff, candidates, n_passing)
            strategy = "ivf-postfilter"

        hits = _hits_frame(scores, ids)
        return SearchResult(
            hits=hits,
            selectivity=selectivity,
            n_passing=n_passing,
            n_rows=self.n_rows_,
            strategy=strategy,
            n_exact_fallbacks=fallbacks,
            seconds=time.perf_counter() - start,
        )

    def _check_query(self, query: object):
        import torch

        q = np.asarray(query, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self._X.shape[1] or q.shape[0] == 0:
            raise InvalidInputError(
                f"query must have shape ({self._X.shape[1]},) or (n_queries, {self._X.shape[1]}); "
                f"got {np.shape(query)}."
            )
        norms = np.linalg.norm(q, axis=1)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise InvalidInputError(
                "every query must be a finite, non-zero vector; "
                f"{int(np.sum(~np.isfinite(norms) | (norms == 0)))} of {len(q)} are not "
                "(an empty text embeds to a zero vector)."
            )
        return torch.from_numpy(q / norms[:, None]).to(self.device_.device)

    def _unit_queries(self, rows: np.ndarray):
        import torch

        idx = torch.from_numpy(rows).to(self._X.device)
        return self._X[idx] * self._inv_norm[idx, None]

    def _exact(self, queries, k: int, candidates: np.ndarray | None):
        """Exact top-k of unit ``queries`` among ``candidates`` rows (all valid rows if None)."""
        import torch

        mask = self._valid if candidates is None else candidates
        n_candidates = int(mask.sum())
        if n_candidates < self.n_rows_ // 4:  # few rows: gather them, scan only those
            rows = torch.from_numpy(np.flatnonzero(mask)).to(self._X.device)
            block = self._rows_per_block(len(queries), gather=True)
            return _topk_rows(self._X, self._inv_norm, queries, k, rows, block)
        mask_t = None if n_candidates == self.n_rows_ else torch.from_numpy(mask).to(self._X.device)
        block = self._rows_per_block(len(queries), gather=False)
        return _topk_masked(self._X, self._inv_norm, queries, k, mask_t, block)

    def _rows_per_block(self, n_queries: int, gather: bool) -> int:
        """Rows whose scores (and gathered copies) fit in ``working_memory`` MiB."""
        per_row = 4 * (n_queries + (self._X.shape[1] if gather else 0))
        return max(1, int(self.working_memory * 2**20) // per_row)

    def _ivf_search(self, queries: np.ndarray, k: int, n_probe: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        params = faiss.SearchParametersIVF(nprobe=int(n_probe))
        scores, ids = self._ivf.search(np.ascontiguousarray(queries, dtype=np.float32), int(k), params=params)
        return scores, ids

    def _postfilter(self, queries, k: int, candidates: np.ndarray, n_passing: int):
        """Index search for extra neighbours, keep the passing ones; exact scan when too few pass."""
        selectivity = n_passing / self.n_valid_
        q_np = queries.cpu().numpy()
        out_scores = np.full((len(q_np), k), -np.inf, np.float32)
        out_ids = np.full((len(q_np), k), -1, np.int64)
        todo = np.arange(len(q_np))
        base = math.ceil(self.oversample * k / selectivity)
        fetch, limit = min(self.n_valid_, base), min(self.n_valid_, 8 * base)
        while True:
            scores, ids = self._ivf_search(q_np[todo], fetch, self.n_probe_)
            ok = (ids >= 0) & candidates[np.clip(ids, 0, None)]
            short = []
            for row, qi in enumerate(todo):
                keep = np.flatnonzero(ok[row])[:k]
                if len(keep) < k:
                    short.append(qi)
                else:
                    out_scores[qi], out_ids[qi] = scores[row, keep], ids[row, keep]
            todo = np.array(short, dtype=np.int64)
            if len(todo) == 0 or fetch >= limit:
                break
            fetch = min(limit, 2 * fetch)
        if len(todo):
            scores, ids = self._exact(queries[todo], k, candidates)
            out_scores[todo], out_ids[todo] = scores.cpu().numpy(), ids.cpu().numpy()
        return out_scores, out_ids, int(len(todo))


# --------------------------------------------------------------------------- kernels


def _topk_masked(X, inv_norm, queries, k: int, mask, block_rows: int):
    """Top-k cosine scores over the rows of ``X`` where ``mask`` (all if None); blockwise matmul (pure)."""
    import torch

    best_scores = best_ids = None
    for begin in range(0, X.shape[0], block_rows):
        end = begin + block_rows
        scores = (queries @ X[begin:end].T) * inv_norm[begin:end]
        if mask is not None:
            scores = scores.masked_fill(~mask[begin:end], float("-inf"))
        top = scores.topk(min(k, scores.shape[1]), dim=1)
        best_scores, best_ids = _merge(best_scores, best_ids, top.values, top.indices + begin, k)
    return best_scores, best_ids


def _topk_rows(X, inv_norm, queries, k: int, rows, block_rows: int):
    """Top-k cosine scores over the given ``rows`` of ``X`` only; blockwise gather + matmul (pure)."""
    best_scores = best_ids = None
    for begin in range(0, rows.shape[0], block_rows):
        idx = rows[begin : begin + block_rows]
        scores = (queries @ X[idx].T) * inv_norm[idx]
        top = scores.topk(min(k, scores.shape[1]), dim=1)
        best_scores, best_ids = _merge(best_scores, best_ids, top.values, idx[top.indices], k)
    return best_scores, best_ids


def _merge(best_scores, best_ids, scores, ids, k: int):
    import torch

    if best_scores is None:
        return scores, ids
    all_scores = torch.cat([best_scores, scores], dim=1)
    all_ids = torch.cat([best_ids, ids], dim=1)
    top = all_scores.topk(min(k, all_scores.shape[1]), dim=1)
    return top.values, torch.gather(all_ids, 1, top.indices)


# --------------------------------------------------------------------------- helpers


def _without_self(neighbours: np.ndarray, rows: np.ndarray, k: int) -> list[list[int]]:
    """First ``k`` neighbours of each row other than the row itself (ids < 0 dropped)."""
    return [[int(j) for j in nb if j != r and j >= 0][:k] for nb, r in zip(neighbours, rows)]


def _unit_rows(data: np.ndarray, rows: np.ndarray) -> np.ndarray:
    block = np.asarray(data[rows], dtype=np.float32)
    block /= np.linalg.norm(block, axis=1, keepdims=True)
    return np.ascontiguousarray(block)


def _hits_frame(scores: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    n_queries, k = ids.shape
    return pd.DataFrame(
        {
            "query": np.repeat(np.arange(n_queries, dtype=np.int64), k),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n_queries),
            "_row": ids.reshape(-1).astype(np.int64),
            "score": scores.reshape(-1).astype(np.float32),
        }
    )


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
