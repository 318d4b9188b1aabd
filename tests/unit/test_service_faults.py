"""The service as a subprocess: SIGKILL during a job, restart, and one computation per spec."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from backend.errors import NotFoundError
from backend.http_client import HttpBackend
from backend.jobs import JobSpec
from tests.service_support import TOKEN, start_service


def _runs(home, tag: str) -> int:
    log = home / "runs.log"
    return log.read_text().split().count(tag) if log.exists() else 0


def _until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout} s")
        time.sleep(0.05)


def _submit_together(url: str, spec: JobSpec, n: int = 3) -> set[str]:
    """``n`` clients, each with its own connection, submit ``spec`` at the same moment."""
    clients = [HttpBackend(url, TOKEN) for _ in range(n)]
    barrier = threading.Barrier(n)
    ids: list[str] = []

    def go(c):
        barrier.wait()
        ids.append(c.submit(spec))

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for c in clients:
        c.close()
    assert len(ids) == n
    return set(ids)


def test_kill_during_a_job_then_restart(tmp_path):
    home = tmp_path / "home"
    svc = start_service(home, test_kinds=True)
    try:
        c = HttpBackend(svc.url, TOKEN)
        rng = np.random.default_rng(1)
        df = pd.DataFrame(rng.normal(size=(50, 4)), columns=list("abcd"))
        info, _ = c.add_upload(df.to_csv(index=False).encode(), "pts.csv")
        digits = c.add_bundled("digits")
        pca = c.submit(JobSpec("pca", info.id, {}))
        assert c.wait(pca, timeout=120).state == "done"
        projection = c.artifact_table(pca, "projection.parquet")

        (home / "hold").touch()
        spec = JobSpec("test_hold", info.id, {"tag": "killed"})
        held = c.submit(spec)
        _until(lambda: c.status(held).state == "running" and _runs(home, "killed") == 1,
               what="the held job running")
        # two more clients submitting the same spec join the running job
        assert _submit_together(svc.url, spec) == {held}
        # its first file is written, in a private folder only
        _until(lambda: any((p / "part1.npy").exists() for p in (home / "tmp").iterdir()),
               what="part1.npy written")
        assert held not in {a.id for a in c.artifacts()}
        c.close()
        svc.kill()

        svc = start_service(home, test_kinds=True)
        c = HttpBackend(svc.url, TOKEN)
        assert {d.id for d in c.datasets()} == {info.id, digits.id}
        pd.testing.assert_frame_equal(c.artifact_table(pca, "projection.parquet"), projection)
        st = c.status(held)
        assert st.state == "interrupted" and "submit it again" in st.message and st.finished
        assert held not in {a.id for a in c.artifacts()}  # the partial artifact is not visible
        assert not (home / "artifacts" / held).exists()
        with pytest.raises(NotFoundError, match=f"no artifact with id {held}"):
            c.artifact(held)
        with pytest.raises(NotFoundError):
            c.artifact_array(held, "part1.npy")

        (home / "hold").unlink()
        assert c.submit(spec) == held  # resubmittable, same id
        done = c.wait(held, timeout=60)
        assert done.state == "done" and _runs(home, "killed") == 2
        assert c.artifact(held).files == ["meta.json", "part1.npy", "part2.json"]
        assert c.artifact_json(held, "part2.json") == {"tag": "killed"}
        assert np.array_equal(c.artifact_array(held, "part1.npy"), np.arange(10))
        # a finished spec submitted again by several clients is not computed again
        assert _submit_together(svc.url, spec) == {held}
        assert _runs(home, "killed") == 2

        # a new spec submitted by several clients at once: one computation
        fresh = JobSpec("test_hold", info.id, {"tag": "together"})
        ids = _submit_together(svc.url, fresh, n=4)
        assert len(ids) == 1
        assert c.wait(ids.pop(), timeout=60).state == "done"
        assert _runs(home, "together") == 1
        assert sum(1 for j in c.jobs() if j.kind == "test_hold") == 2
        c.close()
    finally:
        svc.stop()
    assert not (home / "hold").exists()


def test_sigterm_stops_the_service_within_5_s_and_marks_its_jobs_interrupted(tmp_path):
    """A job stuck in a call that never checks for Cancel must not keep the service alive."""
    import signal

    from backend.store import Store

    home = tmp_path / "home"
    svc = start_service(home, test_kinds=True)
    try:
        c = HttpBackend(svc.url, TOKEN)
        info = c.add_bundled("wine")
        (home / "hold").touch()
        job = c.submit(JobSpec("test_hold", info.id, {"tag": "stuck"}))
        _until(lambda: c.status(job).state == "running", what="the job running")
        c.close()
        t0 = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        svc.proc.wait(timeout=30)
        assert time.monotonic() - t0 < 5.0
    finally:
        if svc.proc.poll() is None:
            svc.kill()
    row = Store(home).job_row(job)
    assert row["state"] == "interrupted" and "submit it again" in row["message"]
