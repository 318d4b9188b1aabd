"""Each bad upload gets an actionable message, and nothing is stored."""

import io

import numpy as np
import pandas as pd
import pytest

from backend.datasets.upload import describe_roles, inspect_upload, parse_upload
from backend.errors import InvalidInputError, InvalidParameterError
from tests.h5ad_support import h5ad_bytes


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
        ("x,y\n1,\xe9\n".encode("latin-1"), "enc.csv", {"encoding": "utf-8"},
         "not UTF-8 text.*byte 0xe9"),
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
    with pytest.raises(InvalidInputError, match=r"2 of 30 rows .*1 empty or NaN, 1 infinite; first rows: 3, 7"):
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
    with pytest.raises(InvalidInputError, match=r"10 rows are too few for n_neighbors=15.*at least 16. Lower n_neighbors to 9 or less"):
        parse_upload(csv_bytes(good_df(10)), "s.csv", id_column="id")
    assert len(parse_upload(csv_bytes(good_df(10)), "s.csv", n_neighbors=5).vectors) == 10
    with pytest.raises(InvalidInputError, match=r"^1 row is too few .* A map needs at least 2 rows"):
        parse_upload(csv_bytes(good_df(1)), "s.csv", n_neighbors=2)


def test_metadata_must_be_a_csv():
    arr = np.arange(60.0).reshape(20, 3)
    with pytest.raises(InvalidInputError, match="'m.xlsx' is not a CSV/TSV file"):
        parse_upload(npy_bytes(arr), "v.npy", metadata=b"PK\x03\x04", metadata_filename="m.xlsx")


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


# -- issue 17: choices that must not end in a traceback, files as people write them ---------


def _row_xy(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"row": np.arange(n), "x": rng.normal(size=n), "y": rng.normal(size=n)})


def test_id_column_also_chosen_as_vector_column_is_left_out_with_a_note(backend):
    """Item 1: the id column among the vector columns is kept as the id, not a dimension."""
    data = csv_bytes(_row_xy())
    p = parse_upload(data, "r.csv", vector_columns=["row", "x", "y"], id_column="row")
    assert p.vector_names == ["x", "y"] and p.table["row"].tolist() == list(range(40))
    assert any("'row' was also chosen as a vector column" in n for n in p.notes)
    info, notes = backend.add_upload(data, "r.csv", vector_columns=["row", "x", "y"],
                                     id_column="row")
    assert (info.n_rows, info.n_dims) == (40, 2)
    with pytest.raises(InvalidParameterError, match="the only vector column chosen, 'row'"):
        parse_upload(data, "r.csv", vector_columns=["row"], id_column="row")
    lists = pd.DataFrame({"emb": ["[1, 2]", "[3, 4]"] * 10})
    with pytest.raises(InvalidParameterError, match="both the id column and the column of vectors"):
        parse_upload(csv_bytes(lists), "l.csv", list_column="emb", id_column="emb")


def test_headerless_numeric_file_keeps_its_first_row():
    """Item 10: a numeric first line is data; the choice can be overridden."""
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(20, 4))
    data = pd.DataFrame(arr).to_csv(sep="\t", index=False, header=False).encode()
    prev = inspect_upload(data, "vectors.tsv")
    assert prev.text_format.header is False and prev.n_rows == 20
    assert prev.columns == ["column_1", "column_2", "column_3", "column_4"]
    p = parse_upload(data, "vectors.tsv")
    np.testing.assert_allclose(p.vectors, arr.astype(np.float32), rtol=1e-6)
    assert len(parse_upload(data, "vectors.tsv", header=True).vectors) == 19
    # a header-less file with a text label column: the numeric columns decide
    labelled = pd.DataFrame(arr).assign(label=["a", "b"] * 10)
    data = labelled.to_csv(index=False, header=False).encode()
    assert inspect_upload(data, "l.csv").text_format.header is False
    # pandas' default header (0, 1, 2, …) is a header, not a row of data
    assert inspect_upload(csv_bytes(labelled), "l.csv").text_format.header
    assert inspect_upload(csv_bytes(pd.DataFrame(arr)), "l.csv").text_format.header


