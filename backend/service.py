"""The backend as an HTTP service: :class:`~backend.client.LocalBackend`'s job API over FastAPI.

Start it on the machine with the GPU (``make serve``, or ``python -m backend.service``), then
point the app at it with ``LATENT_LENS_BACKEND_URL`` and ``LATENT_LENS_BACKEND_TOKEN`` (see
:class:`backend.http_client.HttpBackend` and the README). The service wraps one LocalBackend,
so both paths run the same code on the same workspace layout.

What travels over the wire: JSON for dataset infos, job states and artifact infos; tables as
Parquet; arrays as ``.npy`` (loaded with ``allow_pickle=False``); JSON files as JSON. Nothing is
ever pickled or unpickled.

Security: every route but ``GET /health`` needs ``Authorization: Bearer <token>``. The token is
``$LATENT_LENS_BACKEND_TOKEN`` or, when unset, the one stored in the workspace
(``service-token``, mode 0600), generated and printed once on the first start. The service binds
to 127.0.0.1 unless ``--host`` says otherwise. Ids are checked against the store's id form, an
artifact's files are served only by the names in its file list, request bodies are size-limited
(``413``), uploads are row-limited (``400``). A :class:`~backend.errors.NotFoundError` becomes
``404``, any other :class:`~backend.errors.LatentLensError` ``400``, with the message as
``detail`` and the class name as ``error``.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, FastAPI, File, Form, Query, Request, Security, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.client import LocalBackend
from backend.datasets.upload import max_upload_bytes
from backend.errors import InvalidParameterError, LatentLensError, NotFoundError
from backend.jobs import JobSpec, JobStatus, job_kinds
from backend.store import ArtifactInfo, DatasetInfo, valid_id

__all__ = ["create_app", "load_or_create_token", "main", "API_VERSION", "TOKEN_FILE"]

API_VERSION = 1
TOKEN_FILE = "service-token"
DEFAULT_PORT = 8600
MAX_JSON_BODY = 4 * 2**20
MAX_ROWS_PER_CALL = 100_000
MAX_NEIGHBORS_K = 10_000
FORM_OVERHEAD = 2**20
PARQUET = "application/vnd.apache.parquet"
NPY = "application/x-npy"
SERVED = {".parquet": PARQUET, ".npy": NPY, ".json": "application/json"}
UPLOADS = ("/datasets/upload", "/models/upload", "/satclip/upload", "/graphs/upload")
UPLOADS = (*UPLOADS, "/text/upload")
_DESCRIPTION = (__doc__ or "").split("\n\n", 1)[-1]


def default_max_rows() -> int:
    """Row limit of an upload: ``$LATENT_LENS_MAX_ROWS`` (default 10,000,000)."""
    return int(os.environ.get("LATENT_LENS_MAX_ROWS", "10000000"))


def load_or_create_token(
    home: str | os.PathLike, configured: str | None = None
) -> tuple[str, bool]:
    """The service's bearer token and whether it was just generated.

    Parameters
    ----------
    home : path-like
        The workspace; the generated token is kept in ``home/service-token`` (mode 0600).
    configured : str, optional
        A token given by the operator (``$LATENT_LENS_BACKEND_TOKEN``); used as is.

    Raises
    ------
    InvalidParameterError
        If the configured or stored token is shorter than 16 characters.
    """
    if configured:
        token, created = configured.strip(), False
    else:
        path = Path(home) / TOKEN_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            token, created = path.read_text().strip(), False
        else:
            token, created = secrets.token_urlsafe(32), True
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
    if len(token) < 16:
        raise InvalidParameterError(
            f"the service token has {len(token)} characters; use at least 16 (e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
        )
    return token, created


# -- wire models ---------------------------------------------------------------------
class ErrorBody(BaseModel):
    detail: str
    error: str


class ServiceInfo(BaseModel):
    api_version: int
    max_upload_bytes: int
    max_rows: int
    max_rows_per_call: int
    device: str
    device_reason: str
    job_kinds: list[str]
    bundled: list[str]


class BundledRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str


class UploadOptions(BaseModel):
    """The keyword options of :meth:`LocalBackend.add_upload`, sent as one JSON form field."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    vector_columns: list[str] | None = None
    list_column: str | None = None
    id_column: str | None = None
    array_key: str | None = None
    metadata_filename: str = "metadata.csv"
    drop_nonfinite: bool = False
    n_neighbors: int = 15
    sep: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    header: bool | None = None
    latitude: str | None = None
    longitude: str | None = None


