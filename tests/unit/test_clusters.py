"""Clusters: levels, names, density, linked filters, export and share (pure functions)."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score

from backend.clusters import (
    UNCLUSTERED_NAME,
    NameEdits,
    ViewState,
    assignments_frame,
    cluster_levels,
    density_grid,
    facet_counts,
    filtered_rows,
    filtered_table,
    keyword_names,
    names_frame,
    offline_map_html,
    resolve_view,
    table_bytes,
    value_names,
    view_from_query,
    view_to_query,
)
from backend.errors import InvalidInputError, InvalidParameterError, NotFoundError


@pytest.fixture(scope="module")
def digits_map():
    """The digits and their default UMAP map (the map the page clusters by default)."""
    from backend.project import knn_graph, umap_embedding

    d = load_digits()
    X = d.data.astype(np.float32)
    return umap_embedding(X, knn_graph(X, 15), random_state=42), d.target


def _blobs(n_per=60, centres=((0, 0), (10, 0), (0, 10)), seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, 0.5, (n_per, 2)) for c in centres])
    return X, np.repeat(np.arange(len(centres)), n_per)


# ------------------------------------------------------------------ clustering


def test_digits_map_default_hdbscan_agrees_with_labels(digits_map):
    emb, target = digits_map
    lv = cluster_levels(emb)
    lab = lv.labels[lv.default_level]
    assert adjusted_rand_score(target, lab) >= 0.70
    assert lab.shape == (1797,) and lv.labels.dtype == np.int32
    # levels go coarse -> fine, every level is a labeling of every row
    assert lv.n_clusters == sorted(lv.n_clusters) and len(lv.n_clusters) >= 3
    assert all(len(set(lab_.tolist()) - {-1}) == k for lab_, k in zip(lv.labels, lv.n_clusters))
    assert lv.noise_fraction[lv.default_level] == pytest.approx((lab == -1).mean())
    # clusters are numbered by decreasing size
    sizes = np.bincount(lab[lab >= 0])
    assert (np.diff(sizes) <= 0).all()
    names = value_names(target.astype(str), lv.labels)
    frame = names_frame(lv.labels, names)
    assert (frame["name"].str.len() > 0).all()
    assert frame.groupby("level")["n_rows"].sum().eq(1797).all()


def test_hdbscan_levels_are_one_tree_ladder():
    X, y = _blobs()
    lv = cluster_levels(X, min_cluster_size=20, min_samples=5)
    sizes = [p["min_cluster_size"] for p in lv.level_params]
    assert 20 in sizes and lv.level_params[lv.default_level] == {"min_cluster_size": 20}
    assert adjusted_rand_score(y, lv.labels[lv.default_level]) == pytest.approx(1.0, abs=0.05)
    assert len(set(map(bytes, (lab.tobytes() for lab in lv.labels)))) == lv.n_levels  # no duplicates


def test_kmeans_levels_nest():
    X, y = _blobs(centres=((0, 0), (10, 0), (0, 10), (10, 10), (30, 30), (30, 40), (40, 30),
                           (40, 40)))
    lv = cluster_levels(X, method="kmeans", n_clusters=8, random_state=0)
    assert lv.n_clusters == [2, 4, 8] and lv.default_level == 2
    assert lv.noise_fraction == [0.0, 0.0, 0.0]
    fine, coarse = lv.labels[2], lv.labels[0]
    # every fine cluster lies inside exactly one coarse cluster
    for c in np.unique(fine):
        assert len(np.unique(coarse[fine == c])) == 1
    assert adjusted_rand_score(y, fine) == pytest.approx(1.0)


def test_five_rows():
    X = np.arange(10, dtype=float).reshape(5, 2)
    with pytest.raises(InvalidInputError, match=r"5 rows; HDBSCAN with min_samples=10 needs at least 11"):
        cluster_levels(X)
    with pytest.raises(InvalidInputError, match=r"fewer than n_clusters=8; lower n_clusters to at most 5"):
        cluster_levels(X, method="kmeans")
    lv = cluster_levels(X, method="kmeans", n_clusters=2)
    assert (lv.labels >= 0).all() and lv.labels.shape == (1, 5)
    lv = cluster_levels(X, min_samples=2, min_cluster_size=2)
    assert lv.labels.shape[1] == 5  # every row labelled (noise explicit)


def test_identical_points_form_one_cluster():
    lv = cluster_levels(np.ones((100, 3)))
    assert lv.n_clusters == [1] and (lv.labels == 0).all()
    assert "all 100 points are identical" in lv.note


def test_bad_parameters():
    X, _ = _blobs()
    with pytest.raises(InvalidParameterError, match=r"method must be one of \['hdbscan', 'kmeans'\]; got 'dbscan'"):
        cluster_levels(X, method="dbscan")
    with pytest.raises(InvalidParameterError, match=r"min_cluster_size must be 'auto' or an integer in \[2, "):
        cluster_levels(X, min_cluster_size=1)
    with pytest.raises(InvalidInputError, match="1 of 180 points have NaN"):
        cluster_levels(np.where(np.arange(360).reshape(180, 2) == 7, np.nan, X))


# ------------------------------------------------------------------ names


@pytest.fixture(scope="module")
def corpus():
    from backend.datasets import load_text_dataset

    return load_text_dataset()


def test_corpus_names_are_keywords_of_its_texts(corpus):
    labels = corpus["category"].cat.codes.to_numpy()
    names = keyword_names(corpus["text"], labels)[0]
    cats = list(corpus["category"].cat.categories)
    for c, name in names.items():
        words = name.split(", ")
        assert len(words) == 3
        texts = corpus.loc[labels == c, "text"].str.lower()
        for w in words:  # each keyword occurs as a word in the cluster's own texts
            assert texts.str.contains(rf"\b{re.escape(w)}\b").any(), (cats[c], w)
    named = {cats[c]: n for c, n in names.items()}
    assert "money" in named["money"] and "history" in named["history"]
    assert "soccer" in named["sports"]


def test_empty_texts_still_named_from_the_others():
    texts = ["apple banana", "", None, "apple cherry", "zebra yak", "", "zebra lion"]
    labels = np.array([0, 0, 0, 0, 1, 1, -1])
    names = keyword_names(texts, labels, n_keywords=1)[0]
    # cluster 1: "yak" and "zebra" tie (the unclustered row does not count); ties go alphabetically
    assert names == {0: "apple", 1: "yak", -1: UNCLUSTERED_NAME}
    # a cluster whose texts are all empty gets a placeholder, never an empty name
    assert keyword_names(["", "", "x y"], np.array([0, 0, 1]))[0][0] == "Cluster 0"


def test_non_english_names():
    texts = ["кошка спит дома", "кошка ест рыбу", "東京 大阪 東京", "東京 京都"]
    names = keyword_names(texts, np.array([0, 0, 1, 1]), n_keywords=1)[0]
    assert names == {0: "кошка", 1: "東京"}


def test_value_names():
    labels = np.array([0, 0, 0, 1, 1, -1])
    vals = ["a", "a", "b", "c", None, "a"]
    assert value_names(vals, labels)[0] == {0: "a (67%), b (33%)", 1: "c (100%)", -1: UNCLUSTERED_NAME}
    nums = np.arange(100.0)
    assert value_names(nums, np.zeros(100, int))[0] == {0: "24.8 to 74.2"}


# ------------------------------------------------------------------ density


def test_density_integrates_to_one_and_peaks_at_the_blobs():
    X, _ = _blobs(n_per=2000)
    g = density_grid(X, grid_size=128)
    cell = (g.x[1] - g.x[0]) * (g.y[1] - g.y[0])
    assert g.density.sum() * cell == pytest.approx(1.0, abs=0.01)
    iy, ix = np.unravel_index(np.argmax(g.density), g.density.shape)
    assert min(np.hypot(g.x[ix] - cx, g.y[iy] - cy) for cx, cy in ((0, 0), (10, 0), (0, 10))) < 0.5
    assert g.levels == sorted(g.levels) and len(g.levels) == 4
    # the 90 % region (density >= lowest level) holds about 90 % of the mass
    mass = g.density[g.density >= g.levels[0]].sum() * cell
    assert mass == pytest.approx(0.9, abs=0.02)


def test_density_matches_the_exact_gaussian_kde():
    """Binned + filtered equals the exact KDE sum up to the binning error (a few %)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 2))
    g = density_grid(X, grid_size=200, bandwidth=0.05)
    bw = 0.05 * (X.max(0) - X.min(0)).max()
    for i, j in ((100, 100), (90, 120), (110, 70)):
        d2 = ((X - [g.x[j], g.y[i]]) ** 2).sum(1)
        exact = np.exp(-d2 / (2 * bw**2)).sum() / (len(X) * 2 * np.pi * bw**2)
        assert g.density[i, j] == pytest.approx(exact, rel=0.05)


