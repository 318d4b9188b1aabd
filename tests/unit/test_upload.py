"""Each bad upload gets an actionable message, and nothing is stored."""

import io

import numpy as np
import pandas as pd
import pytest

from backend.datasets.upload import inspect_upload, parse_upload
from backend.errors import InvalidInputError, InvalidParameterError


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def good_df(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": [f"p{i}" for i in range(n)], "label": rng.choice(["a", "b"], n),
                         "x": rng.normal(size=n), "y": rng.normal(size=n), "z": rng.normal(size=n)})


def npy_bytes(arr, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, **kw)
    return buf.getvalue()


def test_csv_defaults_to_numeric_columns():
    p = parse_upload(csv_bytes(good_df()), "a.csv", id_column="id")
    assert p.vectors.shape == (30, 3) and p.vectors.dtype == np.float32
    assert p.vector_names == ["x", "y", "z"]
    assert list(p.table.columns) == ["id", "label"]


def test_tsv_and_parquet_and_list_column():
    df = good_df()
    p = parse_upload(df.to_csv(sep="\t", index=False).encode(), "a.tsv")
    assert p.vectors.shape == (30, 3)
    buf = io.BytesIO()
    lists = pd.DataFrame({"id": df["id"], "emb": [list(r) for r in df[["x", "y"]].to_numpy()]})
    lists.to_parquet(buf)
    p = parse_upload(buf.getvalue(), "a.parquet", list_column="emb")
    np.testing.assert_allclose(p.vectors, df[["x", "y"]].to_numpy(np.float32))
    # a CSV whose cells are JSON lists
    text = lists.assign(emb=lists["emb"].map(lambda v: str([float(x) for x in v])))
    prev = inspect_upload(csv_bytes(text), "l.csv")
    assert prev.list_columns == ["emb"] and prev.numeric_columns == []
    p = parse_upload(csv_bytes(text), "l.csv", list_column="emb")
    assert p.vectors.shape == (30, 2)


def test_npy_and_npz_with_metadata():
    arr = np.random.default_rng(0).normal(size=(25, 8)).astype(np.float32)
    meta = pd.DataFrame({"name": [f"n{i}" for i in range(25)]})
    p = parse_upload(npy_bytes(arr), "v.npy", metadata=csv_bytes(meta))
    np.testing.assert_array_equal(p.vectors, arr)
    assert p.table["name"].tolist() == meta["name"].tolist()
    buf = io.BytesIO()
    np.savez(buf, embeddings=arr, label=np.arange(25) % 3)
    p = parse_upload(buf.getvalue(), "v.npz")
    assert p.vectors.shape == (25, 8) and p.table["label"].tolist()[:4] == [0, 1, 2, 0]


