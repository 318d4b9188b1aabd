"""Shared fixtures: a throw-away workspace and an in-process backend on it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty workspace folder, set as LATENT_LENS_HOME for the test."""
    h = tmp_path / "home"
    monkeypatch.setenv("LATENT_LENS_HOME", str(h))
    monkeypatch.delenv("LATENT_LENS_BACKEND_URL", raising=False)
    return h


@pytest.fixture
def backend(home):
    from backend.client import LocalBackend

    b = LocalBackend(home)
    yield b
    b.runner.shutdown()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is missing (the shared/ folder beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cluster():
    """One local Ray cluster for every Ray test of the session (2 CPUs, a 200 MiB object
    store), started by the first test that asks for it and shut down at the end."""
    pytest.importorskip("ray")
    from backend.engines import RayEngine

    engine = RayEngine("local", num_cpus=2, object_store_mb=200)
    try:
        yield engine
    finally:
        engine.close()
