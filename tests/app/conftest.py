"""AppTest helpers: run a page against a fresh workspace and wait for its jobs.

Every AppTest runs against the in-process backend (``[local]``). Six Map and Upload page
tests (:data:`HTTP_BY_DEFAULT`) also run against the backend service started once per session
on a free loopback port (``[http]``: the app gets ``LATENT_LENS_BACKEND_URL``/``TOKEN``,
exactly as on a GPU machine). The other ``[http]`` variants are deselected by default to keep
the suite under 10 minutes on 2 cores: they call the same generated client methods, whose
parity with the local backend the service's unit tests check route by route.
``LATENT_LENS_APPTEST_BACKENDS=all`` runs every ``[http]`` variant; ``local`` or ``http`` runs
one variant only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
_CHOICE = os.environ.get("LATENT_LENS_APPTEST_BACKENDS", "default")
BACKENDS = ["local", "http"] if _CHOICE in ("default", "all") else _CHOICE.split(",")
#: Tests whose [http] variants run by default: the Map page (projection jobs, neighbours, the
#: faithfulness panel) and the Upload page (a stored upload, a refused one) through the service.
HTTP_BY_DEFAULT = {
    "test_map_page_shows_digits_umap", "test_upload_reaches_a_map",
    "test_bad_upload_shows_an_error_not_a_traceback", "test_faithfulness_panel_and_per_point_colour",
    "test_neighbours_tab_says_a_zero_vector_has_no_cosine_distances",
    "test_small_file_with_an_id_column_uploads_and_its_neighbours_are_asked_by_id",
}


def pytest_collection_modifyitems(config, items):
    """Deselect the [http] variants outside :data:`HTTP_BY_DEFAULT` (see the module doc)."""
    if _CHOICE != "default":
        return
    keep, drop = [], []
    for item in items:
        is_app = item.path.parent == Path(__file__).parent
        if is_app and item.name.endswith("[http]") and item.originalname not in HTTP_BY_DEFAULT:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def run_until(at: AppTest, predicate, timeout: float = 120.0) -> AppTest:
    """Rerun the app until ``predicate(at)`` holds (background jobs finish between runs)."""
    deadline = time.monotonic() + timeout
    at.run()
    while not predicate(at):
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not reached; errors: {[e.value for e in at.error]}")
        time.sleep(0.5)
        at.run()
    return at


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    """The backend service as a subprocess (one workspace for the session's http tests)."""
    from tests.service_support import start_service

    svc = start_service(tmp_path_factory.mktemp("apptest-service") / "home")
    yield svc
    svc.stop()


@pytest.fixture(params=BACKENDS)
def app(request, home, monkeypatch) -> AppTest:
    """The whole app (navigation included) on an empty workspace, or on the service."""
    if request.param == "http":
        svc = request.getfixturevalue("service")
        monkeypatch.setenv("LATENT_LENS_BACKEND_URL", svc.url)
        monkeypatch.setenv("LATENT_LENS_BACKEND_TOKEN", svc.token)
    return AppTest.from_file(MAIN, default_timeout=90)


def map_data(at: AppTest, view_key_prefix: str, *, tables: bool = False) -> dict:
    """What the page sent to its WebGL map (components/map) in the last run, Arrow tables
    decoded: the ``data`` dict of the one map whose ``view_key`` starts with the prefix.

    A map sends each table once (there is no browser here to report what it holds): with
    ``tables=True`` the page runs once more as for a new browser page, which gets them all.
    """
    import json

    import pyarrow as pa

    if tables:
        for k in [k for k in at.session_state.keys()
                  if k.startswith(view_key_prefix) and k.endswith(":sent")]:
            del at.session_state[k]
        at.run()
    found = []
    for el in at.get("bidi_component"):
        kind = el.proto.WhichOneof("data")
        data = json.loads(el.proto.mixed.json if kind == "mixed" else el.proto.json)
        if not str(data.get("view_key", "")).startswith(view_key_prefix):
            continue
        for k, v in data.items():
            if isinstance(v, dict) and "__streamlit_arrow_ref__" in v:
                blob = el.proto.mixed.arrow_blobs[v["__streamlit_arrow_ref__"]].data
                data[k] = pa.ipc.open_stream(blob).read_all()
        found.append(data)
    assert len(found) == 1, f"{len(found)} maps with a view key starting {view_key_prefix!r}"
    return found[0]
