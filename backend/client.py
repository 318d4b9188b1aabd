"""The in-process backend, and the choice of backend by configuration.

:class:`LocalBackend` implements :class:`backend.api.Backend` (documented there, once) with a
:class:`Store` and a :class:`JobRunner` in this process; :func:`get_backend` returns it, or an
:class:`~backend.http_client.HttpBackend` when a service URL is configured. Pages call only
these methods (never ``backend.project`` and friends directly), so the same page drives
either backend.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backend.api import Added, Backend, implements
from backend.clusters import DensityGrid, FacetCounts, OpenedView
from backend.datasets import ingest
from backend.datasets.bundled import BUNDLED
from backend.datasets.upload import UploadLimits
from backend.engines import Engine
from backend.errors import InvalidInputError, InvalidParameterError, NotFoundError
from backend.jobs import JobRunner, JobSpec, JobStatus
from backend.store import ArtifactInfo, DatasetInfo, Store
from backend.tasks.text import TextSearchResult

__all__ = ["Backend", "LocalBackend", "artifact_file", "get_backend"]


@implements(Backend)
class LocalBackend(Backend):
    """The embedded backend: a :class:`Store` and a :class:`JobRunner` in this process.

    Parameters
    ----------
    root : path-like, optional
        Workspace folder (default ``$LATENT_LENS_HOME`` or the user's cache dir).
    max_workers : int, optional
        Concurrent jobs (default ``$LATENT_LENS_WORKERS`` or 2).
    limits : UploadLimits, optional
        Size and row limits of uploads (default ``$LATENT_LENS_MAX_UPLOAD_MB``,
        ``$LATENT_LENS_MAX_ROWS``); a setting of the backend, not of a call.
    engine : Engine, optional
        Where jobs' scale-out work runs (default ``$LATENT_LENS_RAY_ADDRESS``: see
        :mod:`backend.engines`).
    """

    def __init__(self, root: str | os.PathLike | None = None, max_workers: int | None = None,
                 *, limits: UploadLimits | None = None, engine: Engine | None = None):
        self.store = Store(root)
        workers = max_workers or int(os.environ.get("LATENT_LENS_WORKERS", "2"))
        self.runner = JobRunner(self.store, max_workers=workers, engine=engine)
        self.limits = limits or UploadLimits()

    # -- datasets ------------------------------------------------------------------
    def datasets(self) -> list[DatasetInfo]:
        return self.store.datasets()

    def dataset(self, dataset_id: str) -> DatasetInfo:
        return self.store.dataset(dataset_id)

    def delete_dataset(self, dataset_id: str) -> None:
        self.store.delete_dataset(dataset_id)

    def bundled(self) -> dict[str, str]:
        return {k: k for k in BUNDLED}

    def add_bundled(self, key: str) -> DatasetInfo:
        return ingest.add_bundled(self.store, key)

    def add_upload(
        self, data: bytes, filename: str, *, name: str | None = None,
        vector_columns: list[str] | None = None, list_column: str | None = None,
        id_column: str | None = None, array_key: str | None = None,
        metadata: bytes | None = None, metadata_filename: str = "metadata.csv",
        drop_nonfinite: bool = False, n_neighbors: int = 15, sep: str | None = None,
        decimal: str | None = None, encoding: str | None = None, header: bool | None = None,
        latitude: str | None = None, longitude: str | None = None,
    ) -> Added:
        return Added(*ingest.add_upload(
            self.store, self.limits, data, filename, name=name, vector_columns=vector_columns,
            list_column=list_column, id_column=id_column, array_key=array_key, metadata=metadata,
            metadata_filename=metadata_filename, drop_nonfinite=drop_nonfinite,
            n_neighbors=n_neighbors, sep=sep, decimal=decimal, encoding=encoding, header=header,
            latitude=latitude, longitude=longitude))

    def bundled_text(self) -> dict[str, str]:
        from backend.datasets.text_table import BUNDLED_TEXT

        return dict(BUNDLED_TEXT)

    def add_bundled_text(self, key: str = "chatterbot") -> DatasetInfo:
        return ingest.add_bundled_text(self.store, key)

    def add_text_upload(
        self, data: bytes, filename: str, *, text_column: str, name: str | None = None,
        id_column: str | None = None, sep: str | None = None, decimal: str | None = None,
        encoding: str | None = None, header: bool | None = None,
    ) -> Added:
        return Added(*ingest.add_text_upload(self.store, self.limits, data, filename,
                                             text_column=text_column, name=name,
                                             id_column=id_column, sep=sep, decimal=decimal,
                                             encoding=encoding, header=header))

    def add_bundled_model(self) -> DatasetInfo:
        return ingest.add_bundled_model(self.store)

    def add_model(self, data: bytes, filename: str, *, name: str | None = None) -> DatasetInfo:
        return ingest.add_model(self.store, self.limits, data, filename, name=name)

    def add_satclip(self, data: bytes, filename: str, *, name: str | None = None) -> DatasetInfo:
        return ingest.add_satclip(self.store, self.limits, data, filename, name=name)

    def add_graph(
        self, edges: bytes, filename: str, *, nodes: bytes | None = None,
        nodes_filename: str | None = None, directed: bool = False, name: str | None = None,
        source: str = "auto", target: str = "auto",
    ) -> Added:
        return Added(*ingest.add_graph(self.store, self.limits, edges, filename, nodes=nodes,
                                       nodes_filename=nodes_filename, directed=directed,
                                       name=name, source=source, target=target))

    def add_bundled_graph(self, name: str) -> Added:
        return Added(*ingest.add_bundled_graph(self.store, name))

    def graph_edges(self, dataset_id: str) -> pd.DataFrame:
        return ingest.graph_edges(self.store, dataset_id)

    def table(self, dataset_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        if columns is not None:
            info = self.store.dataset(dataset_id)
            unknown = [c for c in columns if c != "_row" and c not in info.columns]
            if unknown:
                raise InvalidParameterError(
                    f"dataset {info.name!r} has no column(s) {unknown[:10]}; "
                    f"it has {info.columns[:50]}."
                )
        return self.store.table(dataset_id, columns)

    def rows(self, dataset_id: str, rows: list[int]) -> np.ndarray:
        v = self.store.vectors(dataset_id)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= v.shape[0]):
            raise InvalidParameterError(f"row ids must be in [0, {v.shape[0] - 1}].")
        return np.asarray(v[np.sort(rows)])[np.argsort(np.argsort(rows))]

    def neighbors(
        self, dataset_id: str, row: int, k: int = 10, metric: str = "euclidean"
    ) -> pd.DataFrame:
        from backend.project.knn import KNN_METRICS

        if metric not in KNN_METRICS:
            raise InvalidParameterError(f"metric must be one of {KNN_METRICS}; got {metric!r}.")
        v = self.store.vectors(dataset_id)
        n = v.shape[0]
        if not 0 <= int(row) < n:
            raise InvalidParameterError(f"row must be in [0, {n - 1}]; got {row}.")
        k = int(min(max(k, 1), n - 1))
        q = np.asarray(v[int(row)], dtype=np.float64)
        dists = np.empty(n, dtype=np.float64)
        chunk = max(1, 2**24 // max(v.shape[1], 1))
        for s in range(0, n, chunk):
            block = np.asarray(v[s : s + chunk], dtype=np.float64)
            dists[s : s + chunk] = _distances(block, q, metric)
        if np.isnan(dists[int(row)]):
            what = "the zero vector" if metric == "cosine" else "constant (zero variance)"
            raise InvalidInputError(
                f"row {int(row)} is {what}, so its {metric} distances are undefined (it has no "
                f"direction); pick another row or the euclidean metric.")
        dists[np.isnan(dists)] = np.inf  # undefined distances: never a neighbour
        dists[int(row)] = np.inf
        part = np.argpartition(dists, k - 1)[:k] if k < n else np.arange(n)
        part = part[np.argsort(dists[part], kind="stable")]
        part = part[np.isfinite(dists[part])]
        return pd.DataFrame({"_row": part.astype(np.int64), "distance": dists[part]})

    def search(self, dataset_id: str, query: str, k: int = 10,
               filters: list[dict[str, Any]] | None = None) -> TextSearchResult:
        from backend.tasks.text import search_dataset

        return search_dataset(self.store, dataset_id, query, k, filters)

    # -- jobs ----------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        return self.runner.submit(spec)

    def status(self, job_id: str) -> JobStatus:
        return self.runner.status(job_id)

    def cancel(self, job_id: str) -> JobStatus:
        return self.runner.cancel(job_id)

    def jobs(self, dataset_id: str | None = None) -> list[JobStatus]:
        return [JobStatus.from_row(r) for r in self.store.jobs(dataset_id)]

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        return self.runner.wait(job_id, timeout)  # no polling: the job's own future

    # -- artifacts -----------------------------------------------------------------
    def artifact(self, artifact_id: str) -> ArtifactInfo:
        return self.store.artifact(artifact_id)

    def artifacts(self, dataset_id: str | None = None) -> list[ArtifactInfo]:
        return self.store.artifacts(dataset_id)

    def artifact_table(self, artifact_id: str, name: str) -> pd.DataFrame:
        return pd.read_parquet(artifact_file(self.store, artifact_id, name, ".parquet"))

    def artifact_json(self, artifact_id: str, name: str) -> Any:
        return json.loads(artifact_file(self.store, artifact_id, name, ".json").read_text())

    def artifact_array(self, artifact_id: str, name: str) -> np.ndarray:
        return np.load(artifact_file(self.store, artifact_id, name, ".npy"), allow_pickle=False)

    def close(self) -> None:
        self.runner.shutdown()

    # -- clusters, linked charts, exports, links (quick: no job) ----------------------
    def facets(self, dataset_id: str, columns: list[str], filters: list[dict[str, Any]] | None = None,
               rows: list[int] | None = None, top: int = 20, bins: int = 30,
               kinds: dict[str, str] | None = None, return_rows: bool = False) -> FacetCounts:
        from backend.clusters.stored import dataset_facets

        return dataset_facets(self.store, dataset_id, columns, filters=filters or [], rows=rows,
                              top=top, bins=bins, kinds=kinds, return_rows=return_rows)

    def selection_bytes(self, dataset_id: str, filters: list[dict[str, Any]] | None = None,
                        rows: list[int] | None = None, fmt: str = "csv") -> bytes:
        from backend.clusters.stored import selection_bytes

        return selection_bytes(self.store, dataset_id, filters=filters or [], rows=rows, fmt=fmt)

    def cluster_names(self, artifact_id: str, level: int) -> pd.DataFrame:
        from backend.clusters.stored import cluster_names

        return cluster_names(self.store, artifact_id, level)

    def rename_clusters(self, artifact_id: str, level: int, names: dict[int, str]) -> pd.DataFrame:
        from backend.clusters.stored import rename_clusters

        return rename_clusters(self.store, artifact_id, level, names)

    def cluster_labels(self, artifact_id: str, level: int) -> np.ndarray:
        from backend.clusters.stored import cluster_labels

        return cluster_labels(self.store, artifact_id, level)

    def assignments_bytes(self, artifact_id: str, level: int, fmt: str = "parquet") -> bytes:
        from backend.clusters.stored import assignments_bytes

        return assignments_bytes(self.store, artifact_id, level, fmt)

    def density(self, artifact_id: str, grid_size: int = 256,
                bandwidth: float | None = None) -> DensityGrid:
        from backend.clusters.stored import projection_density

        return projection_density(self.store, artifact_id, grid_size=grid_size,
                                  bandwidth="scott" if bandwidth is None else bandwidth)

    def map_html(self, artifact_id: str, clustering: str | None = None,
                 level: int | None = None) -> str:
        from backend.clusters.stored import map_html

        return map_html(self.store, artifact_id, clustering=clustering, level=level)

    def open_view(self, query: dict[str, str], default_dataset: str | None = None) -> OpenedView:
        from backend.clusters import ViewState, resolve_view, view_from_query
        from backend.store import valid_id

        state, messages = view_from_query(query)

        def artifact_dataset(aid: str) -> str | None:
            art = self.store.artifact_or_none(aid) if valid_id(aid) else None
            return art.dataset_id if art is not None else None

        state, more = resolve_view(state, [d.id for d in self.store.datasets()], artifact_dataset,
                                   ViewState(dataset=default_dataset))
        return OpenedView(state, messages + more)

def artifact_file(store: Store, artifact_id: str, name: str, suffix: str) -> Path:
    """The path of an artifact's file ``name``, which must be listed and end in ``suffix``.

    Raises
    ------
    NotFoundError
        A name not in the artifact's files, or a file of another type.
    """
    path = store.artifact_path(artifact_id, name)
    if path.suffix != suffix:
        raise NotFoundError(
            f"{name!r} is not a {suffix} file; only {suffix} files of artifact {artifact_id} "
            f"are read this way (it has {store.artifact(artifact_id).files}).")
    return path


def _distances(block: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        return np.sqrt(((block - q) ** 2).sum(axis=1))
    if metric == "manhattan":
        return np.abs(block - q).sum(axis=1)
    if metric == "correlation":
        block = block - block.mean(axis=1, keepdims=True)
        q = q - q.mean()
    nb = np.linalg.norm(block, axis=1) * np.linalg.norm(q)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(nb > 0, block @ q / np.where(nb > 0, nb, 1), np.nan)
    return 1.0 - sim  # NaN where a vector has no direction: the distance is undefined


def get_backend(root: str | os.PathLike | None = None) -> Backend:
    """The backend the app uses: ``LocalBackend`` unless a service URL is configured.

    ``$LATENT_LENS_BACKEND_URL`` (or that key in ``.streamlit/secrets.toml``) names a
    remote service: then an :class:`~backend.http_client.HttpBackend` with the token
    ``$LATENT_LENS_BACKEND_TOKEN`` (see the README, "Run the backend on a GPU machine").
    """
    from backend.http_client import HttpBackend, service_settings

    url, token = service_settings()
    if url:
        return HttpBackend(url, token)
    return LocalBackend(root)