def test_density_bad_input():
    with pytest.raises(InvalidInputError, match=r"shape \(n, 2\)"):
        density_grid(np.zeros((5, 3)))
    with pytest.raises(InvalidParameterError, match="grid_size must be an integer in"):
        density_grid(np.zeros((5, 2)), grid_size=8)
    g = density_grid(np.zeros((50, 2)))  # identical points: a finite peak at the point
    assert np.isfinite(g.density).all() and g.density.max() > 0


# ------------------------------------------------------------------ linked filters


@pytest.fixture
def table_path(tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    df = pd.DataFrame({
        "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        "size": rng.uniform(0, 10, n),
        "id": [f"u{i}" for i in rng.integers(0, 100_000, n)],
        "_row": np.arange(n, dtype=np.int64),
    })
    df.loc[::100, "colour"] = None
    path = tmp_path / "table.parquet"
    df.to_parquet(path, index=False)
    return path, df


def test_facets_cross_filter(table_path):
    path, df = table_path
    flt = [{"kind": "category", "column": "colour", "values": ["red"]},
           {"kind": "range", "column": "size", "low": 2.0, "high": 5.0}]
    fc = facet_counts(path, ["colour", "size"], filters=flt, bins=10)
    red = df["colour"] == "red"
    mid = df["size"].between(2.0, 5.0)
    assert fc.n_rows == 5000 and fc.n_selected == int((red & mid).sum())
    # the colour chart counts rows passing the *size* filter only
    colour = fc.facets["colour"].counts.set_index("value")["count"]
    assert colour["red"] == int((red & mid).sum())
    assert colour["blue"] == int(((df["colour"] == "blue") & mid).sum())
    assert colour["(missing)"] == int((df["colour"].isna() & mid).sum())
    # the size histogram counts red rows, bins over the full range
    size = fc.facets["size"].counts
    assert size["count"].sum() == int(red.sum())
    assert size["low"].iloc[0] == pytest.approx(df["size"].min())
    assert size["high"].iloc[-1] == pytest.approx(df["size"].max())
    exp, _ = np.histogram(df.loc[red, "size"], bins=10, range=(df["size"].min(), df["size"].max()))
    np.testing.assert_array_equal(size["count"].to_numpy(), exp)


def test_facets_row_selection_and_top_other(table_path):
    path, df = table_path
    rows = np.arange(0, 5000, 2)
    fc = facet_counts(path, ["id"], rows=rows, top=20)
    f = fc.facets["id"]
    expect = df.loc[rows, "id"].value_counts()
    assert len(f.counts) == 21 and f.counts["value"].iloc[-1] == "(other)"
    assert f.counts["count"].sum() == len(rows) and f.n_distinct == len(expect)
    assert f.counts["count"].iloc[0] == expect.iloc[0]
    np.testing.assert_array_equal(
        filtered_rows(path, rows=rows, filters=[{"kind": "category", "column": "colour",
                                                 "values": ["blue"]}]),
        df.index[(df.index % 2 == 0) & (df["colour"] == "blue")].to_numpy())
    blue = {"kind": "category", "column": "colour", "values": ["blue"]}
    both = facet_counts(path, ["colour"], rows=rows, filters=[blue], return_rows=True)
    np.testing.assert_array_equal(both.rows, filtered_rows(path, rows=rows, filters=[blue]))
    sub = filtered_table(path, rows=[3, 1], columns=["colour"])
    assert sub.columns.tolist() == ["_row", "colour"] and sub["_row"].tolist() == [1, 3]


def test_facets_hundred_thousand_distinct_values(tmp_path):
    keys = [f"k{i:06d}" for i in range(100_000)] + ["k000007"] * 10  # 100,000 distinct values
    df = pd.DataFrame({"key": keys, "_row": np.arange(len(keys))})
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=False)
    f = facet_counts(path, ["key"], top=20).facets["key"]
    assert len(f.counts) == 21 and f.n_distinct == 100_000 and f.n_counted == 100_010
    assert f.counts.iloc[0].tolist() == ["k000007", 11]
    assert f.counts["value"].iloc[1:20].tolist() == [f"k{i:06d}" for i in range(20) if i != 7]
    assert f.counts.iloc[-1].tolist() == ["(other)", 100_010 - 11 - 19]


