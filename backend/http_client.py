"""The app's side of the backend service: :class:`HttpBackend`, LocalBackend's API over HTTP.

:func:`backend.client.get_backend` returns an HttpBackend when a service URL is configured,
so pages run unchanged against a backend on another machine (``backend/service.py``). Every
method has LocalBackend's signature and return type (dataclasses, DataFrames, ndarrays) and
raises the same :class:`~backend.errors.LatentLensError` subclasses with the service's message;
a service that cannot be reached, or refuses the token, raises :class:`BackendServiceError`.
Tables arrive as Parquet, arrays as ``.npy`` read with ``allow_pickle=False``; nothing is
ever unpickled.
"""

from __future__ import annotations

import io
import json
import os
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from backend.errors import InvalidInputError, InvalidParameterError, LatentLensError, NotFoundError
from backend.jobs import JobSpec, JobStatus
from backend.store import ArtifactInfo, DatasetInfo

__all__ = ["HttpBackend", "BackendServiceError", "service_settings"]

URL_KEY = "LATENT_LENS_BACKEND_URL"
TOKEN_KEY = "LATENT_LENS_BACKEND_TOKEN"
_ERRORS = {c.__name__: c for c in (InvalidInputError, InvalidParameterError, NotFoundError)}


class BackendServiceError(LatentLensError):
    """The backend service cannot be reached, refuses the token, or failed."""


def service_settings(cwd: str | os.PathLike | None = None) -> tuple[str | None, str | None]:
    """The service URL and token: environment variables, else ``.streamlit/secrets.toml``.

    Reads ``LATENT_LENS_BACKEND_URL`` and ``LATENT_LENS_BACKEND_TOKEN`` from the environment,
    then from the top level of ``~/.streamlit/secrets.toml`` and ``<cwd>/.streamlit/secrets.toml``
    (the project file wins), the files Streamlit itself reads. Empty values count as unset.

    Raises
    ------
    InvalidInputError
        If a secrets file exists but is not valid TOML.
    """
    found: dict[str, str] = {}
    here = Path(cwd) if cwd is not None else Path.cwd()
    for path in (Path.home() / ".streamlit" / "secrets.toml", here / ".streamlit" / "secrets.toml"):
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise InvalidInputError(f"{path} is not valid TOML ({e}); fix or remove it.") from None
        found.update({k: str(data[k]) for k in (URL_KEY, TOKEN_KEY) if data.get(k)})
    for k in (URL_KEY, TOKEN_KEY):
        if os.environ.get(k):
            found[k] = os.environ[k]
    return found.get(URL_KEY), found.get(TOKEN_KEY)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise InvalidParameterError(f"a {type(o).__name__} cannot be sent to the service (not JSON).")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, default=_json_default).encode()


def _seg(value: str, what: str) -> str:
    """``value`` as one URL path segment (an id that cannot leave its route)."""
    if not isinstance(value, str) or value in ("", ".", "..") or "/" in value:
        raise NotFoundError(f"{value!r} is not {what} id (16 hex digits).")
    return quote(value, safe="")


