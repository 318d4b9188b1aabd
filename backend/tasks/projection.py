"""Job kinds of the map: the shared kNN graph, PCA, UMAP, the heat geodesic embedding and
the faithfulness scores of a projection.

``n_neighbors`` counts neighbours *excluding* the point itself in every kind (scikit-learn's
convention); umap-learn's own count (which includes the point) is made inside the UMAP adapter.

On a distributed engine (``LATENT_LENS_RAY_ADDRESS``), the kNN graph, the placement of the
rows outside a UMAP's sample and the scored rows of the faithfulness scores run as Ray tasks
over row blocks; the driver assembles them and writes the artifacts (whose ``meta.json``
records the engine and the cluster's resources, as for every kind).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError, InvalidParameterError
from backend.jobs import JobContext, JobKind, register
from backend.params import Param, ParamSpec
from backend.project.heat_geodesic import PARAMS as HEAT_GEODESIC_PARAMS
from backend.project.knn import KNN_METRICS
from backend.results import Result
from backend.store import DatasetInfo

__all__ = ["ProjectionResult", "KnnResult", "FaithfulnessResult", "DEFAULT_MAP", "default_map_spec",
           "QUICK_MAP"]

PROJECTION_FILE = "projection.parquet"
#: Above this many rows, faithfulness ranks within a seeded sample of this many rows.
FAITHFULNESS_RANK_SAMPLE = 50_000
MAX_NEIGHBORS = 200

_N_NEIGHBORS = Param("n_neighbors", int, 15, low=1, high=MAX_NEIGHBORS,
                     help="Neighbours of each point in the shared kNN graph, the point itself "
                          "excluded.")
_METRIC = Param("metric", str, "euclidean", choices=KNN_METRICS,
                help="Distance in the original space.")
_N_COMPONENTS = Param("n_components", int, 2, low=2, high=3, label="Dimensions",
                      help="2-D or 3-D map.")
_SEED = Param("random_state", int, 42, low=0, high=2**32 - 1, nullable=True,
              help="Seed; null lets umap-learn run in parallel (not reproducible).")

KNN_PARAMS = ParamSpec(_N_NEIGHBORS, _METRIC)
PCA_PARAMS = ParamSpec(_N_COMPONENTS)
QUICK_MAP_PARAMS = ParamSpec(_METRIC, _N_COMPONENTS, _SEED)
UMAP_PARAMS = ParamSpec(
    _N_NEIGHBORS, _METRIC, _N_COMPONENTS,
    Param("min_dist", float, 0.1, low=0.0, high=1.0, step=0.05,
          help="How tightly points may pack in the map."),
    _SEED,
)
HEAT_GEODESIC_JOB_PARAMS = (
    HEAT_GEODESIC_PARAMS.only("n_neighbors", "n_components", "t", "order", "sigma", "method",
                              "n_landmarks", "random_state", "metric")
    .with_changes("n_components", low=2, label="Dimensions", help="2-D or 3-D map.")
    .with_changes("random_state", default=42)
)
FAITHFULNESS_PARAMS = ParamSpec(
    Param("projection", str, None, store_id=True, help="Artifact id of the projection to score."),
    Param("n_neighbors", int, 10, low=1, high=100, help="k of the neighbourhoods compared."),
    Param("n_rows", int, 2000, low=100, high=20_000,
          help="Rows scored against every point (trustworthiness, continuity, Spearman)."),
)

#: The Map page's default projection (the Globe and Graph pages reuse it: one job id).
DEFAULT_MAP = {"kind": "umap", "params": UMAP_PARAMS.defaults()}


def default_map_spec(n_rows: int) -> tuple[str, dict[str, Any]]:
    """The default map of a dataset of ``n_rows`` rows: UMAP at its defaults, with
    ``n_neighbors`` lowered to ``n_rows - 1`` for tiny datasets (said on the page)."""
    params = dict(DEFAULT_MAP["params"])
    params["n_neighbors"] = max(1, min(params["n_neighbors"], n_rows - 1))
    return DEFAULT_MAP["kind"], params


@dataclass(frozen=True)
class KnnResult(Result):
    """The shared kNN graph: ``indices.npy`` (int64) and ``distances.npy`` (float32), each
    (n_rows, n_neighbors), without the row itself, ascending distance.

    ``recall`` is recall@k against exact search on ``recall_sample`` seeded rows (1.0 for
    exact search); ``knn`` the full :class:`backend.project.knn.KnnReport`; ``note`` says
    when rows' cosine distances are undefined (all-zero rows)."""

    knn_seconds: float
    knn_method: str
    recall: float | None = None
    recall_sample: int = 0
    knn: dict[str, Any] | None = None
    note: str | None = None


@dataclass(frozen=True)
class ProjectionResult(Result):
    """A map: ``projection.parquet`` with ``_row``, ``x``, ``y`` (and ``z``), float32."""

    n_components: int
    knn_artifact: str | None = None
    explained_variance_ratio: list[float] | None = None
    heat_geodesic: dict[str, Any] | None = None
    umap: dict[str, Any] | None = None
    #: A sentence for the page: which map this is (quick, sampled) and how it was made.
    description: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class FaithfulnessResult(Result):
    """Scores of a projection (``faithfulness.json``, ``per_point.parquet``)."""

    faithfulness: dict[str, Any]
    metric_note: str | None = None


