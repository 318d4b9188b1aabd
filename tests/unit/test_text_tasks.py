"""Text datasets and their job kinds: uploads of texts, the embedding job (rows without text left
out and listed), search by meaning with filters (only passing rows, the true top-k among them),
the search job, the IVF path, and the same answers over HTTP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.client import LocalBackend
from backend.datasets.text_table import parse_text_upload, text_cell_counts
from backend.errors import InvalidInputError, InvalidParameterError, NotFoundError
from backend.jobs import JobSpec

ANIMALS = ["a cat sleeps on the sofa", "kittens chase a ball of wool", "the dog barks at the postman",
           "puppies love to play fetch", "a parrot can learn words", "goldfish swim in a bowl"]
FOOD = ["I love eating pizza with cheese", "fresh bread from the bakery", "a bowl of hot soup",
        "pasta with tomato sauce", "chocolate cake for dessert", "an apple a day"]
MONEY = ["the stock market fell today", "interest rates are rising", "I paid my taxes",
         "a loan from the bank", "saving money for retirement", "the price of gold went up"]


def _texts_table() -> pd.DataFrame:
    texts = ANIMALS + FOOD + MONEY
    topic = ["animals"] * 6 + ["food"] * 6 + ["money"] * 6
    df = pd.DataFrame({"message": texts, "topic": topic,
                       "length": [len(t) for t in texts], "n": np.arange(18) % 5})
    return df


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    b = LocalBackend(tmp_path_factory.mktemp("text") / "home")
    yield b
    b.runner.shutdown()


@pytest.fixture(scope="module")
def embedded(local):
    """A text upload with 2 missing and 1 blank cell, embedded: (text info, job meta, derived info)."""
    df = _texts_table()
    gaps = pd.DataFrame({"message": [None, "   ", None], "topic": ["food", "money", "animals"],
                         "length": [0, 3, 0], "n": [1, 2, 3]})
    df = pd.concat([df.iloc[:4], gaps, df.iloc[4:]], ignore_index=True)  # rows 4, 5, 6 lack text
    info, notes = local.add_text_upload(_csv(df), "msgs.csv", text_column="message", name="msgs")
    job = local.submit(JobSpec("text_embed", info.id, {"batch_size": 4}))
    status = local.wait(job, timeout=300)
    assert status.state == "done", status.error
    meta = {**local.result(status.artifact_id).to_dict(),
            "job_id": local.artifact_json(status.artifact_id, "meta.json")["job_id"]}
    return info, notes, status.artifact_id, meta, local.dataset(meta["derived_dataset"])


def test_text_upload_is_a_text_dataset_with_cell_counts(local):
    df = pd.DataFrame({"body": ["hello there", "", None, "  ", "bye", "ok"],
                       "score": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "kind": list("xyxyxy")})
    info, notes = local.add_text_upload(_csv(df), "t.csv", text_column="body")
    assert info.kind == "text" and info.n_rows == 6 and info.n_dims == 0
    assert info.columns == ["body", "score", "kind"]  # no numeric column needed, all kept
    # CSV: an empty field is missing; a field of spaces is an empty text
    assert info.extra["text_cells"]["body"] == {"n_text": 3, "n_empty": 1, "n_missing": 2,
                                                "n_non_text": 0}
    assert info.extra["text_column"] == "body" and info.extra["label_column"] == "kind"
    assert notes == ["3 of 6 cells of 'body' have no text to embed: 1 empty, 2 missing. Those "
                     "rows will be left out of the embedding (the embedding job lists them)."]
    # the same cells, read the way the embedder reads them
    assert text_cell_counts(pd.Series(["a", "", None, np.nan, 3, " b "], dtype=object)) == {
        "n_text": 2, "n_empty": 1, "n_missing": 2, "n_non_text": 1}


@pytest.mark.parametrize("kwargs, data, error, match", [
    ({"text_column": "nope"}, b"a,b\nx,y\n", InvalidParameterError, "has no text column 'nope'"),
    ({"text_column": "a"}, b"a,b\n1,x\n2,y\n", InvalidInputError, r"holds no text to embed .*'b'"),
    ({"text_column": "a"}, b'a,b\n" ",1\n,2\n', InvalidInputError, "1 empty, 1 missing"),
    ({"text_column": "a", "id_column": "b"}, b"a,b\nx,1\ny,1\n", InvalidInputError, "duplicate"),
    ({"text_column": "a"}, b"a,b\n", InvalidInputError, "header but no rows"),
    ({"text_column": "a"}, b"\x93NUMPY", InvalidInputError, "NumPy array"),
])
def test_bad_text_uploads_are_refused(kwargs, data, error, match):
    name = "x.npy" if data.startswith(b"\x93NUMPY") else "x.csv"
    with pytest.raises(error, match=match):
        parse_text_upload(data, name, **kwargs)


def test_row_limit_of_a_text_upload():
    with pytest.raises(InvalidInputError, match="over the limit of 2"):
        parse_text_upload(b"a\nx\ny\nz\n", "x.csv", text_column="a", max_rows=2)


def test_embedding_job_leaves_out_rows_without_text(local, embedded):
    from backend.embed.text import TextEmbedder

    info, notes, art, meta, derived = embedded
    assert "3 of 21 cells of 'message' have no text to embed: 1 empty, 2 missing" in notes[0]
    assert (meta["n_texts"], meta["n_embedded"], meta["n_left_out"]) == (21, 18, 3)
    assert (meta["n_empty"], meta["n_missing"], meta["n_non_text"]) == (1, 2, 0)
    assert meta["sampled"] is False and meta["n_truncated"] == 0
    cells = local.artifact_table(art, "cells.parquet")
    assert cells["source_row"].tolist() == [4, 5, 6]
    assert cells["status"].tolist() == ["missing", "empty", "missing"]

    assert derived.kind == "vectors" and derived.n_rows == 18 and derived.n_dims == 384
    assert derived.extra["derived_from"] == info.id and derived.extra["text_column"] == "message"
    assert derived.extra["label_column"] == "topic"
    # the caption shows names, not internal ids (issue 17 item 24); the ids stay in extra
    assert derived.source == "texts of 'msgs' embedded by sentence-transformers/all-MiniLM-L6-v2"
    assert info.id not in derived.source and derived.extra["job_id"] == meta["job_id"]
    table = local.table(derived.id)
    assert table["source_row"].tolist() == [0, 1, 2, 3, *range(7, 21)]
    assert table["message"].tolist() == ANIMALS + FOOD + MONEY
    assert not table["truncated"].any()
    # the stored rows are the model's embeddings of those texts
    X = local.store.vectors(derived.id)
    ref = TextEmbedder(batch_size=32).encode(ANIMALS + FOOD + MONEY)
    assert np.min(np.sum(X * ref, axis=1)) > 0.9999
    # the same job again is the same artifact and the same derived dataset
    again = local.submit(JobSpec("text_embed", info.id, {"batch_size": 4}))
    assert again == meta["job_id"]


def test_embedding_a_sample_and_a_column_without_text(local, embedded):
    info = embedded[0]
    job = local.submit(JobSpec("text_embed", info.id, {"max_rows": 5}))
    status = local.wait(job, timeout=120)
    assert status.state == "done", status.error
    meta = local.result(status.artifact_id).to_dict()
    assert meta["sampled"] and meta["n_texts"] == 5 and meta["n_source_rows"] == 21
    sub = local.dataset(meta["derived_dataset"])
    assert "a sample of 5" in sub.name and sub.n_rows == meta["n_embedded"] <= 5
    # every row, asked for explicitly, is the job without a limit
    assert local.submit(JobSpec("text_embed", info.id, {"max_rows": 21, "batch_size": 4})) \
        == embedded[3]["job_id"]

    job = local.submit(JobSpec("text_embed", info.id, {"column": "length"}))
    status = local.wait(job, timeout=120)
    assert status.state == "failed"
    assert "column 'length' has no text to embed: 0 empty, 0 missing and 21 non-text" in status.error
    with pytest.raises(InvalidParameterError, match="column .nope. is not a column of"):
        local.submit(JobSpec("text_embed", info.id, {"column": "nope"}))
    with pytest.raises(InvalidParameterError, match=r"batch_size must be an integer in \[1, 1024\]; got 0"):
        local.submit(JobSpec("text_embed", info.id, {"batch_size": 0}))
    with pytest.raises(InvalidParameterError, match="works on datasets of kind"):
        local.submit(JobSpec("text_embed", embedded[4].id, {}))


def _expected(local, dataset_id, query, k, mask):
    from backend.embed.text import TextEmbedder

    X = np.asarray(local.store.vectors(dataset_id), dtype=np.float64)
    q = TextEmbedder().encode([query])[0].astype(np.float64)
    scores = X @ q / np.linalg.norm(X, axis=1)
    scores[~mask] = -np.inf
    order = np.argsort(-scores, kind="stable")[: min(k, int(mask.sum()))]
    return order, scores[order]


@pytest.mark.parametrize("filters", [
    [],
    [{"kind": "category", "column": "topic", "values": ["food"]}],
    [{"kind": "range", "column": "length", "low": 20, "high": None}],
    [{"kind": "category", "column": "topic", "values": ["animals", "money"]},
     {"kind": "range", "column": "n", "low": 1, "high": 3}],
])
def test_search_returns_the_true_top_k_among_passing_rows(local, embedded, filters):
    derived = embedded[4]
    table = local.table(derived.id)
    mask = np.ones(len(table), dtype=bool)
    for f in filters:
        s = table[f["column"]]
        if f["kind"] == "category":
            mask &= s.isin(f["values"]).to_numpy()
        else:
            mask &= ((s >= (f["low"] if f["low"] is not None else -np.inf))
                     & (s <= (f["high"] if f["high"] is not None else np.inf))).to_numpy()
    query = "my cat and my dog are friends"
    res = local.search(derived.id, query, 5, filters)
    rows, scores = _expected(local, derived.id, query, 5, mask)
    assert res.hits["_row"].tolist() == rows.tolist()
    np.testing.assert_allclose(res.hits["score"], scores, atol=1e-5)
    assert res.hits["rank"].tolist() == list(range(1, len(rows) + 1))
    assert mask[res.hits["_row"]].all()
    assert res.selectivity == pytest.approx(mask.mean()) and res.n_passing == int(mask.sum())
    assert res.strategy == "exact" and res.index_method == "exact" and res.recall == 1.0
    if not filters:  # the meaning is found: the animal sentences first
        assert set(table.loc[res.hits["_row"][:3], "topic"]) == {"animals"}


def test_search_asks_for_more_than_pass_and_bad_searches(local, embedded):
    derived = embedded[4]
    food = [{"kind": "category", "column": "topic", "values": ["food"]}]
    res = local.search(derived.id, "dinner", 50, food)
    assert len(res.hits) == 6 and res.n_passing == 6  # only six rows pass
    res = local.search(derived.id, "dinner", 3, [{"kind": "category", "column": "topic",
                                                  "values": ["none of them"]}])
    assert len(res.hits) == 0 and res.n_passing == 0 and res.selectivity == 0.0

    bad = [
        ({"query": "  "}, InvalidParameterError, "type a query"),
        ({"query": "x" * 2001}, InvalidParameterError, "at most 2,000"),
        ({"k": 0}, InvalidParameterError, r"k must be an integer in \[1, 1000\]"),
        ({"filters": [{"kind": "range", "column": "message", "low": 1}]},
         InvalidParameterError, "range filter needs a numeric column"),
        ({"filters": [{"kind": "category", "column": "topic", "values": "food"}]},
         InvalidParameterError, "needs 'values': a list"),
        ({"filters": [{"kind": "range", "column": "n", "low": float("nan")}]},
         InvalidParameterError, "finite number"),
        ({"filters": [{"kind": "range", "column": "n", "low": 3, "high": 1}]},
         InvalidParameterError, "low=3.0 > high=1.0"),
        ({"filters": [{"kind": "range", "column": "n", "lo": 3}]},
         InvalidParameterError, r"unknown key\(s\) \['lo'\]"),
        ({"filters": [{"kind": "like", "column": "n"}]}, InvalidParameterError, "each filter must"),
        ({"filters": [{"kind": "category", "column": "nope", "values": [1]}]},
         InvalidParameterError, "filter column 'nope'"),
        ({"filters": {"kind": "range"}}, InvalidParameterError, "a list of at most 16"),
    ]
    for change, error, match in bad:
        args = {"query": "dinner", "k": 3, "filters": None, **change}
        with pytest.raises(error, match=match):
            local.search(derived.id, **args)
    with pytest.raises(InvalidInputError, match="holds no text embeddings"):
        local.search(embedded[0].id, "dinner")  # the text dataset itself: no vectors
    with pytest.raises(NotFoundError):
        local.search("0123456789abcdef", "dinner")


def test_search_job_and_the_ivf_path(local, embedded, monkeypatch):
    import backend.tasks.text as text_tasks

    derived = embedded[4]
    spec = {"query": "money in the bank", "k": 4,
            "filters": [{"kind": "range", "column": "n", "high": 3}]}
    job = local.submit(JobSpec("search", derived.id, spec))
    status = local.wait(job, timeout=120)
    assert status.state == "done", status.error
    hits = local.artifact_table(status.artifact_id, "hits.parquet")
    meta = local.result(status.artifact_id).to_dict()
    direct = local.search(derived.id, **spec)
    pd.testing.assert_frame_equal(hits, direct.hits)
    assert meta["selectivity"] == direct.selectivity and meta["strategy"] == "exact"
    assert meta["n_hits"] == 4

    # beyond EXACT_MAX_ROWS an IVF index is built once, cached, and searched
    exact = local.search(derived.id, "money in the bank", 4)
    text_tasks.clear_index_cache()
    monkeypatch.setattr(text_tasks, "EXACT_MAX_ROWS", 10)
    first = local.search(derived.id, "money in the bank", 4)
    again = local.search(derived.id, "money in the bank", 4)
    assert first.index_method == "ivf" and first.strategy == "ivf" and first.n_lists == 1
    assert first.recall == 1.0 and again.index_seconds == 0.0
    assert first.hits["_row"].tolist() == exact.hits["_row"].tolist()  # one list: every row
    np.testing.assert_allclose(first.hits["score"], exact.hits["score"], atol=1e-5)
    filtered = local.search(derived.id, **spec)  # 12 rows pass > 10: post-filtering on the index
    assert filtered.strategy == "ivf-postfilter"
    assert filtered.hits["_row"].tolist() == direct.hits["_row"].tolist()
    # an embedding job of more rows than that builds the index before it ends
    text_tasks.clear_index_cache()
    status = local.wait(local.submit(JobSpec("text_embed", embedded[0].id, {"batch_size": 7})),
                        timeout=120)
    assert status.state == "done", status.error
    made = local.result(status.artifact_id).derived_dataset
    warm = local.search(made, "money in the bank", 4)
    assert warm.index_method == "ivf" and warm.index_seconds == 0.0
    text_tasks.clear_index_cache()


def test_text_over_http_answers_like_local(local, embedded):
    from backend.http_client import HttpBackend
    from backend.service import create_app
    from tests.service_support import TOKEN, ThreadedService

    derived = embedded[4]
    with ThreadedService(create_app(local, TOKEN, max_upload=100_000, max_rows=50)) as svc:
        remote = HttpBackend(svc.url, TOKEN)
        try:
            assert remote.bundled_text() == local.bundled_text()
            got, notes = remote.add_text_upload(_csv(_texts_table()), "t.csv", text_column="message",
                                                name="t")
            want, want_notes = local.add_text_upload(_csv(_texts_table()), "t.csv",
                                                     text_column="message", name="t")
            assert got == want and notes == want_notes == []
            for args in [("cats", 3, None),
                         ("cats", 5, [{"kind": "category", "column": "topic", "values": ["food"]}])]:
                a, b = remote.search(derived.id, *args), local.search(derived.id, *args)
                pd.testing.assert_frame_equal(a.hits, b.hits)
                assert a.selectivity == b.selectivity and a.strategy == b.strategy
            for call in [
                lambda be: be.search(derived.id, "", 3),
                lambda be: be.search(derived.id, "x", 3, [{"kind": "range", "column": "topic",
                                                           "low": 1}]),
                lambda be: be.search(embedded[0].id, "x"),
                lambda be: be.add_text_upload(b"a,b\n1,x\n", "n.csv", text_column="a"),
                lambda be: be.add_text_upload(b"a,b\n1,x\n", "n.csv", text_column="zz"),
                lambda be: be.add_bundled_text("nope"),
            ]:
                errors = []
                for be in (remote, local):
                    with pytest.raises(Exception) as e:
                        call(be)
                    errors.append((type(e.value), str(e.value)))
                assert errors[0] == errors[1]
            big = "a\n" + "".join(f"t{i}\n" for i in range(60))
            with pytest.raises(InvalidInputError, match="over the limit of 50"):
                remote.add_text_upload(big.encode(), "big.csv", text_column="a")
        finally:
            remote.close()


def test_bundled_corpus_is_a_text_dataset(local):
    info = local.add_bundled_text()
    assert info.kind == "text" and info.n_rows == 1909 and info.n_dims == 0
    assert info.extra["text_column"] == "text" and info.extra["label_column"] == "category"
    assert info.extra["text_cells"]["text"]["n_text"] == 1909
    assert "BSD-3-Clause" in info.source and "chatterbot-corpus==1.3.3" in info.source
    assert local.add_bundled_text("chatterbot").id == info.id  # stored once
    with pytest.raises(NotFoundError, match="no bundled text dataset 'x'"):
        local.add_bundled_text("x")
