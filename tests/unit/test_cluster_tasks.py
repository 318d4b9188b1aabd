"""The ``cluster`` job kind and the client's quick cluster/chart/export methods on a real store."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from backend.errors import InvalidParameterError
from backend.jobs import JobSpec

TOPICS = {"pets": ["cat", "dog", "kitten", "puppy"], "food": ["pizza", "bread", "soup", "cake"],
          "money": ["bank", "stock", "loan", "taxes"]}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from backend.client import LocalBackend

    b = LocalBackend(tmp_path_factory.mktemp("clusters") / "home")
    yield b
    b.runner.shutdown()


@pytest.fixture(scope="module")
def dataset(local):
    """Three separated blobs of 8-D vectors with a text per row (a few empty) and a topic."""
    rng = np.random.default_rng(0)
    rows, vecs = [], []
    for t, (topic, words) in enumerate(TOPICS.items()):
        for i in range(60):
            text = "" if i % 15 == 0 else f"my {words[i % 4]} and {words[(i + 1) % 4]} today"
            rows.append({"text": text, "topic": topic, "score": float(i)})
            vecs.append(rng.normal(t * 10.0, 0.5, 8))
    info = local.store.add_dataset(pd.DataFrame(rows), np.array(vecs, np.float32), name="blobs",
                                   source="test", extra={"text_column": "text",
                                                         "label_column": "topic"})
    status = local.wait(local.submit(JobSpec("pca", info.id, {})), timeout=120)
    assert status.state == "done", status.error
    return info, status.artifact_id


@pytest.fixture(scope="module")
def clustering(local, dataset):
    info, proj = dataset
    status = local.wait(local.submit(JobSpec("cluster", info.id, {"projection": proj,
                                                                 "min_samples": 5})), timeout=120)
    assert status.state == "done", status.error
    return status.artifact_id


def test_cluster_job_levels_and_keyword_names(local, dataset, clustering):
    info, proj = dataset
    meta = local.artifact_json(clustering, "meta.json")
    res = local.result(clustering)
    assert meta["params"]["text_column"] == "text" and res.space == "projection"
    lv = res.default_level
    table = local.artifact_table(clustering, "clusters.parquet")
    assert len(table) == 180 and table["_row"].tolist() == list(range(180))
    labels = local.cluster_labels(clustering, lv)
    assert res.n_clusters[lv] == 3 and (labels >= 0).all()
    names = local.cluster_names(clustering, lv)
    topic = local.table(info.id, ["topic"])["topic"].to_numpy()
    for c, name in zip(names["cluster"], names["name"]):
        words = TOPICS[pd.Series(topic[labels == c]).mode()[0]]
        # keywords of the cluster's own texts (rows with empty text are clustered and named too)
        assert set(name.split(", ")) <= set(words), name
    assert names["n_rows"].sum() == 180


def test_rename_and_export(local, clustering):
    lv = local.result(clustering).default_level
    before = local.cluster_names(clustering, lv)
    after = local.rename_clusters(clustering, lv, {0: "first"})
    assert after.loc[after["cluster"] == 0, "name"].item() == "first"
    assert after.loc[after["cluster"] == 0, "edited"].item()
    assert after.loc[after["cluster"] == 0, "computed_name"].item() == before.loc[0, "name"]
    flat = pd.read_parquet(io.BytesIO(local.assignments_bytes(clustering, lv)))
    assert flat.columns.tolist() == ["_row", "cluster", "cluster_name"] and len(flat) == 180
    assert (flat.loc[flat["cluster"] == 0, "cluster_name"] == "first").all()
    local.rename_clusters(clustering, lv, {0: ""})
    assert local.cluster_names(clustering, lv).equals(before)
    with pytest.raises(InvalidParameterError, match=r"clusters \[99\] are not in level"):
        local.rename_clusters(clustering, lv, {99: "x"})
    with pytest.raises(InvalidParameterError, match=r"level must be an integer in \[0, "):
        local.cluster_names(clustering, 99)


def test_facets_selection_density_and_html(local, dataset, clustering):
    info, proj = dataset
    fc = local.facets(info.id, ["topic", "score"], rows=list(range(0, 180, 2)),
                      filters=[{"kind": "category", "column": "topic", "values": ["food"]}],
                      return_rows=True)
    assert fc.n_selected == 30 and fc.rows.tolist() == list(range(60, 120, 2))
    assert fc.facets["topic"].counts.set_index("value")["count"].to_dict() == {
        "food": 30, "money": 30, "pets": 30}
    csv = pd.read_csv(io.BytesIO(local.selection_bytes(info.id, rows=[5, 3])))
    assert csv["_row"].tolist() == [3, 5] and "text" in csv.columns
    g = local.density(proj, grid_size=64)
    assert g.density.shape == (64, 64) and g.n_points == 180
    doc = local.map_html(proj, clustering=clustering)
    assert "<canvas" in doc and "https://" not in doc


def test_cluster_job_kmeans_on_vectors_and_bad_params(local, dataset):
    info, _ = dataset
    st = local.wait(local.submit(JobSpec("cluster", info.id, {"space": "vectors", "method": "kmeans",
                                                             "n_clusters": 3,
                                                             "text_column": None})), timeout=120)
    assert st.state == "done", st.error
    res = local.result(st.artifact_id)
    assert res.n_clusters == [3] and res.named_by == "most frequent values of 'topic'"
    assert set(local.cluster_names(st.artifact_id, 0)["name"]) == {
        "pets (100%)", "food (100%)", "money (100%)"}
    with pytest.raises(InvalidParameterError, match="projection must be the artifact id"):
        local.submit(JobSpec("cluster", info.id, {}))
    with pytest.raises(InvalidParameterError, match=r"unknown parameter\(s\) for cluster: \['k'\]"):
        local.submit(JobSpec("cluster", info.id, {"space": "vectors", "k": 3}))


def test_link_round_trip_and_a_dataset_that_no_longer_exists(local, dataset, clustering):
    info, proj = dataset
    q = local.view_query(dataset=info.id, projection=proj, color="cluster", clustering=clustering,
                         level=1, filters=[{"kind": "category", "column": "topic",
                                            "values": ["food"]}])
    state, msgs = local.open_view(q)
    assert msgs == [] and state.clustering == clustering and state.level == 1
    assert state.filters == [{"kind": "category", "column": "topic", "values": ["food"]}]
    gone = dict(q, dataset="0123456789abcdef")
    state, msgs = local.open_view(gone, default_dataset=info.id)
    assert state.dataset == info.id and state.projection is None and state.filters == []
    assert "dataset 0123456789abcdef no longer exists" in msgs[0]
    state, msgs = local.open_view(dict(q, clu="../../../etc"))
    assert state.clustering is None and "no longer exists for this dataset" in msgs[0]
