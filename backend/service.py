"""The backend as an HTTP service: :class:`backend.api.Backend` over FastAPI.

Start it on the machine with the GPU (``make serve``, or ``python -m backend.service``), then
point the app at it with ``LATENT_LENS_BACKEND_URL`` and ``LATENT_LENS_BACKEND_TOKEN`` (see
:class:`backend.http_client.HttpBackend` and the README). The service wraps one LocalBackend,
so both paths run the same code on the same workspace layout. Its routes are generated from
the declarations in :mod:`backend.api`, one per method: path parameters from the route's
path, the others as query parameters (``GET``, ``DELETE``) or one JSON body (``POST``);
a method with ``bytes`` parameters takes them as multipart files and its other parameters as
one JSON form field ``options``.

What travels over the wire: JSON for dataset infos, job states, artifact infos and other
values; tables as Parquet; arrays as ``.npy`` (loaded with ``allow_pickle=False``). Nothing
is ever pickled or unpickled.

Security: every route but ``GET /health`` needs ``Authorization: Bearer <token>``. The token is
``$LATENT_LENS_BACKEND_TOKEN`` or, when unset, the one stored in the workspace
(``service-token``, mode 0600), generated and printed once on the first start. The service binds
to 127.0.0.1 unless ``--host`` says otherwise. Ids are checked against the store's id form, an
artifact's files are read only by the names in its file list and only as the type asked
(``.parquet``, ``.npy``, ``.json``), request bodies are size-limited (``413``), uploads are
size- and row-limited (``400``). A :class:`~backend.errors.NotFoundError` becomes ``404``, any
other :class:`~backend.errors.LatentLensError` ``400``, with the message as ``detail`` and the
class name as ``error``.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import os
import secrets
import sys
import types
import typing
from pathlib import Path as FilePath
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Body, FastAPI, File, Form, Path, Query, Request, Security, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api import (API_VERSION, ID_PARAMS, MAX_ROWS_PER_CALL, NPY, OCTET, PARQUET,
                         Declaration, check_id, declarations, encode)
from backend.client import LocalBackend, artifact_file
from backend.datasets.upload import UploadLimits, upload_size_message
from backend.errors import InvalidParameterError, LatentLensError, NotFoundError
from backend.jobs import job_kinds

__all__ = ["create_app", "load_or_create_token", "main", "API_VERSION", "TOKEN_FILE"]

TOKEN_FILE = "service-token"
DEFAULT_PORT = 8600
MAX_JSON_BODY = 4 * 2**20
FORM_OVERHEAD = 2**20
SERVED = {".parquet": PARQUET, ".npy": NPY, ".json": "application/json"}
#: Answers that are not JSON: their media type and description.
BINARY = {pd.DataFrame: (PARQUET, "Parquet"), np.ndarray: (NPY, ".npy (no pickles)"),
          bytes: (OCTET, "the file's bytes")}
_DESCRIPTION = (__doc__ or "").split("\n\n", 1)[-1]


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
        path = FilePath(home) / TOKEN_FILE
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


class _AnnouncedTooLarge:
    """Answer 413 with the service's message when a request announces a body over its limit
    (a body that turns out too large while streaming is refused by the route's own limit)."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], message: Any):
        self.app, self.limits, self.message = app, limits, message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            limit = self.limits.get(scope["path"], MAX_JSON_BODY)
            if length.isdigit() and int(length) > limit:
                response = JSONResponse({"detail": self.message(scope["path"]),
                                         "error": "HTTPException"}, status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error(status: int, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)



# -- the app -------------------------------------------------------------------------
def create_app(
    backend: LocalBackend,
    token: str,
    *,
    max_upload: int | None = None,
    max_rows: int | None = None,
) -> FastAPI:
    """The FastAPI app serving ``backend``, one route per :mod:`backend.api` declaration.

    Parameters
    ----------
    backend : LocalBackend
        The store and job runner to serve.
    token : str
        The bearer token every route but ``/health`` requires.
    max_upload, max_rows : int, optional
        Upload limits (bytes of all files of one upload; rows) for this service; default
        ``backend.limits``. The service's backend shares ``backend``'s store and job runner.
    """
    if max_upload is not None or max_rows is not None:
        backend = copy.copy(backend)
        backend.limits = UploadLimits(
            backend.limits.max_bytes if max_upload is None else int(max_upload),
            backend.limits.max_rows if max_rows is None else int(max_rows))
    max_upload, max_rows = backend.limits.max_bytes, backend.limits.max_rows
    decls = [d for d in declarations().values() if d.route is not None]
    uploads = {d.route.path for d in decls if d.files}

    def too_large(path: str) -> str:
        if path in uploads:
            return upload_size_message("the upload (all its files together)", max_upload)
        return (f"the request body is over the service's limit of "
                f"{MAX_JSON_BODY / 2**20:,.0f} MB for this route; send less per request.")

    errors = {400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 404: {"model": ErrorBody}}
    app = FastAPI(
        title="Latent Lens backend",
        version=str(API_VERSION),
        description=_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        max_body_size=MAX_JSON_BODY,
    )
    app.add_middleware(_AnnouncedTooLarge, message=too_large,
                       limits=dict.fromkeys(uploads, max_upload + FORM_OVERHEAD))
    app.add_middleware(_RequireToken, token=token)  # the outermost: first the token

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, exc)

    @app.exception_handler(LatentLensError)
    async def _bad_input(request: Request, exc: LatentLensError) -> JSONResponse:
        return _error(400, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = too_large(request.url.path) if exc.status_code == 413 else str(exc.detail)
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

    for decl in decls:
        _add_route(api, backend, decl, max_upload + FORM_OVERHEAD if decl.files else None)
    app.include_router(api)
    generated = app.openapi

    def openapi() -> dict[str, Any]:
        """The schema, with a JobSpec per registered kind (built anew: kinds may be added)."""
        app.openapi_schema = None
        schema = generated()
        schema["components"]["schemas"]["JobSpec"] = _job_spec_schema()
        return schema

    app.openapi = openapi
    return app


def _job_spec_schema() -> dict[str, Any]:
    """A :class:`JobSpec`: one of the registered kinds, its parameters as each kind declares
    them (:meth:`backend.params.ParamSpec.json_schema`; the job layer validates them)."""
    return {"title": "JobSpec", "oneOf": [
        {"type": "object", "title": name, "description": kind.title or name,
         "required": ["kind", "dataset_id"], "additionalProperties": False,
         "properties": {"kind": {"const": name}, "dataset_id": {"type": "string"},
                        "params": kind.params.json_schema(f"{name} parameters")}}
        for name, kind in sorted(job_kinds().items())]}


# -- routes generated from backend.api ------------------------------------------------
_INT = Annotated[int, Field(ge=-(2**62), le=2**62)]  # fits int64: never an overflow (500)


def _wire(tp: Any) -> Any:
    """``tp`` with every ``int`` bounded to int64 (for request validation)."""
    if tp is int:
        return _INT
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin is list:
        return list[_wire(args[0])]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_wire(a) for a in args)]
    return tp


