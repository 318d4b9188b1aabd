"""Graph loader: findings, hard errors, example graphs (backend/datasets/graph.py)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from backend.datasets.graph import (
    EXAMPLE_GRAPHS,
    GraphReport,
    as_adjacency,
    graph_from_frames,
    load_edge_list,
    load_example_graph,
    node_label_matrix,
)
from backend.errors import InvalidInputError, InvalidParameterError



def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_with_string_ids_builds_symmetric_adjacency(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target\nb,a\nb,c\n")
    g, report = load_edge_list(p)
    assert list(g.node_ids) == ["a", "b", "c"]
    assert g.node_ids.dtype == object
    np.testing.assert_array_equal(
        g.adjacency.toarray(), [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    )
    assert (g.n_nodes, g.n_edges, g.directed, g.name) == (3, 2, False, "e")
    assert report.findings == ()
    assert report.n_components == 1


def test_integer_ids_sorted_numerically_and_weights_read(tmp_path):
    p = _write(tmp_path, "e.tsv", "source\ttarget\tweight\n10\t2\t0.5\n2\t1\t3\n")
    g, report = load_edge_list(p)
    assert g.node_ids.dtype == np.int64
    assert list(g.node_ids) == [1, 2, 10]
    assert g.adjacency[2, 1] == 0.5 and g.adjacency[1, 2] == 0.5
    assert g.adjacency[0, 1] == 3.0
    assert report.weighted and g.weighted


def test_headerless_whitespace_file(tmp_path):
    p = _write(tmp_path, "e.txt", "# a SNAP-style comment\n0 1\n1 2\n2 0\n")
    g, _ = load_edge_list(p, header=False)
    assert g.n_nodes == 3 and g.n_edges == 3
    assert not g.weighted


def test_directed_keeps_orientation(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target\na,b\nb,c\n")
    g, _ = load_edge_list(p, directed=True)
    A = g.adjacency.toarray()
    np.testing.assert_array_equal(A, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(g.degrees("out"), [1, 1, 0])
    np.testing.assert_array_equal(g.degrees("in"), [0, 1, 1])
    np.testing.assert_array_equal(g.degrees("both"), [1, 2, 1])


def test_self_loops_counted_and_kept_on_diagonal(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target,weight\na,a,2\na,b,1\nc,c,1\n")
    g, report = load_edge_list(p)
    f = report.get("self_loops")
    assert f.count == 2 and f.action == "kept"
    assert g.adjacency[0, 0] == 2.0 and g.adjacency[2, 2] == 1.0
    assert g.n_edges == 3
    # c only has a self-loop, so it counts as isolated
    assert report.get("isolated_nodes").examples == ("c",)


@pytest.mark.parametrize(
    "policy, expected", [("sum", 6.0), ("max", 4.0), ("first", 2.0)]
)
def test_duplicate_policies(tmp_path, policy, expected):
    p = _write(tmp_path, "e.csv", "source,target,weight\na,b,2\nb,a,4\na,b,0\nb,c,1\n")
    g, report = load_edge_list(p, duplicates=policy)
    assert g.adjacency[0, 1] == expected == g.adjacency[1, 0]
    f = report.get("duplicate_edges")
    assert f.count == 2  # two extra rows for the pair a-b
    assert "listed in both directions" in f.message
    assert f"duplicates={policy!r}" in f.message


def test_duplicates_error_policy_names_the_pair(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target\na,b\na,b\n")
    msg = r"1 edge row\(s\) repeat 1 node pair.*a-b.*Remove the repeats, or let them be combined"
    with pytest.raises(InvalidInputError, match=msg):
        load_edge_list(p, duplicates="error")


def test_directed_reverse_edge_is_not_a_duplicate(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target\na,b\nb,a\n")
    g, report = load_edge_list(p, directed=True)
    assert report.get("duplicate_edges") is None
    assert g.n_edges == 2


def test_node_table_mismatches_are_reported(tmp_path):
    e = _write(tmp_path, "e.csv", "source,target\n1,2\n2,3\n")
    n = _write(tmp_path, "n.csv", "id,score,club\n1,0.5,x\n2,,y\n7,1.5,z\n")
    g, report = load_edge_list(e, nodes=n)
    # node-table order first, then edge-only ids
    assert list(g.node_ids) == [1, 2, 7, 3]
    assert report.get("ids_only_in_edges").examples == ("3",)
    assert report.get("ids_only_in_nodes").examples == ("7",)
    assert report.get("isolated_nodes").count == 1
    assert report.get("disconnected").count == 2
    assert g.nodes["score"].dtype == np.float64
    assert np.isnan(g.nodes.loc[1, "score"]) and np.isnan(g.nodes.loc[3, "score"])
    assert list(g.nodes["club"][:3]) == ["x", "y", "z"]


def test_negative_weights_kept_and_refused_by_embeddings(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target,weight\na,b,-1\nb,c,2\n")
    g, report = load_edge_list(p)
    assert report.get("negative_weights").count == 1
    assert g.adjacency[0, 1] == -1.0
    msg = r"FastRP needs non-negative edge weights, but 1 edge\(s\)"
    with pytest.raises(InvalidInputError, match=msg):
        as_adjacency(g, what="FastRP")
    S, directed = as_adjacency(g, nonnegative=False)
    assert S.nnz == 4 and not directed


def test_zero_weight_edges_left_out(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target,weight\na,b,0\nb,c,1\n")
    g, report = load_edge_list(p)
    assert report.get("zero_weights").count == 1
    assert g.adjacency[0, 1] == 0 and g.adjacency.nnz == 2
    assert report.get("isolated_nodes").examples == ("a",)


def test_non_numeric_weight_is_an_error_with_the_row(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target,weight\na,b,1\nb,c,heavy\n")
    with pytest.raises(InvalidInputError, match=r"row 2: 'heavy'.*leave the weight column out"):
        load_edge_list(p)


def test_missing_weight_is_an_error(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target,weight\na,b,1\nb,c,\n")
    with pytest.raises(InvalidInputError, match="1 edge weight"):
        load_edge_list(p)


def test_weight_none_ignores_the_column(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target,weight\na,b,x\n")
    g, report = load_edge_list(p, weight=None)
    assert g.adjacency[0, 1] == 1.0 and not report.weighted


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(InvalidInputError, match="edge list is empty"):
        load_edge_list(_write(tmp_path, "e.csv", ""))


def test_header_only_is_an_error(tmp_path):
    with pytest.raises(InvalidInputError, match="header line but no rows"):
        load_edge_list(_write(tmp_path, "e.csv", "source,target\n"))


def test_missing_columns_lists_what_is_there(tmp_path):
    p = _write(tmp_path, "e.csv", "left,right\na,b\n")
    msg = r"no endpoint columns with a known name .*\['left', 'right'\]. Choose its source and target"
    with pytest.raises(InvalidInputError, match=msg):
        load_edge_list(p)
    g, _ = load_edge_list(p, source="left", target="right")
    assert g.n_edges == 1
    with pytest.raises(InvalidInputError, match=r"no column 'up'.*Choose its source and target"):
        load_edge_list(p, source="up", target="right")


@pytest.mark.parametrize("names", [("src", "dst"), ("From", "To"), ("u", "v"), ("Source", "Target")])
def test_other_endpoint_names_are_recognised(tmp_path, names):
    """Issue 17 item 15: src/dst, from/to, u/v need no option."""
    p = _write(tmp_path, "e.csv", f"{names[0]},{names[1]},weight\na,b,2\nb,c,1\n")
    g, report = load_edge_list(p)
    assert (g.n_nodes, g.n_edges) == (3, 2) and report.weighted
    assert g.adjacency[0, 1] == 2.0


def test_hash_inside_an_id_is_not_a_comment(tmp_path):
    """Issue 17 item 12: only a line starting with '#' is a comment."""
    p = _write(tmp_path, "e.csv", "# exported 2024\nsource,target\nC#,F#\nF#,issue#12\n  # note\n")
    g, report = load_edge_list(p)
    assert sorted(g.node_ids) == ["C#", "F#", "issue#12"] and g.n_edges == 2
    p = _write(tmp_path, "e.tsv", "source\ttarget\n#1\t2\na#\tb\n")  # a row starting with '#'
    g, _ = load_edge_list(p)
    assert list(g.node_ids) == ["a#", "b"]


def test_edge_list_columns_for_the_form_and_refused_file_types():
    """Items 15 and 16: the form's column proposal; another file type is named, not parsed."""
    import io

    from backend.datasets.graph import edge_list_columns

    assert edge_list_columns(b"# c\nfrom,to,w\n1,2,3\n", "e.csv") == (["from", "to", "w"], "from", "to")
    assert edge_list_columns(b"a;b\n1;2\n", "e.csv") == (["a", "b"], None, None)
    assert edge_list_columns(b"1 2\n2 3\n", "e.txt") == ([], None, None)
    with pytest.raises(InvalidInputError, match=r"'g.xlsx': unsupported file type .xlsx.*CSV or TSV"):
        edge_list_columns(b"PK\x03\x04", "g.xlsx")
    buf = io.BytesIO(b"id\n1\n")
    buf.name = "nodes.parquet"
    with pytest.raises(InvalidInputError, match="unsupported file type .parquet; the node table"):
        load_edge_list(io.BytesIO(b"source,target\n1,2\n"), buf)


