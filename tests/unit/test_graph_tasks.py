"""Graph job kinds on Zachary's karate club: the derived embedding dataset, the layout with
communities, and the diagnostics (in range, and better than a random embedding)."""

import numpy as np
import pandas as pd
import pytest

from backend.client import LocalBackend
from backend.errors import InvalidInputError, InvalidParameterError
from backend.jobs import JobSpec
from backend.tasks.graph import stored_graph


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = LocalBackend(tmp_path_factory.mktemp("graph-home"), max_workers=1)
    yield b
    b.runner.shutdown()


@pytest.fixture(scope="module")
def karate(backend):
    info, notes = backend.add_bundled_graph("karate_club")
    return info


def _run(b, kind, dataset_id, params):
    job = b.submit(JobSpec(kind, dataset_id, params))
    st = b.wait(job, timeout=120)
    assert st.state == "done", st.error
    return st.artifact_id


def test_bundled_graph_is_stored_with_its_edges(backend, karate):
    assert karate.kind == "graph" and karate.n_rows == 34 and karate.n_dims == 0
    assert karate.extra["label_column"] == "club" and karate.extra["n_edges"] == 78
    again, _ = backend.add_bundled_graph("karate_club")
    assert again.id == karate.id
    edges = backend.graph_edges(karate.id)
    assert len(edges) == 78 and (edges["source"] <= edges["target"]).all()
    g = stored_graph(backend.store, karate)
    import networkx as nx

    ref = nx.karate_club_graph()
    assert g.n_edges == ref.number_of_edges()
    assert np.array_equal(g.degrees(), np.array([ref.degree(i) for i in range(34)]))
    assert np.allclose(g.adjacency.toarray(), nx.to_numpy_array(ref, nodelist=range(34)))
    table = backend.table(karate.id)
    assert table["degree"].tolist() == [ref.degree(i) for i in range(34)]


def test_fastrp_embedding_is_a_derived_vectors_dataset(backend, karate):
    art = _run(backend, "graph_embed", karate.id, {"method": "fastrp", "n_components": 16})
    meta = backend.result(art).to_dict()
    derived = backend.dataset(meta["derived_dataset"])
    assert derived.kind == "vectors" and (derived.n_rows, derived.n_dims) == (34, 16)
    assert derived.extra["derived_from"] == karate.id == derived.extra["graph_dataset"]
    assert derived.extra["label_column"] == "club" and "club" in derived.columns
    X = backend.rows(derived.id, list(range(34)))
    assert np.isfinite(X).all() and np.allclose(X.mean(axis=0), 0, atol=1e-5)  # standardised
    # a projection job runs on it unchanged
    proj = _run(backend, "pca", derived.id, {"n_components": 2})
    assert backend.artifact_table(proj, "projection.parquet").shape == (34, 3)


def test_eigenmaps_embedding_and_bounds(backend, karate):
    art = _run(backend, "graph_embed", karate.id, {"method": "eigenmaps", "n_components": 4})
    meta = backend.result(art).to_dict()
    ev = meta["embedding_report"]["eigenvalues"]
    assert len(ev) == 4 and all(0 < v < 2 for v in ev) and ev == sorted(ev)
    assert backend.dataset(meta["derived_dataset"]).n_dims == 4
    with pytest.raises(InvalidParameterError, match="n_components must be at most 33"):
        backend.submit(JobSpec("graph_embed", karate.id, {"method": "eigenmaps",
                                                          "n_components": 34}))
    with pytest.raises(InvalidParameterError, match="iteration_weights"):
        backend.submit(JobSpec("graph_embed", karate.id, {"iteration_weights": [0, 0]}))
    with pytest.raises(InvalidParameterError, match="kind"):  # a graph job on a vectors dataset
        backend.submit(JobSpec("graph_embed", meta["derived_dataset"], {}))


def test_eigenmaps_of_a_graph_with_many_components_say_how_they_were_placed(backend):
    """Issue 17 item 20: nodes outside the largest component get non-zero vectors (each
    component embedded in the same columns) and the report states the counts."""
    edges = ("source,target\n" + "".join(f"a{i},a{i + 1}\n" for i in range(9))
             + "b0,b1\nb1,b2\nb2,b3\nc0,c1\n")
    nodes = "id\n" + "".join(f"a{i}\n" for i in range(10)) + "b0\nb1\nb2\nb3\nc0\nc1\nlone\n"
    info, _ = backend.add_graph(edges.encode(), "parts.csv", nodes=nodes.encode(),
                                nodes_filename="nodes.csv")
    art = _run(backend, "graph_embed", info.id, {"method": "eigenmaps", "n_components": 3})
    res = backend.result(art)
    report = res.embedding_report
    assert report["n_connected_components"] == 4 and report["n_outside_largest"] == 7
    assert report["n_zero_rows"] == 1 and report["components"] == "separate"
    assert "7 nodes outside the largest are embedded per component" in report["note"]
    assert "1 isolated node(s) sit at 0" in report["note"]
    X = backend.rows(res.derived_dataset, list(range(info.n_rows)))
    assert int((~X.any(axis=1)).sum()) == 1  # only the isolated node


def test_layout_and_communities(backend, karate):
    art = _run(backend, "graph_layout", karate.id, {})
    lay = backend.artifact_table(art, "layout.parquet")
    assert list(lay.columns) == ["_row", "x", "y", "community", "degree"] and len(lay) == 34
    assert np.abs(lay[["x", "y"]].to_numpy()).max() <= 1.0 + 1e-6
    meta = backend.result(art).to_dict()
    assert 2 <= meta["n_communities"] <= 6 and meta["modularity"] > 0.35  # Louvain ~0.42-0.44
    # communities agree with the two factions far better than chance
    club = backend.table(karate.id)["club"].to_numpy()
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(club, lay["community"]) > 0.2