def _field(decl: Declaration, p: inspect.Parameter) -> tuple[Any, Any]:
    tp = _wire(p.annotation)
    if p.name in decl.route.fields:
        tp = Annotated[tp, Field(**decl.route.fields[p.name])]
    return tp, (... if p.default is inspect.Parameter.empty else p.default)


def _model(decl: Declaration, names: list[str]) -> type[BaseModel]:
    """The pydantic model of some parameters of a declaration (body or upload options)."""
    params = decl.signature.parameters
    return create_model(
        "".join(w.title() for w in decl.name.split("_")) + ("Options" if decl.files else "Body"),
        __config__=ConfigDict(extra="forbid"), **{n: _field(decl, params[n]) for n in names})


def _response_model(tp: Any) -> Any:
    """The schema of an answer of type ``tp`` (None: not JSON, or not expressible)."""
    if tp in (pd.DataFrame, np.ndarray, bytes, type(None), Any):
        return None
    if isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields"):
        hints = typing.get_type_hints(tp)
        return create_model(tp.__name__, **{f: (hints[f], ...) for f in tp._fields})
    try:
        TypeAdapter(tp).json_schema(mode="serialization")
    except Exception:  # e.g. a dataclass holding a DataFrame: documented as an object
        return dict[str, Any]
    return tp


