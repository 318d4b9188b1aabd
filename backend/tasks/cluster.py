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
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from backend.clusters import METHODS, cluster_levels, keyword_names, names_frame, value_names
from backend.errors import InvalidParameterError
from backend.jobs import JobContext, register
from backend.store import DatasetInfo, valid_id
from backend.tasks._params import reject_unknown, take_choice, take_int, take_seed

__all__ = ["ClusterResult", "validate_cluster", "level_column", "SPACES"]

SPACES = ("projection", "vectors")
_KNOWN = {"method", "space", "projection", "min_cluster_size", "min_samples", "n_clusters",
          "random_state", "text_column", "label_column"}


def level_column(level: int) -> str:
    """Column of ``clusters.parquet`` holding a level's labels."""
    return f"level_{level}"


@dataclass(frozen=True)
class ClusterResult:
    """What the page reads of a finished clustering (also stored in ``meta.json``)."""

    method: str
    space: str
    projection: str | None
    n_levels: int
    n_clusters: list[int]
    noise_fraction: list[float]
    level_params: list[dict[str, Any]]
    default_level: int
    named_by: str
    note: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClusterResult":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def _column(p: dict[str, Any], name: str, info: DatasetInfo) -> str | None:
    v = p.get(name, "auto")
    if v == "auto":
        v = info.extra.get(name)
        return v if v in info.columns else None
    if v is not None and v not in info.columns:
        raise InvalidParameterError(
            f"{name} must be 'auto', None or a column of {info.name!r} ({info.columns[:20]}); "
            f"got {v!r}.")
    return v


def validate_cluster(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    """Resolve the parameters of a ``cluster`` job (defaults: HDBSCAN on the map)."""
    reject_unknown(p, _KNOWN, "cluster")
    out: dict[str, Any] = {"method": take_choice(p, "method", "hdbscan", METHODS),
                           "space": take_choice(p, "space", "projection", SPACES)}
    proj = p.get("projection")
    if out["space"] == "projection":
        if not isinstance(proj, str) or not valid_id(proj):
            raise InvalidParameterError(
                f"projection must be the artifact id of a projection of {info.name!r} when "
                f"space='projection'; got {proj!r}. Compute a map first, or use space='vectors'.")
        out["projection"] = proj
    else:
        out["projection"] = None
    if out["method"] == "hdbscan":
        mcs = p.get("min_cluster_size", "auto")
        out["min_cluster_size"] = "auto" if mcs == "auto" else take_int(
            p, "min_cluster_size", 0, 2, 1_000_000)
        out["min_samples"] = take_int(p, "min_samples", 10, 1, 1000)
    else:
        out["n_clusters"] = take_int(p, "n_clusters", 8, 2, 10_000)
        out["random_state"] = take_seed(p)
    out["text_column"] = _column(p, "text_column", info)
    out["label_column"] = _column(p, "label_column", info) if out["text_column"] is None else None
    return out


def _points(ctx: JobContext) -> np.ndarray:
    p = ctx.params
    if p["space"] == "vectors":
        return np.asarray(ctx.vectors())
    art = ctx.store.artifact(p["projection"])
    if art.dataset_id != ctx.dataset.id or "projection.parquet" not in art.files:
        raise InvalidParameterError(
            f"artifact {p['projection']} is not a projection of {ctx.dataset.name!r}.")
    proj = pd.read_parquet(ctx.store.artifact_path(art.id, "projection.parquet"))
    return proj[[c for c in ("x", "y", "z") if c in proj.columns]].to_numpy(np.float64)


@register("cluster", validate=validate_cluster)
def run_cluster(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    t0 = time.perf_counter()
    ctx.progress(0.02, f"reading the {'map' if p['space'] == 'projection' else 'vectors'}")
    X = _points(ctx)
    kw = ({"min_cluster_size": p["min_cluster_size"], "min_samples": p["min_samples"]}
          if p["method"] == "hdbscan" else
          {"n_clusters": p["n_clusters"], "random_state": p["random_state"]})
    lv = cluster_levels(X, method=p["method"], progress=lambda f, m: ctx.progress(0.05 + 0.75 * f, m),
                        **kw)
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
    ctx.save_parquet("clusters.parquet", pd.DataFrame(cols))
    ctx.save_parquet("names.parquet", names_frame(lv.labels, names))
    res = ClusterResult(
        method=lv.method, space=p["space"], projection=p["projection"], n_levels=lv.n_levels,
        n_clusters=lv.n_clusters, noise_fraction=[round(f, 6) for f in lv.noise_fraction],
        level_params=lv.level_params, default_level=lv.default_level, named_by=named_by,
        note=lv.note, seconds=round(time.perf_counter() - t0, 3))
    ctx.progress(1.0, "clusters done")
    return res.to_dict()