def check_rows(n_rows: int, n_neighbors: int) -> None:
    """A kNN graph of ``n_neighbors`` other points needs ``n_neighbors + 1`` rows."""
    if n_rows < n_neighbors + 1:
        raise InvalidInputError(
            f"the dataset has {n_rows:,} rows, too few for n_neighbors={n_neighbors} "
            f"(needs at least {n_neighbors + 1}); lower n_neighbors to at most {n_rows - 1}."
        )


def _check_knn(p: dict[str, Any], info: DatasetInfo) -> None:
    check_rows(info.n_rows, p["n_neighbors"])


def _check_three_rows(p: dict[str, Any], info: DatasetInfo) -> None:
    if info.n_rows < 3:
        raise InvalidInputError(f"a map needs at least 3 rows; {info.name!r} has {info.n_rows}.")


def _check_pca(p: dict[str, Any], info: DatasetInfo) -> None:
    if p["n_components"] > info.n_dims:
        raise InvalidParameterError(
            f"n_components must be at most the {info.n_dims} dimensions of {info.name!r}; "
            f"got {p['n_components']}.")


def run_knn(ctx: JobContext) -> KnnResult:
    from backend.project.knn import knn_search

    ctx.progress(0.0, "building the kNN graph")
    X = np.asarray(ctx.vectors())
    idx, dist, rep = knn_search(X, ctx.params["n_neighbors"], metric=ctx.params["metric"],
                                device=ctx.device, progress=ctx.progress,
                                engine=ctx.engine, stop=ctx.stop_event)
    ctx.save_npy("indices.npy", idx)
    ctx.save_npy("distances.npy", dist)
    ctx.progress(1.0, "kNN graph done")
    return KnnResult(knn_seconds=rep.seconds, knn_method=rep.method, recall=rep.recall,
                     recall_sample=rep.recall_sample, knn=rep.to_dict(), note=rep.note)


def load_knn(ctx: JobContext, n_neighbors: int, metric: str, span: tuple[float, float]):
    """The shared kNN graph (computed once per dataset, ``n_neighbors`` and metric):
    ``(indices, distances, artifact id)``, each (n_rows, n_neighbors), without the row."""
    art = ctx.require("knn", {"n_neighbors": n_neighbors, "metric": metric}, span=span)
    idx = np.load(ctx.store.artifact_path(art.id, "indices.npy"))
    dist = np.load(ctx.store.artifact_path(art.id, "distances.npy"))
    return idx, dist, art.id


def save_projection(ctx: JobContext, emb: np.ndarray) -> None:
    cols = {"_row": np.arange(len(emb), dtype=np.int64)}
    for name, j in zip("xyz", range(emb.shape[1])):
        cols[name] = emb[:, j].astype(np.float32)
    ctx.save_parquet(PROJECTION_FILE, pd.DataFrame(cols))


def run_pca(ctx: JobContext) -> ProjectionResult:
    from backend.project.pca import PCA

    ctx.progress(0.1, "PCA")
    pca = PCA(ctx.params["n_components"], device=ctx.device)
    emb = pca.fit_transform(np.asarray(ctx.vectors()))
    save_projection(ctx, emb)
    ctx.progress(1.0, "PCA done")
    return ProjectionResult(n_components=ctx.params["n_components"],
                            explained_variance_ratio=pca.explained_variance_ratio_.tolist())


def run_umap(ctx: JobContext) -> ProjectionResult:
    from backend.project.large import project_umap

    p = ctx.params
    idx, dist, knn_id = load_knn(ctx, p["n_neighbors"], p["metric"], span=(0.0, 0.2))
    ctx.progress(0.2, "UMAP: fuzzy graph and spectral start")
    emb, rep = project_umap(
        np.asarray(ctx.vectors()), knn=(idx, dist), n_neighbors=p["n_neighbors"],
        n_components=p["n_components"], min_dist=p["min_dist"], metric=p["metric"],
        random_state=p["random_state"], device=ctx.device,
        progress=lambda f, m: ctx.progress(0.2 + 0.8 * f, m),
        engine=ctx.engine, stop=ctx.stop_event,
    )
    save_projection(ctx, emb)
    return ProjectionResult(n_components=p["n_components"], knn_artifact=knn_id, umap=rep,
                            description=rep.get("description"),
                            note=rep.get("umap", {}).get("note"))


def run_quick_map(ctx: JobContext) -> ProjectionResult:
    """A first map in seconds (UMAP of a sample, every row placed), shown while the full
    map runs; the page says which map it shows."""
    from backend.project.large import quick_map

    p = ctx.params
    emb, rep = quick_map(np.asarray(ctx.vectors()), n_components=p["n_components"],
                         metric=p["metric"], random_state=p["random_state"],
                         device=ctx.device, progress=ctx.progress, engine=ctx.engine,
                         stop=ctx.stop_event)
    save_projection(ctx, emb)
    return ProjectionResult(n_components=p["n_components"], umap=rep,
                            description=rep["description"])


