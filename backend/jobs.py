"""Jobs: content-addressed units of heavy work, run by a worker pool.

A job is ``JobSpec(kind, dataset_id, params)``. Its id is a hash of the kind, the
dataset id, the *resolved* parameters and the kind's code version, so submitting
the same spec twice returns the same job, and a finished job's artifact (same id)
is returned instead of being computed again.

A job kind is registered with :func:`register`: a ``validate(params, dataset)``
function that checks and resolves parameters before anything is queued, and a
``run(ctx)`` function that computes, reports progress through ``ctx.progress``
and writes its files through ``ctx`` (only the job layer touches the store).
"""

from __future__ import annotations

import json
import logging
import platform
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from backend.device import resolve_device
from backend.errors import (
    InvalidParameterError,
    JobCancelled,
    LatentLensError,
    NotFoundError,
)
from backend.store import ArtifactInfo, DatasetInfo, Store, content_hash

__all__ = ["JobSpec", "JobStatus", "JobContext", "JobKind", "JobRunner", "register", "job_kinds"]

log = logging.getLogger(__name__)

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
FINAL_STATES = ("done", "failed", "cancelled", "interrupted")


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
    """A registered kind of job."""

    name: str
    run: Callable[["JobContext"], dict[str, Any] | None]
    validate: Callable[[dict[str, Any], DatasetInfo], dict[str, Any]]
    version: int = 1
    dataset_kinds: tuple[str, ...] = ("vectors",)


_KINDS: dict[str, JobKind] = {}


def register(
    name: str,
    *,
    validate: Callable[[dict[str, Any], DatasetInfo], dict[str, Any]],
    version: int = 1,
    dataset_kinds: tuple[str, ...] = ("vectors",),
) -> Callable[[Callable[["JobContext"], dict[str, Any] | None]], Callable]:
    """Decorator registering ``run(ctx)`` as the job kind ``name``.

    ``validate(params, dataset_info)`` returns the full resolved parameters (every
    default filled in) or raises :class:`InvalidParameterError`; it must be cheap.
    Bump ``version`` whenever the kind's output changes, so stored artifacts of the
    old code are not returned for new submissions.
    """

    def deco(run: Callable[["JobContext"], dict[str, Any] | None]) -> Callable:
        _KINDS[name] = JobKind(name, run, validate, version, dataset_kinds)
        return run

    return deco


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

    # -- progress ------------------------------------------------------------------
    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (fraction of this job, 0..1). Raises JobCancelled once cancelled."""
        if self._cancel.is_set():
            raise JobCancelled("cancelled by the user")
        lo, hi = self._span
        frac = lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0)
        now = time.monotonic()
        if now - self._last >= 0.2 or fraction >= 1.0:
            self._last = now
            self.store.upsert_job(self.job_id, progress=frac, message=message)

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled("cancelled by the user")

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


class JobRunner:
    """A pool of worker threads running jobs against one store.

    Parameters
    ----------
    store : Store
    max_workers : int, default=2
        Concurrent jobs. Each job uses torch's own thread pool inside.
    """

    def __init__(self, store: Store, max_workers: int = 2):
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ll-job")
        self._lock = threading.RLock()
        self._futures: dict[str, Future] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._inline_locks: dict[str, threading.Lock] = {}
        n = store.mark_interrupted()
        if n:
            log.info("marked %d job(s) from an earlier run as interrupted", n)

    # -- public API ----------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        """Validate and queue a job; return its id. Identical specs share one job."""
        job_id, kind, params, info = resolve_spec(self.store, spec)
        with self._lock:
            if self.store.artifact_or_none(job_id) is not None:
                self._mark_done_from_store(job_id, spec, params)
                return job_id
            fut = self._futures.get(job_id)
            if fut is not None and not fut.done():
                return job_id
            cancel = threading.Event()
            self._cancels[job_id] = cancel
            self.store.upsert_job(
                job_id, dataset_id=spec.dataset_id, kind=spec.kind,
                params=json.dumps(params, sort_keys=True), state="queued", progress=0.0,
                message="queued", error=None, artifact_id=None,
            )
            fut = self._pool.submit(self._run_top, job_id, kind, info, params, cancel)
            self._futures[job_id] = fut
            fut.add_done_callback(lambda f, j=job_id: self._forget(j, f))
        return job_id

    def _forget(self, job_id: str, fut: Future) -> None:
        """Drop a finished job's bookkeeping (its state lives in the catalogue)."""
        with self._lock:
            if self._futures.get(job_id) is fut:
                del self._futures[job_id]
                self._cancels.pop(job_id, None)

    def status(self, job_id: str) -> JobStatus:
        row = self.store.job_row(job_id)
        if row is None:
            raise NotFoundError(f"no job with id {job_id!r}.")
        return JobStatus.from_row(row)

    def cancel(self, job_id: str) -> JobStatus:
        """Ask a job to stop; a queued job never starts. Returns the new status."""
        with self._lock:
            ev = self._cancels.get(job_id)
            fut = self._futures.get(job_id)
        if ev is not None:
            ev.set()
        if fut is not None and fut.cancel():
            self.store.upsert_job(job_id, state="cancelled", message="cancelled before it started")
        return self.status(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        """Block until a job finishes (for scripts and tests)."""
        with self._lock:
            fut = self._futures.get(job_id)
        if fut is not None:
            try:
                fut.result(timeout=timeout)
            except Exception:  # the job's own handler has recorded the failure
                pass
        return self.status(job_id)

    def shutdown(self) -> None:
        for ev in list(self._cancels.values()):
            ev.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- running -------------------------------------------------------------------
    def _mark_done_from_store(self, job_id: str, spec: JobSpec, params: dict[str, Any]) -> None:
        row = self.store.job_row(job_id)
        if row is None or row["state"] != "done":
            self.store.upsert_job(
                job_id, dataset_id=spec.dataset_id, kind=spec.kind,
                params=json.dumps(params, sort_keys=True), state="done", progress=1.0,
                message="loaded from the store", error=None, artifact_id=job_id,
            )

    def _run_top(self, job_id, kind, info, params, cancel) -> None:
        try:
            self._execute(job_id, kind, info, params, cancel, (0.0, 1.0))
        except JobCancelled:
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
            )
            try:
                return self._execute(job_id, kind, info, params, cancel, span, parent=parent)
            except JobCancelled:
                self.store.upsert_job(job_id, state="cancelled", message="cancelled by the user")
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
            extra = kind.run(ctx) or {}
            ctx.check_cancelled()
            meta = {
                "job_id": job_id,
                "kind": kind.name,
                "kind_version": kind.version,
                "dataset_id": info.id,
                "dataset_name": info.name,
                "params": params,
                "device": ctx.device,
                "device_reason": ctx.device_reason,
                "seconds": round(time.perf_counter() - t0, 4),
                "finished": time.time(),
                "versions": _versions(),
                **extra,
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


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "torch", "scikit-learn", "umap-learn", "pynndescent", "scipy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
