import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from backend.errors import InvalidInputError, InvalidParameterError
from backend.jobs import JobKind, JobSpec, job_kinds, register, unregister
from backend.params import Param, ParamSpec
from backend.results import Result
from tests.conftest import ROOT

CALLS = {"count": 0}
RELEASE = threading.Event()
PARAMS = ParamSpec(Param("k", int, 1, low=0, high=10, help="a multiplier"))


@dataclass(frozen=True)
class SumResult(Result):
    note: str
    total: float


def _run_sum(ctx):
    CALLS["count"] += 1
    ctx.progress(0.5, "half")
    out = np.asarray(ctx.vectors()).sum(axis=0) * ctx.params["k"]
    ctx.save_npy("out.npy", out)
    return SumResult(note="ok", total=float(out.sum()))


def _run_block(ctx):
    while not RELEASE.is_set():
        ctx.progress(0.1, "waiting")
        time.sleep(0.02)


def _run_fail(ctx):
    raise InvalidInputError("the data is bad in a way the user can fix")


def _run_quick(ctx):
    ctx.save_npy("one.npy", np.ones(1))


@pytest.fixture(autouse=True)
def kinds():
    """The test kinds, registered for each test and removed afterwards."""
    declared = [
        JobKind("test_sum", params=PARAMS, run=_run_sum, result=SumResult, files=("out.npy",)),
        JobKind("test_block", params=PARAMS, run=_run_block),
        JobKind("test_fail", params=PARAMS, run=_run_fail),
        JobKind("test_quick", params=PARAMS, run=_run_quick, files=("one.npy",), quick=True),
    ]
    RELEASE.clear()
    for k in declared:
        register(k)
    yield
    RELEASE.set()
    for k in declared:
        unregister(k.name)


@pytest.fixture
def ds(backend):
    vec = np.arange(12, dtype=np.float32).reshape(4, 3)
    return backend.store.add_dataset(pd.DataFrame({"a": list("wxyz")}), vec, name="t", source="x")


def _wait_state(backend, job_id, state, timeout=20.0):
    deadline = time.monotonic() + timeout
    while backend.status(job_id).state != state:
        assert time.monotonic() < deadline, f"{job_id} never reached {state!r}: {backend.status(job_id)}"
        time.sleep(0.01)


def test_submit_runs_and_caches(backend, ds):
    CALLS["count"] = 0
    j = backend.submit(JobSpec("test_sum", ds.id, {"k": 2}))
    st = backend.wait(j, 10)
    assert st.state == "done" and st.progress == 1.0 and st.artifact_id == j
    np.testing.assert_array_equal(backend.artifact_array(j, "out.npy"), [36, 44, 52])
    meta = backend.artifact_json(j, "meta.json")
    assert meta["params"] == {"k": 2} and meta["device"] == "cpu"
    assert meta["result"] == {"note": "ok", "total": 132.0}
    assert "numpy" in meta["versions"]
    # the typed result, as pages read it
    assert backend.result(j) == SumResult(note="ok", total=132.0)
    # the same spec (defaults spelled out or not) is the same job, served from the store
    assert backend.submit(JobSpec("test_sum", ds.id, {"k": 2})) == j
    assert CALLS["count"] == 1
    j1 = backend.submit(JobSpec("test_sum", ds.id, {}))
    assert backend.submit(JobSpec("test_sum", ds.id, {"k": 1})) == j1 != j


def test_register_refuses_a_duplicate_name():
    with pytest.raises(ValueError, match="'test_sum' is registered already"):
        register(JobKind("test_sum", params=PARAMS, run=_run_sum))
    assert job_kinds()["test_sum"].run is _run_sum  # the first declaration stays


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
    _wait_state(backend, j, "running")
    t0 = time.monotonic()
    backend.cancel(j)
    st = backend.wait(j, 10)
    assert st.state == "cancelled" and st.message == "cancelled by the user"
    assert time.monotonic() - t0 < 2.0
    assert backend.store.artifact_or_none(j) is None  # nothing partial is visible