class HttpBackend:
    """The job API of :class:`~backend.client.LocalBackend`, served by ``backend/service.py``.

    Parameters
    ----------
    url : str
        The service, e.g. ``http://127.0.0.1:8600`` (an SSH tunnel's local end).
    token : str, optional
        The bearer token the service printed on its first start.
    timeout : float, default=120
        Seconds to wait for one answer (connecting: 10 s).

    Raises
    ------
    BackendServiceError
        If the service cannot be reached or refuses the token (checked on creation).

    Notes
    -----
    Safe to share between threads (one pooled ``httpx.Client``).
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 120.0):
        try:
            import httpx
        except ImportError:
            raise BackendServiceError(
                "LATENT_LENS_BACKEND_URL is set but the httpx package is missing; "
                "`pip install httpx`, or unset the variable to use the in-process backend."
            ) from None
        self._httpx = httpx
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=10.0),
        )
        self.info: dict[str, Any] = self._request("GET", "/info").json()

    def close(self) -> None:
        self._http.close()

    # -- transport -----------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any):
        httpx = self._httpx
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise BackendServiceError(
                f"the backend service at {self.url} did not answer {method} {path} within "
                f"{self.timeout:.0f} s; check that it is running and not overloaded."
            ) from None
        except httpx.HTTPError as e:
            raise BackendServiceError(
                f"cannot reach the backend service at {self.url} ({type(e).__name__}: {e}); "
                "start it with `make serve` on that machine (and the SSH tunnel, if you use one), "
                f"or unset {URL_KEY} to use the in-process backend."
            ) from None
        if r.status_code < 400:
            return r
        try:
            body = r.json()
        except ValueError:
            body = {"detail": r.text[:500]}
        detail = body.get("detail", "") if isinstance(body, dict) else str(body)
        if isinstance(detail, list):  # a request the service's schema refused (422)
            detail = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg', '')}"
                for d in detail[:5] if isinstance(d, dict)
            )
        error = body.get("error") if isinstance(body, dict) else None
        if r.status_code == 401:
            raise BackendServiceError(
                f"the backend service at {self.url} refused the request ({detail.split(';')[0]}); "
                f"set {TOKEN_KEY} to the token it printed on its first start (kept in its "
                "workspace's service-token file)."
            )
        if r.status_code == 413 and path.endswith("/upload"):
            raise InvalidInputError(
                f"the upload is too large for the service (HTTP 413: {detail}); upload a "
                "smaller file or raise LATENT_LENS_MAX_UPLOAD_MB on the service."
            )
        if r.status_code == 413:
            raise InvalidParameterError(
                f"the request to {path} is too large for the service ({detail}); send less at once."
            )
        if r.status_code in (400, 404) and error in _ERRORS:
            raise _ERRORS[error](detail)
        if r.status_code == 404:
            raise NotFoundError(f"{method} {path}: {detail}")
        if r.status_code == 400:
            raise LatentLensError(detail)
        if r.status_code == 422:
            raise InvalidParameterError(f"the service refused the request: {detail}")
        raise BackendServiceError(
            f"the backend service at {self.url} failed on {method} {path} "
            f"(HTTP {r.status_code}): {detail}"
        )

    def _json(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        kwargs: dict[str, Any] = {"params": {k: v for k, v in params.items() if v is not None}}
        if body is not None:
            kwargs["content"] = _dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        return self._request(method, path, **kwargs).json()

    def _parquet(self, path: str, **params: Any) -> pd.DataFrame:
        r = self._request("GET", path, params=params)
        return pd.read_parquet(io.BytesIO(r.content))

    # -- datasets ------------------------------------------------------------------
    def datasets(self) -> list[DatasetInfo]:
        return [DatasetInfo.from_dict(d) for d in self._json("GET", "/datasets")]

    def dataset(self, dataset_id: str) -> DatasetInfo:
        path = f"/datasets/{_seg(dataset_id, 'a dataset')}"
        return DatasetInfo.from_dict(self._json("GET", path))

    def add_bundled(self, key: str) -> DatasetInfo:
        """Store a bundled dataset on the service (once; later calls return the stored one)."""
        return DatasetInfo.from_dict(self._json("POST", "/datasets/bundled", {"key": key}))

    def bundled(self) -> dict[str, str]:
        """Keys of the bundled datasets the service offers."""
        return self._json("GET", "/bundled")

    def add_bundled_model(self) -> DatasetInfo:
        """Store the bundled sentence model's weights on the service (once)."""
        return DatasetInfo.from_dict(self._json("POST", "/models/bundled"))

    def add_model(self, data: bytes, filename: str, *, name: str | None = None) -> DatasetInfo:
        """Send model weights to the service to validate and store (``LocalBackend.add_model``)."""
        self._check_size(len(data), filename)
        files = {"file": (filename, io.BytesIO(data), "application/octet-stream")}
        form = {"name": name} if name is not None else {}
        return DatasetInfo.from_dict(
            self._request("POST", "/models/upload", files=files, data=form).json())

    def add_satclip(self, data: bytes, filename: str, *, name: str | None = None) -> DatasetInfo:
        """Send a SatCLIP checkpoint to the service to validate and store its location encoder
        (``LocalBackend.add_satclip``)."""
        self._check_size(len(data), filename)
        files = {"file": (filename, io.BytesIO(data), "application/octet-stream")}
        form = {"name": name} if name is not None else {}
        return DatasetInfo.from_dict(
            self._request("POST", "/satclip/upload", files=files, data=form).json())

    def _check_size(self, size: int, filename: str) -> None:
        limit = int(self.info["max_upload_bytes"])
        if size > limit:
            raise InvalidInputError(
                f"{filename!r} is {size / 2**20:,.1f} MB, over the service's "
                f"{limit / 2**20:,.1f} MB limit; upload a smaller file or raise "
                "LATENT_LENS_MAX_UPLOAD_MB on the service."
            )

    def add_upload(
        self, data: bytes, filename: str, *, name: str | None = None, **options: Any
    ) -> tuple[DatasetInfo, list[str]]:
        """Send an upload to the service to validate and store; see ``LocalBackend.add_upload``.

        The file (and the optional ``metadata`` CSV) stream as multipart form data; files over
        the service's size limit are refused here, before sending.
        """
        metadata = options.pop("metadata", None)
        self._check_size(len(data) + (len(metadata) if metadata is not None else 0), filename)
        files = {"file": (filename, io.BytesIO(data), "application/octet-stream")}
        if metadata is not None:
            files["metadata"] = (options.get("metadata_filename", "metadata.csv"),
                                 io.BytesIO(metadata), "text/csv")
        form = {"options": _dumps({"name": name, **options}).decode()}
        out = self._request("POST", "/datasets/upload", files=files, data=form).json()
        return DatasetInfo.from_dict(out["dataset"]), list(out["notes"])

    def add_graph(
        self, edges: bytes, filename: str, *, nodes: bytes | None = None,
        nodes_filename: str | None = None, directed: bool = False, name: str | None = None,
        source: str = "auto", target: str = "auto",
    ) -> tuple[DatasetInfo, list[str]]:
        """Send a graph (edge list, optional node table) to the service to validate and store
        (``LocalBackend.add_graph``); returns its info and the loader's findings."""
        self._check_size(len(edges) + (len(nodes) if nodes is not None else 0), filename)
        files = {"file": (filename, io.BytesIO(edges), "text/csv")}
        if nodes is not None:
            files["nodes"] = (nodes_filename or "nodes.csv", io.BytesIO(nodes), "text/csv")
        form = {"directed": "true" if directed else "false", "source": source, "target": target}
        if name is not None:
            form["name"] = name
        out = self._request("POST", "/graphs/upload", files=files, data=form).json()
        return DatasetInfo.from_dict(out["dataset"]), list(out["notes"])

    def add_bundled_graph(self, name: str) -> tuple[DatasetInfo, list[str]]:
        """Store a networkx example graph on the service (once); its info and findings."""
        out = self._json("POST", "/graphs/bundled", {"key": name})
        return DatasetInfo.from_dict(out["dataset"]), list(out["notes"])

    def graph_edges(self, dataset_id: str) -> pd.DataFrame:
        """The edges of a graph dataset: ``source``, ``target`` (node rows), ``weight``."""
        return self._parquet(f"/datasets/{_seg(dataset_id, 'a dataset')}/edges")

    # -- text ----------------------------------------------------------------------
    def bundled_text(self) -> dict[str, str]:
        """Keys and labels of the bundled text datasets the service offers."""
        return self._json("GET", "/text/bundled")

    def add_bundled_text(self, key: str = "chatterbot") -> DatasetInfo:
        """Store a bundled text dataset on the service (once; ``LocalBackend.add_bundled_text``)."""
        return DatasetInfo.from_dict(self._json("POST", "/text/bundled", {"key": key}))

    def add_text_upload(
        self, data: bytes, filename: str, *, text_column: str, name: str | None = None,
        id_column: str | None = None,
    ) -> tuple[DatasetInfo, list[str]]:
        """Send a table with a text column to the service to validate and store as a text
        dataset (``LocalBackend.add_text_upload``); returns its info and the notes."""
        self._check_size(len(data), filename)
        files = {"file": (filename, io.BytesIO(data), "application/octet-stream")}
        form = {"options": _dumps({"text_column": text_column, "name": name,
                                   "id_column": id_column}).decode()}
        out = self._request("POST", "/text/upload", files=files, data=form).json()
        return DatasetInfo.from_dict(out["dataset"]), list(out["notes"])

    def search(self, dataset_id: str, query: str, k: int = 10,
               filters: list[dict[str, Any]] | None = None):
        """The ``k`` rows nearest to a text query, searched on the service
        (``LocalBackend.search``); a :class:`backend.tasks.text.TextSearchResult`."""
        from backend.tasks.text import TextSearchResult

        body = {"query": query, "k": k, "filters": filters}
        return TextSearchResult.from_dict(
            self._json("POST", f"/datasets/{_seg(dataset_id, 'a dataset')}/search", body))

    def table(self, dataset_id: str, columns: list[str] | None = None) -> pd.DataFrame:
        return self._parquet(f"/datasets/{_seg(dataset_id, 'a dataset')}/table",
                             **({"columns": list(columns)} if columns is not None else {}))

    def rows(self, dataset_id: str, rows: list[int]) -> np.ndarray:
        """The vectors of a few rows, float32 (len(rows), n_dims)."""
        r = self._request(
            "POST", f"/datasets/{_seg(dataset_id, 'a dataset')}/rows",
            content=_dumps({"rows": [int(i) for i in rows]}),
            headers={"Content-Type": "application/json"},
        )
        return np.load(io.BytesIO(r.content), allow_pickle=False)

    def neighbors(
        self, dataset_id: str, row: int, k: int = 10, metric: str = "euclidean"
    ) -> pd.DataFrame:
        """The ``k`` nearest rows to ``row`` (``_row``, ``distance``), computed on the service."""
        return self._parquet(f"/datasets/{_seg(dataset_id, 'a dataset')}/neighbors",
                             row=int(row), k=int(k), metric=metric)

    # -- jobs ----------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        return self._json("POST", "/jobs", spec.to_dict())["job_id"]

    def status(self, job_id: str) -> JobStatus:
        return JobStatus(**self._json("GET", f"/jobs/{_seg(job_id, 'a job')}"))

    def cancel(self, job_id: str) -> JobStatus:
        return JobStatus(**self._json("POST", f"/jobs/{_seg(job_id, 'a job')}/cancel"))

    def wait(self, job_id: str, timeout: float | None = None, *, poll: float = 0.2) -> JobStatus:
        """Poll until a job finishes or ``timeout`` seconds pass; return its last status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if status.finished or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(poll)

    def jobs(self, dataset_id: str | None = None) -> list[JobStatus]:
        return [JobStatus(**d) for d in self._json("GET", "/jobs", dataset_id=dataset_id)]

    # -- artifacts -----------------------------------------------------------------
    def artifact(self, artifact_id: str) -> ArtifactInfo:
        return ArtifactInfo.from_dict(
            self._json("GET", f"/artifacts/{_seg(artifact_id, 'an artifact')}"))

    def artifacts(self, dataset_id: str | None = None) -> list[ArtifactInfo]:
        return [ArtifactInfo.from_dict(d)
                for d in self._json("GET", "/artifacts", dataset_id=dataset_id)]

    def _file(self, artifact_id: str, name: str) -> bytes:
        if name in ("", ".", ".."):  # a URL would resolve these; the store's message instead
            files = self.artifact(artifact_id).files
            raise NotFoundError(f"artifact {artifact_id} has no file {name!r}; it has {files}.")
        path = f"/artifacts/{_seg(artifact_id, 'an artifact')}/files/{quote(name, safe='')}"
        return self._request("GET", path).content

    def artifact_table(self, artifact_id: str, name: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self._file(artifact_id, name)))

    def artifact_json(self, artifact_id: str, name: str) -> Any:
        return json.loads(self._file(artifact_id, name))

    def artifact_array(self, artifact_id: str, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self._file(artifact_id, name)), allow_pickle=False)
