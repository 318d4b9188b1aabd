"""AppTest helpers: run a page against a fresh workspace and wait for its jobs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


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


@pytest.fixture
def app(home) -> AppTest:
    """The whole app (navigation included) on an empty workspace."""
    return AppTest.from_file(MAIN, default_timeout=90)
