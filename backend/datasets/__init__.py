"""Dataset loaders, validation, and the catalogue of bundled real datasets."""

__all__: list[str] = []


from backend.datasets.geo import (  # noqa: E402
    GEO_DATASETS,
    GeoValidationReport,
    LatLonColumns,
    detect_lat_lon_columns,
    load_geo_dataset,
    load_us_airports,
    load_world_cities,
    regular_grid,
    sample_sphere_uniform,
    validate_lat_lon,
)

__all__ += [
    "GEO_DATASETS",
    "GeoValidationReport",
    "LatLonColumns",
    "detect_lat_lon_columns",
    "load_geo_dataset",
    "load_us_airports",
    "load_world_cities",
    "regular_grid",
    "sample_sphere_uniform",
    "validate_lat_lon",
]
