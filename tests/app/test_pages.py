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
