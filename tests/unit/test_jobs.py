import threading
import time

import numpy as np
import pandas as pd
import pytest

from backend.errors import InvalidInputError, InvalidParameterError
from backend.jobs import JobSpec, register
from backend.tasks._params import take_int

CALLS = {"count": 0}
GATE = threading.Event()


def _validate(p, info):
    return {"k": take_int(p, "k", 1, 0, 10)}


@register("test_sum", validate=_validate)
def _run_sum(ctx):
    CALLS["count"] += 1
    ctx.progress(0.5, "half")
    ctx.save_npy("out.npy", np.asarray(ctx.vectors()).sum(axis=0) * ctx.params["k"])
    return {"note": "ok"}


@register("test_block", validate=_validate)
def _run_block(ctx):
    while True:
        ctx.progress(0.1, "waiting")
        time.sleep(0.02)


@register("test_fail", validate=_validate)
def _run_fail(ctx):
    raise InvalidInputError("the data is bad in a way the user can fix")


@pytest.fixture
def ds(backend):
    vec = np.arange(12, dtype=np.float32).reshape(4, 3)
    return backend.store.add_dataset(pd.DataFrame({"a": list("wxyz")}), vec, name="t", source="x")


def test_submit_runs_and_caches(backend, ds):
    CALLS["count"] = 0
    j = backend.submit(JobSpec("test_sum", ds.id, {"k": 2}))
    st = backend.wait(j, 10)
    assert st.state == "done" and st.progress == 1.0 and st.artifact_id == j
    np.testing.assert_array_equal(backend.artifact_array(j, "out.npy"), [36, 44, 52])
    meta = backend.artifact_json(j, "meta.json")
    assert meta["params"] == {"k": 2} and meta["note"] == "ok" and meta["device"] == "cpu"
    assert "numpy" in meta["versions"]
    # the same spec (defaults spelled out or not) is the same job, served from the store
    assert backend.submit(JobSpec("test_sum", ds.id, {"k": 2})) == j
    assert CALLS["count"] == 1
    j1 = backend.submit(JobSpec("test_sum", ds.id, {}))
    assert backend.submit(JobSpec("test_sum", ds.id, {"k": 1})) == j1 != j


def test_store_survives_restart(home, ds, backend):
    from backend.client import LocalBackend

    j = backend.submit(JobSpec("test_sum", ds.id, {"k": 3}))
    backend.wait(j, 10)
    CALLS["count"] = 0
    b2 = LocalBackend(home)
    assert b2.submit(JobSpec("test_sum", ds.id, {"k": 3})) == j
    assert b2.status(j).state == "done" and CALLS["count"] == 0
    b2.runner.shutdown()


def test_cancel(backend, ds):
    j = backend.submit(JobSpec("test_block", ds.id, {}))
    for _ in range(200):
        if backend.status(j).state == "running":
            break
        time.sleep(0.01)
    backend.cancel(j)
    st = backend.wait(j, 10)
    assert st.state == "cancelled"
    assert backend.store.artifact_or_none(j) is None  # nothing partial is visible


def test_failure_is_recorded_with_message(backend, ds):
    j = backend.submit(JobSpec("test_fail", ds.id, {}))
    st = backend.wait(j, 10)
    assert st.state == "failed" and st.error == "the data is bad in a way the user can fix"


def test_invalid_specs_fail_before_queueing(backend, ds):
    with pytest.raises(InvalidParameterError, match="unknown job kind 'nope'"):
        backend.submit(JobSpec("nope", ds.id, {}))
    with pytest.raises(InvalidParameterError, match=r"k must be in \[0, 10\]; got 11"):
        backend.submit(JobSpec("test_sum", ds.id, {"k": 11}))
    with pytest.raises(InvalidParameterError, match="device="):
        backend.submit(JobSpec("test_sum", ds.id, {"device": "cuda:7"}))
    assert backend.jobs() == []


def test_interrupted_after_restart(home, backend, ds):
    from backend.client import LocalBackend

    j = backend.submit(JobSpec("test_block", ds.id, {}))
    for _ in range(200):
        if backend.status(j).state == "running":
            break
        time.sleep(0.01)
    b2 = LocalBackend(home)  # a second process starting on the same workspace
    assert b2.status(j).state == "interrupted"
    assert "submit it again" in b2.status(j).message
    backend.cancel(j)
    b2.runner.shutdown()
