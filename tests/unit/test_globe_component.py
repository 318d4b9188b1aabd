"""components/globe.py: colours, sizes, and the deck it builds (pure, no browser)."""

import json

import numpy as np
import pandas as pd

from components.globe import (
    categorical_colors,
    continuous_colors,
    embedding_rgb,
    globe_deck,
    grid_polygons,
    point_sizes,
    tooltip_fields,
)


def test_embedding_rgb_follows_the_components():
    rng = np.random.default_rng(0)
    pcs = rng.normal(size=(500, 3))
    rgb = embedding_rgb(pcs)
    assert rgb.dtype == np.uint8 and rgb.shape == (500, 3)
    for j in range(3):  # each channel is a monotone function of its component
        order = np.argsort(pcs[:, j])
        assert np.all(np.diff(rgb[order, j].astype(int)) >= 0)
        assert rgb[:, j].min() == 30 and rgb[:, j].max() == 255
    two = embedding_rgb(pcs[:, :2])
    assert (two[:, 2] == 128).all()  # a 2-D embedding: blue is constant


def test_colours_and_sizes():
    s = pd.Series(["b", "a", "b", "c"] + [f"x{i}" for i in range(40)], name="k")
    cmap, note = categorical_colors(s)
    assert len(cmap) == 30 and "43 categories" in note
    assert list(cmap)[:3] == ["a", "b", "c"]  # natural order, like the map's legend
    rgb = continuous_colors([0.0, 5.0, 10.0, np.nan], 0, 10)
    assert tuple(rgb[0]) == (68, 1, 84) and tuple(rgb[2]) == (253, 231, 37)
    assert tuple(rgb[3]) == (170, 170, 170)
    r = point_sizes([0, 25, 100, np.nan], min_px=2, max_px=12)
    assert r[0] == 2 and r[3] == 2 and r[1] < r[2] <= 12


def test_grid_cells_and_tooltips():
    cells = grid_polygons(np.array([-89.0]), np.array([179.0]), 2.0)
    assert cells == [[[178.0, -90.0], [180.0, -90.0], [180.0, -88.0], [178.0, -88.0]]]
    df = pd.DataFrame({"_row": [0, 1], "name": ["<b>x</b>", None]})
    fields, template = tooltip_fields(df, ["name"])
    assert fields["t0"].tolist() == ["&lt;b&gt;x&lt;/b&gt;", "–"]  # escaped; missing shown as –
    assert template == "<b>row {_row}</b><br/>name: {t0}"


def test_globe_deck_spec():
    pts = pd.DataFrame({"_row": [0, 1, 2], "lat": [10.0, -20.0, 30.0], "lng": [0.0, 90.0, -90.0],
                        "name": ["a", "b", "c"]})
    heat = pd.DataFrame({"latitude": [0.5, 1.5], "longitude": [0.5, 0.5]})
    deck = globe_deck(pts, latitude="lat", longitude="lng", colors=np.zeros((3, 3), np.uint8),
                      radii=3.0, tooltip_columns=["name"], highlight=np.array([2]),
                      heat=heat, heat_step=1.0, heat_colors=np.full((2, 4), 9, np.uint8))
    text = deck.to_json()
    assert "\n" not in text  # compact JSON
    spec = json.loads(text)
    assert spec["views"] == [{"@@type": "_GlobeView", "controller": True}]
    assert spec["parameters"] == {"cull": True} and "mapStyle" not in spec
    layers = {layer["id"]: layer for layer in spec["layers"]}
    assert list(layers) == ["globe", "graticule", "heat", "points", "highlight"]
    points = layers["points"]
    assert points["radiusUnits"] == "pixels" and points["getPosition"] == "@@=[lon, lat]"
    assert [(p["lon"], p["lat"]) for p in points["data"]] == [(0.0, 10.0), (90.0, -20.0),
                                                             (-90.0, 30.0)]
    assert [p["_row"] for p in layers["highlight"]["data"]] == [2]
    assert layers["heat"]["data"][0]["p"] == [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    assert spec["initialViewState"]["latitude"] == 10.0  # the median latitude