class UploadResult(BaseModel):
    dataset: DatasetInfo
    notes: list[str]


class RowsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[Annotated[int, Field(ge=-(2**62), le=2**62)]] = Field(
        max_length=MAX_ROWS_PER_CALL
    )


class SubmitResult(BaseModel):
    job_id: str


class TextUploadOptions(BaseModel):
    """The keyword options of :meth:`LocalBackend.add_text_upload`, as one JSON form field."""

    model_config = ConfigDict(extra="forbid")
    text_column: str
    name: str | None = None
    id_column: str | None = None


class SearchRequest(BaseModel):
    """A search by meaning (checked by :func:`backend.tasks.text.validate_search`)."""

    model_config = ConfigDict(extra="forbid")
    query: str
    k: int = 10
    filters: list[dict[str, Any]] | None = None


class SearchResponse(BaseModel):
    """:meth:`backend.tasks.text.TextSearchResult.to_dict`: hits as ``rows``/``scores``."""

    rows: list[int]
    scores: list[float]
    query: str
    k: int
    filters: list[dict[str, Any]]
    selectivity: float
    n_passing: int
    n_rows: int
    strategy: str
    index_method: str
    recall: float
    n_lists: int | None
    n_probe: int | None
    n_exact_fallbacks: int
    seconds: float
    embed_seconds: float
    index_seconds: float