def test_semicolon_file_with_decimal_commas_is_detected_and_can_be_overridden():
    """Item 11: separator, decimal mark and encoding are detected, shown and choosable."""
    text = "name;x;y\nZürich;1,5;-2,25\nGenève;3,0;4,75\n" + "".join(
        f"p{i};{i},5;{i},25\n" for i in range(20))
    data = text.encode("cp1252")
    prev = inspect_upload(data, "eu.csv")
    fmt = prev.text_format
    assert (fmt.sep, fmt.decimal, fmt.encoding, fmt.header) == (";", ",", "cp1252", True)
    assert "semicolon-separated, decimal comma, CP1252" in fmt.describe()
    assert any("not UTF-8" in n and "CP1252" in n for n in prev.notes)
    p = parse_upload(data, "eu.csv", n_neighbors=5)
    assert p.vector_names == ["x", "y"]
    np.testing.assert_allclose(p.vectors[:2], [[1.5, -2.25], [3.0, 4.75]])
    assert p.table["name"].tolist()[:2] == ["Zürich", "Genève"]
    # the user's choice wins: with a decimal point the columns are text, not numbers
    with pytest.raises(InvalidInputError, match="no numeric column"):
        parse_upload(data, "eu.csv", decimal=".", n_neighbors=5)
    with pytest.raises(InvalidParameterError, match="separator and the decimal mark must differ"):
        parse_upload(data, "eu.csv", sep=",", decimal=",")


def test_glove_style_text_file_words_then_numbers():
    """Item 11: space-separated text (GloVe's format) needs no choice: words become metadata."""
    rng = np.random.default_rng(5)
    vecs = rng.normal(size=(25, 4))
    text = "".join(f"w{i}  " + " ".join(f"{v:.5f}" for v in row) + "\n" for i, row in enumerate(vecs))
    prev = inspect_upload(text.encode(), "glove.6B.4d.txt")
    assert (prev.text_format.sep, prev.text_format.header) == (" ", False)
    p = parse_upload(text.encode(), "glove.6B.4d.txt")
    np.testing.assert_allclose(p.vectors, vecs.astype(np.float32), atol=1e-5)
    assert p.table["column_1"].tolist()[:2] == ["w0", "w1"] and p.notes == []


def test_index_and_label_columns_are_metadata_by_default():
    """Item 13: row/index/monotonic ids and integer labels are not vector dimensions."""
    rng = np.random.default_rng(2)
    n = 60
    df = pd.DataFrame({"row": np.arange(n), "serial": np.arange(n) + 1000,
                       "label": rng.integers(0, 10, n), "tier": rng.integers(0, 3, n),
                       "a": rng.normal(size=n), "b": rng.normal(size=n)})
    prev = inspect_upload(csv_bytes(df), "l.csv")
    assert prev.vector_columns == ["a", "b"]
    assert set(prev.not_vectors) == {"row", "serial", "label", "tier"}
    assert "index" in prev.not_vectors["row"] and "labels" in prev.not_vectors["label"]
    p = parse_upload(csv_bytes(df), "l.csv")
    assert p.vectors.shape == (n, 2) and {"row", "label", "tier"} <= set(p.table.columns)
    assert any(note.startswith("Vectors: 2 numeric column(s) (a, b). Kept as metadata")
               and "'label' (integer labels" in note for note in p.notes)
    # integer counts that are neither index nor labels stay vectors
    counts = pd.DataFrame(rng.poisson(5.0, size=(n, 4)), columns=list("pqrs"))
    assert inspect_upload(csv_bytes(counts), "c.csv").vector_columns == list("pqrs")