def test_cancel_a_queued_job_never_starts_it(backend, ds):
    blockers = [backend.submit(JobSpec("test_block", ds.id, {"k": k})) for k in (1, 2)]
    for b in blockers:
        _wait_state(backend, b, "running")
    queued = backend.submit(JobSpec("test_sum", ds.id, {"k": 5}))
    assert backend.status(queued).state == "queued"
    assert backend.cancel(queued).state == "cancelled"
    RELEASE.set()
    for b in blockers:
        assert backend.wait(b, 10).state == "done"
    assert backend.wait(queued, 10).state == "cancelled"
    assert backend.store.artifact_or_none(queued) is None


def test_quick_jobs_do_not_wait_behind_heavy_ones(backend, ds):
    blockers = [backend.submit(JobSpec("test_block", ds.id, {"k": k})) for k in (1, 2)]
    for b in blockers:
        _wait_state(backend, b, "running")  # every heavy worker is busy
    quick = backend.submit(JobSpec("test_quick", ds.id, {}))
    assert backend.wait(quick, 10).state == "done"
    assert all(backend.status(b).state == "running" for b in blockers)


def test_failure_is_recorded_with_message(backend, ds):
    j = backend.submit(JobSpec("test_fail", ds.id, {}))
    st = backend.wait(j, 10)
    assert st.state == "failed" and st.error == "the data is bad in a way the user can fix"


def test_invalid_specs_fail_before_queueing(backend, ds):
    with pytest.raises(InvalidParameterError, match="unknown job kind 'nope'"):
        backend.submit(JobSpec("nope", ds.id, {}))
    with pytest.raises(InvalidParameterError, match=r"k must be an integer in \[0, 10\]; got 11"):
        backend.submit(JobSpec("test_sum", ds.id, {"k": 11}))
    with pytest.raises(InvalidParameterError, match=r"unknown parameter\(s\) for test_sum: \['q'\]"):
        backend.submit(JobSpec("test_sum", ds.id, {"q": 1}))
    with pytest.raises(InvalidParameterError, match="device="):
        backend.submit(JobSpec("test_sum", ds.id, {"device": "cuda:7"}))
    assert backend.jobs() == []


def test_stop_marks_running_jobs_interrupted_not_cancelled(home, ds):
    from backend.client import LocalBackend

    b = LocalBackend(home)
    j = b.submit(JobSpec("test_block", ds.id, {}))
    _wait_state(b, j, "running")
    t0 = time.monotonic()
    b.runner.shutdown()
    assert time.monotonic() - t0 < 5.0
    st = b.status(j)
    assert st.state == "interrupted" and "submit it again" in st.message


def test_a_second_process_leaves_running_jobs_alone(home, backend, ds):
    j = backend.submit(JobSpec("test_block", ds.id, {}))
    _wait_state(backend, j, "running")
    # a second process opens the same workspace (as `make serve` beside the app would)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from backend.client import LocalBackend; "
            "b = LocalBackend(sys.argv[2]); b.runner.shutdown()")
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(home)], check=True, timeout=120)
    assert backend.status(j).state == "running"
    RELEASE.set()
    assert backend.wait(j, 10).state == "done"


def test_jobs_of_a_gone_process_are_interrupted_at_start(home, backend, ds):
    from backend.client import LocalBackend

    gone = f"{socket.gethostname()}:999999:deadbeef0000"  # no lock file: its process is gone
    backend.store.upsert_job("c" * 16, dataset_id=ds.id, kind="test_sum", state="running",
                             owner=gone)
    backend.store.upsert_job("d" * 16, dataset_id=ds.id, kind="test_sum", state="queued")
    b2 = LocalBackend(home)
    assert b2.status("c" * 16).state == "interrupted"
    assert b2.status("d" * 16).state == "interrupted"  # no owner recorded: an older version's
    assert "submit it again" in b2.status("c" * 16).message
    b2.runner.shutdown()


def test_a_kind_runs_only_on_declared_dataset_kinds():
    with pytest.raises(ValueError, match="unknown dataset kind 'tables'"):
        register(JobKind("test_tables", params=PARAMS, run=_run_sum, dataset_kinds=("tables",)))
    assert "test_tables" not in job_kinds()
