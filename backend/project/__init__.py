"""Projections: the shared kNN graph, PCA, UMAP and the heat geodesic embedding."""

from backend.project.knn import knn_graph
from backend.project.pca import PCA
from backend.project.umap_ import umap_embedding

__all__: list[str] = ["knn_graph", "PCA", "umap_embedding"]

from backend.project.heat_geodesic import (  # noqa: E402
    HeatGeodesic,
    HeatGeodesicReport,
    heat_geodesic_embedding,
)

__all__ += ["HeatGeodesic", "HeatGeodesicReport", "heat_geodesic_embedding"]
