"""Job kinds of the map: the shared kNN graph, PCA and UMAP projections."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from backend.errors import InvalidParameterError
from backend.jobs import JobContext, register
from backend.project.knn import KNN_METRICS
from backend.store import DatasetInfo
from backend.tasks._params import (
    check_rows,
    reject_unknown,
    take_choice,
    take_float,
    take_int,
    take_seed,
)

MAX_NEIGHBORS = 200


def _knn_params(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    k = take_int(p, "n_neighbors", 15, 2, MAX_NEIGHBORS)
    check_rows(info.n_rows, k)
    return {"n_neighbors": k, "metric": take_choice(p, "metric", "euclidean", KNN_METRICS)}


def validate_knn(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    reject_unknown(p, {"n_neighbors", "metric"}, "knn")
    return _knn_params(p, info)


@register("knn", validate=validate_knn)
def run_knn(ctx: JobContext) -> dict[str, Any]:
    from backend.project.knn import knn_graph

    ctx.progress(0.05, "building the kNN graph")
    X = np.asarray(ctx.vectors())
    t0 = time.perf_counter()
    idx, dist = knn_graph(X, ctx.params["n_neighbors"], metric=ctx.params["metric"])
    ctx.save_npy("indices.npy", idx)
    ctx.save_npy("distances.npy", dist)
    ctx.progress(1.0, "kNN graph done")
    return {"knn_seconds": round(time.perf_counter() - t0, 3),
            "knn_method": "exact" if len(X) <= 20_000 else "nndescent"}


def load_knn(ctx: JobContext, params: dict[str, Any], span: tuple[float, float]):
    art = ctx.require("knn", {"n_neighbors": params["n_neighbors"], "metric": params["metric"]},
                      span=span)
    idx = np.load(ctx.store.artifact_path(art.id, "indices.npy"))
    dist = np.load(ctx.store.artifact_path(art.id, "distances.npy"))
    return idx, dist, art.id


def save_projection(ctx: JobContext, emb: np.ndarray) -> None:
    cols = {"_row": np.arange(len(emb), dtype=np.int64)}
    for name, j in zip("xyz", range(emb.shape[1])):
        cols[name] = emb[:, j].astype(np.float32)
    ctx.save_parquet("projection.parquet", pd.DataFrame(cols))


def validate_pca(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    reject_unknown(p, {"n_components"}, "pca")
    return {"n_components": take_int(p, "n_components", 2, 2, min(3, info.n_dims))}


@register("pca", validate=validate_pca)
def run_pca(ctx: JobContext) -> dict[str, Any]:
    from backend.project.pca import PCA

    ctx.progress(0.1, "PCA")
    pca = PCA(ctx.params["n_components"], device=ctx.device)
    emb = pca.fit_transform(np.asarray(ctx.vectors()))
    save_projection(ctx, emb)
    ctx.progress(1.0, "PCA done")
    return {"explained_variance_ratio": pca.explained_variance_ratio_.tolist()}


def validate_umap(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    reject_unknown(p, {"n_neighbors", "metric", "n_components", "min_dist", "random_state"}, "umap")
    out = _knn_params(p, info)
    out["n_components"] = take_int(p, "n_components", 2, 2, 3)
    out["min_dist"] = take_float(p, "min_dist", 0.1, 0.0, 1.0)
    out["random_state"] = take_seed(p)
    return out


@register("umap", validate=validate_umap)
def run_umap(ctx: JobContext) -> dict[str, Any]:
    from backend.project.umap_ import umap_embedding

    p = ctx.params
    idx, dist, knn_id = load_knn(ctx, p, span=(0.0, 0.2))
    ctx.progress(0.2, "UMAP: fuzzy graph and spectral start (the first run compiles, ~20 s)")
    emb = umap_embedding(
        np.asarray(ctx.vectors()), (idx, dist), n_components=p["n_components"],
        min_dist=p["min_dist"], metric=p["metric"], random_state=p["random_state"],
        progress=lambda f, m: ctx.progress(0.25 + 0.75 * f, m),
    )
    save_projection(ctx, emb)
    return {"knn_artifact": knn_id}


def validate_heat_geodesic(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    reject_unknown(p, {"n_neighbors", "metric", "n_components", "t", "order", "sigma",
                       "method", "n_landmarks", "random_state"}, "heat_geodesic")
    k = take_int(p, "n_neighbors", 10, 1, MAX_NEIGHBORS - 1)
    check_rows(info.n_rows, k)  # n_neighbors excludes the point: k + 1 rows at least
    out = {"n_neighbors": k, "metric": take_choice(p, "metric", "euclidean", KNN_METRICS),
           "n_components": take_int(p, "n_components", 2, 2, 3)}
    t = p.get("t", "auto")
    out["t"] = "auto" if t == "auto" else take_float(p, "t", 10.0, 1e-3, 1e4)
    order = p.get("order", "auto")
    out["order"] = "auto" if order == "auto" else take_int(p, "order", 32, 1, 4096)
    out["sigma"] = take_float(p, "sigma", 1.0, 0.0, 1.0)
    out["method"] = take_choice(p, "method", "auto", ("auto", "chebyshev", "exact", "landmark"))
    out["n_landmarks"] = take_int(p, "n_landmarks", 3000, 10, 10_000)
    out["random_state"] = take_seed(p)
    return out


@register("heat_geodesic", validate=validate_heat_geodesic)
def run_heat_geodesic(ctx: JobContext) -> dict[str, Any]:
    from backend.project.heat_geodesic import HeatGeodesic

    p = ctx.params
    # On the vectors, not on the stored kNN artifact: the estimator merges exact duplicate
    # rows before its search (a shared graph's candidate lists can be all duplicates) and
    # searches 3 x n_neighbors candidates with the shared knn_graph, so small datasets
    # need only n_neighbors + 1 distinct rows (no fixed 15-neighbour graph).
    est = HeatGeodesic(
        p["n_components"], n_neighbors=p["n_neighbors"], t=p["t"], order=p["order"],
        sigma=p["sigma"], method=p["method"], n_landmarks=p["n_landmarks"],
        random_state=p["random_state"], device=ctx.device, metric=p["metric"],
    )
    est.fit(np.asarray(ctx.vectors()),
            progress=lambda f, m: ctx.progress(f, f"heat geodesic: {m}"))
    save_projection(ctx, np.asarray(est.embedding_, dtype=np.float32))
    return {"heat_geodesic": est.report_.to_dict()}


def validate_faithfulness(p: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    from backend.store import valid_id

    reject_unknown(p, {"projection", "n_neighbors", "n_rows"}, "faithfulness")
    proj = p.get("projection")
    if not isinstance(proj, str) or not valid_id(proj):
        raise InvalidParameterError(
            f"projection must be the artifact id of a projection of {info.name!r}; got {proj!r}.")
    k = take_int(p, "n_neighbors", 10, 1, 100)
    if not k < info.n_rows / 2:
        raise InvalidParameterError(
            f"n_neighbors must be below half the rows ({info.n_rows:,}); got {k}.")
    return {"projection": proj, "n_neighbors": k, "n_rows": take_int(p, "n_rows", 2000, 100, 20_000)}


@register("faithfulness", validate=validate_faithfulness)
def run_faithfulness(ctx: JobContext) -> dict[str, Any]:
    from backend.diagnostics.projection import projection_faithfulness

    p = ctx.params
    art = ctx.store.artifact(p["projection"])
    if art.dataset_id != ctx.dataset.id or "projection.parquet" not in art.files:
        raise InvalidParameterError(
            f"artifact {p['projection']} is not a projection of {ctx.dataset.name!r}.")
    proj = pd.read_parquet(ctx.store.artifact_path(art.id, "projection.parquet"))
    Y = proj[[c for c in ("x", "y", "z") if c in proj.columns]].to_numpy(np.float64)
    metric = art.meta.get("params", {}).get("metric", "euclidean")
    res = projection_faithfulness(
        np.asarray(ctx.vectors()), Y, n_neighbors=p["n_neighbors"],
        metric="cosine" if metric == "cosine" else "euclidean", n_rows=p["n_rows"],
        random_state=0, device=ctx.device, progress=ctx.progress,
    )
    ctx.save_json("faithfulness.json", res.to_dict())
    ctx.save_parquet("per_point.parquet", res.per_point_frame())
    note = None if metric in ("euclidean", "cosine") else (
        f"the projection used the {metric} metric; faithfulness is scored with Euclidean distances")
    return {"faithfulness": res.to_dict(), "metric_note": note}
