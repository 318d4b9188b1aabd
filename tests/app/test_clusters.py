"""The Map page's clusters, linked charts and shareable URL, with AppTest."""

from tests.app.conftest import captions, map_data, run_until


def _map_drawn(at):
    return "points drawn" in captions(at) or at.exception or at.error


def _markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_clusters_tab_names_and_url(app):
    at = run_until(app, _map_drawn)
    assert not at.exception
    ds = at.session_state["dataset_id"]
    # the digit chart of the Filters area counts every row
    assert "Charts of" in [m.label for m in at.multiselect]
    next(b for b in at.button if b.label == "Compute clusters").click()
    at = run_until(at, lambda a: "Unclustered:" in _markdown(a) or a.exception or a.error)
    assert not at.exception and not at.error
    text = _markdown(at)
    assert "clusters** (hdbscan on the map coordinates)" in text
    assert "names: most frequent values of 'digit'" in text
    # the view is in the URL: dataset, map, clustering and its level
    assert len(at.query_params["clu"]) == 16 and at.query_params["level"].isdigit()
    assert at.query_params["dataset"] == ds and len(at.query_params["proj"]) == 16
    assert "cluster" in at.selectbox(key=f"color-{ds}").options


def test_stale_link_shows_a_message(app):
    at = app
    at.query_params["clu"] = "0123456789abcdef"
    at.query_params["filters"] = "[{broken"
    at = run_until(at, _map_drawn)
    assert not at.exception
    warnings = "\n".join(w.value for w in at.warning)
    assert "filters could not be read" in warnings
    assert "clustering 0123456789abcdef no longer exists for this dataset" in warnings


def test_cluster_colours_names_and_density_stay_on_the_webgl_map(app):
    at = run_until(app, _map_drawn)
    ds = at.session_state["dataset_id"]
    next(b for b in at.button if b.label == "Compute clusters").click()
    at = run_until(at, lambda a: "Unclustered:" in _markdown(a) or a.exception or a.error)
    n_charts = len(at.get("plotly_chart"))  # the Filters area's charts only
    at.selectbox(key=f"color-{ds}").set_value("cluster")
    at.checkbox(key=f"density-{ds}").check()
    at = at.run()
    assert not at.exception and not at.error
    assert at.checkbox(key=f"names-{ds}").value  # names on by default once clusters exist
    assert len(at.get("plotly_chart")) == n_charts  # no plotly map: the layers are WebGL
    assert "plotly map" not in captions(at)
    assert "1,797 of 1,797 points drawn" in captions(at)
    data = map_data(at, "webmap-")
    # the names of the Clusters tab, written at the centres on the map, largest first
    labels = data["labels"]
    assert labels and [n for _, _, _, n in labels] == sorted((n for _, _, _, n in labels), reverse=True)
    assert data["color_label"] == "cluster" and {lab[2] for lab in labels} <= set(data["categories"])
    assert data["density"].num_rows == 256 * 256 and data["density_shape"] == [256, 256]
    assert "coords" not in data  # the coordinates went once, with the first map: layers move none
    assert map_data(at, "webmap-", tables=True)["coords"].num_rows == 1797

    at.checkbox(key=f"names-{ds}").uncheck()
    at.checkbox(key=f"density-{ds}").uncheck()
    at = at.run()
    data = map_data(at, "webmap-")
    assert data["labels"] == [] and data["density_id"] is None and "density" not in data

    # the pointer rests on row 5: its hover columns go to the map (the tooltip adds them)
    at.session_state[f"{data['view_key']}:hovered"] = 5
    at = at.run()
    assert at.multiselect(key=f"hover-{ds}").value == ["digit"]
    assert map_data(at, "webmap-")["hover"] == {"row": 5, "text": "digit: 5"}  # digits 0-9 first
    at.multiselect(key=f"hover-{ds}").set_value([])
    at = at.run()
    assert map_data(at, "webmap-")["hover_key"] is None  # no hover columns: nothing to ask for
