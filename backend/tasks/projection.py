"""Job kinds of the map: the shared kNN graph, PCA and UMAP projections."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

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