def run_heat_geodesic(ctx: JobContext) -> ProjectionResult:
    from backend.project.heat_geodesic import HeatGeodesic

    p = ctx.params
    # On the vectors, not on a stored kNN artifact: the estimator merges exact duplicate rows
    # before its search (a shared graph's candidate lists can be all copies of the point)
    # and searches 3 x n_neighbors candidates with the shared knn_graph.
    params = {**HEAT_GEODESIC_PARAMS.defaults(),
              **{k: v for k, v in p.items() if k != "device"}}
    est = HeatGeodesic(**params, device=ctx.device)
    est._fit(np.asarray(ctx.vectors()), None,  # validated once, by the job layer
             lambda f, m: ctx.progress(f, f"heat geodesic: {m}"), params)
    save_projection(ctx, np.asarray(est.embedding_, dtype=np.float32))
    return ProjectionResult(n_components=p["n_components"],
                            heat_geodesic=est.report_.to_dict())


def _check_faithfulness(p: dict[str, Any], info: DatasetInfo) -> None:
    if p["projection"] is None:
        raise InvalidParameterError(
            f"projection must be the artifact id of a projection of {info.name!r}; got None.")
    if not p["n_neighbors"] < info.n_rows / 2:
        raise InvalidParameterError(
            f"n_neighbors must be below half the rows ({info.n_rows:,}); got {p['n_neighbors']}.")


def run_faithfulness(ctx: JobContext) -> FaithfulnessResult:
    from backend.diagnostics.projection import projection_faithfulness

    p = ctx.params
    art = ctx.store.artifact(p["projection"])
    if art.dataset_id != ctx.dataset.id or PROJECTION_FILE not in art.files:
        raise InvalidParameterError(
            f"artifact {p['projection']} is not a projection of {ctx.dataset.name!r}.")
    proj = pd.read_parquet(ctx.store.artifact_path(art.id, PROJECTION_FILE))
    Y = proj[[c for c in ("x", "y", "z") if c in proj.columns]].to_numpy(np.float64)
    metric = art.meta.get("params", {}).get("metric", "euclidean")
    X = np.asarray(ctx.vectors())
    knn = None
    if len(X) > FAITHFULNESS_RANK_SAMPLE and metric in ("euclidean", "cosine"):
        # every row's kNN recall from the shared graph (UMAP's, when it was the map)
        width = max(p["n_neighbors"], UMAP_PARAMS["n_neighbors"].default)
        idx, dist, _ = load_knn(ctx, width, metric, span=(0.0, 0.3))
        knn = (idx, dist)
    res = projection_faithfulness(
        X, Y, n_neighbors=p["n_neighbors"], knn=knn,
        metric="cosine" if metric == "cosine" else "euclidean", n_rows=p["n_rows"],
        random_state=0, device=ctx.device, max_rows=FAITHFULNESS_RANK_SAMPLE,
        engine=ctx.engine, stop=ctx.stop_event,
        progress=lambda f, m: ctx.progress(0.3 + 0.7 * f, m) if knn is not None
        else ctx.progress(f, m),
    )
    ctx.save_json("faithfulness.json", res.to_dict())
    ctx.save_parquet("per_point.parquet", res.per_point_frame())
    note = None if metric in ("euclidean", "cosine") else (
        f"the projection used the {metric} metric; faithfulness is scored with Euclidean distances")
    return FaithfulnessResult(faithfulness=res.to_dict(), metric_note=note)


KNN = register(JobKind(
    "knn", params=KNN_PARAMS, run=run_knn, result=KnnResult,
    files=("indices.npy", "distances.npy"), check=_check_knn, version=3,
    title="kNN graph"))
PCA = register(JobKind(
    "pca", params=PCA_PARAMS, run=run_pca, result=ProjectionResult, files=(PROJECTION_FILE,),
    check=_check_pca, title="PCA", quick=True))
UMAP = register(JobKind(
    "umap", params=UMAP_PARAMS, run=run_umap, result=ProjectionResult, files=(PROJECTION_FILE,),
    check=_check_knn, version=3, title="UMAP"))
QUICK_MAP = register(JobKind(
    "quick_map", params=QUICK_MAP_PARAMS, run=run_quick_map, result=ProjectionResult,
    files=(PROJECTION_FILE,), check=_check_three_rows, title="Quick map", quick=True))
HEAT_GEODESIC = register(JobKind(
    "heat_geodesic", params=HEAT_GEODESIC_JOB_PARAMS, run=run_heat_geodesic,
    result=ProjectionResult, files=(PROJECTION_FILE,), check=_check_knn, version=3,
    title="Heat geodesic"))
FAITHFULNESS = register(JobKind(
    "faithfulness", params=FAITHFULNESS_PARAMS, run=run_faithfulness, result=FaithfulnessResult,
    version=2,
    files=("faithfulness.json", "per_point.parquet"), check=_check_faithfulness,
    title="Faithfulness"))
