"""Globe page with AppTest: geo datasets on the globe beside their map, a trained location
encoder's heat map, SatCLIP checkpoints, and coordinate errors shown as messages."""

import json

import numpy as np
import pandas as pd

from tests.app.conftest import captions, map_data, run_until
from tests.geo_support import satclip_checkpoint_bytes


def _layers(at) -> dict:
    charts = at.get("deck_gl_json_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.json)
    assert spec["views"] == [{"@@type": "_GlobeView", "controller": True}]
    assert "mapStyle" not in spec and "mapProvider" not in spec  # no base map, nothing fetched
    return {layer["id"]: layer for layer in spec["layers"]}


def _globe_image(layers: dict) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    url = layers["globe"]["image"]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def _open_globe_with(app, bundled_key: str):
    at = app
    at.switch_page("views/globe.py")
    at.run()
    assert not at.exception
    at.session_state["globe_proj"] = "pca"  # the map beside the globe: PCA is quick
    at.button(key=f"globe_add_{bundled_key}").click()
    return run_until(at, lambda a: "Drag a box or lasso here" in captions(a) or a.exception
                     or a.error)


def test_airports_globe_and_encoder_heat_map(app):
    at = app
    at.switch_page("views/globe.py")
    at.run()
    assert not at.exception
    assert any("has no latitude/longitude columns" in i.value for i in at.info)  # digits
    at = _open_globe_with(at, "airports")
    assert not at.exception and not at.error
    layers = _layers(at)
    assert len(layers["points"]["data"]) == 3376 and layers["points"]["pickable"]
    assert layers["globe"]["@@type"] == "BitmapLayer"  # the opaque sphere hiding the far side
    assert _globe_image(layers).shape == (2, 4, 3)  # plain: no heat map yet
    assert "3,376 of 3,376 points drawn" in captions(at)
    assert any("supply a SatCLIP checkpoint file" in i.value for i in at.info)

    at.number_input(key="enc-max_epochs").set_value(25)
    next(b for b in at.button if b.label == "Train the location encoder").click()
    at = run_until(at, lambda a: any(m.label.startswith("Accuracy") for m in a.metric)
                   or a.exception or a.error)
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == "56"  # 'state' of the airports (12 rows without one)
    assert float(metrics["Accuracy (all labelled rows)"].rstrip("%")) > 40  # majority: 7.8%
    heat = _globe_image(_layers(at))
    assert heat.shape == (90, 180, 3)  # the 2-degree grid painted on the sphere
    assert len(np.unique(heat.reshape(-1, 3), axis=0)) > 30  # states and confidences
    assert "Heat map: the trained encoder" in captions(at)

    at.button(key="enc_show_derived").click()
    at = run_until(at, lambda a: "× 64 dimensions" in captions(a) and "principal components"
                   in captions(a) and "Drag a box or lasso here" in captions(a)
                   or a.exception or a.error)
    assert not at.exception and not at.error
    colors = np.array([p["c"] for p in _layers(at)["points"]["data"]])
    assert len(colors) == 3376 and len(np.unique(colors[:, :3], axis=0)) > 100  # PCs → RGB
    data = map_data(at, "globe-map-", tables=True)  # the map: the same colours, on 216 palette entries
    assert data["color_kind"] == "rgb" and data["coords"]["row"].to_pylist() == list(range(3376))
    palette = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in data["palette"]])
    on_map = palette[data["color"]["c"].to_numpy()]
    assert np.abs(on_map - colors[:, :3]).max() <= 26 and len(np.unique(on_map, axis=0)) > 50


def test_world_cities_globe(app):
    at = _open_globe_with(app, "world_cities")
    assert not at.exception and not at.error
    points = _layers(at)["points"]
    assert len(points["data"]) == 34006
    assert "34,006 of 34,006 points drawn" in captions(at)
    assert at.selectbox(key="globe_color-" + at.session_state["dataset_id"]).value == "continent"


def _upload(at, df: pd.DataFrame, name: str, vector_columns=None):
    at.switch_page("views/upload.py")
    at.run()
    at.file_uploader(key="upload_file").upload(name, df.to_csv(index=False).encode(), "text/csv")
    at.run()
    if vector_columns is not None:
        at.multiselect(key="upload_cols").set_value(vector_columns)
    at.button(key="upload_add").click()
    at.run()
    return at


def test_coordinate_errors_are_messages(app):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"lat": rng.uniform(-60, 60, 40), "lon": rng.uniform(-170, 170, 40),
                       "a": rng.normal(size=40), "b": rng.normal(size=40)})
    bad = df.copy()
    bad.loc[3, "lat"] = 95.0
    at = _upload(app, bad, "bad_lat.csv")
    assert not at.exception
    assert "outside [-90, 90]" in at.error[0].value and "row 3" in at.error[0].value

    wrapped = df.copy()
    wrapped.loc[[0, 1], "lon"] = [190.0, 200.0]
    at = _upload(at, wrapped, "wrapped.csv")
    assert not at.exception and not at.error
    notes = " ".join(i.value for i in at.info)
    assert "2 longitudes were outside [-180, 180)" in notes and "'lat' and 'lon'" in notes

    gaps = df.copy()
    gaps.loc[5, "lat"] = np.nan
    at = _upload(at, gaps, "gaps.csv", vector_columns=["a", "b"])
    assert not at.exception and not at.error
    assert any("were not used as coordinates" in i.value for i in at.info)
    at.switch_page("views/globe.py")
    at.run()
    assert not at.exception
    assert "cannot be shown" in at.error[0].value and "missing" in at.error[0].value


def test_satclip_checkpoint_embeds_every_row(app):
    at = _open_globe_with(app, "airports")
    at.file_uploader(key="satclip_upload").upload("junk.ckpt", b"not a checkpoint")
    at.run()
    at.button(key="satclip_add").click()
    at.run()
    assert not at.exception
    assert any("not a usable SatCLIP checkpoint" in e.value for e in at.error)

    at.file_uploader(key="satclip_upload").upload("tiny-satclip.ckpt", satclip_checkpoint_bytes())
    at.run()
    at.button(key="satclip_add").click()
    at.run()
    assert not at.exception and not at.error
    assert "L = 5, 8-D embeddings" in at.success[0].value
    at.button(key="satclip_run").click()
    at = run_until(at, lambda a: any("SatCLIP embedding of" in s.value for s in a.success)
                   or a.exception or a.error)
    assert not at.exception and not at.error
    at.button(key="satclip_show").click()
    at = run_until(at, lambda a: "× 8 dimensions" in captions(a) or a.exception or a.error)
    assert not at.exception and not at.error
