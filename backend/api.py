"""The backend API, declared once: :class:`Backend`.

Every method a page or a script may call on a backend is declared here, with its types, its
one docstring and its HTTP route (``@route``). The rest is generated or checked from it:

- :class:`backend.client.LocalBackend` implements exactly these methods, in this process;
- ``backend/service.py`` builds its FastAPI routes from the declarations (path parameters
  from the route's path, the other parameters as query for ``GET``/``DELETE``, a JSON body
  for ``POST``, ``bytes`` parameters as multipart files with the others in one JSON
  ``options`` field), and encodes each answer by the return annotation (:func:`encode`);
- :class:`backend.http_client.HttpBackend` gets one method per declaration with the same
  signature, which sends the call to that route and decodes the answer (:func:`decode`);
- ``tests/unit/test_api_parity.py`` calls every method on both backends and compares.

What travels over the wire: JSON for dataclasses (``to_dict``), lists, dicts and strings;
tables as Parquet; arrays as ``.npy`` (loaded with ``allow_pickle=False``); a
:class:`Added` pair as a JSON object. Nothing is ever pickled.

Methods marked ``@client_side`` have no route: each backend runs them itself (``wait`` polls
``status`` unless a backend can do better, ``result`` decodes ``artifact``'s sidecar, ``close``
releases what the backend holds).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import json
import time
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol

import numpy as np
import pandas as pd

from backend.clusters import DensityGrid, FacetCounts, OpenedView, ViewState
from backend.errors import NotFoundError
from backend.jobs import JobSpec, JobStatus, result_of
from backend.store import ArtifactInfo, DatasetInfo, valid_id
from backend.tasks.text import TextSearchResult

from backend.results import Result

__all__ = [
    "API_VERSION", "ID_PARAMS", "MAX_ROWS_PER_CALL", "NPY", "OCTET", "PARQUET", "Added", "Backend",
    "Declaration", "Route", "check_id", "client_side", "declarations", "decode", "dumps",
    "encode", "from_json", "implements", "route", "to_json",
]

#: The version of the routes and wire formats generated from :class:`Backend`; the service
#: reports it at ``/info`` and :class:`~backend.http_client.HttpBackend` refuses another one.
API_VERSION = 2
PARQUET = "application/vnd.apache.parquet"
NPY = "application/x-npy"
#: A file answered as is (a download: CSV, Parquet).
OCTET = "application/octet-stream"
JSON = "application/json"
#: Rows one call of :meth:`Backend.rows` may ask for over HTTP.
MAX_ROWS_PER_CALL = 100_000
#: The id parameters and what their ids name (for :func:`check_id`'s message).
ID_PARAMS = {"dataset_id": "a dataset", "job_id": "a job", "artifact_id": "an artifact"}


# -- declaration machinery -------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    """Where a :class:`Backend` method is served: HTTP method, path template, tag.

    ``fields`` adds pydantic ``Field`` constraints to parameters on the wire only (e.g. the
    most rows one request may ask for). ``file`` (a suffix such as ``".parquet"``) says the
    answer is an artifact file of that type, sent as stored instead of decoded and encoded
    again (the method's ``artifact_id`` and ``name`` name it).
    """

    method: str
    path: str
    tag: str
    fields: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    file: str | None = None


def route(method: str, path: str, *, tag: str, fields: dict[str, dict[str, Any]] | None = None,
          file: str | None = None):
    """Declare the route serving a :class:`Backend` method (a decorator)."""

    def deco(fn: Callable) -> Callable:
        fn.__route__ = Route(method, path, tag, dict(fields or {}), file)
        return fn

    return deco


def client_side(fn: Callable) -> Callable:
    """Mark a :class:`Backend` method that has no route: each backend runs it itself."""
    fn.__route__ = None
    return fn


class Added(NamedTuple):
    """A dataset just stored and the notes to show about it (what was dropped, found, fixed)."""

    dataset: DatasetInfo
    notes: list[str]


# -- the API ---------------------------------------------------------------------------
class Backend(Protocol):
    """The backend API (see ``../shared/DESIGN.md``, "The backend boundary").

    Every method raises :class:`~backend.errors.NotFoundError` for an unknown id and another
    :class:`~backend.errors.LatentLensError` subclass, with a message the user can act on,
    for bad input; a refused input stores nothing.
    """

    # -- datasets --------------------------------------------------------------------
    @route("GET", "/datasets", tag="datasets")
    def datasets(self) -> list[DatasetInfo]:
        """Every stored dataset, oldest first.

        Returns
        -------
        list of DatasetInfo
        """

    @route("GET", "/datasets/{dataset_id}", tag="datasets")
    def dataset(self, dataset_id: str) -> DatasetInfo:
        """One stored dataset.

        Parameters
        ----------
        dataset_id : str
            16 hex digits.

        Returns
        -------
        DatasetInfo
        """

    @route("DELETE", "/datasets/{dataset_id}", tag="datasets")
    def delete_dataset(self, dataset_id: str) -> None:
        """Remove a dataset, its jobs and its artifacts.

        Parameters
        ----------
        dataset_id : str
        """

    @route("GET", "/bundled", tag="datasets")
    def bundled(self) -> dict[str, str]:
        """The bundled vector datasets.

        Returns
        -------
        dict of str to str
            Key (for :meth:`add_bundled`) to key.
        """

    @route("POST", "/datasets/bundled", tag="datasets")
    def add_bundled(self, key: str) -> DatasetInfo:
        """Store a bundled vector dataset (once; later calls return the stored one).

        Parameters
        ----------
        key : str
            One of :meth:`bundled`.

        Returns
        -------
        DatasetInfo
        """

    @route("POST", "/datasets/upload", tag="datasets")
    def add_upload(
        self, data: bytes, filename: str, *, name: str | None = None,
        vector_columns: list[str] | None = None, list_column: str | None = None,
        id_column: str | None = None, array_key: str | None = None,
        metadata: bytes | None = None, metadata_filename: str = "metadata.csv",
        drop_nonfinite: bool = False, n_neighbors: int = 15, sep: str | None = None,
        decimal: str | None = None, encoding: str | None = None, header: bool | None = None,
        latitude: str | None = None, longitude: str | None = None,
    ) -> Added:
        """Validate and store an uploaded file of vectors (kind ``"vectors"``).

        Latitude/longitude columns (chosen, or found by name) are validated and kept for the
        globe.

        Parameters
        ----------
        data : bytes
            The file: CSV, TSV, Parquet, NPY, NPZ or AnnData ``.h5ad`` (the extension of
            ``filename`` says which).
        filename : str
            Its name.
        name : str, optional
            The dataset's name (default ``filename``).
        vector_columns : list of str, optional
            Tables: the numeric columns forming the vectors (default: the numeric columns but
            ``id_column``, index-like columns and integer labels; an ``id_column`` listed
            here is left out of the vectors, with a note).
        list_column : str, optional
            Tables: one column whose cells are lists (JSON ``[..]`` text in CSV) instead.
        id_column : str, optional
            A column of unique row ids (kept as metadata).
        array_key : str, optional
            NPZ: the array holding the vectors; ``.h5ad``: ``"X"`` or ``"obsm/<name>"``.
        metadata : bytes, optional
            A CSV with one row per vector (extra columns).
        metadata_filename : str, default="metadata.csv"
        drop_nonfinite : bool, default=False
            Drop rows with NaN or infinite values instead of refusing the file.
        n_neighbors : int, default=15
            The neighbourhood size the dataset must support (it needs ``n_neighbors + 1`` rows).
        sep, decimal, encoding, header : optional
            Delimited text: the separator, decimal mark, encoding and whether the first row
            names the columns (``None``: detected; see
            :func:`backend.datasets.delimited.detect_text_format`).
        latitude, longitude : str, optional
            The coordinate columns in degrees (both or neither; default: found by name).

        See :func:`backend.datasets.upload.parse_upload` for the formats and checks.

        Returns
        -------
        Added
            The dataset and the notes to show (dropped rows, constant columns, coordinates).

        Raises
        ------
        InvalidInputError
            An unreadable file, one over the backend's size or row limit
            (``LATENT_LENS_MAX_UPLOAD_MB``, ``LATENT_LENS_MAX_ROWS``), or bad vectors.
        InvalidParameterError
            Contradictory options or a column that does not exist.
        """

    @route("GET", "/text/bundled", tag="text")
    def bundled_text(self) -> dict[str, str]:
        """The bundled text datasets.

        Returns
        -------
        dict of str to str
            Key (for :meth:`add_bundled_text`) to a label for the user.
        """

    @route("POST", "/text/bundled", tag="text")
    def add_bundled_text(self, key: str = "chatterbot") -> DatasetInfo:
        """Store a bundled text dataset (kind ``"text"``; once, later calls return it).

        Parameters
        ----------
        key : str, default="chatterbot"
            One of :meth:`bundled_text`.

        Returns
        -------
        DatasetInfo
        """

    @route("POST", "/text/upload", tag="text")
    def add_text_upload(
        self, data: bytes, filename: str, *, text_column: str, name: str | None = None,
        id_column: str | None = None, sep: str | None = None, decimal: str | None = None,
        encoding: str | None = None, header: bool | None = None,
    ) -> Added:
        """Validate and store a table whose ``text_column`` is to be embedded (kind ``"text"``,
        no vectors yet: embed it with a ``text_embed`` job).

        Parameters
        ----------
        data : bytes
            A CSV, TSV or Parquet table.
        filename : str
            Its name (the extension gives the format).
        text_column : str
            The column of texts; the other columns are kept for search filters.
        name : str, optional
            The dataset's name (default ``filename``).
        id_column : str, optional
            A column of unique, non-empty row ids.
        sep, decimal, encoding, header : optional
            Delimited text: how the file is written (``None``: detected), as for
            :meth:`add_upload`.

        Returns
        -------
        Added
            The dataset and the notes to show (e.g. how many cells hold no text).

        Raises
        ------
        InvalidInputError, InvalidParameterError
            See :func:`backend.datasets.text_table.parse_text_upload`.
        """

    @route("POST", "/models/bundled", tag="models")
    def add_bundled_model(self) -> DatasetInfo:
        """Store the bundled all-MiniLM-L6-v2 sentence model (kind ``"model"``; once).

        Returns
        -------
        DatasetInfo
            One row per tensor: ``tensor``, ``shape``, ``dtype``, ``parameters``.
        """

    @route("POST", "/models/upload", tag="models")
    def add_model(self, data: bytes, filename: str, *, name: str | None = None) -> DatasetInfo:
        """Validate and store model weights (kind ``"model"``): safetensors, or a PyTorch state
        dict loadable with ``torch.load(weights_only=True)`` (never unpickled beyond tensors).

        Parameters
        ----------
        data : bytes
            The weights file.
        filename : str
            Its name.
        name : str, optional
            The dataset's name (default ``filename``).

        Returns
        -------
        DatasetInfo

        Raises
        ------
        InvalidInputError
            A file that is not weights, a pickle that needs arbitrary code, one without tensors.
        """

    @route("POST", "/satclip/upload", tag="models")
    def add_satclip(self, data: bytes, filename: str, *, name: str | None = None) -> DatasetInfo:
        """Validate a SatCLIP checkpoint and store its location encoder (kind ``"satclip"``;
        the vision backbone is dropped).

        Parameters
        ----------
        data : bytes
            The checkpoint (``.ckpt``).
        filename : str
            Its name.
        name : str, optional
            The dataset's name (default ``filename``).

        Returns
        -------
        DatasetInfo

        Raises
        ------
        InvalidInputError
            A file that is not a SatCLIP checkpoint.
        """

    @route("POST", "/graphs/upload", tag="graphs")
    def add_graph(
        self, edges: bytes, filename: str, *, nodes: bytes | None = None,
        nodes_filename: str | None = None, directed: bool = False, name: str | None = None,
        source: str = "auto", target: str = "auto",
    ) -> Added:
        """Validate and store a graph (kind ``"graph"``).

        Parameters
        ----------
        edges : bytes
            A CSV/TSV edge list: two endpoint columns, optional ``weight``.
        filename : str
            Its name (the extension gives the separator).
        nodes : bytes, optional
            A node table: an ``id`` column and attributes or labels.
        nodes_filename : str, optional
            Its name (default ``"nodes.csv"``).
        directed : bool, default=False
        name : str, optional
            The dataset's name (default: ``filename`` without extension).
        source, target : str, default="auto"
            The endpoint columns; ``"auto"`` recognises ``source``/``target``, ``src``/``dst``,
            ``from``/``to``, ``u``/``v``, … (:data:`backend.datasets.graph.ENDPOINT_NAMES`).

        Returns
        -------
        Added
            The dataset and the loader's findings (self-loops, duplicate edges, isolated nodes,
            ids in one table only, zero or negative weights).

        Raises
        ------
        InvalidInputError
            A file that is not a usable graph.
        """

    @route("POST", "/graphs/bundled", tag="graphs")
    def add_bundled_graph(self, name: str) -> Added:
        """Store one of networkx's example graphs as a graph dataset (once).

        Parameters
        ----------
        name : {"karate_club", "les_miserables", "florentine_families"}

        Returns
        -------
        Added
            The dataset and the loader's findings.
        """

    @route("GET", "/datasets/{dataset_id}/edges", tag="graphs")
    def graph_edges(self, dataset_id: str) -> pd.DataFrame:
        """The edges of a graph dataset.

        Parameters
        ----------
        dataset_id : str

        Returns
        -------
        pandas.DataFrame
            ``source``, ``target`` (int64 node rows) and ``weight`` (float).

        Raises
        ------
        InvalidParameterError
            The dataset is not a graph.
        """

    @route("GET", "/datasets/{dataset_id}/table", tag="datasets")
    def table(self, dataset_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A dataset's metadata table, with ``_row`` (int64, 0..n-1).

        Parameters
        ----------
        dataset_id : str
        columns : list of str, optional
            Only these columns (and ``_row``); default all.

        Returns
        -------
        pandas.DataFrame of shape (n_rows, n_columns)

        Raises
        ------
        InvalidParameterError
            A column the dataset does not have.
        """

    @route("POST", "/datasets/{dataset_id}/rows", tag="datasets",
           fields={"rows": {"max_length": MAX_ROWS_PER_CALL}})
    def rows(self, dataset_id: str, rows: list[int]) -> np.ndarray:
        """The vectors of some rows, in the order asked (repeats allowed).

        Parameters
        ----------
        dataset_id : str
        rows : list of int
            Row numbers in ``[0, n_rows)``; at most 100,000 per call over HTTP.

        Returns
        -------
        numpy.ndarray of shape (len(rows), n_dims), float32

        Raises
        ------
        InvalidParameterError
            A row out of range.
        """

    @route("GET", "/datasets/{dataset_id}/neighbors", tag="datasets")
    def neighbors(
        self, dataset_id: str, row: int, k: int = 10, metric: str = "euclidean"
    ) -> pd.DataFrame:
        """The ``k`` nearest rows to ``row`` in the original vector space (exact).

        Parameters
        ----------
        dataset_id : str
        row : int
            The query row (excluded from the answer).
        k : int, default=10
            Clipped to ``[1, n_rows - 1]``.
        metric : {"euclidean", "cosine", "manhattan", "correlation"}, default="euclidean"

        Returns
        -------
        pandas.DataFrame of shape (k, 2)
            ``_row`` (int64) and ``distance`` (float64, in ``metric``'s units), nearest first.
            Under ``cosine`` (``correlation``) a zero (constant) row has no direction: its
            distances are undefined, so such rows are never listed.

        Raises
        ------
        InvalidParameterError
            An unknown metric or a row out of range.
        InvalidInputError
            The query row is the zero vector (constant) under ``cosine`` (``correlation``).
        """

    @route("POST", "/datasets/{dataset_id}/search", tag="text")
    def search(self, dataset_id: str, query: str, k: int = 10,
               filters: list[dict[str, Any]] | None = None) -> TextSearchResult:
        """The ``k`` rows nearest to a text query by cosine similarity, among the rows passing
        ``filters`` (synchronous: no job; see :func:`backend.tasks.text.search_dataset`).

        Parameters
        ----------
        dataset_id : str
            A text embedding (the result dataset of a ``text_embed`` job).
        query : str
            1 to 2,000 characters.
        k : int, default=10
            1 to 1,000.
        filters : list of dict, optional
            Category or range filters (:mod:`backend.search`), at most 16.

        Returns
        -------
        TextSearchResult

        Raises
        ------
        InvalidParameterError
            An empty query, bad filters, or a dataset that is not a text embedding.
        """

    # -- clusters, linked charts, exports, links (quick: no job) ----------------------
    @route("POST", "/datasets/{dataset_id}/facets", tag="clusters")
    def facets(self, dataset_id: str, columns: list[str], filters: list[dict[str, Any]] | None = None,
               rows: list[int] | None = None, top: int = 20, bins: int = 30,
               kinds: dict[str, str] | None = None, return_rows: bool = False) -> FacetCounts:
        """Cross-filtered counts of metadata columns, computed in DuckDB over the stored table:
        each column's chart counts the rows passing every *other* filter and ``rows``.

        Parameters
        ----------
        dataset_id : str
        columns : list of str
            The charted columns.
        filters : list of dict, optional
            Category or range filters (:mod:`backend.search`), ANDed.
        rows : list of int, optional
            Row ids selected on the map; narrows every chart.
        top : int, default=20
            Category charts list this many values; the rest are summed as ``"(other)"``.
        bins : int, default=30
            Bins of a numeric chart (over the column's full range).
        kinds : dict of str to {"category", "numeric"}, optional
            How to chart a column (default: numeric columns as histograms).
        return_rows : bool, default=False
            Also return the ids of the rows passing every filter and ``rows``.

        Returns
        -------
        FacetCounts
            See :func:`backend.clusters.facet_counts`.

        Raises
        ------
        InvalidParameterError
            An unknown column, a malformed filter, a row id out of range.
        """

    @route("POST", "/datasets/{dataset_id}/selection", tag="clusters")
    def selection_bytes(self, dataset_id: str, filters: list[dict[str, Any]] | None = None,
                        rows: list[int] | None = None, fmt: str = "csv") -> bytes:
        """The metadata of the rows passing ``filters`` and ``rows``, as a file (download).

        Parameters
        ----------
        dataset_id : str
        filters : list of dict, optional
        rows : list of int, optional
            Default: every row.
        fmt : {"csv", "parquet"}, default="csv"

        Returns
        -------
        bytes
        """

    @route("GET", "/artifacts/{artifact_id}/cluster-names", tag="clusters")
    def cluster_names(self, artifact_id: str, level: int) -> pd.DataFrame:
        """The clusters of one level of a ``cluster`` artifact, with their names.

        Parameters
        ----------
        artifact_id : str
        level : int
            In ``[0, n_levels)`` (coarse to fine).

        Returns
        -------
        pandas.DataFrame
            ``cluster`` (int32, -1 = Unclustered, last), ``name`` (edited, else computed),
            ``computed_name``, ``edited`` (bool), ``n_rows`` (int64), ``share`` (float64).
        """

    @route("POST", "/artifacts/{artifact_id}/cluster-names", tag="clusters")
    def rename_clusters(self, artifact_id: str, level: int, names: dict[int, str]) -> pd.DataFrame:
        """Store edited cluster names of one level (``""`` restores the computed name);
        the clustering artifact itself is unchanged.

        Parameters
        ----------
        artifact_id : str
        level : int
        names : dict of int to str
            Cluster id to its new name (at most 200 characters).

        Returns
        -------
        pandas.DataFrame
            The level's clusters after the change (as :meth:`cluster_names`).

        Raises
        ------
        InvalidParameterError
            A cluster not in the level, or a name too long.
        """

    @route("GET", "/artifacts/{artifact_id}/cluster-labels", tag="clusters")
    def cluster_labels(self, artifact_id: str, level: int) -> np.ndarray:
        """Each row's cluster at one level, in row order.

        Parameters
        ----------
        artifact_id : str
        level : int

        Returns
        -------
        numpy.ndarray of shape (n_rows,), int32
            -1 = Unclustered.
        """

    @route("GET", "/artifacts/{artifact_id}/assignments", tag="clusters")
    def assignments_bytes(self, artifact_id: str, level: int, fmt: str = "parquet") -> bytes:
        """Every row's cluster and name at one level, as a file (``_row``, ``cluster``,
        ``cluster_name``).

        Parameters
        ----------
        artifact_id : str
        level : int
        fmt : {"parquet", "csv"}, default="parquet"

        Returns
        -------
        bytes
        """

    @route("GET", "/artifacts/{artifact_id}/density", tag="clusters")
    def density(self, artifact_id: str, grid_size: int = 256,
                bandwidth: float | None = None) -> DensityGrid:
        """Kernel density of a projection's points on a grid, with contour levels.

        Parameters
        ----------
        artifact_id : str
            A projection.
        grid_size : int, default=256
        bandwidth : float, optional
            Kernel width as a fraction of the map's extent; default Scott's rule.

        Returns
        -------
        DensityGrid
            See :func:`backend.clusters.density_grid`.
        """

    @route("GET", "/artifacts/{artifact_id}/map-html", tag="clusters")
    def map_html(self, artifact_id: str, clustering: str | None = None,
                 level: int | None = None) -> str:
        """A self-contained offline HTML file of a projection, coloured and named by a
        clustering level (no network access needed to open it).

        Parameters
        ----------
        artifact_id : str
            A projection.
        clustering : str, optional
            A ``cluster`` artifact of the same dataset.
        level : int, optional
            Default: the clustering's default level.

        Returns
        -------
        str
            The HTML document.
        """

    @route("POST", "/views/open", tag="clusters")
    def open_view(self, query: dict[str, str], default_dataset: str | None = None) -> OpenedView:
        """The Map view a shared link describes, checked against this workspace.

        Parameters
        ----------
        query : dict of str to str
            The link's query parameters (:data:`backend.clusters.share.QUERY_KEYS`).
        default_dataset : str, optional
            The dataset shown when the link's one no longer exists.

        Returns
        -------
        OpenedView
            The view to show and a message for each part that was dropped (a dataset, map or
            clustering that no longer exists; malformed filters or selection).
        """

    @client_side
    def view_query(self, **fields: Any) -> dict[str, str]:
        """The query parameters of a Map view, for the page URL (a shareable link).

        Parameters
        ----------
        **fields
            Fields of :class:`backend.clusters.ViewState`: ``dataset``, ``projection``,
            ``color``, ``filters``, ``selection``, ``clustering``, ``level``.

        Returns
        -------
        dict of str to str
        """
        from backend.clusters import view_to_query

        return view_to_query(ViewState(**fields))

    # -- jobs ------------------------------------------------------------------------
    @route("POST", "/jobs", tag="jobs")
    def submit(self, spec: JobSpec) -> str:
        """Validate and queue a job; identical specs share one job (and one computation).

        Parameters
        ----------
        spec : JobSpec

        Returns
        -------
        str
            The job id (also the id of its artifact once done).

        Raises
        ------
        InvalidParameterError
            An unknown kind or a bad parameter (nothing is queued).
        """

    @route("GET", "/jobs/{job_id}", tag="jobs")
    def status(self, job_id: str) -> JobStatus:
        """A job's state, progress and message.

        Parameters
        ----------
        job_id : str

        Returns
        -------
        JobStatus
        """

    @route("POST", "/jobs/{job_id}/cancel", tag="jobs")
    def cancel(self, job_id: str) -> JobStatus:
        """Ask a job to stop (a queued job never starts; a finished one stays as it is).

        Parameters
        ----------
        job_id : str

        Returns
        -------
        JobStatus
            Its state after the request.
        """

    @route("GET", "/jobs", tag="jobs")
    def jobs(self, dataset_id: str | None = None) -> list[JobStatus]:
        """Every job, or the jobs of one dataset.

        Parameters
        ----------
        dataset_id : str, optional

        Returns
        -------
        list of JobStatus
        """

    @client_side
    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        """Block until a job finishes or ``timeout`` seconds pass (for scripts and tests).

        Parameters
        ----------
        job_id : str
        timeout : float, optional
            Seconds; default: no limit.

        Returns
        -------
        JobStatus
            The last status seen (finished unless the timeout passed).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if status.finished or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(0.2)

    # -- artifacts -------------------------------------------------------------------
    @route("GET", "/artifacts/{artifact_id}", tag="artifacts")
    def artifact(self, artifact_id: str) -> ArtifactInfo:
        """A finished job's artifact: its files and its sidecar ``meta``.

        Parameters
        ----------
        artifact_id : str

        Returns
        -------
        ArtifactInfo
        """

    @route("GET", "/artifacts", tag="artifacts")
    def artifacts(self, dataset_id: str | None = None) -> list[ArtifactInfo]:
        """Every artifact, or those of one dataset.

        Parameters
        ----------
        dataset_id : str, optional

        Returns
        -------
        list of ArtifactInfo
        """

    @route("GET", "/artifacts/{artifact_id}/table", tag="artifacts", file=".parquet")
    def artifact_table(self, artifact_id: str, name: str) -> pd.DataFrame:
        """A ``.parquet`` file of an artifact, by a name from its ``files``.

        Parameters
        ----------
        artifact_id : str
        name : str

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        NotFoundError
            A name not in the artifact's files, or not a ``.parquet`` file.
        """

    @route("GET", "/artifacts/{artifact_id}/json", tag="artifacts", file=".json")
    def artifact_json(self, artifact_id: str, name: str) -> Any:
        """A ``.json`` file of an artifact (e.g. ``meta.json``), by a name from its ``files``.

        Parameters
        ----------
        artifact_id : str
        name : str

        Returns
        -------
        object
            The parsed JSON.

        Raises
        ------
        NotFoundError
            A name not in the artifact's files, or not a ``.json`` file.
        """

    @route("GET", "/artifacts/{artifact_id}/array", tag="artifacts", file=".npy")
    def artifact_array(self, artifact_id: str, name: str) -> np.ndarray:
        """A ``.npy`` file of an artifact, by a name from its ``files`` (no pickles).

        Parameters
        ----------
        artifact_id : str
        name : str

        Returns
        -------
        numpy.ndarray

        Raises
        ------
        NotFoundError
            A name not in the artifact's files, or not a ``.npy`` file.
        """

    @client_side
    def result(self, artifact_id: str) -> Result:
        """The typed result of a finished job (its kind's result class, from ``meta.json``).

        Parameters
        ----------
        artifact_id : str

        Returns
        -------
        Result
            An instance of the kind's declared result class.

        Raises
        ------
        InvalidParameterError
            The artifact's kind is not registered in this process.
        """
        return result_of(self.artifact(artifact_id))

    @client_side
    def close(self) -> None:
        """Release what the backend holds (worker threads, connections); call it last."""


# -- reading the declarations ----------------------------------------------------------
@dataclass(frozen=True)
class Declaration:
    """One :class:`Backend` method as the generators read it."""

    name: str
    fn: Callable
    route: Route | None
    signature: inspect.Signature  # with the annotations resolved to types, without ``self``
    returns: Any

    @property
    def path_params(self) -> list[str]:
        import re

        return re.findall(r"{(\w+)}", self.route.path) if self.route else []

    @property
    def files(self) -> list[str]:
        """The ``bytes`` parameters (multipart files on the wire)."""
        return [p.name for p in self.signature.parameters.values()
                if _strip_none(p.annotation) is bytes]


@functools.cache
def declarations() -> dict[str, Declaration]:
    """The methods of :class:`Backend`, by name, in declaration order."""
    out = {}
    for name, fn in vars(Backend).items():
        if name.startswith("_") or not callable(fn) or not hasattr(fn, "__route__"):
            continue
        hints = typing.get_type_hints(fn)
        sig = inspect.signature(fn)
        params = [p.replace(annotation=hints.get(p.name, Any))
                  for p in list(sig.parameters.values())[1:]]
        out[name] = Declaration(name, fn, fn.__route__, sig.replace(parameters=params),
                                hints.get("return", Any))
    return out


def implements(protocol: type) -> Callable[[type], type]:
    """Class decorator: give each method of the class without a docstring the protocol's."""

    def deco(cls: type) -> type:
        for name, fn in vars(cls).items():
            declared = getattr(protocol, name, None)
            if inspect.isfunction(fn) and fn.__doc__ is None and declared is not None:
                fn.__doc__ = declared.__doc__
        return cls

    return deco


def check_id(value: Any, param: str) -> str:
    """``value`` if it has the form of a store id, else :class:`NotFoundError` (the store's
    message). ``param`` is the parameter's name (``dataset_id``, ``job_id``, ``artifact_id``)."""
    if not valid_id(value):
        raise NotFoundError(f"{value!r} is not {ID_PARAMS.get(param, 'an')} id (16 hex digits).")
    return value


# -- the wire --------------------------------------------------------------------------
def _strip_none(tp: Any) -> Any:
    """``X`` for ``X | None``, else ``tp``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_namedtuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"a {type(o).__name__} cannot be sent as JSON.")


def to_json(value: Any) -> Any:
    """``value`` as JSON-able data: dataclasses by ``to_dict``, an :class:`Added` as an object."""
    if _is_namedtuple(type(value)):
        return {k: to_json(v) for k, v in value._asdict().items()}
    if hasattr(value, "to_dict") and not isinstance(value, (pd.DataFrame, pd.Series)):
        return to_json(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(obj: Any, tp: Any) -> Any:
    """The inverse of :func:`to_json` for a value of type ``tp``."""
    tp = _strip_none(tp)
    if obj is None or tp is Any:
        return obj
    origin = typing.get_origin(tp)
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        return [from_json(v, arg) for v in obj]
    if origin is dict or tp is dict:
        return dict(obj)
    if _is_namedtuple(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f: from_json(obj[f], hints[f]) for f in tp._fields})
    if isinstance(tp, type) and hasattr(tp, "from_dict"):
        return tp.from_dict(obj)
    if dataclasses.is_dataclass(tp):
        return tp(**obj)
    return obj


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes (numpy scalars and arrays as plain numbers and lists)."""
    return json.dumps(to_json(value), default=_plain).encode()


def encode(value: Any, tp: Any) -> tuple[bytes, str]:
    """``value`` (of the declared type ``tp``) as bytes and their media type."""
    if tp is bytes:
        return bytes(value), OCTET
    if tp is pd.DataFrame:
        buf = io.BytesIO()
        value.to_parquet(buf)
        return buf.getvalue(), PARQUET
    if tp is np.ndarray:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(value), allow_pickle=False)
        return buf.getvalue(), NPY
    return dumps(value), JSON


def decode(content: bytes, tp: Any) -> Any:
    """The value :func:`encode` encoded as ``content``."""
    if tp is bytes:
        return content
    if tp is pd.DataFrame:
        return pd.read_parquet(io.BytesIO(content))
    if tp is np.ndarray:
        return np.load(io.BytesIO(content), allow_pickle=False)
    return from_json(json.loads(content), tp)
