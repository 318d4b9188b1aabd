import json

import numpy as np
import pandas as pd
import pytest

from backend.errors import InvalidInputError, NotFoundError
from backend.store import Store, content_hash, valid_id


def _data(n=20, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"label": rng.choice(["a", "b"], n)}), rng.normal(size=(n, d))


def test_add_list_reopen(tmp_path):
    s = Store(tmp_path)
    table, vec = _data()
    info = s.add_dataset(table, vec, name="t", source="test")
    assert valid_id(info.id) and info.n_rows == 20 and info.n_dims == 4
    assert info.columns == ["label"]
    # a new Store on the same folder (a restart) lists it again, with the same content
    s2 = Store(tmp_path)
    assert [d.id for d in s2.datasets()] == [info.id]
    np.testing.assert_array_equal(s2.vectors(info.id), vec.astype(np.float32))
    t = s2.table(info.id)
    assert t["_row"].tolist() == list(range(20)) and t["label"].tolist() == table["label"].tolist()
    assert s2.vectors(info.id).dtype == np.float32


def test_content_hash_ids(tmp_path):
    s = Store(tmp_path)
    table, vec = _data()
    a = s.add_dataset(table, vec, name="first", source="x")
    assert s.add_dataset(table, vec, name="first", source="y").id == a.id  # stored once
    assert len(s.datasets()) == 1
    vec2 = vec.copy()
    vec2[0, 0] += 1
    c = s.add_dataset(table, vec2, name="changed", source="x")
    assert c.id != a.id and len(s.datasets()) == 2
    assert content_hash("ab", "c") != content_hash("a", "bc")


def test_same_numbers_under_a_new_name_are_a_new_entry_sharing_the_vectors(tmp_path):
    """Issue 17 item 8: the new name and column names are recorded; the vectors are shared."""
    s = Store(tmp_path)
    table, vec = _data()
    a = s.add_dataset(table, vec, name="first", source="x", extra={"feature_names": ["p", "q"]})
    b = s.add_dataset(table, vec, name="renamed", source="x", extra={"feature_names": ["u", "v"]})
    assert a.id != b.id and {d.name for d in s.datasets()} == {"first", "renamed"}
    assert s.dataset(b.id).extra["feature_names"] == ["u", "v"]
    np.testing.assert_array_equal(s.vectors(b.id), s.vectors(a.id))
    va = tmp_path / "datasets" / a.id / "vectors.npy"
    vb = tmp_path / "datasets" / b.id / "vectors.npy"
    assert va.stat().st_ino == vb.stat().st_ino  # one file on disk
    s.delete_dataset(a.id)
    np.testing.assert_array_equal(s.vectors(b.id), vec.astype(np.float32))
    s.delete_dataset(b.id)
    assert list((tmp_path / "vectors").glob("*.npy")) == []


def test_length_mismatch_stores_nothing(tmp_path):
    s = Store(tmp_path)
    table, vec = _data()
    with pytest.raises(InvalidInputError, match=r"5 rows but the vectors have shape \(20, 4\)"):
        s.add_dataset(table.iloc[:5], vec, name="bad", source="x")
    assert s.datasets() == [] and list((tmp_path / "datasets").iterdir()) == []


def test_unknown_and_malformed_ids(tmp_path):
    s = Store(tmp_path)
    with pytest.raises(NotFoundError, match="not a dataset id"):
        s.dataset("../../etc/passwd")
    with pytest.raises(NotFoundError, match="no dataset with id"):
        s.dataset("0" * 16)
    with pytest.raises(NotFoundError, match="not an artifact id"):
        s.artifact("x")


def test_artifact_visible_only_after_commit(tmp_path):
    s = Store(tmp_path)
    table, vec = _data()
    info = s.add_dataset(table, vec, name="t", source="x")
    tmp = s.new_artifact_dir()
    np.save(tmp / "a.npy", np.arange(3))
    aid = content_hash("artifact")
    assert s.artifact_or_none(aid) is None and s.artifacts() == []
    art = s.commit_artifact(aid, info.id, "test", tmp, {"params": {"k": 1}})
    assert art.files == ["a.npy", "meta.json"]
    assert not tmp.exists()
    meta = json.loads(s.artifact_path(aid, "meta.json").read_text())
    assert meta == {"params": {"k": 1}}
    assert [a.id for a in Store(tmp_path).artifacts(info.id)] == [aid]
    with pytest.raises(NotFoundError, match="has no file"):
        s.artifact_path(aid, "missing.npy")


def test_restart_marks_orphaned_running_jobs_interrupted(tmp_path):
    s = Store(tmp_path)
    live = s.claim_owner()
    s.upsert_job("a" * 16, kind="umap", state="running")  # no owner: an older version's job
    s.upsert_job("b" * 16, kind="umap", state="done")
    s.upsert_job("c" * 16, kind="umap", state="running", owner=live)
    assert Store(tmp_path).reconcile_jobs() == 1
    assert s.job_row("c" * 16)["state"] == "running"  # its owner (this store) still runs
    s.release_owner(live)
    assert Store(tmp_path).reconcile_jobs() == 1
    assert s.job_row("c" * 16)["state"] == "interrupted"
    assert s.job_row("a" * 16)["state"] == "interrupted"
    assert s.job_row("b" * 16)["state"] == "done"


def test_delete_dataset(tmp_path):
    s = Store(tmp_path)
    table, vec = _data()
    info = s.add_dataset(table, vec, name="t", source="x")
    s.delete_dataset(info.id)
    assert s.datasets() == [] and not (tmp_path / "datasets" / info.id).exists()


def test_dataset_files(tmp_path):
    s = Store(tmp_path)
    table = pd.DataFrame({"node": ["a", "b", "c"]})
    info = s.add_dataset(table, np.zeros((3, 0)), name="g", source="x", kind="graph",
                         files={"edges.parquet": b"123"})
    assert info.kind == "graph" and info.n_dims == 0
    assert s.dataset_file(info.id, "edges.parquet").read_bytes() == b"123"
    other = s.add_dataset(table, np.zeros((3, 0)), name="g", source="x", kind="graph",
                          files={"edges.parquet": b"124"})
    assert other.id != info.id  # the files are part of the content hash
    with pytest.raises(NotFoundError):
        s.dataset_file(info.id, "../info.json")
    with pytest.raises(InvalidInputError, match="not an allowed dataset file name"):
        s.add_dataset(table, np.zeros((3, 0)), name="g", source="x", files={"../x": b""})


def test_only_declared_dataset_kinds_are_stored(tmp_path):
    s = Store(tmp_path)
    table, vec = _data()
    with pytest.raises(ValueError, match="unknown dataset kind 'images'"):
        s.add_dataset(table, vec, name="t", source="x", kind="images")
    assert s.datasets() == []
