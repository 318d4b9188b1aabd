"""Graph page with AppTest: karate club → FastRP → the graph drawn with its edges and the
diagnostics beside it; a bad edge list gives a message, not a traceback."""

from tests.app.conftest import captions, map_data, run_until


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
    # the graph is the WebGL map with its edge layer: point index pairs, no plotly graph
    data = map_data(at, "graph-", tables=True)
    assert data["categories"] == ["Mr. Hi", "Officer"]  # coloured by the label column `club`
    assert data["coords"].num_rows == 34 and data["edges"].num_rows == 78
    rows = data["coords"]["row"].to_numpy()
    pairs = {tuple(sorted((int(rows[s]), int(rows[t])))) for s, t in
             zip(data["edges"]["s"].to_numpy(), data["edges"]["t"].to_numpy())}
    assert (0, 1) in pairs and len(pairs) == 78  # the karate club's first edge, no duplicates
    assert all("Laplacian" in ch.proto.spec for ch in at.get("plotly_chart"))
    m = {x.label: float(x.value) for x in at.metric if x.label.startswith("mAP")}
    assert set(m) == {"mAP, 1 hop", "mAP, 2 hops", "mAP, 3 hops"}
    assert all(0 < v <= 1 for v in m.values())
    probe = _table_with(at, "micro_f1")
    assert list(probe["train_fraction"]) == [0.1, 0.5, 0.9] and (probe["micro_f1"] > 0.6).all()

    # pick a node: it and its neighbours are highlighted and listed
    gid = at.session_state["graph_id"]
    at.selectbox(key="graph_pick-" + at.session_state["graph_id"]).set_value(0).run()
    assert not at.exception
    nb = _table_with(at, "community")
    assert len(nb) == 16  # node 0 of the karate club has 16 neighbours
    assert any("**1 selected**" in m.value and "**16 neighbours**" in m.value for m in at.markdown)
    ringed = map_data(at, "graph-")
    assert ringed["highlight"] == [0]  # ringed black, its edges drawn dark
    assert ringed["context"] == nb["_row"].tolist()  # its neighbours ringed orange

    # the pointer rests on node 33: the browser asks for its hover columns (the `hover` trigger)
    view_key = map_data(at, "graph-")["view_key"]
    at.session_state[f"{view_key}:hovered"] = 33
    at.run()
    data = map_data(at, "graph-")
    assert data["hover"] == {"row": 33, "text": "id: 33 · club: Officer · degree: 17"}
    assert data["hover_key"] == "hover:" + "\x1f".join(at.multiselect(key="graph_hover-" + gid).value)


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