def test_records_that_do_not_match_the_lines_are_reported():
    """Item 14: quoted line breaks are one record (noted); a missing quote is refused."""
    rows = "".join(f"{i},{i * 0.5},{i * 0.25},plain\n" for i in range(20))
    ok = ("k,x,y,comment\n" + rows + '20,1.0,2.0,"two\nlines"\n').encode()
    p = parse_upload(ok, "q.csv", n_neighbors=5)
    assert len(p.vectors) == 21 and p.table["comment"].iloc[-1] == "two\nlines"
    assert any("1 row(s) hold quoted line breaks" in n and "row 20 (lines 22–23)" in n
               for n in p.notes)
    broken = ("k,x,y,comment\n" + '0,1.0,2.0,"oops\n' + rows + '21,1.0,2.0,end"\n').encode()
    with pytest.raises(InvalidInputError, match=r"row 0 \(lines 2–23\)\): a closing quote is probably missing"):
        parse_upload(broken, "b.csv", n_neighbors=5)
    short = ("k,x,y,comment\n" + rows + "20,1.0\n").encode()
    p = parse_upload(short, "s.csv", n_neighbors=5, drop_nonfinite=True)
    assert any("1 row(s) have fewer fields than the 4 columns (row 20 (line 22) has 2)" in n
               for n in p.notes)
    assert len(p.vectors) == 20


@pytest.mark.parametrize("sparse", [False, True])
def test_h5ad_x_or_an_obsm_embedding_with_obs_as_metadata(tmp_path, sparse):
    """Item 16: .h5ad read with h5py: X (dense or CSR), or obsm/X_pca; obs as metadata."""
    data, X, pca = h5ad_bytes(tmp_path / "a.h5ad", sparse=sparse)
    prev = inspect_upload(data, "a.h5ad")
    assert prev.arrays == ["X", "obsm/X_pca"] and prev.n_rows == 30
    assert prev.columns == ["obs_names", "cell_type", "n_counts"] and prev.id_guess == "obs_names"
    p = parse_upload(data, "a.h5ad", id_column="obs_names", n_neighbors=5)
    np.testing.assert_array_equal(p.vectors, X)
    assert p.vector_names == [f"G{j}" for j in range(6)]
    assert p.table["cell_type"].astype(str).tolist()[:4] == ["B", "NK", "T", "B"]
    assert p.table["obs_names"].iloc[29] == "cell29"
    p = parse_upload(data, "a.h5ad", array_key="obsm/X_pca", n_neighbors=5)
    np.testing.assert_array_equal(p.vectors, pca)
    assert p.vector_names == ["X_pca_0", "X_pca_1", "X_pca_2"]
    with pytest.raises(InvalidInputError, match="not a readable .h5ad file"):
        parse_upload(b"not hdf5 at all", "b.h5ad")


def test_same_numbers_under_a_new_name_keep_the_new_name_and_columns(backend):
    """Item 8: a re-upload under a new name is recorded with its name and column names."""
    df = good_df()
    first, _ = backend.add_upload(csv_bytes(df), "a.csv", name="first", id_column="id")
    renamed = df.rename(columns={"x": "pc1", "y": "pc2", "z": "pc3"})
    second, _ = backend.add_upload(csv_bytes(renamed), "b.csv", name="second", id_column="id")
    assert second.id != first.id and second.name == "second"
    assert second.extra["feature_names"] == ["pc1", "pc2", "pc3"]
    assert backend.dataset(first.id).name == "first"
    again, _ = backend.add_upload(csv_bytes(df), "a.csv", name="first", id_column="id")
    assert again.id == first.id and len(backend.datasets()) == 2


def test_no_combination_of_choices_ends_in_a_traceback():
    """Item 1: every reading option and column choice either works or says why."""
    import itertools

    from backend.errors import LatentLensError

    rng = np.random.default_rng(4)
    df = pd.DataFrame({"row": range(12), "name": [f"n{i}" for i in range(12)],
                       "x": rng.normal(size=12), "y": rng.normal(size=12)})
    files = {"a.csv": csv_bytes(df),
             "b.csv": df.to_csv(index=False, sep=";", decimal=",").encode("cp1252"),
             "c.tsv": df.to_csv(index=False, sep="\t", header=False).encode("utf-16"),
             "d.txt": b'x,y,"q\nz"\n1,2,3\n'}
    choices = [{}, {"id_column": "row"}, {"vector_columns": ["row", "x"], "id_column": "row"},
               {"list_column": "name"}, {"latitude": "x", "longitude": "y"}]
    outcomes = {"stored": 0, "refused": 0}
    for (fn, data), sep, decimal, encoding, header, kw in itertools.product(
            files.items(), [None, ";", "\t"], [None, ","], [None, "utf-16"], [None, False], choices):
        try:
            parse_upload(data, fn, sep=sep, decimal=decimal, encoding=encoding, header=header,
                         n_neighbors=2, **kw)
            outcomes["stored"] += 1
        except LatentLensError:
            outcomes["refused"] += 1
    assert outcomes["stored"] > 0 and outcomes["refused"] > 0
    assert sum(outcomes.values()) == 4 * 3 * 2 * 2 * 2 * len(choices)


