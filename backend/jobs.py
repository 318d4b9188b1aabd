"""Jobs: content-addressed units of heavy work, run by a worker pool.

A job is ``JobSpec(kind, dataset_id, params)``. Its id is a hash of the kind, the
dataset id, the *resolved* parameters and the kind's code version, so submitting
the same spec twice returns the same job, and a finished job's artifact (same id)
is returned instead of being computed again.

A job kind is one declaration, :class:`JobKind`, registered with :func:`register`:
its parameters (a :class:`~backend.params.ParamSpec`, checked before anything is
queued), its ``run(ctx)`` function (computes, reports progress through
``ctx.progress``, writes its files through ``ctx``: only the job layer touches the
store), its typed result (a :class:`~backend.results.Result`) and its files.
"""

from __future__ import annotations

import atexit
import json
import logging
import platform
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from backend.dataset_kinds import check_dataset_kind
from backend.device import resolve_device
from backend.engines import Engine, engine_from_env
from backend.errors import (
    InvalidParameterError,
    JobCancelled,
    LatentLensError,
    NotFoundError,
)
from backend.params import AUTO, ParamSpec
from backend.results import EmptyResult, Result
from backend.store import ArtifactInfo, DatasetInfo, Store, content_hash

__all__ = ["JobSpec", "JobStatus", "JobContext", "JobKind", "JobRunner", "register", "unregister",
           "job_kinds", "result_of"]

log = logging.getLogger(__name__)

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
FINAL_STATES = ("done", "failed", "cancelled", "interrupted")
CANCELLED = "cancelled by the user"
INTERRUPTED = "interrupted: the backend stopped"


@dataclass(frozen=True)
class JobSpec:
    """What to compute: a job kind, the dataset it reads, and its parameters (JSON-able)."""

    kind: str
    dataset_id: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class JobStatus:
    """A job's state as the catalogue has it.

    ``state`` is one of queued, running, done, failed, cancelled, interrupted;
    ``progress`` is in [0, 1]; ``artifact_id`` is set when ``state == "done"``.
    """

    id: str
    kind: str
    dataset_id: str
    params: dict[str, Any]
    state: str
    progress: float
    message: str
    error: str | None
    artifact_id: str | None
    created: float
    updated: float
    owner: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "JobStatus":
        row = dict(row)
        row["params"] = json.loads(row["params"])
        return cls(**row)