# -- middleware ----------------------------------------------------------------------
class _RequireToken:
    """Refuse every request but ``/health`` without the bearer token, before reading its body."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if secrets.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        reason = "no bearer token was sent" if not given else "the bearer token is wrong"
        response = JSONResponse(
            {"detail": f"{reason}; send 'Authorization: Bearer <token>' with the token the "
                       "service printed on its first start (also in its workspace's "
                       f"{TOKEN_FILE} file).", "error": "Unauthorized"},
            status_code=401, headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


def _error(status: int, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)


def _check_id(value: str, what: str) -> str:
    if not valid_id(value):
        raise NotFoundError(f"{value!r} is not {what} id (16 hex digits).")
    return value


def _parquet(df) -> Response:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return Response(buf.getvalue(), media_type=PARQUET)


def _safe_name(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return name or "upload"


# -- the app -------------------------------------------------------------------------
def create_app(
    backend: LocalBackend,
    token: str,
    *,
    max_upload: int | None = None,
    max_rows: int | None = None,
) -> FastAPI:
    """The FastAPI app serving ``backend``.

    Parameters
    ----------
    backend : LocalBackend
        The store and job runner to serve.
    token : str
        The bearer token every route but ``/health`` requires.
    max_upload : int, optional
        Upload size limit in bytes (file plus metadata); default :func:`max_upload_bytes`.
    max_rows : int, optional
        Row limit of an upload; default :func:`default_max_rows`.
    """
    max_upload = max_upload_bytes() if max_upload is None else int(max_upload)
    max_rows = default_max_rows() if max_rows is None else int(max_rows)
    errors = {400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 404: {"model": ErrorBody}}
    app = FastAPI(
        title="Latent Lens backend",
        version=str(API_VERSION),
        description=_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        max_body_size=MAX_JSON_BODY,
    )
    app.add_middleware(_RequireToken, token=token)

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, exc)

    @app.exception_handler(LatentLensError)
    async def _bad_input(request: Request, exc: LatentLensError) -> JSONResponse:
        return _error(400, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 413 and request.url.path in UPLOADS:
            detail = (f"the upload is over the service's limit of {max_upload / 2**20:,.1f} MB "
                      "(file and metadata together); upload a smaller file or start the "
                      "service with a larger LATENT_LENS_MAX_UPLOAD_MB.")
        elif exc.status_code == 413:
            detail = (f"the request body is over the service's limit of "
                      f"{MAX_JSON_BODY / 2**20:,.0f} MB for this route; send less per request.")
        return JSONResponse({"detail": detail, "error": "HTTPException"},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.get("/health", tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness probe; the only route without a token."""
        return {"status": "ok", "api_version": API_VERSION}

    bearer = HTTPBearer(auto_error=False,
                        description="The token the service printed on its first start.")
    api = APIRouter(dependencies=[Security(bearer)], responses=errors)

    @api.get("/info", tags=["service"])
    def info() -> ServiceInfo:
        """Limits, device and the job kinds this service runs."""
        from backend.device import resolve_device

        dev = resolve_device(None)
        return ServiceInfo(
            api_version=API_VERSION, max_upload_bytes=max_upload, max_rows=max_rows,
            max_rows_per_call=MAX_ROWS_PER_CALL, device=dev.device, device_reason=dev.reason,
            job_kinds=sorted(job_kinds()), bundled=sorted(backend.bundled()),
        )

    # -- datasets --------------------------------------------------------------------
    @api.get("/datasets", tags=["datasets"])
    def datasets() -> list[DatasetInfo]:
        return backend.datasets()

    @api.get("/bundled", tags=["datasets"])
    def bundled() -> dict[str, str]:
        return backend.bundled()

    @api.post("/datasets/bundled", tags=["datasets"])
    def add_bundled(req: BundledRequest) -> DatasetInfo:
        return backend.add_bundled(req.key)

    @api.post("/datasets/upload", tags=["datasets"], max_body_size=max_upload + FORM_OVERHEAD,
              responses={413: {"model": ErrorBody}})
    def add_upload(
        file: Annotated[UploadFile, File(description="The vectors (csv, tsv, parquet, npy, npz).")],
        metadata: Annotated[UploadFile | None, File(description="Optional metadata CSV.")] = None,
        options: Annotated[str, Form(description="UploadOptions as JSON.")] = "{}",
    ) -> UploadResult:
        """Validate and store an uploaded file (nothing is stored when it is refused)."""
        try:
            opts = UploadOptions.model_validate_json(options).model_dump()
        except ValidationError as e:
            raise InvalidParameterError(f"bad upload options: {_summary(e.errors())}") from None
        if metadata is not None:
            opts["metadata"] = metadata.file.read()
        data = file.file.read()
        info, notes = backend.add_upload(
            data, _safe_name(file.filename), max_bytes=max_upload, max_rows=max_rows, **opts
        )
        return UploadResult(dataset=info, notes=notes)

    @api.post("/models/bundled", tags=["models"])
    def add_bundled_model() -> DatasetInfo:
        """Store the bundled sentence model's weights as a model dataset (once)."""
        return backend.add_bundled_model()

    @api.post("/models/upload", tags=["models"], max_body_size=max_upload + FORM_OVERHEAD,
              responses={413: {"model": ErrorBody}})
    def add_model(
        file: Annotated[UploadFile, File(description="safetensors, or a PyTorch state dict.")],
        name: Annotated[str | None, Form()] = None,
    ) -> DatasetInfo:
        """Validate and store uploaded model weights (never unpickled beyond tensors)."""
        return backend.add_model(file.file.read(), _safe_name(file.filename), name=name)

    @api.post("/satclip/upload", tags=["models"], max_body_size=max_upload + FORM_OVERHEAD,
              responses={413: {"model": ErrorBody}})
    def add_satclip(
        file: Annotated[UploadFile, File(description="A SatCLIP checkpoint (.ckpt).")],
        name: Annotated[str | None, Form()] = None,
    ) -> DatasetInfo:
        """Validate a SatCLIP checkpoint and store its location encoder (weights-only loading)."""
        return backend.add_satclip(file.file.read(), _safe_name(file.filename), name=name)

    @api.post("/graphs/upload", tags=["graphs"], max_body_size=max_upload + FORM_OVERHEAD,
              responses={413: {"model": ErrorBody}})
    def add_graph(
        file: Annotated[UploadFile, File(description="The edge list (CSV/TSV: source, target[, weight]).")],
        nodes: Annotated[UploadFile | None, File(description="Optional node table (id, attributes).")] = None,
        directed: Annotated[bool, Form()] = False,
        name: Annotated[str | None, Form()] = None,
        source: Annotated[str, Form(description="Source column, or 'auto' (by name).")] = "auto",
        target: Annotated[str, Form(description="Target column, or 'auto' (by name).")] = "auto",
    ) -> UploadResult:
        """Validate and store a graph; the loader's findings come back as notes."""
        info, notes = backend.add_graph(
            file.file.read(), _safe_name(file.filename),
            nodes=None if nodes is None else nodes.file.read(),
            nodes_filename=None if nodes is None else _safe_name(nodes.filename),
            directed=directed, name=name, source=source, target=target,
        )
        return UploadResult(dataset=info, notes=notes)

    @api.post("/graphs/bundled", tags=["graphs"])
    def add_bundled_graph(req: BundledRequest) -> UploadResult:
        """Store a networkx example graph as a graph dataset (once)."""
        info, notes = backend.add_bundled_graph(req.key)
        return UploadResult(dataset=info, notes=notes)

    @api.get("/datasets/{dataset_id}/edges", tags=["graphs"], response_class=Response,
             responses={200: {"content": {PARQUET: {}},
                              "description": "source, target (node rows), weight as Parquet."}})
    def graph_edges(dataset_id: str) -> Response:
        """The edges of a graph dataset, as Parquet."""
        return _parquet(backend.graph_edges(_check_id(dataset_id, "a dataset")))

    @api.get("/datasets/{dataset_id}", tags=["datasets"])
    def dataset(dataset_id: str) -> DatasetInfo:
        return backend.dataset(_check_id(dataset_id, "a dataset"))

    @api.get("/datasets/{dataset_id}/table", tags=["datasets"], response_class=Response,
             responses={200: {"content": {PARQUET: {}}, "description": "The table as Parquet."}})
    def table(dataset_id: str, columns: Annotated[list[str] | None, Query()] = None) -> Response:
        """The metadata table (with ``_row``), optionally only some columns, as Parquet."""
        return _parquet(backend.table(_check_id(dataset_id, "a dataset"), columns))

    @api.post("/datasets/{dataset_id}/rows", tags=["datasets"], response_class=Response,
              responses={200: {"content": {NPY: {}},
                               "description": "float32 (len(rows), n_dims) as .npy."}})
    def rows(dataset_id: str, req: RowsRequest) -> Response:
        """The vectors of some rows, in the order asked, as ``.npy``."""
        arr = backend.rows(_check_id(dataset_id, "a dataset"), req.rows)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
        return Response(buf.getvalue(), media_type=NPY)

    @api.get("/datasets/{dataset_id}/neighbors", tags=["datasets"], response_class=Response,
             responses={200: {"content": {PARQUET: {}},
                              "description": "_row, distance as Parquet."}})
    def neighbors(
        dataset_id: str,
        row: Annotated[int, Query(ge=0, le=2**62)],
        k: Annotated[int, Query(ge=1, le=MAX_NEIGHBORS_K)] = 10,
        metric: str = "euclidean",
    ) -> Response:
        """The ``k`` nearest rows to ``row`` in the original space (exact), as Parquet."""
        return _parquet(backend.neighbors(_check_id(dataset_id, "a dataset"), row, k, metric))

    # -- text ------------------------------------------------------------------------
    @api.get("/text/bundled", tags=["text"])
    def bundled_text() -> dict[str, str]:
        """Keys and labels of the bundled text datasets."""
        return backend.bundled_text()

    @api.post("/text/bundled", tags=["text"])
    def add_bundled_text(req: BundledRequest) -> DatasetInfo:
        """Store a bundled text dataset (kind "text"; once)."""
        return backend.add_bundled_text(req.key)

    @api.post("/text/upload", tags=["text"], max_body_size=max_upload + FORM_OVERHEAD,
              responses={413: {"model": ErrorBody}})
    def add_text_upload(
        file: Annotated[UploadFile, File(description="A table (csv, tsv, parquet) with a text column.")],
        options: Annotated[str, Form(description="TextUploadOptions as JSON.")] = "{}",
    ) -> UploadResult:
        """Validate and store a table whose text column is to be embedded (kind "text")."""
        try:
            opts = TextUploadOptions.model_validate_json(options).model_dump()
        except ValidationError as e:
            raise InvalidParameterError(f"bad upload options: {_summary(e.errors())}") from None
        info, notes = backend.add_text_upload(
            file.file.read(), _safe_name(file.filename), max_bytes=max_upload, max_rows=max_rows,
            **opts)
        return UploadResult(dataset=info, notes=notes)

    @api.post("/datasets/{dataset_id}/search", tags=["text"])
    def search(dataset_id: str, req: SearchRequest) -> SearchResponse:
        """The k rows nearest to a text query (cosine), among those passing the filters."""
        res = backend.search(_check_id(dataset_id, "a dataset"), req.query, req.k, req.filters)
        return SearchResponse(**res.to_dict())

    # -- jobs ------------------------------------------------------------------------
    @api.post("/jobs", tags=["jobs"])
    def submit(spec: Annotated[JobSpec, Body()]) -> SubmitResult:
        """Validate and queue a job; identical specs share one job (and one computation)."""
        return SubmitResult(job_id=backend.submit(spec))

    @api.get("/jobs", tags=["jobs"])
    def jobs(dataset_id: str | None = None) -> list[JobStatus]:
        return backend.jobs(dataset_id)

    @api.get("/jobs/{job_id}", tags=["jobs"])
    def status(job_id: str) -> JobStatus:
        return backend.status(_check_id(job_id, "a job"))

    @api.post("/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel(job_id: str) -> JobStatus:
        return backend.cancel(_check_id(job_id, "a job"))

    # -- artifacts -------------------------------------------------------------------
    @api.get("/artifacts", tags=["artifacts"])
    def artifacts(dataset_id: str | None = None) -> list[ArtifactInfo]:
        return backend.artifacts(dataset_id)

    @api.get("/artifacts/{artifact_id}", tags=["artifacts"])
    def artifact(artifact_id: str) -> ArtifactInfo:
        return backend.artifact(_check_id(artifact_id, "an artifact"))

    @api.get("/artifacts/{artifact_id}/files/{name:path}", tags=["artifacts"],
             response_class=Response,
             responses={200: {"content": {t: {} for t in SERVED.values()},
                              "description": "The file as stored (Parquet, .npy or JSON)."}})
    def artifact_file(artifact_id: str, name: str) -> FileResponse:
        """One file of an artifact, by a name from its ``files`` list."""
        path = backend.store.artifact_path(_check_id(artifact_id, "an artifact"), name)
        media = SERVED.get(path.suffix)
        if media is None:
            raise NotFoundError(
                f"{name!r} is not served (only {', '.join(SERVED)} files are); "
                f"artifact {artifact_id} has {backend.artifact(artifact_id).files}."
            )
        return FileResponse(path, media_type=media)

    app.include_router(api)
    return app


def _summary(errors: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'value'}: {e.get('msg', '')}"
        for e in errors[:5]
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m backend.service [--host H] [--port P] [--home DIR] [--workers N]``."""
    p = argparse.ArgumentParser(prog="python -m backend.service",
                                description="Serve the Latent Lens backend over HTTP.")
    p.add_argument("--host", default=os.environ.get("LATENT_LENS_SERVICE_HOST", "127.0.0.1"),
                   help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=int(os.environ.get("LATENT_LENS_SERVICE_PORT",
                                                                  DEFAULT_PORT)))
    p.add_argument("--home", default=None, help="workspace folder (default $LATENT_LENS_HOME "
                                                "or the user's cache dir)")
    p.add_argument("--workers", type=int, default=None,
                   help="concurrent jobs (default $LATENT_LENS_WORKERS or 2)")
    p.add_argument("--log-level", default="info")
    args = p.parse_args(argv)

    import uvicorn

    backend = LocalBackend(args.home, max_workers=args.workers)
    home = backend.store.root
    try:
        token, created = load_or_create_token(home, os.environ.get("LATENT_LENS_BACKEND_TOKEN"))
    except LatentLensError as e:
        sys.exit(f"latent-lens service: {e}")
    url = f"http://{args.host}:{args.port}"
    print(f"Latent Lens backend on {url} (workspace {home}; Ctrl+C stops it)", flush=True)
    if created:
        print(f"Generated the service token (shown once; stored in {home / TOKEN_FILE}, "
              "mode 0600):\n"
              f"  LATENT_LENS_BACKEND_TOKEN={token}", flush=True)
    elif os.environ.get("LATENT_LENS_BACKEND_TOKEN"):
        print("Token: from $LATENT_LENS_BACKEND_TOKEN.", flush=True)
    else:
        print(f"Token: the one in {home / TOKEN_FILE}.", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"Warning: listening on {args.host}, not only this machine; traffic is plain HTTP, "
              "so put TLS in front of it or use an SSH tunnel.", flush=True)
    app = create_app(backend, token)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                    timeout_graceful_shutdown=5)
    finally:
        backend.runner.shutdown()


if __name__ == "__main__":
    main()
