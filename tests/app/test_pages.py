"""Page logic with AppTest: every page renders on the default dataset; an upload reaches a map."""

import io

import numpy as np
import pandas as pd

from tests.app.conftest import captions, run_until


def _map_drawn(at):
    return "points drawn" in captions(at) or at.exception or at.error


def test_map_page_shows_digits_umap(app):
    at = run_until(app, _map_drawn)
    assert not at.exception and not at.error
    assert "1,797 of 1,797 points drawn" in captions(at)
    assert "UMAP" in captions(at)
    assert at.selectbox(key="color-" + at.session_state["dataset_id"]).value == "digit"
    # nearest neighbours of row 0 in pixel space: all of them are zeros too
    table = at.dataframe[0].value
    assert len(table) == 10 and (table["digit"] == "0").mean() >= 0.9
    assert table["distance"].is_monotonic_increasing
    # a 2-D map is the WebGL map (components/map), the plotly figure only behind the setting
    assert len(at.get("bidi_component")) == 1
    assert not [p for p in at.get("plotly_chart") if str(p.key).startswith("map-")]  # charts: filters
    assert at.number_input(key="draw_budget").value == 2_000_000


def test_pca_3d_from_the_form(app):
    at = run_until(app, _map_drawn)
    at.selectbox(key="proj_method").set_value("pca").run()
    at.slider(key="proj-pca-n_components").set_value(3)
    at.sidebar.button[0].click()
    at = run_until(at, lambda a: "PCA · 1,797" in captions(a) or a.exception)
    assert not at.exception
    assert "3-D maps rotate" in captions(at)


def test_upload_reaches_a_map(app):
    at = app
    at.switch_page("views/upload.py")
    at.run()
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 5)), columns=list("abcde")).assign(
        group=rng.choice(["u", "v"], 60))
    at.file_uploader(key="upload_file").upload("points.csv", df.to_csv(index=False).encode(), "text/csv")
    at.run()
    assert not at.exception and not at.error
    assert at.multiselect(key="upload_cols").value == list("abcde")
    at.button(key="upload_add").click()
    at.run()
    assert not at.exception and not at.error
    assert "Stored **points**: 60 rows × 5 dimensions" in at.success[0].value
    at.switch_page("views/map.py")
    at = run_until(at, _map_drawn)
    assert not at.error and "60 of 60 points drawn" in captions(at)


def test_bad_upload_shows_an_error_not_a_traceback(app):
    at = app
    at.switch_page("views/upload.py")
    at.run()
    at.file_uploader(key="upload_file").upload("names.csv", b"name,city\na,b\nc,d\n", "text/csv")
    at.run()
    at.button(key="upload_add").click()
    at.run()
    assert not at.exception
    assert "no numeric column" in at.error[0].value


def test_datasets_page_lists_bundled(app):
    at = app
    at.switch_page("views/datasets.py")
    at.run()
    assert not at.exception
    at.selectbox(key="bundled_key").set_value("airports")
    at.button(key="bundled_add").click()
    at.run()
    names = at.dataframe[0].value["name"].tolist()
    assert any("airports" in n for n in names) and any("digits" in n.lower() for n in names)


def test_heat_geodesic_map_reports_t(app):
    at = run_until(app, _map_drawn)
    at.selectbox(key="proj_method").set_value("heat_geodesic").run()
    assert at.slider(key="proj-heat_geodesic-n_neighbors").value == 10
    at.sidebar.button[0].click()
    at = run_until(at, lambda a: "Heat geodesic ·" in captions(a) or a.exception or a.error)
    assert not at.exception and not at.error
    text = captions(at)
    assert "chosen from the graph" in text and "of distances saturated" in text


def test_faithfulness_panel_and_per_point_colour(app):
    at = run_until(app, lambda a: any("Trustworthiness" in m.label for m in a.metric)
                   or a.exception or a.error)
    assert not at.exception and not at.error
    m = {x.label: float(x.value) for x in at.metric if "(k=10)" in x.label}
    assert m["Trustworthiness (k=10)"] > 0.97 and m["Continuity (k=10)"] > 0.9
    assert 0 < m["kNN recall (k=10)"] <= 1
    key = "color-" + at.session_state["dataset_id"]
    at.selectbox(key=key).set_value("per-point trustworthiness").run()
    assert not at.exception


