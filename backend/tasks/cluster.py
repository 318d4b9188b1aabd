"""The ``cluster`` job kind: cluster levels of a dataset, with names.

The job clusters either the original vectors (``space="vectors"``) or the 2-D
coordinates of a projection artifact of the same dataset (``space="projection"``,
the default: density clusters of the map the user sees), keeps every level of
:func:`backend.clusters.cluster_levels`, and names every cluster of every level:

- by c-TF-IDF keywords of ``text_column`` (default: the dataset's text column, for
  datasets embedded from text);
- else by the most frequent values of ``label_column`` (default: the dataset's
  label column);
- else "Cluster k".

Files: ``clusters.parquet`` (``_row`` and one int32 column ``level_<i>`` per level,
-1 = Unclustered) and ``names.parquet`` (:func:`backend.clusters.names_frame`).
Names edited by the user are kept apart (:class:`backend.clusters.NameEdits`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backend.clusters import PARAMS as LEVEL_PARAMS
from backend.clusters import keyword_names, names_frame, value_names
from backend.clusters.clustering import _cluster_levels, check_rows
from backend.clusters.stored import CLUSTERS_FILE, NAMES_FILE, level_column
from backend.errors import InvalidParameterError
from backend.jobs import JobContext, JobKind, register
from backend.params import AUTO, Param
from backend.results import Result
from backend.store import DatasetInfo
from backend.tasks.projection import PROJECTION_FILE

__all__ = ["ClusterResult", "CLUSTER_PARAMS", "SPACES"]

SPACES = ("projection", "vectors")

CLUSTER_PARAMS = LEVEL_PARAMS.extend(
    Param("space", str, "projection", choices=SPACES,
          help="Cluster the map's coordinates (what you see) or the original vectors."),
    Param("projection", str, None, store_id=True, nullable=True,
          help="Artifact id of the map to cluster (space='projection')."),
    Param("text_column", str, AUTO, auto=True, nullable=True, column=True,
          help="Name clusters by keywords of this text column ('auto': the dataset's text column)."),
    Param("label_column", str, AUTO, auto=True, nullable=True, column=True,
          help="Else by the most frequent values of this column ('auto': the dataset's labels)."),
)


@dataclass(frozen=True)
class ClusterResult(Result):
    """A clustering: ``clusters.parquet`` (``_row``, ``level_<i>`` int32, -1 = Unclustered)
    and ``names.parquet`` (level, cluster, name, n_rows, share); levels coarse to fine."""

    method: str
    space: str
    projection: str | None
    n_levels: int
    n_clusters: list[int]
    noise_fraction: list[float]
    level_params: list[dict[str, Any]]
    default_level: int
    named_by: str
    note: str | None = None
    seconds: float = 0.0


def _resolve_column(value: str | None, key: str, info: DatasetInfo) -> str | None:
    if value != AUTO:
        return value
    guess = info.extra.get(key)
    return guess if guess in info.columns else None


def _check(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    p = dict(p)
    if p["space"] == "projection" and p["projection"] is None:
        raise InvalidParameterError(
            f"projection must be the artifact id of a projection of {info.name!r} when "
            "space='projection'; got None. Compute a map first, or use space='vectors'.")
    if p["space"] == "vectors":
        p["projection"] = None
    check_rows(info.n_rows, method=p["method"], min_samples=p["min_samples"],
               n_clusters=p["n_clusters"], min_cluster_size=p["min_cluster_size"])
    p["text_column"] = _resolve_column(p["text_column"], "text_column", info)
    label = _resolve_column(p["label_column"], "label_column", info)
    p["label_column"] = None if p["text_column"] else label
    return p


def _points(ctx: JobContext) -> np.ndarray:
    p = ctx.params
    if p["space"] == "vectors":
        return np.asarray(ctx.vectors())
    art = ctx.store.artifact(p["projection"])
    if art.dataset_id != ctx.dataset.id or PROJECTION_FILE not in art.files:
        raise InvalidParameterError(
            f"artifact {p['projection']} is not a projection of {ctx.dataset.name!r}.")
    proj = pd.read_parquet(ctx.store.artifact_path(art.id, PROJECTION_FILE))
    return proj[[c for c in ("x", "y", "z") if c in proj.columns]].to_numpy(np.float64)


def run_cluster(ctx: JobContext) -> ClusterResult:
    p = ctx.params
    t0 = time.perf_counter()
    ctx.progress(0.02, f"reading the {'map' if p['space'] == 'projection' else 'vectors'}")
    X = _points(ctx)
    lv = _cluster_levels(X, **{k: p[k] for k in LEVEL_PARAMS.names},
                         progress=lambda f, m: ctx.progress(0.05 + 0.75 * f, m))
    ctx.progress(0.85, "naming clusters")
    if p["text_column"]:
        names = keyword_names(ctx.table([p["text_column"]])[p["text_column"]], lv.labels)
        named_by = f"keywords of {p['text_column']!r}"
    elif p["label_column"]:
        names = value_names(ctx.table([p["label_column"]])[p["label_column"]], lv.labels)
        named_by = f"most frequent values of {p['label_column']!r}"
    else:
        names = [{} for _ in range(lv.n_levels)]
        named_by = "numbers (no text or label column)"
    cols = {"_row": np.arange(X.shape[0], dtype=np.int64)}
    cols.update({level_column(i): lab for i, lab in enumerate(lv.labels)})
    ctx.save_parquet(CLUSTERS_FILE, pd.DataFrame(cols))
    ctx.save_parquet(NAMES_FILE, names_frame(lv.labels, names))
    ctx.progress(1.0, "clusters done")
    return ClusterResult(
        method=lv.method, space=p["space"], projection=p["projection"], n_levels=lv.n_levels,
        n_clusters=lv.n_clusters, noise_fraction=[round(f, 6) for f in lv.noise_fraction],
        level_params=lv.level_params, default_level=lv.default_level, named_by=named_by,
        note=lv.note, seconds=round(time.perf_counter() - t0, 3))


CLUSTER = register(JobKind(
    "cluster", params=CLUSTER_PARAMS, run=run_cluster, result=ClusterResult,
    files=(CLUSTERS_FILE, NAMES_FILE), check=_check, title="Clusters"))
