"""Quick, synchronous operations on stored datasets and cluster artifacts.

What the backend client exposes for the Map page's clusters, charts and
downloads: each call reads the store, runs for well under a second at
1,000,000 rows (``bench/clusters.py``) and returns a small result, so none is a job.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from backend.clusters.density import DensityGrid, density_grid
from backend.clusters.export import assignments_frame, offline_map_html, table_bytes
from backend.clusters.facets import FacetCounts, facet_counts, filtered_table
from backend.clusters.names import NameEdits
from backend.clusters.naming import UNCLUSTERED_NAME
from backend.errors import InvalidParameterError
from backend.store import Store

__all__ = ["PALETTE", "UNCLUSTERED_COLOUR", "CLUSTERS_FILE", "NAMES_FILE", "level_column",
           "dataset_facets", "selection_bytes", "cluster_names",
           "rename_clusters", "cluster_labels", "assignments_bytes", "projection_density",
           "map_html"]

#: Cluster colours (Tableau 20 order, dark first), repeated past 20 clusters.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
UNCLUSTERED_COLOUR = "#d9d9d9"
CLUSTERS_FILE = "clusters.parquet"
NAMES_FILE = "names.parquet"


def level_column(level: int) -> str:
    """Column of a clustering's ``clusters.parquet`` holding a level's labels."""
    return f"level_{level}"


def _table_path(store: Store, dataset_id: str):
    store.dataset(dataset_id)
    return store.root / "datasets" / dataset_id / "table.parquet"


def dataset_facets(store: Store, dataset_id: str, columns: Sequence[str], **kw) -> FacetCounts:
    """:func:`backend.clusters.facet_counts` of a stored dataset (same keywords)."""
    return facet_counts(_table_path(store, dataset_id), columns, **kw)


def selection_bytes(store: Store, dataset_id: str, *, filters: Sequence = (), rows=None,
                    columns: Sequence[str] | None = None, fmt: str = "csv") -> bytes:
    """The rows passing the filters and the selection, as CSV or Parquet bytes."""
    table = filtered_table(_table_path(store, dataset_id), filters=filters, rows=rows,
                           columns=columns)
    return table_bytes(table, fmt)


def _cluster_artifact(store: Store, artifact_id: str, level: int):
    art = store.artifact(artifact_id)
    if art.kind != "cluster":
        raise InvalidParameterError(f"artifact {artifact_id} is a {art.kind!r}, not a clustering.")
    n_levels = int(art.meta["result"]["n_levels"])
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 0 <= level < n_levels:
        raise InvalidParameterError(
            f"level must be an integer in [0, {n_levels - 1}] for clustering {artifact_id}; got {level!r}.")
    return art


def cluster_names(store: Store, artifact_id: str, level: int) -> pd.DataFrame:
    """The clusters of one level: ``cluster``, ``name`` (edited, else computed),
    ``computed_name``, ``edited`` (bool), ``n_rows``, ``share``; Unclustered last."""
    _cluster_artifact(store, artifact_id, level)
    frame = pd.read_parquet(store.artifact_path(artifact_id, NAMES_FILE))
    frame = frame[frame["level"] == level].drop(columns="level").reset_index(drop=True)
    frame = frame.rename(columns={"name": "computed_name"})
    edits = NameEdits(store.root).get(artifact_id, level)
    frame["edited"] = frame["cluster"].map(lambda c: c in edits).astype(bool)
    frame["name"] = [edits.get(int(c), n) for c, n in zip(frame["cluster"], frame["computed_name"])]
    return frame[["cluster", "name", "computed_name", "edited", "n_rows", "share"]]


def rename_clusters(store: Store, artifact_id: str, level: int, names: dict[int, str]) -> pd.DataFrame:
    """Store edited names of one level (``""`` restores the computed name); return the level's table.

    Raises
    ------
    InvalidParameterError
        If a cluster id is not in the level, or a name is too long.
    """
    before = cluster_names(store, artifact_id, level)
    unknown = sorted(set(int(c) for c in names) - set(before["cluster"].tolist()))
    if unknown:
        raise InvalidParameterError(
            f"clusters {unknown[:10]} are not in level {level} of clustering {artifact_id}.")
    NameEdits(store.root).set(artifact_id, level, {int(c): n for c, n in names.items()})
    return cluster_names(store, artifact_id, level)


def cluster_labels(store: Store, artifact_id: str, level: int) -> np.ndarray:
    """Labels of one level in row order, int32 (n_rows,), -1 = Unclustered."""
    _cluster_artifact(store, artifact_id, level)
    col = level_column(level)
    return pd.read_parquet(store.artifact_path(artifact_id, CLUSTERS_FILE),
                           columns=[col])[col].to_numpy(np.int32)


def assignments_bytes(store: Store, artifact_id: str, level: int, fmt: str = "parquet") -> bytes:
    """Every row's cluster and name at one level (``_row``, ``cluster``, ``cluster_name``)."""
    names = cluster_names(store, artifact_id, level)
    frame = assignments_frame(cluster_labels(store, artifact_id, level),
                              dict(zip(names["cluster"].tolist(), names["name"].tolist())))
    return table_bytes(frame, fmt)