# -- the Upload page: issue 17 (items 1, 10, 11, 13, 15, 16, 24) and parsing once --------------


def _upload(app, name: str, data: bytes):
    at = app
    at.switch_page("views/upload.py")
    at.run()
    at.file_uploader(key="upload_file").upload(name, data, "application/octet-stream")
    at.run()
    return at


def _points(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"row": np.arange(n), "label": rng.integers(0, 4, n),
                         "x": rng.normal(size=n), "y": rng.normal(size=n)})


def test_upload_id_column_among_the_vector_columns_is_no_traceback(app):
    """Item 1: id 'row' while the vector box still holds row, x, y; item 13: defaults."""
    at = _upload(app, "rows.csv", _points().to_csv(index=False).encode())
    assert not at.exception and not at.error
    assert at.multiselect(key="upload_cols").value == ["x", "y"]  # row and label are metadata
    assert "Kept as metadata, not vectors: 'row' (" in captions(at) and "'label' (" in captions(at)
    at.multiselect(key="upload_cols").set_value(["row", "x", "y"]).run()
    at.selectbox(key="upload_id").set_value("row").run()
    assert at.multiselect(key="upload_cols").value == ["x", "y"]  # the page takes the id out
    at.multiselect(key="upload_cols").set_value(["row", "x", "y"]).run()
    at.button(key="upload_add").click()
    at.run()
    assert not at.exception and not at.error
    success = at.success[0].value
    assert "Stored **rows**: 40 rows × 2 dimensions." in success
    assert at.session_state["dataset_id"] not in success  # item 24: names, not ids
    assert any("'row' was also chosen as a vector column" in i.value for i in at.info)


def test_upload_reading_choices_headerless_and_decimal_comma(app):
    """Items 10 and 11: detected separator, decimal mark, header; the user can change them."""
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(30, 3))
    text = "\n".join(";".join(f"{v:.4f}".replace(".", ",") for v in row) for row in arr) + "\n"
    at = _upload(app, "eu.txt", text.encode("utf-8"))
    assert not at.exception and not at.error
    assert at.selectbox(key="upload_sep").value == ";"
    assert at.selectbox(key="upload_decimal").value == ","
    assert at.checkbox(key="upload_first_row_data").value is True
    assert "Read as semicolon-separated, decimal comma, UTF-8, no header" in captions(at)
    assert "30 rows" in at.markdown[-1].value or any("30 rows" in m.value for m in at.markdown)
    at.checkbox(key="upload_first_row_data").uncheck().run()
    assert any("29 rows" in m.value for m in at.markdown)
    at.checkbox(key="upload_first_row_data").check().run()
    at.button(key="upload_add").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "30 rows × 3 dimensions" in at.success[0].value


def test_upload_h5ad_embedding_and_refused_format_message(app, tmp_path):
    """Item 16: .h5ad accepted (obsm/X_pca chosen); a refused format's message is shown."""
    from tests.h5ad_support import h5ad_bytes

    data, _, _ = h5ad_bytes(tmp_path / "pbmc.h5ad")
    at = _upload(app, "pbmc.h5ad", data)
    assert not at.exception and not at.error
    assert at.selectbox(key="upload_array").options == ["X", "obsm/X_pca"]
    assert at.selectbox(key="upload_id").value == "obs_names"
    at.selectbox(key="upload_array").set_value("obsm/X_pca").run()
    at.number_input(key="upload_k").set_value(5).run()
    at.button(key="upload_add").click()
    at.run()
    assert not at.exception and not at.error
    assert "Stored **pbmc**: 30 rows × 3 dimensions." in at.success[0].value
    # no extension filter in the browser (it would only show a red icon): the page says why
    assert list(at.file_uploader(key="upload_file").proto.type) == []
    at.file_uploader(key="upload_file").upload("table.xlsx", b"PK\x03\x04", "application/zip")
    at.run()
    assert not at.exception
    assert "unsupported file type .xlsx" in at.error[0].value


