"""Tests of backend.search: exact and approximate cosine search with metadata filters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from backend.errors import InvalidInputError, InvalidParameterError
from backend.search import (
    CategoryFilter,
    RangeFilter,
    VectorIndex,
    filter_from_dict,
    filter_mask,
)


def _clustered(n: int, dim: int, n_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows around random centres, with norms that vary (cosine must ignore them)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    X = centres[rng.integers(0, n_clusters, n)] + 0.6 * rng.normal(size=(n, dim))
    X *= rng.uniform(0.5, 3.0, size=(n, 1))
    queries = centres[rng.integers(0, n_clusters, 25)] + 0.6 * rng.normal(size=(25, dim))
    return X.astype(np.float32), queries.astype(np.float32)


def _metadata(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "topic": pd.Categorical(rng.choice(["news", "sport", "art", "food"], n, p=[0.4, 0.3, 0.2, 0.1])),
            "year": rng.integers(1990, 2025, n),
            "length": rng.uniform(0.0, 1.0, n),
        }
    )


def _true_topk(X: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
    """Brute-force cosine top-k among allowed rows, in float64."""
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = Qn.astype(np.float64) @ Xn.T.astype(np.float64)
    sims[:, ~allowed] = -np.inf
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def _ids(result, n_queries: int) -> list[list[int]]:
    return [result.hits.loc[result.hits["query"] == q, "_row"].tolist() for q in range(n_queries)]


@pytest.fixture(scope="module")
def data():
    X, queries = _clustered(20_000, 32, 60, seed=0)
    return X, queries, _metadata(len(X), seed=1)


@pytest.fixture(scope="module")
def exact_index(data):
    X, _, meta = data
    return VectorIndex("exact", working_memory=0.05).fit(X, metadata=meta)


@pytest.fixture(scope="module")
def ivf_index(data):
    X, _, meta = data
    # exact_max_rows=3_000 sends selective filters to the exact scan and broad ones to post-filtering
    return VectorIndex("ivf", exact_max_rows=3_000, random_state=0).fit(X, metadata=meta)


def test_exact_search_equals_brute_force(data, exact_index):
    X, queries, _ = data
    result = exact_index.search(queries, k=10)
    assert result.strategy == "exact" and result.selectivity == 1.0
    assert _ids(result, len(queries)) == _true_topk(X, queries, 10, np.ones(len(X), bool)).tolist()
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    q0 = queries[0] / np.linalg.norm(queries[0])
    first = result.hits[result.hits["query"] == 0]
    np.testing.assert_allclose(first["score"], Xn[first["_row"]] @ q0, atol=1e-5)
    assert first["rank"].tolist() == list(range(1, 11))
    assert (np.diff(first["score"]) <= 0).all()


@pytest.mark.parametrize(
    "filters",
    [
        [CategoryFilter("topic", ("food",))],
        [CategoryFilter("topic", ("news", "sport")), RangeFilter("year", low=2000)],
        [RangeFilter("length", 0.2, 0.25), RangeFilter("year", high=2010)],
    ],
)
def test_filtered_exact_search_returns_true_topk_among_passing_rows(data, exact_index, filters):
    X, queries, meta = data
    allowed = filter_mask(meta, filters)
    result = exact_index.search(queries, k=10, filters=filters)
    assert result.selectivity == pytest.approx(allowed.mean())
    assert result.n_passing == allowed.sum()
    assert allowed[result.hits["_row"]].all()
    assert _ids(result, len(queries)) == _true_topk(X, queries, 10, allowed).tolist()


def test_filter_mask_semantics(data):
    _, _, meta = data
    mask = filter_mask(meta, [CategoryFilter("topic", ("art",)), RangeFilter("year", 2000, 2004)])
    expected = (meta["topic"] == "art") & meta["year"].between(2000, 2004)
    assert (mask == expected.to_numpy()).all()
    # bounds are inclusive; missing values never pass
    frame = pd.DataFrame({"v": [1.0, 2.0, np.nan, 3.0], "c": ["a", None, "a", "b"]})
    assert filter_mask(frame, [RangeFilter("v", 2.0, 3.0)]).tolist() == [False, True, False, True]
    assert filter_mask(frame, [CategoryFilter("c", ("a",))]).tolist() == [True, False, True, False]


def test_ivf_recall_is_measured_and_reached(data, ivf_index):
    X, queries, _ = data
    assert ivf_index.method_ == "ivf"
    assert ivf_index.n_lists_ == round(np.sqrt(len(X)))
    assert ivf_index.recall_ >= 0.95
    result = ivf_index.search(queries, k=10)
    assert result.strategy == "ivf"
    truth = _true_topk(X, queries, 10, np.ones(len(X), bool))
    found = _ids(result, len(queries))
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth.tolist(), found)])
    assert recall >= 0.9


def test_ivf_selective_filter_scans_passing_rows_exactly(data, ivf_index):
    X, queries, meta = data
    filters = [CategoryFilter("topic", ("food",)), RangeFilter("year", 2000, 2014)]
    allowed = filter_mask(meta, filters)
    assert allowed.sum() <= 3_000
    result = ivf_index.search(queries, k=10, filters=filters)
    assert result.strategy == "prefilter-exact"
    assert _ids(result, len(queries)) == _true_topk(X, queries, 10, allowed).tolist()


def test_ivf_broad_filter_post_filters_with_oversampling(data, ivf_index):
    X, queries, meta = data
    filters = [CategoryFilter("topic", ("news", "sport"))]
    allowed = filter_mask(meta, filters)
    result = ivf_index.search(queries, k=10, filters=filters)
    assert result.strategy == "ivf-postfilter"
    assert result.selectivity == pytest.approx(allowed.mean())
    assert allowed[result.hits["_row"]].all()
    assert (result.hits.groupby("query").size() == 10).all()
    truth = _true_topk(X, queries, 10, allowed)
    found = _ids(result, len(queries))
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth.tolist(), found)])
    assert recall >= 0.9


def test_post_filter_falls_back_to_exact_when_too_few_pass(data):
    X, queries, meta = data
    # no oversampling headroom and one probed list: most queries cannot find 50 passing hits
    index = VectorIndex("ivf", exact_max_rows=100, oversample=1.0, n_lists=400, target_recall=0.01).fit(X, metadata=meta)
    assert index.n_probe_ == 1
    filters = [RangeFilter("length", 0.0, 0.3)]
    allowed = filter_mask(meta, filters)
    result = index.search(queries, k=50, filters=filters)
    assert result.strategy == "ivf-postfilter" and result.n_exact_fallbacks > 0
    assert (result.hits.groupby("query").size() == 50).all()
    assert allowed[result.hits["_row"]].all()


def test_auto_picks_exact_up_to_the_threshold(data):
    X, _, _ = data
    assert VectorIndex(exact_max_rows=len(X)).fit(X).method_ == "exact"
    assert VectorIndex(exact_max_rows=len(X) - 1).fit(X).method_ == "ivf"


def test_zero_rows_are_never_returned():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 8)).astype(np.float32)
    X[[3, 7, 11]] = 0.0
    index = VectorIndex().fit(X)
    assert index.n_valid_ == 47
    result = index.search(X[0] + 1e-3, k=60)
    assert len(result.hits) == 47 and not set(result.hits["_row"]) & {3, 7, 11}


def test_fewer_hits_when_fewer_rows_pass(data, exact_index):
    _, queries, meta = data
    filters = [RangeFilter("year", 1990, 1990), CategoryFilter("topic", ("food",))]
    n_pass = int(filter_mask(meta, filters).sum())
    assert 0 < n_pass < 200
    result = exact_index.search(queries[:2], k=200, filters=filters)
    assert (result.hits.groupby("query").size() == n_pass).all()
    none = exact_index.search(queries[:2], k=5, filters=[CategoryFilter("topic", ("poetry",))])
    assert len(none.hits) == 0 and none.selectivity == 0.0


def test_result_and_filters_are_json_round_trippable(data, exact_index):
    _, queries, _ = data
    filters = [CategoryFilter("topic", ("art", "food")), RangeFilter("year", 2001, None)]
    restored = [filter_from_dict(json.loads(json.dumps(f.to_dict()))) for f in filters]
    assert restored == filters
    result = exact_index.search(queries[0], k=3, filters=[f.to_dict() for f in filters])
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["hits"]["_row"] == result.hits["_row"].tolist()
    assert payload["strategy"] == "exact"


def test_single_query_vector_and_unnormalised_query(data, exact_index):
    _, queries, _ = data
    one = exact_index.search(queries[4], k=5)
    scaled = exact_index.search(7.5 * queries[4], k=5)
    assert one.hits["_row"].tolist() == scaled.hits["_row"].tolist()
    assert (one.hits["query"] == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "hnsw"}, r"method must be one of \('auto', 'exact', 'ivf'\); got 'hnsw'"),
        ({"exact_max_rows": 0}, r"exact_max_rows must be an integer >= 1; got 0"),
        ({"n_lists": "many"}, r"n_lists must be 'auto' or an integer >= 1; got 'many'"),
        ({"target_recall": 1.5}, r"target_recall must be in \(0, 1\]; got 1.5"),
        ({"oversample": 0.5}, r"oversample must be a number >= 1; got 0.5"),
        ({"working_memory": 0}, r"working_memory must be a number of MiB > 0; got 0"),
    ],
)
def test_invalid_parameters(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        VectorIndex(**kwargs).fit(np.ones((10, 4), np.float32))


def test_invalid_inputs(exact_index):
    with pytest.raises(InvalidInputError, match=r"non-empty 2-D array .* got shape \(5,\)"):
        VectorIndex().fit(np.ones(5, np.float32))
    with pytest.raises(InvalidInputError, match=r"metadata has 3 rows but X has 10"):
        VectorIndex().fit(np.ones((10, 4), np.float32), metadata=pd.DataFrame({"a": [1, 2, 3]}))
    with pytest.raises(InvalidInputError, match=r"X has 1 rows with NaN or infinite values"):
        X = np.ones((10, 4), np.float32)
        X[2, 1] = np.nan
        VectorIndex().fit(X)
    with pytest.raises(InvalidInputError, match=r"all 4 rows of X are zero vectors"):
        VectorIndex().fit(np.zeros((4, 3), np.float32))
    with pytest.raises(InvalidParameterError, match=r"n_lists=20 exceeds the 10 rows"):
        VectorIndex("ivf", n_lists=20).fit(np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32))
    with pytest.raises(InvalidInputError, match=r"query must have shape \(32,\) or \(n_queries, 32\); got \(31,\)"):
        exact_index.search(np.ones(31, np.float32))
    with pytest.raises(InvalidInputError, match=r"finite, non-zero vector; 1 of 1 are not"):
        exact_index.search(np.zeros(32, np.float32))
    with pytest.raises(InvalidParameterError, match=r"k must be an integer >= 1; got 0"):
        exact_index.search(np.ones(32, np.float32), k=0)


def test_invalid_filters(data, exact_index):
    _, _, meta = data
    q = np.ones(32, np.float32)
    with pytest.raises(InvalidParameterError, match=r"filter column 'colour' is not in the metadata; columns are \['topic', 'year', 'length'\]"):
        exact_index.search(q, filters=[CategoryFilter("colour", ("red",))])
    with pytest.raises(InvalidParameterError, match=r"range filter needs a numeric column; 'topic' has dtype category"):
        exact_index.search(q, filters=[RangeFilter("topic", 0, 1)])
    with pytest.raises(InvalidParameterError, match=r"low=2010 > high=2000"):
        exact_index.search(q, filters=[RangeFilter("year", 2010, 2000)])
    with pytest.raises(InvalidParameterError, match=r"neither low nor high"):
        exact_index.search(q, filters=[RangeFilter("year")])
    with pytest.raises(InvalidParameterError, match=r"category filter on 'topic' has no values"):
        exact_index.search(q, filters=[CategoryFilter("topic", ())])
    with pytest.raises(InvalidParameterError, match=r"filter kind must be 'category' or 'range'; got 'regex'"):
        exact_index.search(q, filters=[{"kind": "regex", "column": "topic"}])
    with pytest.raises(InvalidParameterError, match=r"the index has no metadata; pass metadata=\.\.\. to fit\(\)"):
        VectorIndex().fit(np.ones((5, 32), np.float32)).search(q, filters=[CategoryFilter("topic", ("art",))])
    with pytest.raises(InvalidParameterError, match=r"not fitted yet; call fit\(X\) first"):
        VectorIndex().search(q)


def test_search_by_meaning_on_the_bundled_corpus():
    from backend.datasets.text import load_text_dataset
    from backend.embed.text import TextEmbedder

    frame = load_text_dataset()
    subset = frame[frame["category"].isin(["tech support", "food", "sports", "money"])].reset_index(drop=True)
    embedder = TextEmbedder(batch_size=32, device="cpu")
    index = VectorIndex().fit(embedder.encode(subset["text"]), metadata=subset[["category", "role", "n_words"]])
    query = embedder.encode(["my laptop does not boot"])[0]
    top = index.search(query, k=3)
    assert (subset.loc[top.hits["_row"], "category"] == "tech support").all()
    food = index.search(query, k=3, filters=[CategoryFilter("category", ("food",)), RangeFilter("n_words", high=12)])
    allowed = (subset["category"] == "food") & (subset["n_words"] <= 12)
    assert food.selectivity == pytest.approx(allowed.mean())
    assert allowed[food.hits["_row"]].all() and len(food.hits) == 3
    assert food.hits["score"].max() < top.hits["score"].min()
