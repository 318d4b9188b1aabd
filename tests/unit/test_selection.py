import numpy as np
import pandas as pd

from components.selection import draw_sample, points_in_polygon, rows_in_selection


def test_polygon_square_and_triangle():
    x = np.array([0.5, 1.5, 0.2, 0.9])
    y = np.array([0.5, 0.5, 0.7, 0.05])
    inside = points_in_polygon(x, y, [0, 1, 1, 0], [0, 0, 1, 1])
    assert inside.tolist() == [True, False, True, True]
    tri = points_in_polygon(x, y, [0, 1, 0], [0, 0, 1])  # below x + y = 1
    assert tri.tolist() == [False, False, True, True]


def test_selection_covers_undrawn_rows():
    rng = np.random.default_rng(0)
    coords = pd.DataFrame({"_row": np.arange(10_000), "x": rng.uniform(0, 1, 10_000),
                           "y": rng.uniform(0, 1, 10_000)})
    sel = rows_in_selection(coords, {"box": [{"x": [0.0, 0.5], "y": [0.0, 0.5]}], "lasso": [], "points": []})
    expected = coords[(coords.x <= 0.5) & (coords.y <= 0.5)]["_row"].to_numpy()
    np.testing.assert_array_equal(sel, expected)
    drawn = draw_sample(10_000, 1_000)
    assert len(drawn) == 1_000 and len(np.unique(drawn)) == 1_000
    assert len(np.intersect1d(sel, drawn)) < len(sel)  # the undrawn rows are selected too
    clicked = {"box": [], "lasso": [], "points": [{"customdata": 7}, {"customdata": 1}]}
    np.testing.assert_array_equal(rows_in_selection(coords, clicked), [1, 7])
    assert rows_in_selection(coords, {"box": [], "lasso": [], "points": []}) is None
    np.testing.assert_array_equal(draw_sample(50, 100), np.arange(50))