def _projection_xy(store: Store, projection_id: str) -> pd.DataFrame:
    art = store.artifact(projection_id)
    if "projection.parquet" not in art.files:
        raise InvalidParameterError(f"artifact {projection_id} ({art.kind}) is not a projection.")
    return pd.read_parquet(store.artifact_path(projection_id, "projection.parquet"),
                           columns=["_row", "x", "y"])


def projection_density(store: Store, projection_id: str, *, grid_size: int = 256,
                       bandwidth: float | str = "scott") -> DensityGrid:
    """:func:`backend.clusters.density_grid` of a stored projection's x, y."""
    xy = _projection_xy(store, projection_id)
    return density_grid(xy[["x", "y"]].to_numpy(np.float64), grid_size=grid_size, bandwidth=bandwidth)


def map_html(store: Store, projection_id: str, *, clustering: str | None = None,
             level: int | None = None, title: str | None = None) -> str:
    """A self-contained HTML file of a map, coloured and labelled by a clustering level."""
    xy = _projection_xy(store, projection_id)
    art = store.artifact(projection_id)
    title = title or f"{store.dataset(art.dataset_id).name}: {art.kind} map"
    if clustering is None:
        return offline_map_html(xy["x"], xy["y"], np.zeros(len(xy), int), [PALETTE[0]], title=title)
    level = int(store.artifact(clustering).meta["result"]["default_level"]) if level is None else level
    names = cluster_names(store, clustering, level)
    labels = cluster_labels(store, clustering, level)
    if len(labels) != len(xy):
        raise InvalidParameterError(
            f"clustering {clustering} has {len(labels):,} rows but projection {projection_id} "
            f"has {len(xy):,}; they belong to different datasets.")
    k = int(labels.max()) + 1
    palette = [PALETTE[i % len(PALETTE)] for i in range(k)] + [UNCLUSTERED_COLOUR]
    ci = np.where(labels < 0, k, labels)
    legend_names = dict(zip(names["cluster"].tolist(), names["name"].tolist()))
    legend = [legend_names.get(i, f"Cluster {i}") for i in range(k)] + [UNCLUSTERED_NAME]
    x = xy["x"].to_numpy()
    y = xy["y"].to_numpy()
    centres = pd.DataFrame({"c": labels, "x": x, "y": y})
    centres = centres[centres["c"] >= 0].groupby("c")[["x", "y"]].median()
    lab = names[names["cluster"] >= 0].set_index("cluster").join(centres, how="inner")
    return offline_map_html(x, y, ci, palette, legend=legend,
                            labels=lab[["x", "y", "name", "n_rows"]].reset_index(drop=True),
                            title=title)
