"""Arrow encoding of the WebGL map (components/map/encode.py): round trip, dtypes, bytes a point."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from components.map.encode import (
    MAX_CATEGORIES, MISSING, OTHER, OTHER_COLOR, encode_color, encode_coords, fold_categories,
    ipc_bytes, visible_rows,
)


def _read(table: pa.Table) -> pa.Table:
    return pa.ipc.open_stream(ipc_bytes(table)).read_all()


def test_coords_round_trip_dtypes_and_nonfinite_counted():
    rng = np.random.default_rng(1)
    n = 5_000
    rows = rng.permutation(n) + 7  # unsorted ids: the table comes sorted by row
    x, y = rng.normal(size=n), rng.normal(size=n)
    x[[3, 10]] = np.nan
    y[20] = np.inf
    x[30] = -np.inf
    enc = encode_coords("proj-1", rows, x, y)
    back = _read(enc.table)
    assert back.schema == pa.schema([("x", pa.float32()), ("y", pa.float32()), ("row", pa.uint32())])
    assert (enc.n_rows, enc.n_nonfinite, enc.n_drawn, enc.n_sampled_out) == (n, 4, n - 4, 0)
    r = back["row"].to_numpy()
    assert np.all(np.diff(r.astype(np.int64)) > 0)
    bad = set(rows[[3, 10, 20, 30]].tolist())
    assert bad.isdisjoint(r.tolist()) and len(r) == n - 4
    # each drawn point keeps its own coordinates (float32 of the input)
    np.testing.assert_array_equal(back["x"].to_numpy(), x[enc.positions].astype(np.float32))
    np.testing.assert_array_equal(rows[enc.positions], r)
    assert enc.coords_id == "proj-1"
    assert enc.bounds[0] == pytest.approx(np.nanmin(np.where(np.isfinite(x) & np.isfinite(y), x, np.nan)),
                                          rel=1e-6)


def test_bytes_per_point_at_most_16():
    n = 200_000
    rng = np.random.default_rng(2)
    enc = encode_coords("p", np.arange(n), rng.normal(size=n), rng.normal(size=n))
    coords_b = len(ipc_bytes(enc.table))
    cat = encode_color(pd.Series(rng.integers(0, 10, n)), enc.positions, "label")
    val = encode_color(pd.Series(rng.normal(size=n)), enc.positions, "score")
    assert coords_b / n <= 12.01
    assert (coords_b + len(ipc_bytes(cat.table))) / n <= 13.01
    assert (coords_b + len(ipc_bytes(val.table))) / n <= 16.01


def test_budget_samples_and_changes_the_id():
    n = 10_000
    x = np.linspace(0, 1, n)
    enc = encode_coords("p", np.arange(n), x, x, budget=1_000)
    assert enc.n_drawn == 1_000 and enc.n_sampled_out == 9_000
    assert enc.coords_id != "p"
    assert encode_coords("p", np.arange(n), x, x, budget=1_000).coords_id == enc.coords_id


def test_category_codes_round_trip():
    labels = pd.Series(["b", "a", None, "b", "10", "2", "b"])
    enc = encode_coords("p", np.arange(7), np.arange(7.0), np.arange(7.0))
    col = encode_color(labels, enc.positions, "lab")
    back = _read(col.table)["c"].combine_chunks()
    assert back.type == pa.dictionary(pa.uint8(), pa.string())
    assert col.categories == ("2", "10", MISSING, "a", "b")  # numbers by value, then names
    assert back.to_pylist() == ["b", "a", MISSING, "b", "10", "2", "b"]
    assert col.counts == (1, 1, 1, 1, 3)
    assert len(set(col.palette)) == 5 and OTHER_COLOR not in col.palette


def test_many_categories_top_30_plus_other():
    rng = np.random.default_rng(3)
    n = 100_000
    # 100,000 distinct ids plus 30 frequent ones (40 rows each)
    frequent = np.repeat([f"f{i}" for i in range(MAX_CATEGORIES)], 40)
    values = pd.Series(np.concatenate([frequent, [f"u{i}" for i in range(n)]]))
    enc = encode_coords("p", np.arange(len(values)), rng.normal(size=len(values)),
                        rng.normal(size=len(values)))
    col = encode_color(values, enc.positions, "id")
    assert len(col.categories) == MAX_CATEGORIES + 1 and col.categories[-1] == OTHER
    assert set(col.categories[:-1]) == {f"f{i}" for i in range(MAX_CATEGORIES)}
    assert col.n_folded == n and col.counts[-1] == n and col.palette[-1] == OTHER_COLOR
    assert f"{n + MAX_CATEGORIES:,} categories" in col.note
    assert sum(col.counts) == len(values)
    codes = _read(col.table)["c"].combine_chunks().indices.to_numpy()
    assert codes.dtype == np.uint8 and codes.max() == MAX_CATEGORIES


def test_folding_matches_the_plotly_views_rule():
    """Issue 17 item 26: the map and every other view count and keep the same categories."""
    from components.scatter import category_plan

    values = pd.Series([f"k{i % 45}" for i in range(900)] + [None] * 5, name="k")
    cats, folded, note = fold_categories(values)
    keep, plan_note = category_plan(values)
    assert list(cats.categories) == [*keep, OTHER] and note == plan_note
    assert folded == 46 - MAX_CATEGORIES and "46 categories" in note


def test_values_float32_and_hidden_rows():
    v = pd.Series([0.5, np.nan, 2.0, -1.0])
    col = encode_color(v, np.array([0, 1, 2, 3]), "score")
    assert col.kind == "value" and col.table["c"].type == pa.float32()
    assert (col.vmin, col.vmax) == (-1.0, 2.0)
    assert np.isnan(_read(col.table)["c"].to_numpy(zero_copy_only=False)[1])
    assert visible_rows(col, {"x"}) is None
    lab = encode_color(pd.Series(["a", "b", "a", "c"]), np.arange(4), "lab")
    np.testing.assert_array_equal(visible_rows(lab, ["a"]), [False, True, False, True])
    assert visible_rows(lab, []) is None
    # the colour id follows the content: same values, same id; other values, other id
    assert encode_color(pd.Series(["a", "b", "a", "c"]), np.arange(4), "lab").color_id == lab.color_id
    assert encode_color(pd.Series(["a", "b", "b", "c"]), np.arange(4), "lab").color_id != lab.color_id


def test_one_point_and_no_finite_point():
    one = encode_coords("p", [0], [1.0], [2.0])
    assert one.n_drawn == 1 and one.bounds == (1.0, 1.0, 2.0, 2.0)
    none = encode_coords("p", [0, 1], [np.nan, 1.0], [0.0, np.inf])
    assert none.n_drawn == 0 and none.n_nonfinite == 2 and len(_read(none.table)) == 0
    with pytest.raises(ValueError):
        encode_coords("p", [-1], [0.0], [0.0])


# ----------------------------------------------------------------------------- layers

def test_labels_largest_first_without_unclustered_nor_nonfinite_centres():
    from components.map.encode import encode_labels

    centres = pd.DataFrame({"cluster": [0, 1, 2, 3], "x": [0.5, 1.0, np.nan, 3.0],
                            "y": [0.25, -1.0, 2.0, 4.0]})
    names = pd.DataFrame({"cluster": [0, 1, 2, 3, -1], "name": ["a", "b", "c", "d", "Unclustered"],
                          "n_rows": [10, 30, 50, 10, 99]})
    assert encode_labels(centres, names) == [[1.0, -1.0, "b", 30], [0.5, 0.25, "a", 10],
                                             [3.0, 4.0, "d", 10]]
    assert encode_labels(centres, names, budget=1) == [[1.0, -1.0, "b", 30]]


def test_labels_name_the_missing_column():
    from components.map.encode import encode_labels

    with pytest.raises(ValueError, match=r"cluster names lack the columns \['n_rows'\]"):
        encode_labels(pd.DataFrame({"cluster": [0], "x": [0.0], "y": [0.0]}),
                      pd.DataFrame({"cluster": [0], "name": ["a"]}))


def test_density_one_byte_a_cell_round_trip_and_extent():
    from components.clusters import mass_above
    from components.map.encode import encode_density

    x = np.linspace(-2.0, 2.0, 41)  # cells 0.1 wide
    y = np.linspace(0.0, 3.0, 31)
    d = np.exp(-(x[None, :] ** 2 + (y[:, None] - 1.0) ** 2))
    d[0, :] = 0.0  # an empty row: no mass
    enc = encode_density(d, x, y)
    back = _read(enc.table)
    assert back.schema == pa.schema([("m", pa.uint8())])
    m = back["m"].to_numpy().reshape(enc.shape)
    assert enc.shape == (31, 41)
    assert enc.extent == pytest.approx((-2.05, 2.05, -0.05, 3.05))
    assert m[10, 20] == m.min() <= 1 and (m[0] == 255).all()  # the peak at (0, 1); no mass below
    assert np.abs(m.astype(float) - 255 * mass_above(d)).max() <= 0.5
    assert len(ipc_bytes(enc.table)) < 31 * 41 + 1_000  # one byte a cell, plus the schema
    assert encode_density(d, x, y).density_id == enc.density_id
    assert encode_density(d * 2, x, y).density_id == enc.density_id  # the same shares
    assert encode_density(d, x + 1, y).density_id != enc.density_id  # moved: redrawn


@pytest.mark.parametrize("density, x, y, message", [
    (np.ones((3, 4)), np.arange(3.0), np.arange(3.0), r"must be \(len\(y\), len\(x\)\)"),
    (np.ones((3, 3)), np.array([0.0, 2.0, 1.0]), np.arange(3.0), "must increase"),
    (np.full((3, 3), np.nan), np.arange(3.0), np.arange(3.0), "NaN or infinite"),
    (-np.ones((3, 3)), np.arange(3.0), np.arange(3.0), "negative"),
])
def test_density_bad_grid_is_a_clear_error(density, x, y, message):
    from components.map.encode import encode_density

    with pytest.raises(ValueError, match=message):
        encode_density(density, x, y)


def test_edges_point_indices_undrawable_ends_and_budget():
    from components.map.encode import encode_edges

    rows = np.array([5, 3, 9, 7])  # unsorted: the table is by row (3, 5, 7, 9)
    x = np.array([0.0, 1.0, np.nan, 3.0])  # row 9 is not drawn
    enc = encode_coords("g", rows, x, np.zeros(4))
    edges = encode_edges([3, 5, 9, 7, 42], [5, 7, 3, 3, 3], enc, budget=10)
    back = _read(edges.table)
    assert back.schema == pa.schema([("s", pa.uint32()), ("t", pa.uint32())])
    # rows 3, 5, 7 are points 0, 1, 2; the edges with row 9 or the unknown row 42 are dropped
    assert back["s"].to_pylist() == [0, 1, 2] and back["t"].to_pylist() == [1, 2, 0]
    assert (edges.n_edges, edges.n_drawn, edges.n_undrawable) == (5, 3, 2)
    assert edges.caption == "3 of 5 edges drawn (2 have an end not drawn)"
    assert len(ipc_bytes(edges.table)) < 8 * 3 + 600  # 8 bytes an edge, plus the schema
    sparse = encode_coords("g", rows * 10**8, x, np.zeros(4))  # ids far apart: no lookup table
    same = encode_edges(np.array([3, 5, 9, 7, 42]) * 10**8, np.array([5, 7, 3, 3, 3]) * 10**8, sparse, 10)
    assert same.table.equals(edges.table) and same.n_undrawable == 2


def test_edges_budget_is_an_honest_uniform_sample():
    from components.map.encode import encode_edges

    n = 1_000
    enc = encode_coords("g", np.arange(n), np.arange(n, dtype=float), np.zeros(n))
    rng = np.random.default_rng(0)
    s, t = rng.integers(0, n, 5_000), rng.integers(0, n, 5_000)
    edges = encode_edges(s, t, enc, budget=1_200)
    assert (edges.n_edges, edges.n_drawn, edges.n_undrawable) == (5_000, 1_200, 0)
    assert edges.caption.startswith("1,200 of 5,000 edges drawn (a uniform sample")
    got = set(zip(edges.table["s"].to_pylist(), edges.table["t"].to_pylist()))
    assert got <= set(zip(s.tolist(), t.tolist()))
    assert encode_edges(s, t, enc, budget=1_200).edges_id == edges.edges_id
    with pytest.raises(ValueError, match="differ in length"):
        encode_edges([1, 2], [1], enc, budget=10)


def test_rgb_colours_on_216_palette_entries():
    from components.map.encode import encode_rgb

    rgb = np.array([[0, 0, 0], [255, 255, 255], [250, 10, 128], [51, 102, 153]], dtype=np.uint8)
    enc = encode_rgb(rgb, np.array([3, 0, 1, 2]), label="PCs")
    assert enc.kind == "rgb" and len(enc.palette) == 216 and enc.categories == ()
    codes = _read(enc.table)["c"].to_numpy()
    assert _read(enc.table).schema == pa.schema([("c", pa.uint8())])
    got = np.array([[int(enc.palette[k][i:i + 2], 16) for i in (1, 3, 5)] for k in codes])
    np.testing.assert_array_equal(got, [[51, 102, 153], [0, 0, 0], [255, 255, 255], [255, 0, 153]])
    assert np.abs(got - rgb[[3, 0, 1, 2]].astype(int)).max() <= 26
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        encode_rgb(np.zeros((4, 4)), np.arange(4))
