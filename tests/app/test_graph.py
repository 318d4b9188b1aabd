"""Graph page with AppTest: karate club → FastRP → the graph drawn with its edges and the
diagnostics beside it; a bad edge list gives a message, not a traceback."""

import base64
import json

import numpy as np

from tests.app.conftest import captions, run_until


def _figure(at, index=0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def _arr(v) -> np.ndarray:
    """A plotly array (a list, or a typed array {"dtype", "bdata"} in base64)."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def _table_with(at, column: str):
    tables = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(tables) == 1, [list(d.value.columns) for d in at.dataframe]
    return tables[0]


def test_karate_club_embedding_graph_and_diagnostics(app):
    at = app
    at.switch_page("views/graph.py")
    at.run()
    assert not at.exception
    assert any("No graph yet" in i.value for i in at.info)
    at.button(key="graph_add_karate_club").click()
    at = run_until(at, lambda a: any(m.label.startswith("mAP, 1 hop") for m in a.metric)
                   or a.exception or a.error)
    assert not at.exception and not at.error
    assert "34 nodes and 78 of 78 edges drawn" in captions(at)
    fig = _figure(at)
    edges = fig["data"][0]
    assert edges["mode"] == "lines" and len(_arr(edges["x"])) == 3 * 78  # segments + separators
    names = [t.get("name") for t in fig["data"][1:]]
    assert names == ["Mr. Hi", "Officer"]  # coloured by the label column `club`
    assert sum(len(_arr(t["x"])) for t in fig["data"][1:]) == 34
    m = {x.label: float(x.value) for x in at.metric if x.label.startswith("mAP")}
    assert set(m) == {"mAP, 1 hop", "mAP, 2 hops", "mAP, 3 hops"}
    assert all(0 < v <= 1 for v in m.values())
    probe = _table_with(at, "micro_f1")
    assert list(probe["train_fraction"]) == [0.1, 0.5, 0.9] and (probe["micro_f1"] > 0.6).all()

    # pick a node: it and its neighbours are highlighted and listed
    at.selectbox(key="graph_pick-" + at.session_state["graph_id"]).set_value(0).run()
    assert not at.exception
    nb = _table_with(at, "community")
    assert len(nb) == 16  # node 0 of the karate club has 16 neighbours
    names = [t.get("name") for t in _figure(at)["data"]]
    assert "neighbours (16)" in names and "selected (1)" in names


def test_bad_edge_list_is_a_message(app):
    at = app
    at.switch_page("views/graph.py")
    at.run()
    at.file_uploader(key="graph_edges_file").upload(
        "bad.csv", b"source,target,weight\na,b,heavy\nb,c,2\n", "text/csv")
    at.run()
    at.button(key="graph_upload_add").click()
    at.run()
    assert not at.exception
    assert "not numbers" in at.error[0].value and "row 1" in at.error[0].value
