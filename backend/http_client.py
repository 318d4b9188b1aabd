"""The app's side of the backend service: :class:`HttpBackend`, :class:`backend.api.Backend`
over HTTP.

:func:`backend.client.get_backend` returns an HttpBackend when a service URL is configured,
so pages run unchanged against a backend on another machine (``backend/service.py``). Its
methods are generated from the declarations in :mod:`backend.api`: each has the declared
signature and return type (dataclasses, DataFrames, ndarrays), sends the call to the declared
route and raises the same :class:`~backend.errors.LatentLensError` subclasses with the
service's message; a service that cannot be reached, or refuses the token, raises
:class:`BackendServiceError`. Tables arrive as Parquet, arrays as ``.npy`` read with
``allow_pickle=False``; nothing is ever unpickled.
"""

from __future__ import annotations

import functools
import inspect
import io
import os
import tomllib
from pathlib import Path
from typing import Any, Callable

from backend.api import (API_VERSION, Backend, Declaration, check_id, declarations, decode, dumps,
                         implements)
from backend.datasets.upload import check_upload_size
from backend.errors import InvalidInputError, InvalidParameterError, LatentLensError, NotFoundError

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


@implements(Backend)
class HttpBackend(Backend):
    """:class:`backend.api.Backend`, served by ``backend/service.py`` (methods generated).

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
        if self.info.get("api_version") != API_VERSION:
            self._http.close()
            raise BackendServiceError(
                f"the backend service at {self.url} speaks API version "
                f"{self.info.get('api_version')}, this app version {API_VERSION}; run the same "
                "Latent Lens version on both machines."
            )

    def close(self) -> None:
        self._http.close()

    # -- transport -----------------------------------------------------------------
    def _request(self, method: str, path: str, *, upload: bool = False, **kwargs: Any):
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
        if r.status_code == 413 and upload:  # the service's message of the upload limit
            raise InvalidInputError(detail)
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

    def _call(self, decl: Declaration, args: dict[str, Any]) -> Any:
        """Send one call of a declared method to its route; decode the answer."""
        route = decl.route
        path = route.path.format(**{p: check_id(args.pop(p), p) for p in decl.path_params})
        if route.method in ("GET", "DELETE"):
            r = self._request(route.method, path,
                              params={k: v for k, v in args.items() if v is not None})
        elif decl.files:  # refused here when too large, before anything is sent
            blobs = {f: args.pop(f) for f in decl.files}
            check_upload_size(sum(len(b or b"") for b in blobs.values()),
                              str(args.get("filename", decl.files[0])),
                              int(self.info["max_upload_bytes"]))
            files = {f: (f, io.BytesIO(b), "application/octet-stream")
                     for f, b in blobs.items() if b is not None}
            r = self._request("POST", path, upload=True, files=files,
                              data={"options": dumps(args).decode()})
        elif args:
            r = self._request("POST", path, content=dumps(args),
                              headers={"Content-Type": "application/json"})
        else:
            r = self._request("POST", path)
        return decode(r.content, decl.returns)


def _remote(decl: Declaration) -> Callable:
    """The HttpBackend method of a declaration: same signature, name and docstring."""
    signature = inspect.signature(decl.fn)

    @functools.wraps(decl.fn)
    def method(self: HttpBackend, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        return self._call(decl, dict(list(bound.arguments.items())[1:]))

    return method


for _decl in declarations().values():
    if _decl.route is not None:
        setattr(HttpBackend, _decl.name, _remote(_decl))
