"""The pure parts of components/search.py: which columns can filter, the hits table, the summary."""

import numpy as np
import pandas as pd

from backend.tasks.text import TextSearchResult
from components.search import filterable_columns, hits_frame, hits_table_options, search_summary


def _result(**change) -> TextSearchResult:
    base = dict(hits=pd.DataFrame({"_row": np.array([2, 0], np.int64), "rank": np.array([1, 2]),
                                   "score": np.array([0.9, 0.5], np.float32)}),
                query="q", k=2, filters=[], selectivity=1.0, n_passing=4, n_rows=4,
                strategy="exact", index_method="exact", recall=1.0, n_lists=None, n_probe=None,
                n_exact_fallbacks=0, seconds=0.002, embed_seconds=0.01, index_seconds=0.0)
    return TextSearchResult(**{**base, **change})


def test_filterable_columns():
    t = pd.DataFrame({"_row": range(4), "text": ["a", "b", "c", "d"],
                      "topic": pd.Categorical(["x", "y", "x", "y"]), "flag": [True, False, True, True],
                      "turn": [0, 1, 2, 0], "length": [1.5, 2.0, 3.5, 9.0], "const": [1, 1, 1, 1],
                      "word": ["u", "v", "u", "v"]})
    cat, num = filterable_columns(t, exclude=("text",))
    assert cat == ["topic", "flag", "turn", "word"]  # small integer columns filter by value
    assert num == ["length"]  # a constant column cannot filter anything


def test_hits_frame_and_summary():
    t = pd.DataFrame({"_row": range(4), "text": ["w", "x", "y", "z"], "topic": list("abab")})
    res = _result()
    out = hits_frame(res.hits, t, "text", ["topic"])
    assert out.columns.tolist() == ["rank", "text", "score", "topic", "_row"]  # text 2nd
    assert out["text"].tolist() == ["y", "w"] and out["topic"].tolist() == ["a", "a"]
    assert search_summary(res) == "**2** hits · among 4 rows · exact scan of every row · 12 ms"
    f = _result(filters=[{"kind": "category", "column": "topic", "values": ["a"]}],
                selectivity=0.5, n_passing=2)
    assert "the filters keep **2 of 4 rows (50.0% selectivity)**" in search_summary(f)
    assert "exact scan of the rows passing the filters" in search_summary(f)
    ivf = _result(strategy="ivf", index_method="ivf", n_lists=316, n_probe=8, recall=0.962,
                  index_seconds=12.5)
    assert ("IVF index (316 lists, n_probe 8, recall@10 0.962 measured at build) · 12 ms + "
            "12.5 s to build the index") in search_summary(ivf)


def test_hits_table_gives_the_text_column_room_and_wraps():
    """Issue 17 item 26: the hits table does not cut the text column off: a fixed width that
    fits beside the other columns, rows tall enough for the text to wrap."""
    from components.search import HITS_MAX_LINES, HITS_TEXT_WIDTH

    t = pd.DataFrame({"_row": range(4), "text": ["short", "x" * 100, "y", "z"]})
    opts = hits_table_options(hits_frame(_result().hits.assign(_row=[1, 0]), t, "text"), "text")
    cfg = opts["column_config"]
    assert cfg["text"]["width"] == HITS_TEXT_WIDTH and cfg["_row"] is None
    assert cfg["rank"]["width"] == "small" and cfg["score"]["width"] == "small"
    lines = -(-100 // (HITS_TEXT_WIDTH / 7))  # 100 characters at ~7 px: 3 lines
    assert lines == 3 and opts["row_height"] == 12 + 19 * 3
    assert opts["height"] == 38 + 2 * opts["row_height"]
    long = hits_table_options(hits_frame(_result().hits, t.assign(text=["w" * 5000] * 4), "text"),
                              "text")
    assert long["row_height"] == 12 + 19 * HITS_MAX_LINES  # capped; the rest on hover
    short = hits_table_options(hits_frame(_result().hits, t.assign(text=list("abcd")), "text"),
                               "text")
    assert short["row_height"] == 12 + 19