def test_text_upload_reads_the_file_as_chosen(backend):
    """Item 11 for a table of texts: the reading choices reach the stored table."""
    data = "title;score\nÉté chaud;1,5\nHiver;2,5\n".encode("cp1252")
    info, notes = backend.add_text_upload(data, "t.csv", text_column="title")
    assert any("read as CP1252" in n for n in notes)
    table = backend.table(info.id)
    assert table["title"].tolist() == ["Été chaud", "Hiver"] and table["score"].tolist() == [1.5, 2.5]
    info, _ = backend.add_text_upload(data, "t.csv", text_column="column_1", header=False,
                                      encoding="latin-1", name="no header")
    assert backend.table(info.id)["column_1"].tolist() == ["title", "Été chaud", "Hiver"]


def test_binary_bytes_named_csv_are_refused_as_not_text():
    """Random bytes under a .csv name (any of the encodings decodes them) are said to be
    binary, not reported as a tokenizer error on some line; a text CSV with a BOM, tabs and
    Windows line ends is not."""
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(InvalidInputError, match=r"'blob.csv' is not a text file: [\d,]+ of its first"):
        parse_upload(data, "blob.csv")
    text = "\ufeffid\tx\ty\r\n" + "".join(f"r{i}\t{i}\t{i * i % 7}\r\n" for i in range(40))
    assert len(parse_upload(text.encode("utf-8"), "ok.tsv", n_neighbors=5).vectors) == 40


def test_a_mostly_numeric_column_with_some_text_says_why_it_is_not_a_vector():
    rows = ["a,b,c"] + [f"{i * 0.3},{'hello' if i % 5 == 0 else i * 0.5},{i % 7 + 0.1}"
                        for i in range(50)]
    p = inspect_upload("\n".join(rows).encode(), "t.csv")
    assert p.vector_columns == ["a", "c"]
    assert p.not_vectors == {"b": "mostly numbers, but 10 of the first 50 values are not (e.g. 'hello')"}
    assert "'b' (mostly numbers, but 10 of the first 50" in describe_roles(p.vector_columns, p.not_vectors)


def test_a_row_with_a_missing_field_is_named_as_empty_not_only_nan():
    text = "a,b,c\n" + "".join(f"{i * 0.5},{i % 7 + 0.1},{i * i % 5 + 0.2}\n" for i in range(30))
    text = text.replace("\n1.0,2.1,4.2\n", "\n1.0,2.1\n")  # row 2 has two of three fields
    with pytest.raises(InvalidInputError, match=r"^1 of 30 rows contain empty, NaN or infinite "
                       r"values \(1 empty or NaN, 0 infinite; first rows: 2\)"):
        parse_upload(text.encode(), "short.csv", n_neighbors=5)


def test_columns_with_the_same_name_are_told_apart_with_a_note():
    text = "x,y,x,y,x\n" + "".join(f"{i * 0.5},{i % 7 + 0.1},{i * 0.2},{i % 3 + 0.3},{i * 1.5}\n"
                                     for i in range(30))
    p = inspect_upload(text.encode(), "dup.csv")
    assert p.columns == ["x", "y", "x.1", "y.1", "x.2"]
    assert ("columns with the same name were told apart by number: 'x' 3 times → 'x', 'x.1', "
            "'x.2'; 'y' 2 times → 'y', 'y.1'.") in p.notes


def test_a_header_without_rows_is_said_in_the_preview():
    p = inspect_upload(b"a,b,c\n", "head.csv")
    assert p.n_rows == 0
    assert p.notes[0].startswith("'head.csv' has a header of 3 column(s) but no data rows")