@dataclass(frozen=True)
class JobKind:
    """A kind of job, declared once (see ``../shared/DESIGN.md``, "Kinds: declared once").

    Parameters
    ----------
    name : str
        The kind's name in a :class:`JobSpec`.
    params : ParamSpec
        Its parameters: the job validator, the service schema and the form read this.
    run : callable(JobContext) -> Result
        Computes, reports progress through ``ctx.progress``, writes its files through ``ctx``
        and returns the typed result (stored in ``meta.json`` under ``"result"``).
    result : type of Result
        The result's class (``backend.result(artifact_id)`` returns one).
    files : tuple of str
        The files its artifact holds (besides ``meta.json``).
    dataset_kinds : tuple of str, default=("vectors",)
        The dataset kinds it runs on.
    version : int, default=1
        Bump whenever the output changes, so artifacts of older code are not reused.
    check : callable(params, DatasetInfo) -> dict or None, optional
        Data-dependent checks after the parameters are valid (``n_neighbors`` below the row
        count, a column that must exist). May return the parameters with values resolved
        from the data (e.g. the latitude column found by name); must be cheap.
    title : str
        Shown to the user (progress labels, the form's heading).
    quick : bool, default=False
        Runs on the quick lane: never waits behind a heavy job.
    """

    name: str
    params: ParamSpec
    run: Callable[["JobContext"], Result | None]
    result: type[Result] = EmptyResult
    files: tuple[str, ...] = ()
    dataset_kinds: tuple[str, ...] = ("vectors",)
    version: int = 1
    check: Callable[[dict[str, Any], DatasetInfo], dict[str, Any] | None] | None = None
    title: str = ""
    quick: bool = False

    def validate(self, raw: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
        """The resolved parameters of a job of this kind on ``info`` (raises on bad input)."""
        params = self.params.validate(raw, owner=self.name)
        for p in self.params:
            value = params[p.name]
            if p.column and value is not None and value != AUTO and value not in info.columns:
                raise InvalidParameterError(
                    f"{p.name} {params[p.name]!r} is not a column of {info.name!r}; its columns: "
                    f"{info.columns[:30]}.")
        if self.check is not None:
            resolved = self.check(params, info)
            if resolved is not None:
                params = resolved
        return params


_KINDS: dict[str, JobKind] = {}
_KINDS_LOCK = threading.Lock()


def register(kind: JobKind) -> JobKind:
    """Register a job kind; returns it.

    Raises
    ------
    ValueError
        If a kind of that name is registered already (a second declaration would silently
        replace the first), or it names a dataset kind that is not declared in
        :mod:`backend.dataset_kinds`.
    """
    for name in kind.dataset_kinds:
        check_dataset_kind(name)
    with _KINDS_LOCK:
        if kind.name in _KINDS:
            raise ValueError(f"a job kind named {kind.name!r} is registered already")
        _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a registered kind (tests that declare kinds of their own clean up with this)."""
    with _KINDS_LOCK:
        _KINDS.pop(name, None)


def job_kinds() -> dict[str, JobKind]:
    """The registered job kinds (importing :mod:`backend.tasks` registers them all)."""
    import backend.tasks  # noqa: F401  (registers the kinds)

    return dict(_KINDS)


def _kind(name: str) -> JobKind:
    kinds = job_kinds()
    if name not in kinds:
        raise InvalidParameterError(
            f"unknown job kind {name!r}; known kinds: {', '.join(sorted(kinds))}."
        )
    return kinds[name]


def resolve_spec(store: Store, spec: JobSpec) -> tuple[str, JobKind, dict[str, Any], DatasetInfo]:
    """Validate a spec; return (job id, kind, resolved params, dataset info)."""
    kind = _kind(spec.kind)
    info = store.dataset(spec.dataset_id)
    if info.kind not in kind.dataset_kinds:
        raise InvalidParameterError(
            f"job kind {spec.kind!r} works on datasets of kind {kind.dataset_kinds}; "
            f"dataset {info.name!r} is of kind {info.kind!r}."
        )
    if not isinstance(spec.params, dict):
        raise InvalidParameterError(f"params must be a dict; got {type(spec.params).__name__}.")
    raw = dict(spec.params)
    device = raw.pop("device", None)
    if device is not None and not isinstance(device, str):
        raise InvalidParameterError(f"device must be a string like 'cpu' or 'cuda'; got {device!r}.")
    params = kind.validate(raw, info)
    if device is not None:
        resolve_device(device)  # an impossible device fails here, before queueing
        params["device"] = device
    job_id = content_hash(
        spec.kind, spec.dataset_id, json.dumps(params, sort_keys=True), str(kind.version)
    )
    return job_id, kind, params, info


class JobContext:
    """What a running job sees: its parameters, its inputs, and where to write.

    Files written with ``save_*`` land in a private folder that becomes the
    artifact only when the job succeeds (atomic rename), so a failed or
    cancelled job leaves nothing visible.
    """

    def __init__(
        self,
        runner: "JobRunner",
        job_id: str,
        kind: JobKind,
        dataset: DatasetInfo,
        params: dict[str, Any],
        cancel: threading.Event,
        out: Path,
        span: tuple[float, float] = (0.0, 1.0),
    ):
        self.runner = runner
        self.store = runner.store
        self.job_id = job_id
        self.kind = kind
        self.dataset = dataset
        self.params = params
        self.out = out
        self._cancel = cancel
        self._span = span
        self._last = 0.0
        resolution = resolve_device(params.get("device"))
        self.device = resolution.device
        self.device_reason = resolution.reason
        self.engine: Engine = runner.engine

    # -- scale-out work (on the runner's engine: this process or a Ray cluster) ---------
    def map(self, fn: Callable, tasks, *, span: tuple[float, float] = (0.0, 1.0),
            **options: Any) -> list:
        """``[fn(*t.args) for t in tasks]`` on the engine (see :meth:`Engine.map`), filling
        ``span`` of this job's progress bar; cancelling the job cancels the tasks."""
        lo, hi = span
        return self.engine.map(fn, tasks, stop=self._cancel,
                               progress=lambda f, m: self.progress(lo + (hi - lo) * f, m),
                               **options)

    def map_batches(self, actor: type, columns: dict, *, batch_size: int,
                    span: tuple[float, float] = (0.0, 1.0), **options: Any) -> dict:
        """Rows through a batch actor on the engine (see :meth:`Engine.map_batches`)."""
        lo, hi = span
        return self.engine.map_batches(
            actor, columns, batch_size=batch_size, stop=self._cancel,
            progress=lambda f, m: self.progress(lo + (hi - lo) * f, m), **options)

    # -- progress ------------------------------------------------------------------
    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (fraction of this job, 0..1). Raises JobCancelled once cancelled."""
        self.check_cancelled()
        lo, hi = self._span
        frac = lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0)
        now = time.monotonic()
        if now - self._last >= 0.2 or fraction >= 1.0:
            self._last = now
            self.store.upsert_job(self.job_id, progress=frac, message=message)

    def check_cancelled(self) -> None:
        """Raise JobCancelled once the job was cancelled (or its process is stopping)."""
        if self._cancel.is_set():
            raise JobCancelled(getattr(self._cancel, "reason", CANCELLED))

    @property
    def stop_event(self) -> threading.Event:
        """Set once the job must stop (for loops that poll it, or child processes to kill)."""
        return self._cancel

    # -- inputs --------------------------------------------------------------------
    def vectors(self) -> np.ndarray:
        """The dataset's vectors, float32 (n_rows, n_dims), memory-mapped."""
        return self.store.vectors(self.dataset.id)

    def table(self, columns: list[str] | None = None) -> pd.DataFrame:
        return self.store.table(self.dataset.id, columns)

    def require(
        self, kind: str, params: dict[str, Any], *, span: tuple[float, float] = (0.0, 0.0)
    ) -> ArtifactInfo:
        """The artifact of another job on the same dataset, computed here if not stored.

        ``span`` is the part of this job's progress bar the dependency fills.
        """
        lo, hi = self._span
        sub = (lo + (hi - lo) * span[0], lo + (hi - lo) * span[1])
        return self.runner.run_inline(
            JobSpec(kind, self.dataset.id, params), self._cancel, self.job_id, sub
        )

    # -- outputs -------------------------------------------------------------------
    def save_npy(self, name: str, array: np.ndarray) -> None:
        np.save(self.out / name, np.asarray(array), allow_pickle=False)

    def save_parquet(self, name: str, df: pd.DataFrame) -> None:
        df.to_parquet(self.out / name, index=False)

    def save_json(self, name: str, obj: Any) -> None:
        from backend.store import _write_json

        _write_json(self.out / name, obj)


class _Stop(threading.Event):
    """A job's stop signal: why it stops (cancelled by the user, or its process stopping)."""

    reason = CANCELLED

    def stop(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
        self.set()


class _Lane:
    """A queue served by daemon worker threads (a stuck job never blocks the process exit)."""

    def __init__(self, name: str, workers: int, target: Callable[[tuple], None]):
        import queue

        self.queue: "queue.Queue[tuple | None]" = queue.Queue()
        self._threads = [threading.Thread(target=self._loop, args=(target,), daemon=True,
                                          name=f"ll-{name}-{i}") for i in range(workers)]
        for t in self._threads:
            t.start()

    def _loop(self, target: Callable[[tuple], None]) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            target(item)

    def close(self) -> None:
        for _ in self._threads:
            self.queue.put(None)

    def alive(self) -> list[threading.Thread]:
        return [t for t in self._threads if t.is_alive()]


class JobRunner:
    """Worker threads running jobs against one store, on two lanes.

    Parameters
    ----------
    store : Store
    max_workers : int, default=2
        Concurrent heavy jobs. Kinds declared ``quick`` run on a lane of their own (one more
        worker), so a quick job never waits behind heavy ones.
    engine : Engine, optional
        Where the kinds' scale-out work runs (``ctx.map``, ``ctx.map_batches``); default:
        :func:`backend.engines.engine_from_env` (in process unless ``LATENT_LENS_RAY_ADDRESS``
        names a Ray cluster, which is connected here: an unreachable one raises
        :class:`~backend.engines.EngineUnavailableError`). Recorded in every artifact's
        ``meta["engine"]``.

    Notes
    -----
    Every job this runner starts records its owner (host, process id and a token made for
    this runner). The runner holds an exclusive lock on ``owners/<token>.lock`` in the
    workspace while it lives; at start-up only the queued or running jobs whose owner's
    lock can be taken (the owner is gone) are marked *interrupted*, so a second process on
    the same workspace leaves the first one's jobs alone. :meth:`shutdown` (Ctrl+C, SIGTERM)
    marks the jobs still running *interrupted* and returns without waiting for them.
    """

    def __init__(self, store: Store, max_workers: int = 2, *, engine: Engine | None = None):
        self._own_engine = engine is None  # an engine handed in is closed by its owner
        self.engine = engine if engine is not None else engine_from_env()
        self.store = store
        self.owner = store.claim_owner()
        self._lock = threading.RLock()
        self._active: dict[str, _Stop] = {}  # queued or running here, by job id
        self._done: dict[str, threading.Event] = {}
        self._inline_locks: dict[str, threading.Lock] = {}
        self._closed = False
        n = store.reconcile_jobs()
        if n:
            log.info("marked %d job(s) of stopped processes as interrupted", n)
        self._heavy = _Lane("job", max(1, int(max_workers)), self._run_item)
        self._quick = _Lane("quick", 1, self._run_item)
        atexit.register(self.shutdown, 1.0)  # Ctrl+C / SIGTERM: running jobs -> interrupted

    # -- public API ----------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        """Validate and queue a job; return its id. Identical specs share one job."""
        job_id, kind, params, info = resolve_spec(self.store, spec)
        with self._lock:
            if self._closed:
                raise JobCancelled("the job runner is stopping; submit the job again later.")
            if self.store.artifact_or_none(job_id) is not None:
                self._mark_done_from_store(job_id, spec, params)
                return job_id
            if job_id in self._active:
                return job_id
            row = self.store.job_row(job_id)
            if row is not None and row["state"] in ("queued", "running") \
                    and self.store.owner_alive(row.get("owner")):
                return job_id  # another live process computes it: share its artifact
            stop = _Stop()
            self._active[job_id] = stop
            self._done[job_id] = threading.Event()
            self.store.upsert_job(
                job_id, dataset_id=spec.dataset_id, kind=spec.kind,
                params=json.dumps(params, sort_keys=True), state="queued", progress=0.0,
                message="queued", error=None, artifact_id=None, owner=self.owner,
            )
            (self._quick if kind.quick else self._heavy).queue.put(
                (job_id, kind, info, params, stop))
        return job_id

    def status(self, job_id: str) -> JobStatus:
        row = self.store.job_row(job_id)
        if row is None:
            raise NotFoundError(f"no job with id {job_id!r}.")
        return JobStatus.from_row(row)

    def cancel(self, job_id: str) -> JobStatus:
        """Ask a job to stop; a queued job never starts. Returns the new status."""
        with self._lock:
            stop = self._active.get(job_id)
        if stop is not None:
            stop.stop(CANCELLED)
            row = self.store.job_row(job_id)
            if row is not None and row["state"] == "queued":
                self.store.upsert_job(job_id, state="cancelled", message="cancelled before it started")
        return self.status(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        """Block until a job finishes or ``timeout`` seconds pass; return its status."""
        with self._lock:
            done = self._done.get(job_id)
        if done is not None:
            done.wait(timeout)
            return self.status(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # a job of another process: poll the catalogue
            status = self.status(job_id)
            if status.finished or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(0.1)

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop: queued and running jobs are marked *interrupted* (submit them again later).

        Running jobs are told to stop and given ``timeout`` seconds; the worker threads are
        daemons, so one stuck in a library call does not keep the process alive.
        """
        with self._lock:
            self._closed = True
            active = dict(self._active)
        for stop in active.values():
            stop.stop(INTERRUPTED)
        self._heavy.close()
        self._quick.close()
        deadline = time.monotonic() + timeout
        for done in [self._done[j] for j in active if j in self._done]:
            done.wait(max(0.0, deadline - time.monotonic()))
        for job_id in active:
            row = self.store.job_row(job_id)
            if row is not None and row["state"] in ("queued", "running"):
                self.store.upsert_job(job_id, state="interrupted",
                                      message="interrupted: the backend stopped; submit it again")
        self.store.release_owner(self.owner)
        if self._own_engine:
            self.engine.close()

    # -- running -------------------------------------------------------------------
    def _mark_done_from_store(self, job_id: str, spec: JobSpec, params: dict[str, Any]) -> None:
        row = self.store.job_row(job_id)
        if row is None or row["state"] != "done":
            self.store.upsert_job(
                job_id, dataset_id=spec.dataset_id, kind=spec.kind,
                params=json.dumps(params, sort_keys=True), state="done", progress=1.0,
                message="loaded from the store", error=None, artifact_id=job_id,
            )

    def _run_item(self, item: tuple) -> None:
        job_id, kind, info, params, stop = item
        try:
            if stop.is_set():
                raise JobCancelled(stop.reason)
            self._execute(job_id, kind, info, params, stop, (0.0, 1.0))
        except JobCancelled:
            if stop.reason == INTERRUPTED:
                self.store.upsert_job(job_id, state="interrupted",
                                      message="interrupted: the backend stopped; submit it again")
            else:
                self.store.upsert_job(job_id, state="cancelled", message="cancelled by the user")
        except LatentLensError as e:
            self.store.upsert_job(job_id, state="failed", error=str(e), message="failed")
        except Exception as e:  # a bug: record it whole, the UI shows the summary
            log.exception("job %s (%s) crashed", job_id, kind.name)
            self.store.upsert_job(
                job_id, state="failed", message="failed",
                error=f"internal error ({type(e).__name__}: {e}); details in the server log.\n"
                + traceback.format_exc(limit=5),
            )
        finally:
            with self._lock:
                self._active.pop(job_id, None)
                done = self._done.pop(job_id, None)
            if done is not None:
                done.set()

    def run_inline(
        self, spec: JobSpec, cancel: threading.Event, parent: str, span: tuple[float, float]
    ) -> ArtifactInfo:
        """Compute a dependency in the calling thread (or load it if stored)."""
        job_id, kind, params, info = resolve_spec(self.store, spec)
        with self._lock:
            lock = self._inline_locks.setdefault(job_id, threading.Lock())
        with lock:  # two jobs needing the same dependency compute it once
            art = self.store.artifact_or_none(job_id)
            if art is not None:
                return art
            self.store.upsert_job(
                job_id, dataset_id=spec.dataset_id, kind=spec.kind,
                params=json.dumps(params, sort_keys=True), state="running", progress=0.0,
                message=f"running for job {parent}", error=None, artifact_id=None,
                owner=self.owner,
            )
            try:
                return self._execute(job_id, kind, info, params, cancel, span, parent=parent)
            except JobCancelled:
                reason = getattr(cancel, "reason", CANCELLED)
                self.store.upsert_job(
                    job_id, state="interrupted" if reason == INTERRUPTED else "cancelled",
                    message=reason)
                raise
            except Exception as e:
                self.store.upsert_job(job_id, state="failed", error=str(e), message="failed")
                raise

    def _execute(self, job_id, kind, info, params, cancel, span, parent=None) -> ArtifactInfo:
        out = self.store.new_artifact_dir()
        try:
            ctx = JobContext(self, job_id, kind, info, params, cancel, out, span)
            progress_id = parent or job_id
            ctx.job_id = progress_id  # dependencies report on the parent's bar
            self.store.upsert_job(job_id, state="running", message="started")
            t0 = time.perf_counter()
            result = kind.run(ctx)
            ctx.check_cancelled()
            if result is None:
                result = EmptyResult()
            if not isinstance(result, kind.result):
                raise TypeError(f"job kind {kind.name!r} returned {type(result).__name__}, "
                                f"not its declared {kind.result.__name__}")
            missing = [f for f in kind.files if not (out / f).is_file()]
            if missing:
                raise RuntimeError(f"job kind {kind.name!r} did not write {missing}")
            meta = {
                "job_id": job_id,
                "kind": kind.name,
                "kind_version": kind.version,
                "dataset_id": info.id,
                "dataset_name": info.name,
                "params": params,
                "device": ctx.device,
                "device_reason": ctx.device_reason,
                "engine": self.engine.describe(),
                "seconds": round(time.perf_counter() - t0, 4),
                "finished": time.time(),
                "versions": _versions(),
                "result": result.to_dict(),
            }
            art = self.store.commit_artifact(job_id, info.id, kind.name, out, meta)
        finally:
            if out.exists():
                import shutil

                shutil.rmtree(out, ignore_errors=True)
        self.store.upsert_job(
            job_id, state="done", progress=1.0, message="done", artifact_id=job_id, error=None
        )
        return art


def result_of(artifact: ArtifactInfo) -> Result:
    """The typed result of an artifact (its kind's declared :class:`Result` class)."""
    kind = _kind(artifact.kind)
    return kind.result.from_dict(artifact.meta.get("result") or {})


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "torch", "scikit-learn", "umap-learn", "pynndescent", "scipy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
