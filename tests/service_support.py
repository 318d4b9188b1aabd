"""The backend service for tests: a subprocess or an in-process thread on a free loopback port.

``start_service`` runs ``python -m backend.service`` (optionally with the test job kinds of
:func:`register_test_kinds`) and waits for ``/health``; ``ThreadedService`` serves an app
object from a thread of the test process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(
    url: str, proc: subprocess.Popen | None, log: Path | None, timeout: float
) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = log.read_text() if log is not None and log.exists() else ""
            raise RuntimeError(f"the service exited with {proc.returncode}:\n{text[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the service at {url} did not become healthy in {timeout} s")


@dataclass
class ServiceProcess:
    """A running ``python -m backend.service`` subprocess."""

    proc: subprocess.Popen
    url: str
    token: str
    home: Path
    log: Path

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash or an OOM kill."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_service(
    home: Path,
    *,
    token: str | None = TOKEN,
    test_kinds: bool = False,
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> ServiceProcess:
    """Start the service on a free port with workspace ``home``; return once it answers."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    code = "from backend.service import main; main()"
    if test_kinds:
        code = ("from tests.service_support import register_test_kinds; "
                "register_test_kinds(); " + code)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(extra_env or {})}
    env.pop("LATENT_LENS_BACKEND_URL", None)
    if token is None:
        env.pop("LATENT_LENS_BACKEND_TOKEN", None)
    else:
        env["LATENT_LENS_BACKEND_TOKEN"] = token
    log = home.parent / f"service-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "--port", str(port), "--home", str(home),
             "--workers", str(workers), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log, timeout)
    except BaseException:
        proc.kill()
        raise
    return ServiceProcess(proc, url, token or "", home, log)


class ThreadedService:
    """Serve an ASGI app with uvicorn from a thread of this process (``with`` block)."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> "ThreadedService":
        self._thread.start()
        _wait_healthy(self.url, None, None, 30)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@contextlib.contextmanager
def served(home: Path, **limits: int):
    """``(local, remote, service)``: a LocalBackend on ``home``, the service on it (uvicorn in a
    thread; ``limits`` are :func:`backend.service.create_app`'s) and an HttpBackend to it."""
    from backend.client import LocalBackend
    from backend.http_client import HttpBackend
    from backend.service import create_app

    local = LocalBackend(home)
    try:
        with ThreadedService(create_app(local, TOKEN, **limits)) as svc:
            remote = HttpBackend(svc.url, TOKEN)
            try:
                yield local, remote, svc
            finally:
                remote.close()
    finally:
        local.close()


def register_test_kinds() -> None:
    """Job kinds for the fault tests, registered only in a service subprocess.

    ``test_hold`` appends its tag to ``<workspace>/runs.log`` when it starts (so the
    test counts computations), writes ``part1.npy``, waits while ``<workspace>/hold``
    exists, then writes ``part2.json``.
    """
    import numpy as np

    from backend.jobs import JobKind, register
    from backend.params import Param, ParamSpec

    def run(ctx):
        root = ctx.store.root
        with open(root / "runs.log", "a") as f:
            f.write(ctx.params["tag"] + "\n")
        ctx.save_npy("part1.npy", np.arange(10))
        while (root / "hold").exists():
            if not ctx.params["tag"].startswith("stuck"):  # "stuck…": ignores Cancel, as a
                ctx.progress(0.5, "holding")               # library call without checks would
            time.sleep(0.05)
        ctx.save_json("part2.json", {"tag": ctx.params["tag"]})

    register(JobKind("test_hold", params=ParamSpec(Param("tag", str, "")), run=run,
                     files=("part1.npy", "part2.json")))


@dataclass
class LoadResult:
    """What :func:`run_load` saw: latencies per operation (s), errors, and every job."""

    latencies: dict[str, list[float]]
    errors: list[str]
    jobs: set[str]
    iterations: int


def run_load(make_client, *, clients: int = 8, seconds: float = 10.0,
             shared_dataset: str | None = None, seed: int = 0) -> LoadResult:
    """``clients`` threads, each with a backend from ``make_client()``, for ``seconds``.

    Each iteration uploads a small distinct CSV, submits a PCA of it, polls its status
    until it finishes, and fetches the projection and its sidecar. With ``shared_dataset``
    it also submits a kNN graph whose spec the other clients submit too (one computation
    each), and fetches it. Every thread stops at the deadline (polls give up 60 s later).
    """
    import numpy as np
    import pandas as pd

    from backend.jobs import JobSpec

    deadline = time.monotonic() + seconds
    lat: dict[str, list[float]] = {k: [] for k in ("upload", "submit", "status", "artifact")}
    errors: list[str] = []
    jobs: set[str] = set()
    count = [0]
    lock = threading.Lock()

    def timed(op, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        with lock:
            lat[op].append(time.perf_counter() - t0)
        return out

    def finish(c, job):
        give_up = deadline + 60
        while True:
            st = timed("status", c.status, job)
            if st.finished or time.monotonic() > give_up:
                return st
            time.sleep(0.02)

    def client(idx: int) -> None:
        c = make_client()
        rng = np.random.default_rng([seed, idx])
        i = 0
        try:
            while time.monotonic() < deadline:
                df = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd"))
                info, _ = timed("upload", c.add_upload, df.to_csv(index=False).encode(),
                                f"load-{idx}-{i}.csv")
                specs = [JobSpec("pca", info.id, {})]
                if shared_dataset is not None:
                    specs.append(JobSpec("knn", shared_dataset, {"n_neighbors": 2 + i % 8}))
                for spec in specs:
                    job = timed("submit", c.submit, spec)
                    with lock:
                        jobs.add(job)
                    st = finish(c, job)
                    if st.state != "done":
                        raise RuntimeError(f"job {job} ended {st.state}: {st.error}")
                    name = "projection.parquet" if spec.kind == "pca" else "indices.npy"
                    if spec.kind == "pca":
                        out = timed("artifact", c.artifact_table, job, name)
                        n = len(out)
                    else:
                        n = len(timed("artifact", c.artifact_array, job, name))
                    if n != (60 if spec.kind == "pca" else c.dataset(spec.dataset_id).n_rows):
                        raise RuntimeError(f"artifact {job} has {n} rows")
                    timed("artifact", c.artifact_json, job, "meta.json")
                i += 1
        except Exception as e:  # recorded and reported by the caller
            with lock:
                errors.append(f"client {idx}: {type(e).__name__}: {e}")
        finally:
            with lock:
                count[0] += i
            if hasattr(c, "close"):
                c.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline + 120 - time.monotonic()))
    errors += [f"client {k}: still running after the deadline" for k, t in enumerate(threads)
               if t.is_alive()]
    return LoadResult(lat, errors, jobs, count[0])
