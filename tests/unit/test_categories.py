"""One rule for counting and colouring categories in every view (map, globe, graph)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.globe import categorical_colors
from components.map.encode import encode_color
from components.scatter import category_plan, scatter_figure


def test_the_same_column_has_the_same_category_count_in_every_view():
    """Issue 17 item 26: 56 categories beside the globe and 57 beside the map (missing
    values counted by one view only, and the map counted its drawn sample)."""
    rng = np.random.default_rng(0)
    values = pd.Series([f"c{i}" for i in rng.integers(0, 56, 600)], name="country",
                       dtype=object)
    values[::7] = None  # missing values are one category, "(missing)", everywhere
    n_expected = values.nunique() + 1
    df = pd.DataFrame({"_row": np.arange(600), "x": rng.normal(size=600),
                       "y": rng.normal(size=600), "country": values})
    keep, note = category_plan(values)
    assert f"has {n_expected} categories (missing values count as one)" in note
    assert len(keep) == 30 and "(missing)" in keep  # the most frequent category
    cmap, globe_note = categorical_colors(values)
    assert globe_note == note and list(cmap) == keep
    _, map_note = scatter_figure(df, color="country")
    assert map_note == note
    # a drawn sample is coloured by the whole column's categories
    sample = df.iloc[:40]
    fig, sample_note = scatter_figure(sample, color="country", all_values=df["country"])
    assert sample_note == note
    assert {t.name for t in fig.data} <= {*keep, "other"}
    graph_color = encode_color(df["country"], np.arange(600), label="country")  # graph and map
    assert graph_color.note == note
