"""Dataset loaders, validation, and the catalogue of bundled real datasets."""

__all__: list[str] = []

from backend.datasets.text import TextDatasetInfo, load_text_dataset, text_dataset_info  # noqa: E402

__all__ += ["TextDatasetInfo", "load_text_dataset", "text_dataset_info"]

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

from backend.datasets.graph import (  # noqa: E402
    EXAMPLE_GRAPHS,
    Graph,
    GraphFinding,
    GraphReport,
    as_adjacency,
    graph_from_frames,
    load_edge_list,
    load_example_graph,
    node_label_matrix,
)

__all__ += [
    "EXAMPLE_GRAPHS",
    "Graph",
    "GraphFinding",
    "GraphReport",
    "as_adjacency",
    "graph_from_frames",
    "load_edge_list",
    "load_example_graph",
    "node_label_matrix",
]

from backend.datasets.text_table import (  # noqa: E402
    BUNDLED_TEXT,
    ParsedTextUpload,
    load_bundled_text,
    parse_text_upload,
    text_cell_counts,
)

__all__ += ["BUNDLED_TEXT", "ParsedTextUpload", "load_bundled_text", "parse_text_upload",
            "text_cell_counts"]

from backend.datasets.geo import annotate_geo_upload  # noqa: E402

__all__ += ["annotate_geo_upload"]

from backend.datasets.delimited import TextFormat, detect_text_format, read_delimited  # noqa: E402
from backend.datasets.geo import guess_geo_columns  # noqa: E402
from backend.datasets.graph import ENDPOINT_NAMES, edge_list_columns  # noqa: E402
from backend.datasets.h5ad import h5ad_matrices, read_h5ad  # noqa: E402
from backend.datasets.upload import (  # noqa: E402
    FORMATS,
    ParsedUpload,
    UploadPreview,
    inspect_upload,
    max_upload_bytes,
    parse_upload,
)

__all__ += ["TextFormat", "detect_text_format", "read_delimited", "guess_geo_columns",
            "ENDPOINT_NAMES", "edge_list_columns", "h5ad_matrices", "read_h5ad", "FORMATS",
            "ParsedUpload", "UploadPreview", "inspect_upload", "max_upload_bytes", "parse_upload"]
