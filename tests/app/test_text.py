"""Text pages with AppTest: the bundled corpus embedded, mapped and searched (hits listed and
circled, a filter applied inside the search); an upload whose text column has empty cells
reports them; bad input gives a message, not a traceback."""

import base64
import json

import numpy as np
import pandas as pd

from tests.app.conftest import captions, run_until

SAMPLE = 80  # rows of the corpus embedded here (the whole corpus takes a minute of CPU)


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def _highlighted(at) -> list[int]:
    """Row ids ringed on the map: the WebGL map's ``highlight`` (in its JSON data, or the
    JSON part of mixed data), else the plotly map's "highlighted" trace."""
    for comp in at.get("bidi_component"):
        proto = comp.proto
        text = proto.json if proto.WhichOneof("data") == "json" else proto.mixed.json
        return sorted(int(v) for v in json.loads(text).get("highlight", []))
    spec = json.loads(next(p for p in at.get("plotly_chart")
                           if str(p.key).startswith("map-")).proto.spec)
    trace = [t for t in spec["data"] if t.get("name") == "highlighted"]
    if not trace:
        return []
    data = trace[0]["customdata"]
    if isinstance(data, dict):
        data = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
    return sorted(int(v) for v in data)


def _embed(at, rows: int | None = None):
    if rows is not None:
        at.number_input(key=f"text-{at.session_state['text_dataset']}-max_rows").set_value(rows)
    at.button(key="text_embed_run").click()
    return run_until(at, lambda a: "Texts embedded" in _metrics(a) or a.exception or a.error)


def test_bundled_corpus_embed_map_search(app):
    at = app
    at.switch_page("views/text.py")
    at.run()
    assert not at.exception
    if any(b.key == "text_add_chatterbot" for b in at.button):
        assert any("No text dataset yet" in i.value for i in at.info)
        at.button(key="text_add_chatterbot").click()
        at.run()
    else:  # the service's workspace (shared by the session's http tests) has it already
        pick = at.selectbox(key="text_dataset")
        pick.select_index(next(i for i, o in enumerate(pick.options) if "ChatterBot" in o)).run()
    assert not at.exception and not at.error
    assert "1,909 of 1,909 cells of 'text' hold text." in captions(at)
    at = _embed(at, SAMPLE)
    assert not at.exception and not at.error
    m = _metrics(at)
    assert m["Texts embedded"] == str(SAMPLE) and m["Left out (no text)"] == "0"
    assert f"a seeded random sample of {SAMPLE} of 1,909 rows" in captions(at)

    at.button(key="text_show_map").click()
    at.run()  # (the button switches page in a browser; AppTest keeps its own page)
    at.switch_page("views/map.py")
    at = run_until(at, lambda a: "points drawn" in captions(a) or a.exception or a.error)
    assert not at.exception and not at.error
    ds = at.session_state["dataset_id"]
    assert f"{SAMPLE} of {SAMPLE} points drawn" in captions(at)
    assert at.selectbox(key=f"color-{ds}").value == "category"
    assert f"{SAMPLE} texts of 'text' embedded." in captions(at)

    at.text_input(key=f"search_q-{ds}").set_value("what food do you like to eat?").run()
    assert not at.exception and not at.error
    hits = at.dataframe[0].value
    assert len(hits) == 10 and hits["rank"].tolist() == list(range(1, 11))
    assert hits["score"].is_monotonic_decreasing and hits["score"].iloc[0] > 0.3
    assert f"**10** hits · among {SAMPLE} rows · exact scan of every row" in captions(at)
    assert _highlighted(at) == sorted(hits["_row"].tolist())  # circled on the map

    # a category filter, applied inside the search: only passing rows, the best of them first
    cat = hits["category"].iloc[2]
    at.multiselect(key=f"search_f-{ds}-cols").set_value(["category"]).run()
    at.multiselect(key=f"search_f-{ds}-cat-category").set_value([cat]).run()
    assert not at.exception and not at.error
    filtered = at.dataframe[0].value
    assert (filtered["category"] == cat).all() and len(filtered) >= 1
    passing_before = hits[hits["category"] == cat]["_row"].tolist()
    assert filtered["_row"].tolist()[: len(passing_before)] == passing_before
    assert "selectivity)** · exact scan of the rows passing the filters" in captions(at)
    assert _highlighted(at) == sorted(filtered["_row"].tolist())


def test_text_upload_reports_empty_cells(app):
    at = app
    at.switch_page("views/upload.py")
    at.run()
    df = pd.DataFrame({"message": ["the cat sat", "", "dogs bark", None, "   ", "I like soup",
                                   "stocks fell", "rain today"],
                       "mood": list("abababab"), "stars": [1, 2, 3, 4, 5, 1, 2, 3]})
    at.file_uploader(key="upload_file").upload("notes.csv", df.to_csv(index=False).encode(),
                                               "text/csv")
    at.run()
    assert at.selectbox(key="upload_text").options == ["(none)", "message", "mood"]
    at.selectbox(key="upload_text").set_value("message").run()
    at.button(key="upload_add").click().run()
    assert not at.exception and not at.error
    assert "Stored **notes**: 8 rows with texts in 'message'" in at.success[0].value
    assert at.warning[0].value.startswith("3 of 8 cells of 'message' have no text to embed: "
                                          "1 empty, 2 missing")

    at.switch_page("views/text.py")
    at.run()
    assert not at.exception and "5 of 8 cells of 'message' hold text." in captions(at)
    assert any("3 rows have no text in 'message'" in w.value for w in at.warning)
    at = _embed(at)
    assert not at.exception and not at.error
    m = _metrics(at)
    assert m["Texts embedded"] == "5" and m["Left out (no text)"] == "3"
    flagged = at.dataframe[1].value  # [0] is the preview of the table
    assert flagged["source_row"].tolist() == [1, 3, 4]
    assert flagged["status"].tolist() == ["missing", "missing", "empty"]


def test_bad_text_input_is_an_error_message(app):
    at = app
    at.switch_page("views/upload.py")
    at.run()
    at.file_uploader(key="upload_file").upload(
        "blank.csv", b'title,id\n" ",1\n"  ",1\n', "text/csv")
    at.run()
    at.selectbox(key="upload_text").set_value("title").run()
    at.button(key="upload_add").click().run()
    assert not at.exception
    assert "column 'title' of 'blank.csv' holds no text to embed (2 empty" in at.error[0].value
    at.file_uploader(key="upload_file").upload("dup.csv", b"title,id\nhello,1\nbye,1\n", "text/csv")
    at.run()
    at.selectbox(key="upload_text").set_value("title")
    at.selectbox(key="upload_id").set_value("id").run()
    at.button(key="upload_add").click().run()
    assert not at.exception
    assert "the id column 'id' has 1 duplicate value(s)" in at.error[0].value
