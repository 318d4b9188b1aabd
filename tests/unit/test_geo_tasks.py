"""Geo job kinds (location_encoder, satclip_embed), geo uploads and the bundled world cities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backend.datasets.geo import sample_sphere_uniform
from backend.embed.location import ENCODERS, LocationEncoder, load_satclip_location_encoder
from backend.errors import InvalidInputError, InvalidParameterError
from backend.jobs import JobSpec, resolve_spec
from backend.tasks.geo import geo_columns
from tests.geo_support import satclip_checkpoint_bytes


def _quadrant_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    pts = sample_sphere_uniform(n, random_state=seed)
    quadrant = np.where(pts["latitude"] >= 0, "N", "S") + np.where(pts["longitude"] >= 0, "E", "W")
    return pts.assign(quadrant=quadrant, height=np.sin(np.deg2rad(pts["latitude"])) * 100 + 7)


def _add_geo(backend, table: pd.DataFrame, name: str = "quadrants"):
    return backend.store.add_dataset(
        table, table[["latitude", "longitude"]].to_numpy(np.float32), name=name, source="test",
        extra={"latitude": "latitude", "longitude": "longitude"},
    )


def _run(backend, kind, dataset_id, params, timeout=240):
    job = backend.submit(JobSpec(kind, dataset_id, params))
    status = backend.wait(job, timeout)
    assert status.state == "done", status.error
    return job, backend.result(job).to_dict()


def test_encoder_choices_are_the_encoders_own():
    from backend.tasks.geo import LOCATION_ENCODER_PARAMS

    assert LOCATION_ENCODER_PARAMS["encoder"].choices == tuple(ENCODERS)


def test_world_cities_are_bundled():
    from backend.datasets.bundled import load_bundled

    b = load_bundled("world_cities")
    assert len(b.table) == 34006 and b.vectors.shape == (34006, 2)
    assert "population >= 15,000" in b.name and "CC BY 4.0" in b.source
    np.testing.assert_allclose(b.vectors, b.table[["latitude", "longitude"]].to_numpy(), atol=1e-4)
    assert b.extra["latitude"] == "latitude" and b.extra["label_column"] == "continent"
    assert b.table["population"].min() >= 0 and b.table["latitude"].abs().max() <= 90


def test_validate_location_encoder(backend):
    info = _add_geo(backend, _quadrant_table(50))
    _, _, params, _ = resolve_spec(backend.store, JobSpec("location_encoder", info.id,
                                                          {"target_column": "quadrant",
                                                           "grid_step": 5}))
    assert params == {"target_column": "quadrant", "task": "auto", "encoder": "sh", "degree": 10,
                      "hidden": 64, "n_layers": 2, "max_epochs": 200, "learning_rate": 1e-3,
                      "random_state": 0, "grid_step": 5.0, "latitude": "latitude",
                      "longitude": "longitude"}
    for bad, pattern in [({"target_column": "nope"}, "target_column"),
                         ({"target_column": "quadrant", "degree": 41}, "degree"),
                         ({"target_column": "quadrant", "encoder": "fourier"}, "encoder"),
                         ({"target_column": "quadrant", "grid_step": 4}, "grid_step"),
                         ({"target_column": "quadrant", "latitude": "height"}, None)]:
        if pattern is None:  # a valid column name is accepted (the job checks its range)
            resolve_spec(backend.store, JobSpec("location_encoder", info.id, bad))
            continue
        with pytest.raises(InvalidParameterError, match=pattern):
            resolve_spec(backend.store, JobSpec("location_encoder", info.id, bad))
    xy = backend.store.add_dataset(pd.DataFrame({"x": [1.0, 2], "y": [3.0, 4], "k": ["a", "b"]}),
                                   np.eye(2), name="xy", source="test")
    with pytest.raises(InvalidInputError, match="no latitude/longitude"):
        resolve_spec(backend.store, JobSpec("location_encoder", xy.id, {"target_column": "k"}))
    named = backend.store.add_dataset(pd.DataFrame({"Lat": [1.0, 2], "Lng": [3.0, 4]}), np.eye(2),
                                      name="named", source="test")
    assert geo_columns(named) == ("Lat", "Lng")


def test_location_encoder_job_classification(backend):
    table = _quadrant_table(600)
    info = _add_geo(backend, table)
    job, meta = _run(backend, "location_encoder", info.id,
                     {"target_column": "quadrant", "degree": 6, "hidden": 32, "max_epochs": 150,
                      "grid_step": 5})
    assert meta["task"] == "classification" and meta["classes"] == ["NE", "NW", "SE", "SW"]
    assert meta["metrics"]["accuracy"] > 0.9 and meta["metrics"]["n_classes"] == 4
    assert meta["n_train"] == 600 and meta["n_features_in"] == 36

    grid = backend.artifact_table(job, "grid.parquet")
    assert len(grid) == 36 * 72 and list(grid.columns) == ["latitude", "longitude", "predicted",
                                                           "confidence"]
    truth = (np.where(grid["latitude"] >= 0, "N", "S")
             + np.where(grid["longitude"] >= 0, "E", "W"))
    away = (grid["latitude"].abs() > 20) & (grid["longitude"].abs().between(20, 160))
    assert (grid["predicted"][away] == truth[away]).mean() > 0.9
    assert grid["confidence"].between(0.25, 1.0).all()

    # the stored model reproduces the predictions; the embedding is its last hidden layer
    model = LocationEncoder.load(backend.store.artifact_path(job, "model.safetensors"))
    np.testing.assert_array_equal(model.predict(grid["latitude"], grid["longitude"]),
                                  grid["predicted"].to_numpy())
    derived = backend.dataset(meta["derived_dataset"])
    assert (derived.n_rows, derived.n_dims) == (600, 32)
    assert derived.extra["derived_from"] == info.id and derived.extra["latitude"] == "latitude"
    assert derived.extra["label_column"] == "quadrant"
    assert {"quadrant", "encoder_prediction", "encoder_confidence"} <= set(derived.columns)
    emb = backend.store.vectors(derived.id)
    np.testing.assert_allclose(emb, model.transform(table["latitude"], table["longitude"]),
                               atol=1e-5)
    # the Map page's jobs run on the new dataset unchanged
    _run(backend, "pca", derived.id, {"n_components": 3})


def test_location_encoder_job_regression_and_wrapping(backend):
    table = _quadrant_table(400, seed=1)
    table.loc[:9, "longitude"] %= 360.0  # 0..360 convention on some rows: wrapped by the job
    info = _add_geo(backend, table, "heights")
    job, meta = _run(backend, "location_encoder", info.id,
                     {"target_column": "height", "encoder": "spherecplus", "degree": 4,
                      "hidden": 32, "max_epochs": 150, "grid_step": 10})
    assert meta["task"] == "regression" and meta["n_longitudes_wrapped"] == int(
        (table.loc[:9, "longitude"] >= 180).sum())
    assert meta["metrics"]["r2"] > 0.9
    lo, hi = meta["target_range"]
    assert -93 < lo < -80 and 80 < hi < 107
    grid = backend.artifact_table(job, "grid.parquet")
    expected = np.sin(np.deg2rad(grid["latitude"])) * 100 + 7
    assert np.corrcoef(grid["predicted"], expected)[0, 1] > 0.95
    derived = backend.table(meta["derived_dataset"])
    assert derived["longitude"].between(-180, 180, inclusive="left").all()


def test_location_encoder_refuses_bad_targets(backend):
    table = _quadrant_table(60)
    info = _add_geo(backend, table)
    doubled = backend.store.add_dataset(
        table.assign(latitude=table["latitude"] * 2), table[["latitude", "longitude"]].to_numpy(),
        name="doubled", source="test", extra={"latitude": "latitude", "longitude": "longitude"})
    for ds, params, pattern in [
        (info.id, {"target_column": "quadrant", "task": "regression"}, "needs a numeric target"),
        (doubled.id, {"target_column": "quadrant"}, "are outside [-90, 90]"),
    ]:
        job = backend.submit(JobSpec("location_encoder", ds, {**params, "max_epochs": 2}))
        status = backend.wait(job, 60)
        assert status.state == "failed" and pattern in status.error, status.error


# ---------------------------------------------------------------------------------- uploads


def test_upload_records_and_wraps_coordinates(backend):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"Latitude": rng.uniform(-50, 50, 30), "Longitude": rng.uniform(0, 359, 30),
                       "kind": rng.choice(["a", "b"], 30)})
    info, notes = backend.add_upload(df.to_csv(index=False).encode(), "pts.csv")
    assert info.extra["latitude"] == "Latitude" and info.extra["longitude"] == "Longitude"
    n_wrapped = int((df["Longitude"] >= 180).sum())
    assert n_wrapped > 0 and f"{n_wrapped} longitudes were outside [-180, 180)" in " ".join(notes)
    stored = backend.table(info.id)
    vec = backend.store.vectors(info.id)
    want = np.where(df["Longitude"] >= 180, df["Longitude"] - 360, df["Longitude"])
    np.testing.assert_allclose(stored["Longitude"], want, atol=1e-4)  # kept in the table...
    np.testing.assert_allclose(vec[:, 1], want, atol=1e-4)  # ...and wrapped in the vectors
    assert info.extra["geo_validation"]["n_longitudes_wrapped"] == n_wrapped


def test_upload_coordinate_errors_and_non_geo_tables(backend):
    rng = np.random.default_rng(1)
    base = pd.DataFrame({"lat": rng.uniform(-60, 60, 30), "lon": rng.uniform(-170, 170, 30),
                         "v": rng.normal(size=30)})
    bad = base.assign(lat=base["lat"].where(base.index != 4, -91.5))
    with pytest.raises(InvalidInputError, match=r"1 of 30 latitudes \('lat'\) are outside"):
        backend.add_upload(bad.to_csv(index=False).encode(), "bad.csv")
    swapped = base.assign(lat=rng.uniform(-120, -100, 30), lon=rng.uniform(20, 50, 30))
    with pytest.raises(InvalidInputError, match="look swapped"):
        backend.add_upload(swapped.to_csv(index=False).encode(), "swapped.csv")
    assert backend.datasets() == []  # nothing stored
    # x/y is an embedding, not a map: no coordinates, no notes about them
    xy, notes = backend.add_upload(
        pd.DataFrame({"x": rng.normal(size=30) * 500, "y": rng.normal(size=30) * 500})
        .to_csv(index=False).encode(), "xy.csv")
    assert "latitude" not in xy.extra and notes == []
    # two latitude-like columns: said in the notes, not used
    two = base.rename(columns={"lat": "start_lat", "lon": "lng"}).assign(end_lat=base["lat"] + 1)
    info, notes = backend.add_upload(two.to_csv(index=False).encode(), "two.csv")
    assert "latitude" not in info.extra and any("Not read as a geo table" in n for n in notes)


# ---------------------------------------------------------------------------------- SatCLIP


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the junk file's header
def test_satclip_checkpoint_upload_and_embedding(backend, tmp_path):
    data = satclip_checkpoint_bytes()
    ckpt = backend.add_satclip(data, "tiny-satclip.ckpt")
    assert ckpt.kind == "satclip" and ckpt.n_dims == 0
    assert ckpt.extra["satclip"]["degree"] == 5 and ckpt.extra["satclip"]["embed_dim"] == 8
    assert "model.visual.conv1.weight" not in set(backend.table(ckpt.id)["tensor"])
    assert backend.add_satclip(data, "tiny-satclip.ckpt").id == ckpt.id  # stored once

    table = _quadrant_table(300)
    info = _add_geo(backend, table)
    job, meta = _run(backend, "satclip_embed", info.id, {"checkpoint": ckpt.id})
    derived = backend.dataset(meta["derived_dataset"])
    assert (derived.n_rows, derived.n_dims) == (300, 8) and derived.extra["derived_from"] == info.id
    path = tmp_path / "original.ckpt"
    path.write_bytes(data)
    want = load_satclip_location_encoder(path).transform(table["latitude"], table["longitude"])
    np.testing.assert_allclose(backend.store.vectors(derived.id), want, rtol=1e-6, atol=1e-6)

    with pytest.raises(InvalidInputError, match="'junk.ckpt' is not a usable SatCLIP") as err:
        backend.add_satclip(b"\x80\x04junk", "junk.ckpt")
    assert "/tmp" not in str(err.value)
    with pytest.raises(InvalidParameterError, match="checkpoint"):
        backend.submit(JobSpec("satclip_embed", info.id, {}))
    job = backend.submit(JobSpec("satclip_embed", info.id, {"checkpoint": info.id}))
    status = backend.wait(job, 60)
    assert status.state == "failed" and "not a SatCLIP checkpoint" in status.error