def test_upload_swapped_coordinates_can_be_swapped(app):
    """Item 15: the page proposes the coordinate columns, flags swapped values, swaps them."""
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"lat": rng.uniform(100, 150, 30), "lon": rng.uniform(-40, 40, 30),
                       "v": rng.normal(size=30), "w": rng.normal(size=30)})
    at = _upload(app, "stations.csv", df.to_csv(index=False).encode())
    assert (at.selectbox(key="upload_lat").value, at.selectbox(key="upload_lon").value) == (
        "lat", "lon")
    assert any("look swapped" in w.value for w in at.warning)
    at.button(key="upload_swap").click().run()
    assert (at.selectbox(key="upload_lat").value, at.selectbox(key="upload_lon").value) == (
        "lon", "lat")
    at.button(key="upload_add").click()
    at.run()
    assert not at.exception and not at.error
    assert any("'lon' and 'lat' (as chosen)" in i.value for i in at.info)
    assert not any("pass " in m.value.lower() for m in [*at.info, *at.warning, *at.error])


def test_upload_is_parsed_once(app, monkeypatch):
    """Issue 12 item 4: reruns reuse the inspection, keyed by the content and reading options."""
    import streamlit as st

    import backend.kinds as kinds

    calls = []
    real = kinds.inspect_upload

    def counting(data, filename, **kw):
        calls.append(kw)
        return real(data, filename, **kw)

    monkeypatch.setattr(kinds, "inspect_upload", counting)
    st.cache_data.clear()
    at = _upload(app, "rows.csv", _points().to_csv(index=False).encode())
    at.text_input(key="upload_name").set_value("renamed").run()
    at.checkbox(key="upload_dropna").check().run()
    at.selectbox(key="upload_id").set_value("row").run()
    assert not at.exception and len(calls) == 1
    at.selectbox(key="upload_sep").set_value(";").run()
    at.selectbox(key="upload_sep").set_value(",").run()
    assert len(calls) == 2  # the new separator once; back to the detected one from the cache


def test_edge_list_endpoint_columns_are_chosen_on_the_graph_page(app):
    """Item 15: src/dst recognised; unknown endpoint names are chosen with selectboxes."""
    at = app
    at.switch_page("views/graph.py")
    at.run()
    at.file_uploader(key="graph_edges_file").upload(
        "flows.csv", b"origin,destination,weight\nC#,F#,2\nF#,G,1\nG,C#,1\n", "text/csv")
    at.run()
    assert not at.exception and not at.error
    assert (at.selectbox(key="graph_source_col").value,
            at.selectbox(key="graph_target_col").value) == ("origin", "destination")
    assert any("choose them among origin, destination, weight" in i.value for i in at.info)
    at.button(key="graph_upload_add").click()
    at.run()
    assert not at.exception and not at.error
    assert any("Stored **flows**: 3 nodes, 3 edges." in s.value for s in at.success)
    at.file_uploader(key="graph_edges_file").upload(
        "snap.csv", b"SRC,DST\n1,2\n2,3\n", "text/csv")
    at.run()
    assert at.selectbox(key="graph_source_col").value == "SRC"
    assert at.selectbox(key="graph_target_col").value == "DST"
    at.file_uploader(key="graph_edges_file").upload("graph.xlsx", b"PK\x03\x04", "application/zip")
    at.run()
    assert not at.exception and "unsupported file type .xlsx" in at.error[0].value