def test_diagnostics_beat_a_random_embedding(backend, karate):
    art = _run(backend, "graph_embed", karate.id, {"method": "fastrp", "n_components": 32,
                                                   "iteration_weights": [1.0, 1.0, 1.0]})
    emb = backend.result(art).derived_dataset
    diag = _run(backend, "graph_diagnostics", karate.id,
                {"embedding": emb, "attribute": "degree", "n_repeats": 3})
    d = backend.artifact_json(diag, "graph_diagnostics.json")
    rec = pd.DataFrame(d["reconstruction"]["table"]).set_index("hop")
    rnd = pd.DataFrame(d["reconstruction_random"]["table"]).set_index("hop")
    assert list(rec.index) == [1, 2, 3]
    assert ((rec["map"] > 0) & (rec["map"] <= 1)).all()
    assert rec.loc[1, "map"] > rnd.loc[1, "map"] + 0.1  # the embedding keeps the edges
    # a random ranking's AP is about the share of true neighbours (1-hop: 4.6 of 33 = 0.14)
    assert 0.08 < rnd.loc[1, "map"] < 0.35
    probe = pd.DataFrame(d["probe"]["table"])
    assert d["probe_label"] == "club" and list(probe["train_fraction"]) == [0.1, 0.5, 0.9]
    assert (probe["micro_f1"] > 0.75).all()  # two factions, nearly separable
    ev = backend.artifact_array(diag, "spectrum.npy")
    assert len(ev) == 34 and abs(ev[0]) < 1e-9 and ev[1] > 1e-3 and ev[-1] <= 2 + 1e-9
    assert d["spectrum"]["n_connected_components"] == 1
    assert d["rayleigh_attribute"] == "degree" and d["rayleigh"]["value"] > 0
    with pytest.raises(InvalidParameterError, match="embedding"):
        backend.submit(JobSpec("graph_diagnostics", karate.id, {}))


def test_uploaded_graph_findings_and_bad_weights(backend):
    edges = b"source,target,weight\na,b,1\nb,c,2\nc,c,1\na,b,1\n"
    nodes = b"id,group\na,x\nb,y\nc,x\nd,y\n"
    info, notes = backend.add_graph(edges, "tiny.csv", nodes=nodes, nodes_filename="n.csv")
    assert info.kind == "graph" and info.n_rows == 4
    text = " ".join(notes)
    assert "join a node to itself" in text and "repeat 1 node pair" in text
    assert "appear in no edge (e.g. d)" in text
    assert info.extra["graph_report"]["n_nodes"] == 4
    kinds = {f["kind"] for f in info.extra["graph_report"]["findings"]}
    assert {"self_loops", "duplicate_edges", "isolated_nodes"} <= kinds
    with pytest.raises(InvalidInputError, match="weight"):
        backend.add_graph(b"source,target,weight\na,b,x\nb,c,2\n", "bad.csv")
    n_before = len(backend.datasets())
    with pytest.raises(InvalidInputError):
        backend.add_graph(b"", "empty.csv")
    assert len(backend.datasets()) == n_before
    # tab-separated integer ids, directed
    info, _ = backend.add_graph(b"source\ttarget\n1\t2\n2\t3\n3\t1\n", "cycle.tsv", directed=True)
    assert info.extra["directed"] and info.n_rows == 3
    assert len(backend.graph_edges(info.id)) == 3


def test_eigenmaps_bound_is_the_largest_component_minus_one(backend):
    """A 6-node path and a 3-node triangle: each component is embedded on its own, so d is
    at most 6 - 1 = 5 (the former bound, n - components = 7, let d = 6 reach the job and fail
    there); d = 5 runs, and the triangle's nodes are not all-zero."""
    edges = b"source,target\n" + b"".join(f"p{i},p{i + 1}\n".encode() for i in range(5)) \
        + b"t0,t1\nt1,t2\nt2,t0\n"
    info, _ = backend.add_graph(edges, "two.csv", name="two parts")
    assert info.extra["graph_report"]["largest_component"] == 6
    with pytest.raises(InvalidParameterError,
                       match=r"at most 5 .*largest connected component has 6 of 9 nodes\); got 6"):
        backend.submit(JobSpec("graph_embed", info.id, {"method": "eigenmaps", "n_components": 6}))
    art = _run(backend, "graph_embed", info.id, {"method": "eigenmaps", "n_components": 5})
    X = backend.rows(backend.result(art).derived_dataset, list(range(9)))
    assert X.shape == (9, 5) and (np.abs(X).sum(axis=1) > 0).all()


def test_an_overflowing_fastrp_embedding_fails_and_stores_nothing(backend, karate):
    """Weights at the edge of float64 (a new user's bad input) overflow float32: the job fails
    with a message that says what to change, and no dataset of NaN/inf rows is stored."""
    before = {d.id for d in backend.datasets()}
    job = backend.submit(JobSpec("graph_embed", karate.id, {
        "method": "fastrp", "n_components": 8, "iteration_weights": "-1e308, 1e308",
        "random_state": 3}))
    st = backend.wait(job, timeout=120)
    assert st.state == "failed"
    assert "overflowed: 34 of 34 nodes" in st.error and "smaller iteration_weights" in st.error
    assert {d.id for d in backend.datasets()} == before
