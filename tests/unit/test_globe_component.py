"""components/globe.py: colours, sizes, and the deck it builds (pure, no browser)."""

import json

import numpy as np
import pandas as pd

from components.globe import (
    GLOBE_COLOR,
    categorical_colors,
    continuous_colors,
    embedding_rgb,
    globe_deck,
    point_sizes,
    sphere_image,
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


def _png(data_url: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_sphere_image_paints_heat_cells_north_up():
    plain = _png(sphere_image())
    assert plain.shape[2] == 3 and (plain == GLOBE_COLOR).all()  # opaque globe colour
    heat = pd.DataFrame({"latitude": [89.0, -89.0, 1.0], "longitude": [-179.0, 179.0, 1.0]})
    colors = np.array([[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 128]], np.uint8)
    img = _png(sphere_image(heat, 2.0, colors))
    assert img.shape == (90, 180, 3)
    assert tuple(img[0, 0]) == (255, 0, 0)  # north-west cell: first row, first column
    assert tuple(img[89, 179]) == (0, 255, 0)  # south-east cell
    blended = np.round(np.array(GLOBE_COLOR) * (1 - 128 / 255) + np.array([0, 0, 255]) * 128 / 255)
    assert tuple(img[44, 90]) == tuple(blended.astype(int))  # (1, 1): alpha-blended on the globe
    assert tuple(img[10, 10]) == GLOBE_COLOR


def test_tooltips_are_escaped():
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
    assert list(layers) == ["globe", "graticule", "points", "highlight"]
    assert layers["globe"]["@@type"] == "BitmapLayer"
    assert layers["globe"]["bounds"] == [-180, -90, 180, 90]
    assert _png(layers["globe"]["image"]).shape == (180, 360, 3)  # the 1-degree heat grid
    points = layers["points"]
    assert points["radiusUnits"] == "pixels" and points["getPosition"] == "@@=[lon, lat]"
    assert [(p["lon"], p["lat"]) for p in points["data"]] == [(0.0, 10.0), (90.0, -20.0),
                                                             (-90.0, 30.0)]
    assert [p["_row"] for p in layers["highlight"]["data"]] == [2]
    assert spec["initialViewState"]["latitude"] == 10.0  # the median latitude
