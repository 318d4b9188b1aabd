"""Clusters of a map: levels of granularity, names, density, linked filters, export and share."""

from backend.clusters.clustering import METHODS, PARAMS, UNCLUSTERED, ClusterLevels, cluster_levels
from backend.clusters.density import DensityGrid, density_grid
from backend.clusters.export import assignments_frame, offline_map_html, table_bytes
from backend.clusters.facets import Facet, FacetCounts, facet_counts, filtered_rows, filtered_table
from backend.clusters.names import NameEdits
from backend.clusters.naming import UNCLUSTERED_NAME, keyword_names, names_frame, value_names
from backend.clusters.share import OpenedView, ViewState, resolve_view, view_from_query, view_to_query

__all__ = [
    "METHODS", "PARAMS", "UNCLUSTERED", "UNCLUSTERED_NAME", "ClusterLevels", "cluster_levels",
    "DensityGrid", "density_grid",
    "assignments_frame", "offline_map_html", "table_bytes",
    "Facet", "FacetCounts", "facet_counts", "filtered_rows", "filtered_table",
    "NameEdits",
    "keyword_names", "names_frame", "value_names",
    "OpenedView", "ViewState", "resolve_view", "view_from_query", "view_to_query",
]