def test_facets_bad_input(table_path):
    path, _ = table_path
    with pytest.raises(InvalidParameterError, match=r"column 'nope' is not in the dataset"):
        facet_counts(path, ["nope"])
    with pytest.raises(InvalidParameterError, match="range filter needs a numeric column; 'colour'"):
        facet_counts(path, ["size"], filters=[{"kind": "range", "column": "colour", "low": 1}])
    with pytest.raises(InvalidParameterError, match=r"selected row ids must be in \[0, 4999\]"):
        facet_counts(path, ["size"], rows=[5000])


# ------------------------------------------------------------------ export


def test_table_bytes_round_trip():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "é"]})
    assert pd.read_csv(io.BytesIO(table_bytes(df, "csv"))).equals(df)
    assert pd.read_parquet(io.BytesIO(table_bytes(df, "parquet"))).equals(df)
    with pytest.raises(InvalidParameterError, match=r"format must be one of \['csv', 'parquet'\]"):
        table_bytes(df, "xlsx")


def test_assignments_frame():
    a = assignments_frame(np.array([1, -1, 0, 1]), {0: "zero", 1: "one", -1: UNCLUSTERED_NAME})
    assert a["cluster_name"].tolist() == ["one", "Unclustered", "zero", "one"]
    assert a["_row"].tolist() == [0, 1, 2, 3]
    with pytest.raises(InvalidInputError, match=r"clusters \[1\] have no name"):
        assignments_frame(np.array([0, 1]), {0: "zero"})