@pytest.mark.parametrize(
    "data,name,kwargs,match",
    [
        (b"", "e.csv", {}, "is empty"),
        (b"   \n", "e.csv", {}, "holds no data"),
        (b"x,y\n", "h.csv", {}, "has a header but no rows"),
        ("x,y\n1,\xe9\n".encode("latin-1"), "enc.csv", {}, "not UTF-8 text.*byte 0xe9"),
        (b"name,city\na,b\nc,d\n", "s.csv", {}, "no numeric column"),
        (b"a,b\n1,2\n", "f.xlsx", {}, "unsupported file type .xlsx"),
        (b"x" * 2000, "big.csv", {"max_bytes": 1000}, "over the 0 MB limit|over the"),
        (b"not a parquet", "p.parquet", {}, "not a readable Parquet file"),
        (b"garbage", "g.npy", {}, "not a valid .npy file"),
    ],
)
def test_bad_files(data, name, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        parse_upload(data, name, **kwargs)


def test_ragged_list_column():
    df = pd.DataFrame({"emb": ["[1, 2, 3]"] * 20 + ["[1, 2]"]})
    with pytest.raises(InvalidInputError, match=r"ragged vectors .*\{2: 1, 3: 20\}.*first rows: 20"):
        parse_upload(csv_bytes(df), "r.csv", list_column="emb")


def test_nan_inf_counted_and_droppable():
    df = good_df()
    df.loc[3, "x"] = np.nan
    df.loc[7, "y"] = np.inf
    with pytest.raises(InvalidInputError, match=r"2 of 30 rows .*1 NaN, 1 infinite; first rows: 3, 7"):
        parse_upload(csv_bytes(df), "n.csv", id_column="id")
    p = parse_upload(csv_bytes(df), "n.csv", id_column="id", drop_nonfinite=True)
    assert len(p.vectors) == 28 and "p3" not in p.table["id"].tolist()
    assert any("were dropped" in n for n in p.notes)


def test_constant_columns():
    df = good_df().assign(c=1.0)
    p = parse_upload(csv_bytes(df), "c.csv", id_column="id")
    assert any("1 constant column(s)" in n and "c" in n for n in p.notes)
    all_const = pd.DataFrame({"a": [1.0] * 30, "b": [2.0] * 30})
    with pytest.raises(InvalidInputError, match="all 2 vector column.*constant"):
        parse_upload(csv_bytes(all_const), "c.csv")


def test_duplicate_ids():
    df = good_df()
    df.loc[5, "id"] = "p1"
    with pytest.raises(InvalidInputError, match=r"1 duplicate value\(s\) \(e.g. 'p1'\)"):
        parse_upload(csv_bytes(df), "d.csv", id_column="id")


def test_too_few_rows_for_n_neighbors():
    with pytest.raises(InvalidInputError, match=r"10 rows is too few for n_neighbors=15.*at least 16"):
        parse_upload(csv_bytes(good_df(10)), "s.csv", id_column="id")
    assert len(parse_upload(csv_bytes(good_df(10)), "s.csv", n_neighbors=5).vectors) == 10


def test_metadata_length_mismatch():
    arr = np.zeros((20, 3)) + np.arange(20)[:, None]
    meta = pd.DataFrame({"n": range(19)})
    with pytest.raises(InvalidInputError, match="has 19 rows but 'v.npy' has 20 vectors"):
        parse_upload(npy_bytes(arr), "v.npy", metadata=csv_bytes(meta))


def test_pickled_npy_refused():
    arr = np.array([{"a": 1}] * 20, dtype=object)
    with pytest.raises(InvalidInputError, match="never loaded for safety"):
        parse_upload(npy_bytes(arr, allow_pickle=True), "o.npy")


def test_wrong_shapes_and_types():
    with pytest.raises(InvalidInputError, match=r"shape \(20,\).*2-D array"):
        parse_upload(npy_bytes(np.arange(20.0)), "one.npy")
    df = good_df().assign(x=["1.0"] * 29 + ["abc"])
    with pytest.raises(InvalidInputError, match=r"'x' \(1 non-numeric values, e.g. \['abc'\]\)"):
        parse_upload(csv_bytes(df), "t.csv", vector_columns=["x", "y"])
    with pytest.raises(InvalidParameterError, match="has no column 'w'"):
        parse_upload(csv_bytes(good_df()), "t.csv", vector_columns=["w"])
    with pytest.raises(InvalidParameterError, match="either vector columns or one list column"):
        parse_upload(csv_bytes(good_df()), "t.csv", vector_columns=["x"], list_column="y")


def test_bad_upload_stores_nothing(backend):
    before = backend.datasets()
    with pytest.raises(InvalidInputError):
        backend.add_upload(b"name\nx\n", "bad.csv")
    assert backend.datasets() == before
    info, notes = backend.add_upload(csv_bytes(good_df()), "good.csv", id_column="id")
    assert info.n_rows == 30 and [d.id for d in backend.datasets()] == [info.id]


def test_pickle_file_named_npy_refused(tmp_path):
    import pickle

    flag = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(flag), "w"))

    with pytest.raises(InvalidInputError, match="is a Python pickle, which is never loaded"):
        parse_upload(pickle.dumps(Evil()), "evil.npy")
    with pytest.raises(InvalidInputError, match="is a Python pickle"):
        parse_upload(pickle.dumps(Evil()), "evil.npz")
    assert not flag.exists()


def test_npz_with_several_matrices_lets_the_user_choose():
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buf, a=rng.normal(size=(20, 3)), b=rng.normal(size=(20, 5)), y=np.arange(20))
    data = buf.getvalue()
    assert inspect_upload(data, "m.npz").arrays == ["a", "b"]
    with pytest.raises(InvalidInputError, match=r"has 2 2-D arrays \(a, b\); choose"):
        parse_upload(data, "m.npz")
    p = parse_upload(data, "m.npz", array_key="b")
    assert p.vectors.shape == (20, 5) and p.table.columns.tolist() == ["y"]


def test_txt_delimiter_is_sniffed_and_id_column_guessed():
    df = good_df()
    p = parse_upload(df.to_csv(index=False).encode(), "comma.txt", id_column="id")
    assert p.vectors.shape == (30, 3)
    p = parse_upload(df.to_csv(sep="\t", index=False).encode(), "tab.txt", id_column="id")
    assert p.vectors.shape == (30, 3)
    numeric_ids = df.assign(id=range(30))
    assert inspect_upload(csv_bytes(numeric_ids), "n.csv").id_guess == "id"
    dup = numeric_ids.assign(id=[0] * 30)
    assert inspect_upload(csv_bytes(dup), "d.csv").id_guess is None