def test_neighbours_tab_says_a_zero_vector_has_no_cosine_distances(app):
    """Issue 17 item 21: row 0 is the zero vector; under the cosine metric the Map page's
    neighbours tab says its distances are undefined instead of listing them at 1.0."""
    at = app
    at.switch_page("views/upload.py")
    at.run()
    t = np.linspace(0.5, 3.0, 29)
    df = pd.DataFrame({"a": np.r_[0.0, np.cos(t)], "b": np.r_[0.0, np.sin(t)],
                       "c": np.r_[0.0, t / 3]})
    at.file_uploader(key="upload_file").upload("zero.csv", df.to_csv(index=False).encode(),
                                               "text/csv")
    at.run()
    at.button(key="upload_add").click()
    at.run()
    assert not at.exception and not at.error
    at.switch_page("views/map.py")
    at.run()
    at.selectbox(key="proj_method").set_value("heat_geodesic").run()
    at.selectbox(key="proj-heat_geodesic-metric").set_value("cosine")
    at.slider(key="proj-heat_geodesic-n_neighbors").set_value(5)
    at.sidebar.button[0].click()
    at = run_until(at, lambda a: "Heat geodesic ·" in captions(a) or a.exception or a.error)
    assert not at.exception, [e.stack_trace for e in at.exception]
    # the faithfulness scores are refused for the same reason, and say so
    assert all("all-zero rows" in e.value for e in at.error), [e.value for e in at.error]
    assert at.number_input(key="nb_row").value == 0
    assert any("row 0 is the zero vector, so its cosine distances are undefined" in w.value
               for w in at.warning), [w.value for w in at.warning]
    at.number_input(key="nb_row").set_value(1).run()  # another row: its neighbours, not row 0
    table = next(d.value for d in at.dataframe if "distance" in d.value.columns)
    assert 0 not in table["_row"].tolist() and table["distance"].is_monotonic_increasing


def test_small_file_with_an_id_column_uploads_and_its_neighbours_are_asked_by_id(app):
    """Issue 17 item 24 (and item 17's 3–15-row files): a 12-row file passes with the page's
    default n_neighbors; the Map page asks for neighbours by the id column and its tables
    show that column first with the internal ``_row`` hidden."""
    rng = np.random.default_rng(3)
    names = [f"item-{c}" for c in "abcdefghijkl"]
    df = pd.DataFrame({"name": names, "u": rng.normal(size=12), "v": rng.normal(size=12),
                       "w": rng.normal(size=12)})
    at = _upload(app, "small.csv", df.to_csv(index=False).encode())
    at.selectbox(key="upload_id").set_value("name").run()
    assert at.number_input(key="upload_k").value == 11
    at.button(key="upload_add").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Stored **small**: 12 rows × 3 dimensions." in at.success[0].value
    at.switch_page("views/map.py")
    at = run_until(at, _map_drawn)
    assert not at.exception and "12 of 12 points drawn" in captions(at)
    assert at.text_input(key="nb_id").value == "item-a"
    at.text_input(key="nb_id").set_value("item-c").run()
    table = next(d for d in at.dataframe if "distance" in d.value.columns)
    assert 2 not in table.value["_row"].tolist() and len(table.value) == 10
    assert list(table.proto.column_order)[0] == "name" and "_row" not in table.proto.column_order
    X = df[["u", "v", "w"]].to_numpy()
    nearest = np.argsort(np.linalg.norm(X - X[2], axis=1))[1]
    assert table.value["_row"].iloc[0] == nearest
    at.text_input(key="nb_id").set_value("nope").run()
    assert any("No row has name = 'nope'" in w.value for w in at.warning)


def test_the_chosen_dataset_survives_page_switches_and_leaves_no_stale_view(app, home):
    """Each page's dataset picker is a widget of its own: the choice made on the Map page is
    the one the Datasets page and the Map page show after switching, and the previous
    dataset's projection leaves the URL instead of being reported as a broken link."""
    from backend.client import LocalBackend

    b = LocalBackend(home)
    digits, wine = b.add_bundled("digits").id, b.add_bundled("wine").id
    b.runner.shutdown()
    at = run_until(app, _map_drawn)
    assert at.query_params["dataset"] == digits and "proj" in at.query_params
    at.selectbox(key="dataset_id").set_value(wine)
    at = run_until(at, _map_drawn)
    assert not at.exception and "Wine" in at.caption[0].value
    assert at.query_params["dataset"] == wine and "proj" in at.query_params
    assert not [w.value for w in at.warning if "no longer exists" in w.value]
    for page in ("views/datasets.py", "views/map.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert at.selectbox(key="dataset_id").value == wine, page
    assert "Wine" in at.caption[0].value