def test_headerless_numeric_edge_list_is_detected(tmp_path):
    p = _write(tmp_path, "e.txt", "# SNAP\n0\t1\n1\t2\n")
    g, _ = load_edge_list(p)
    assert list(g.node_ids) == [0, 1, 2] and g.n_edges == 2


def test_no_message_asks_for_a_keyword_argument(tmp_path):
    """Issue 17 items 15 and 24: messages name columns, never ``name=...`` arguments."""
    cases = [("e.csv", "a,b\n1,2\n", {}), ("w.csv", "source,target,weight\n1,2,x\n", {}),
             ("d.csv", "source,target\n1,2\n1,2\n", {"duplicates": "error"})]
    for name, text, kw in cases:
        with pytest.raises(InvalidInputError) as exc:
            load_edge_list(_write(tmp_path, name, text), **kw)
        assert "pass " not in str(exc.value).lower() and "=..." not in str(exc.value)


def test_empty_id_is_an_error(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target\na,b\n,c\n")
    with pytest.raises(InvalidInputError, match=r"empty 'source' id \(data rows 2\)"):
        load_edge_list(p)


def test_repeated_node_table_ids_point_to_label_matrix(tmp_path):
    e = _write(tmp_path, "e.csv", "source,target\n1,2\n")
    n = _write(tmp_path, "n.csv", "node,label\n1,a\n1,b\n2,a\n")
    with pytest.raises(InvalidInputError, match="node_label_matrix"):
        load_edge_list(e, nodes=n)


def test_node_table_without_id_column(tmp_path):
    e = _write(tmp_path, "e.csv", "source,target\n1,2\n")
    n = _write(tmp_path, "n.csv", "key,label\n1,a\n")
    with pytest.raises(InvalidInputError, match=r"\['key', 'label'\]. Name its id column"):
        load_edge_list(e, nodes=n)
    g, _ = load_edge_list(e, nodes=n, node_id="key")
    assert list(g.nodes.columns) == ["id", "label"]


def test_unknown_duplicates_policy():
    with pytest.raises(InvalidParameterError, match="duplicates must be one of"):
        graph_from_frames(pd.DataFrame({"source": [1], "target": [2]}), duplicates="mean")


def test_ids_that_differ_only_in_form_stay_strings():
    g, _ = graph_from_frames(pd.DataFrame({"source": ["1", "01"], "target": ["2", "2"]}))
    assert g.node_ids.dtype == object and g.n_nodes == 3


def test_report_round_trips_through_dict(tmp_path):
    p = _write(tmp_path, "e.csv", "source,target\na,a\na,b\na,b\n")
    _, report = load_edge_list(p)
    assert GraphReport.from_dict(report.to_dict()) == report


def test_edge_frame_and_networkx_round_trip():
    g, _ = load_example_graph("karate_club")
    edges = g.edge_frame()
    assert len(edges) == 78 and (edges["source"] <= edges["target"]).all()
    G = g.to_networkx()
    assert G.number_of_edges() == 78
    assert G[0][1]["weight"] == g.adjacency[0, 1]


@pytest.mark.parametrize(
    "name, n, m, weighted",
    [("karate_club", 34, 78, True), ("les_miserables", 77, 254, True),
     ("florentine_families", 15, 20, False)],
)
def test_example_graphs_match_networkx(name, n, m, weighted):
    g, report = load_example_graph(name)
    assert (g.n_nodes, g.n_edges, g.weighted) == (n, m, weighted)
    G = getattr(nx, f"{name}_graph")()
    expected = nx.to_scipy_sparse_array(G, nodelist=list(g.node_ids), weight="weight")
    np.testing.assert_array_equal(g.adjacency.toarray(), expected.toarray())
    assert report.findings == ()
    assert name in EXAMPLE_GRAPHS


@pytest.mark.parametrize("directed", [False, True])
def test_to_frames_round_trip(tmp_path, directed):
    p = _write(tmp_path, "e.csv", "source,target,weight\nb,a,2\na,a,1\nc,b,0.5\n")
    n = _write(tmp_path, "n.csv", "id,x\nc,1\nb,2\na,3\nd,4\n")
    g, _ = load_edge_list(p, nodes=n, directed=directed)
    edges, nodes = g.to_frames()
    h, _ = graph_from_frames(edges, nodes, directed=directed, weight="weight", node_id="id")
    assert list(h.node_ids) == list(g.node_ids) == ["c", "b", "a", "d"]
    np.testing.assert_array_equal(h.adjacency.toarray(), g.adjacency.toarray())
    pd.testing.assert_frame_equal(h.nodes, g.nodes)


def test_karate_club_attribute():
    g, _ = load_example_graph("karate_club")
    assert sorted(g.nodes["club"].unique()) == ["Mr. Hi", "Officer"]


def test_node_label_matrix_multilabel():
    g, _ = graph_from_frames(pd.DataFrame({"source": [0, 1], "target": [1, 2]}))
    table = pd.DataFrame({"node": [0, 0, 2], "label": ["x", "y", "y"]})
    Y, classes = node_label_matrix(g, table)
    assert list(classes) == ["x", "y"]
    np.testing.assert_array_equal(Y, [[1, 1], [0, 0], [0, 1]])
    with pytest.raises(InvalidInputError, match="not in the graph"):
        node_label_matrix(g, pd.DataFrame({"node": [5], "label": ["x"]}))


def test_real_files_load_clean(shared_data):
    g, report = load_edge_list(shared_data / "graphs" / "blogcatalog" / "edges.csv")
    assert (g.n_nodes, g.n_edges) == (10312, 333983)
    assert report.findings == ()
    g, report = load_edge_list(shared_data / "graphs" / "cora" / "edges.csv", nodes=shared_data / "graphs" / "cora" / "nodes.csv")
    assert (g.n_nodes, g.n_edges) == (2708, 5278)
    assert [f.kind for f in report.findings] == ["disconnected"]
    assert report.n_components == 78