def _add_route(api: APIRouter, backend: LocalBackend, decl: Declaration,
               max_body: int | None) -> None:
    """Serve one declared method: parameters from its signature, the answer by its type."""
    route, sig = decl.route, decl.signature
    paths = decl.path_params
    rest = [n for n in sig.parameters if n not in paths]
    params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY,
                                annotation=Annotated[str, Path()]) for n in paths]
    model = None
    if route.method in ("GET", "DELETE"):
        for n in rest:
            tp, _ = _field(decl, sig.parameters[n])
            params.append(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY,
                                            annotation=Annotated[tp, Query()],
                                            default=sig.parameters[n].default))
    elif decl.files:
        for n in decl.files:
            optional = sig.parameters[n].default is not inspect.Parameter.empty
            params.append(inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[UploadFile | None if optional else UploadFile, File()],
                **({"default": None} if optional else {})))
        model = _model(decl, [n for n in rest if n not in decl.files])
        params.append(inspect.Parameter(
            "options", inspect.Parameter.KEYWORD_ONLY, default="{}",
            annotation=Annotated[str, Form(description=f"{model.__name__} as JSON: "
                                           + ", ".join(model.model_fields))]))
    elif rest:
        model = _model(decl, rest)
        params.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Annotated[model, Body()]))

    def endpoint(**kw: Any) -> Response:
        args = {n: check_id(kw[n], n) if n in ID_PARAMS else kw[n] for n in paths}
        if route.method in ("GET", "DELETE"):
            args.update({n: kw[n] for n in rest})
        elif decl.files:
            try:
                options = model.model_validate_json(kw["options"])
            except ValidationError as e:
                raise InvalidParameterError(f"bad options: {_summary(e.errors())}") from None
            args.update({n: getattr(options, n) for n in model.model_fields})
            args.update({n: None if kw[n] is None else kw[n].file.read() for n in decl.files})
        elif model is not None:
            args.update({n: getattr(kw["body"], n) for n in model.model_fields})
        if route.file:  # as stored: the same bytes LocalBackend reads
            return FileResponse(artifact_file(backend.store, args["artifact_id"], args["name"],
                                              route.file), media_type=SERVED[route.file])
        content, media = encode(getattr(backend, decl.name)(**args), decl.returns)
        return Response(content, media_type=media)

    endpoint.__signature__ = inspect.Signature(params)
    endpoint.__name__ = decl.name
    doc = inspect.cleandoc(decl.fn.__doc__ or "")
    responses: dict[int | str, Any] = {}
    if decl.returns in BINARY:
        media, what = BINARY[decl.returns]
        responses[200] = {"content": {media: {}}, "description": what}
    if route.method == "POST":  # a body over the route's limit
        responses[413] = {"model": ErrorBody}
    api.add_api_route(
        route.path, endpoint, methods=[route.method], tags=[route.tag], name=decl.name,
        operation_id=decl.name, summary=doc.split("\n\n", 1)[0].replace("\n", " "),
        description=doc, response_model=_response_model(decl.returns),
        response_class=Response if decl.returns in BINARY else JSONResponse,
        responses=responses, **({"max_body_size": max_body} if max_body else {}))


def _summary(errors: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'value'}: {e.get('msg', '')}"
        for e in errors[:5]
    )


def _stop_jobs_on_shutdown(app: FastAPI, backend: LocalBackend) -> None:
    """On SIGTERM or Ctrl+C, mark the running jobs interrupted as the server stops.

    uvicorn re-raises the signal once it has shut down, so code after ``uvicorn.run`` never
    runs then: the runner is stopped at the end of the app's lifespan instead (within 2 s;
    a job stuck in a library call is abandoned: its thread is a daemon).
    """
    from contextlib import asynccontextmanager

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):
        async with inner(a) as state:
            yield state
        backend.runner.shutdown(2.0)

    app.router.lifespan_context = lifespan


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

    try:  # an unreachable Ray cluster (LATENT_LENS_RAY_ADDRESS) stops the start here
        backend = LocalBackend(args.home, max_workers=args.workers)
    except LatentLensError as e:
        sys.exit(f"latent-lens service: {e}")
    home = backend.store.root
    try:
        token, created = load_or_create_token(home, os.environ.get("LATENT_LENS_BACKEND_TOKEN"))
    except LatentLensError as e:
        sys.exit(f"latent-lens service: {e}")
    url = f"http://{args.host}:{args.port}"
    engine = backend.runner.engine.describe()
    print(f"Latent Lens backend on {url} (workspace {home}; jobs run {engine['name']}"
          + (f" on the Ray cluster at {engine['address']}, {engine['resources']}"
             if engine["name"] == "ray" else "") + "; Ctrl+C stops it)", flush=True)
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
    _stop_jobs_on_shutdown(app, backend)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                    timeout_graceful_shutdown=5)
    finally:
        backend.runner.shutdown()


if __name__ == "__main__":
    main()