def test_offline_html_is_self_contained():
    x = np.array([0.0, 1.0, 2.0], np.float32)
    labels = pd.DataFrame({"x": [0.5], "y": [0.5], "name": ["a </script> name"], "n_rows": [2]})
    doc = offline_map_html(x, x, np.array([0, 1, 1]), ["#ff0000", "#00ff00"],
                           legend=["A", "B"], labels=labels, title="T")
    assert "http://" not in doc and "https://" not in doc and "<script src" not in doc
    assert doc.count("</script>") == 2  # the name cannot close the data block
    import base64
    import json
    data = json.loads(doc.split('type="application/json">')[1].split("</script>")[0])
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(data["x"]), "<f4"), x)
    assert data["labels"][0]["name"] == "a </script> name"
    with pytest.raises(InvalidInputError, match=r"colour indices must be in \[0, 1\]"):
        offline_map_html(x, x, np.array([0, 1, 2]), ["#ff0000", "#00ff00"])


# ------------------------------------------------------------------ share


def test_view_state_round_trip():
    v = ViewState(dataset="0123456789abcdef", projection="fedcba9876543210", color="cluster",
                  filters=[{"kind": "category", "column": "digit", "values": ["3"]}],
                  selection={"box": [{"x": [0, 1], "y": [2, 3]}]}, clustering="00000000000000aa",
                  level=2)
    q = view_to_query(v)
    assert all(isinstance(s, str) for s in q.values())
    back, msgs = view_from_query(q)
    assert back == v and msgs == []
    assert view_to_query(ViewState()) == {}


def test_view_from_bad_query():
    st, msgs = view_from_query({"dataset": "0123456789abcdef", "filters": "[{oops", "level": "two",
                                "sel": "[1]"})
    assert st.dataset == "0123456789abcdef" and st.filters == [] and st.level is None
    assert len(msgs) == 3 and "filters could not be read" in msgs[1]


def test_link_to_a_dataset_that_no_longer_exists():
    v = ViewState(dataset="0123456789abcdef", color="digit", level=1)
    default = ViewState(dataset="aaaaaaaaaaaaaaaa")
    shown, msgs = resolve_view(v, ["aaaaaaaaaaaaaaaa"], lambda a: None, default)
    assert shown == default
    assert msgs == ["The link's dataset 0123456789abcdef no longer exists in this workspace; "
                    "showing the default view. Add the dataset again to reopen the link."]
    v2 = ViewState(dataset="aaaaaaaaaaaaaaaa", projection="1111111111111111",
                   clustering="2222222222222222", level=3)
    shown, msgs = resolve_view(v2, ["aaaaaaaaaaaaaaaa"],
                               {"1111111111111111": "aaaaaaaaaaaaaaaa"}.get)
    assert shown.projection == "1111111111111111" and shown.clustering is None and shown.level is None
    assert "clustering 2222222222222222 no longer exists" in msgs[0]


# ------------------------------------------------------------------ name edits


def test_name_edits_are_stored_atomically(tmp_path):
    edits = NameEdits(tmp_path)
    aid = "0123456789abcdef"
    assert edits.get(aid, 0) == {}
    assert edits.set(aid, 0, {3: " sevens ", 1: "ones"}) == {3: "sevens", 1: "ones"}
    assert edits.set(aid, 0, {1: ""}) == {3: "sevens"}  # empty reverts
    assert NameEdits(tmp_path).get(aid, 0) == {3: "sevens"} and edits.get(aid, 1) == {}
    assert [p.name for p in (tmp_path / "cluster_names").iterdir()] == [f"{aid}.json"]
    with pytest.raises(InvalidParameterError, match="at most 200 characters"):
        edits.set(aid, 0, {0: "x" * 201})
    with pytest.raises(NotFoundError, match="not an artifact id"):
        edits.get("../etc", 0)
