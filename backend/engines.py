"""Execution engines: where the scale-out part of a job runs (this process, or a Ray cluster).

The job runner holds one :class:`Engine`, chosen by configuration when it starts
(:func:`engine_from_env`):

* ``LATENT_LENS_RAY_ADDRESS`` unset or empty: :class:`InProcessEngine` (the default);
* ``local``: :class:`RayEngine` on a local Ray cluster started here
  (``LATENT_LENS_RAY_CPUS`` CPUs, default all; ``LATENT_LENS_RAY_OBJECT_STORE_MB``);
* anything else (``host:port``, ``ray://host:port``, ``auto``): :class:`RayEngine`
  connected to that cluster. An address that cannot be reached raises
  :class:`EngineUnavailableError` at start: the in-process engine is never used instead.

A job kind that scales out hands work to ``ctx.engine`` (``ctx.map`` for independent
tasks, ``ctx.map_batches`` for batches through an actor that loads a model once), so the
same kind code runs on both engines. Tasks compute and return values; the driver (the
job runner) stays the only writer of artifacts. Cancelling a job cancels its outstanding
Ray tasks (``ray.cancel``); a task whose worker dies is retried by Ray
(``max_retries``); a task that fails raises an error naming it (its ``label``) and why.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.errors import JobCancelled, LatentLensError

__all__ = ["ADDRESS_ENV", "Engine", "EngineUnavailableError", "InProcessEngine", "RayEngine",
           "Task", "TaskFailedError", "engine_from_env", "row_blocks", "BLOCKS_PER_WORKER"]

ADDRESS_ENV = "LATENT_LENS_RAY_ADDRESS"
CPUS_ENV = "LATENT_LENS_RAY_CPUS"
STORE_ENV = "LATENT_LENS_RAY_OBJECT_STORE_MB"
RETRIES_ENV = "LATENT_LENS_RAY_MAX_RETRIES"
_CONNECT_TIMEOUT = 5.0  # seconds to open a TCP connection to the cluster's head
_POLL = 0.1  # seconds between checks of the stop signal while tasks run
#: Row blocks per worker that :func:`row_blocks` aims at (several, so that a slow block or a
#: retried one does not leave the other workers idle at the end).
BLOCKS_PER_WORKER = 4


class EngineUnavailableError(LatentLensError):
    """The configured execution engine (a Ray cluster) cannot be reached or started."""


class TaskFailedError(LatentLensError):
    """A task of a job failed (or its worker died more often than it is retried)."""


@dataclass(frozen=True)
class Task:
    """One unit of scale-out work: ``fn(*args)``, named by ``label`` in progress and errors
    (e.g. ``"tensor model.layers.0.mlp.down_proj.weight (shard model-00002-of-00004)"``)."""

    label: str
    args: tuple


class Engine:
    """Where a job's tasks run. Subclasses: :class:`InProcessEngine`, :class:`RayEngine`.

    Attributes
    ----------
    name : str
        ``"in-process"`` or ``"ray"``.
    distributed : bool
        True when tasks run in other processes (possibly other machines): their inputs must
        be picklable and files they read must be visible there at the same path.
    """

    name = "engine"
    distributed = False

    def describe(self) -> dict[str, Any]:
        """JSON-able description for the artifact sidecar (``meta["engine"]``)."""
        raise NotImplementedError

    def n_workers(self) -> int:
        """Tasks that can run at once."""
        raise NotImplementedError

    def n_gpus(self) -> int:
        """GPUs the engine's workers can use."""
        return 0

    def put(self, value: Any) -> Any:
        """A handle to pass ``value`` to many tasks of :meth:`map` as a top-level argument.

        On Ray the value is stored once in the cluster's object store (``ray.put``) and
        every task receives it from there (numpy arrays without a copy, read-only), instead
        of being pickled into each task; in process the value itself.
        """
        return value

    def map(self, fn: Callable, tasks: Sequence[Task], *, stop: threading.Event | None = None,
            progress: Callable[[float, str], None] | None = None,
            max_in_flight: int | None = None, num_cpus: float = 1, num_gpus: float = 0
            ) -> list[Any]:
        """``[fn(*task.args) for task in tasks]``, in task order.

        Parameters
        ----------
        fn : callable
            A module-level function (workers import it by name).
        tasks : sequence of Task
        stop : threading.Event, optional
            Once set, outstanding tasks are cancelled and :class:`JobCancelled` is raised.
        progress : callable (fraction, message), optional
            Called after each finished task (an exception raised in it cancels the rest).
        max_in_flight : int, optional
            Tasks submitted at once (bounds the memory they hold); default: workers.
        num_cpus, num_gpus : float
            Resources one task asks for (Ray only).

        Raises
        ------
        JobCancelled
            Once ``stop`` is set.
        TaskFailedError
            If a task raised an unexpected error (or its worker kept dying): the message
            names the task. A :class:`LatentLensError` raised by a task propagates as is.
        """
        raise NotImplementedError

    def map_batches(self, actor: type, columns: dict[str, np.ndarray], *, batch_size: int,
                    constructor_kwargs: dict[str, Any] | None = None,
                    stop: threading.Event | None = None,
                    progress: Callable[[float, str], None] | None = None,
                    num_gpus: float = 0) -> dict[str, np.ndarray]:
        """Rows through ``actor(**constructor_kwargs)(batch)``, batch by batch.

        The actor is built once per worker (a model is loaded once) and called with
        dicts of numpy arrays of at most ``batch_size`` rows; it returns a dict of arrays
        with one row per input row. Returns the outputs' columns in input row order.

        Raises
        ------
        JobCancelled, TaskFailedError
            As :meth:`map`.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release what the engine started (a local Ray cluster)."""


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise JobCancelled(getattr(stop, "reason", "cancelled by the user"))


def _failure(label: str, error: BaseException, attempts: str = "") -> LatentLensError:
    """The error a job shows for a failed task: the task's own LatentLensError, else one
    naming the task and the cause."""
    if isinstance(error, LatentLensError):
        return error
    return TaskFailedError(f"task {label} failed{attempts}: {type(error).__name__}: {error}")


class InProcessEngine(Engine):
    """Tasks run one after another in the calling thread (the job's worker thread)."""

    name = "in-process"
    distributed = False

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "resources": {"CPU": float(_usable_cpus())}}

    def n_workers(self) -> int:
        return 1

    def map(self, fn, tasks, *, stop=None, progress=None, max_in_flight=None, num_cpus=1,
            num_gpus=0):
        out = []
        for i, task in enumerate(tasks):
            _check_stop(stop)
            try:
                out.append(fn(*task.args))
            except JobCancelled:
                raise
            except Exception as e:  # noqa: BLE001 - named and handed to the job
                raise _failure(task.label, e) from e
            if progress is not None:
                progress((i + 1) / len(tasks), f"{task.label} done ({i + 1} of {len(tasks)})")
        return out

    def map_batches(self, actor, columns, *, batch_size, constructor_kwargs=None, stop=None,
                    progress=None, num_gpus=0):
        n = _n_rows(columns)
        worker = actor(**(constructor_kwargs or {}))
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, n, batch_size):
            _check_stop(stop)
            batch = {k: v[start:start + batch_size] for k, v in columns.items()}
            try:
                parts.append(worker(batch))
            except Exception as e:  # noqa: BLE001
                raise _failure(f"batch of rows {start}-{start + len(next(iter(batch.values()))) - 1}",
                               e) from e
            if progress is not None:
                done = min(start + batch_size, n)
                progress(done / n, f"{done:,} of {n:,} rows")
        return _concat(parts)


class RayEngine(Engine):
    """Tasks as Ray tasks, batches through Ray Data actors, on a Ray cluster.

    Parameters
    ----------
    address : str or None
        ``None`` or ``"local"``: start a local cluster in this process (``num_cpus`` CPUs);
        else the cluster's address (``host:port``, ``ray://host:port`` or ``auto``).
        When Ray is already initialised in this process, that cluster is used (and not
        shut down by :meth:`close`).
    num_cpus : int, optional
        CPUs of a local cluster (default: every usable core).
    object_store_mb : int, optional
        Object store size of a local cluster (default: Ray's).
    max_retries : int, default=3
        Retries of a task whose worker died (Ray's ``max_retries``). Exceptions raised by
        the task itself are not retried (they would fail again).

    Raises
    ------
    EngineUnavailableError
        If Ray is not installed, the address cannot be reached, or the cluster does not start.
    """

    name = "ray"
    distributed = True

    def __init__(self, address: str | None = "local", *, num_cpus: int | None = None,
                 object_store_mb: int | None = None, max_retries: int = 3):
        try:
            import ray
        except ImportError as e:
            raise EngineUnavailableError(
                f"{ADDRESS_ENV}={address!r} asks for a Ray cluster, but Ray is not installed; "
                "install it with `pip install 'ray[data]==2.60.0'` or unset "
                f"{ADDRESS_ENV} to run jobs in this process.") from e
        self._ray = ray
        self.address = "local" if address in (None, "", "local") else address
        self.max_retries = int(max_retries)
        self._owned = False
        self._remotes: dict[Callable, Any] = {}
        if self.address != "local":
            _check_reachable(self.address)
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        if self.address == "local":
            kwargs["num_cpus"] = int(num_cpus or _usable_cpus())
            if object_store_mb:
                kwargs["object_store_memory"] = int(object_store_mb) * 2**20
            # workers import the backend from here, whatever the service's working folder
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": _code_root()},
                                     "worker_process_setup_hook": "backend.engines._import_torch"}
        else:
            kwargs["address"] = self.address
        try:
            ray.init(**kwargs)
        except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError...
            where = "start a local Ray cluster" if self.address == "local" else \
                f"connect to the Ray cluster at {self.address!r}"
            raise EngineUnavailableError(
                f"could not {where} ({ADDRESS_ENV}): {type(e).__name__}: {e}. Check the "
                f"address (`ray status` on the head node), or unset {ADDRESS_ENV} to run "
                "jobs in this process.") from e
        self._owned = True

    # -- description ----------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        ray = self._ray
        resources = {k: float(v) for k, v in ray.cluster_resources().items()
                     if not k.startswith("node:")}
        return {"name": self.name, "address": self.address, "ray_version": ray.__version__,
                "nodes": sum(1 for n in ray.nodes() if n.get("Alive")),
                "resources": resources, "max_retries": self.max_retries}

    def n_workers(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def n_gpus(self) -> int:
        return int(self._ray.cluster_resources().get("GPU", 0))

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    # -- tasks ---------------------------------------------------------------------
    def _remote(self, fn: Callable):
        if fn not in self._remotes:
            self._remotes[fn] = self._ray.remote(fn)
        return self._remotes[fn]

    def map(self, fn, tasks, *, stop=None, progress=None, max_in_flight=None, num_cpus=1,
            num_gpus=0):
        ray = self._ray
        remote = self._remote(fn)
        limit = max(1, int(max_in_flight or self.n_workers()))
        results: list[Any] = [None] * len(tasks)
        in_flight: dict[Any, int] = {}
        submitted = finished = 0
        cancelled = False
        try:
            while finished < len(tasks):
                if stop is not None and stop.is_set():
                    cancelled = True
                    _check_stop(stop)
                while submitted < len(tasks) and len(in_flight) < limit:
                    task = tasks[submitted]
                    ref = remote.options(
                        max_retries=self.max_retries, retry_exceptions=False,
                        num_cpus=num_cpus, num_gpus=num_gpus,
                        name=f"latent-lens {task.label}"[:200]).remote(*task.args)
                    in_flight[ref] = submitted
                    submitted += 1
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=_POLL)
                for ref in ready:
                    index = in_flight.pop(ref)
                    results[index] = self._get(ref, tasks[index].label)
                    finished += 1
                    if progress is not None:
                        progress(finished / len(tasks),
                                 f"{tasks[index].label} done ({finished} of {len(tasks)})")
        except JobCancelled:
            cancelled = True
            raise
        finally:
            # nothing keeps running: a cancelled job's tasks are killed at once (force: a
            # task inside a library call would not see an interrupt); after a failure the
            # others are interrupted, which keeps their workers for the next job
            for ref in in_flight:
                ray.cancel(ref, force=cancelled)
        return results

    def _get(self, ref, label: str):
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, BaseException) else e
            raise _failure(label, cause) from None
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.ObjectLostError) as e:
            raise TaskFailedError(
                f"task {label} failed: its worker died {self.max_retries + 1} time(s) "
                f"(Ray retried it {self.max_retries} time(s)): {type(e).__name__}. Look for "
                "out-of-memory kills in the Ray logs; give the workers more memory.") from None

    # -- batches -------------------------------------------------------------------
    def map_batches(self, actor, columns, *, batch_size, constructor_kwargs=None, stop=None,
                    progress=None, num_gpus=0):
        import ray.data

        data_ctx = ray.data.DataContext.get_current()
        data_ctx.enable_progress_bars = False
        data_ctx.print_on_execution_start = False
        n = _n_rows(columns)
        cols = dict(columns)
        cols["__pos"] = np.arange(n, dtype=np.int64)
        # blocks of whole batches: the batches are the ones the in-process engine makes
        n_batches = -(-n // batch_size)
        cuts = np.linspace(0, n_batches, max(1, min(n_batches, 4 * self.n_workers())) + 1)
        ds = _dataset_from_columns(cols, np.minimum(np.round(cuts).astype(int) * batch_size, n))
        actors = max(1, self.n_gpus() if num_gpus else self.n_workers())
        ds = ds.map_batches(
            _Carrying, fn_constructor_kwargs={"actor": actor, "kwargs": constructor_kwargs or {}},
            batch_size=batch_size,
            batch_format="numpy", concurrency=(1, actors),  # scales up while batches queue num_cpus=1 if not num_gpus else 0,
            num_gpus=num_gpus)
        # The driver reads the results in a helper thread, so that a cancel is seen within
        # a poll even while a batch (or an actor's model load) is under way.
        out: queue.Queue = queue.Queue(maxsize=4)
        quit = threading.Event()

        def pump() -> None:
            try:
                iterator = ds.iter_batches(batch_size=None, batch_format="numpy",
                                           prefetch_batches=1)
                for batch in iterator:
                    while not quit.is_set():
                        try:
                            out.put(("batch", batch), timeout=_POLL)
                            break
                        except queue.Full:
                            continue
                    if quit.is_set():
                        break
                out.put(("end", None))
            except BaseException as e:  # noqa: BLE001 - handed to the driver thread
                out.put(("error", e))

        thread = threading.Thread(target=pump, daemon=True, name="ll-ray-data")
        thread.start()
        parts: list[dict[str, np.ndarray]] = []
        done = 0
        try:
            while True:
                _check_stop(stop)
                try:
                    what, item = out.get(timeout=_POLL)
                except queue.Empty:
                    continue
                if what == "end":
                    break
                if what == "error":
                    raise self._batch_failure(item)
                parts.append(item)
                done += len(item["__pos"])
                if progress is not None:
                    progress(done / max(1, n), f"{done:,} of {n:,} rows")
        finally:
            quit.set()
        result = _concat(parts)
        order = np.argsort(result.pop("__pos"), kind="stable")
        if len(order) != n:
            raise TaskFailedError(f"the batch actors returned {len(order):,} rows of {n:,}.")
        return {k: v[order] for k, v in result.items()}

    def _batch_failure(self, error: BaseException) -> LatentLensError:
        ray = self._ray
        cause = error
        while isinstance(cause, ray.exceptions.RayTaskError) and isinstance(
                getattr(cause, "cause", None), BaseException):
            cause = cause.cause
        if isinstance(cause, LatentLensError):
            return cause
        return TaskFailedError(f"a batch of the Ray Data pipeline failed: "
                               f"{type(cause).__name__}: {str(cause)[:2000]}")

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False


class _Carrying:
    """A batch actor that hands the row positions (``__pos``) through, so the driver can
    put the outputs back in input order (Ray Data does not keep it)."""

    def __init__(self, actor: type, kwargs: dict[str, Any]) -> None:
        self.inner = actor(**kwargs)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = dict(batch)
        positions = batch.pop("__pos")
        out = dict(self.inner(batch))
        out["__pos"] = positions
        return out


def _dataset_from_columns(cols: dict[str, np.ndarray], bounds: np.ndarray):
    """A Ray Dataset of equal-length numpy columns, one block per ``bounds`` interval."""
    import pyarrow as pa
    import ray.data

    tables = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        arrays = {k: _arrow(v[lo:hi]) for k, v in cols.items()}
        tables.append(pa.table(arrays))
    return ray.data.from_arrow(tables)


def _arrow(values: np.ndarray):
    import pyarrow as pa

    if values.dtype == object:
        return pa.array(values.tolist(), type=pa.string())
    return pa.array(values)


def _import_torch() -> None:
    """Ray worker start-up hook (local clusters): import torch before any task runs.

    A task cancelled (``ray.cancel``) while its worker imports torch for the first time leaves
    torch half-imported, and every later task on that worker then fails with "Only a single
    TORCH_LIBRARY can be used to register the namespace prims". Importing it at start-up, when
    no task can be cancelled, keeps workers usable after a cancel.
    """
    import torch  # noqa: F401


def row_blocks(n_rows: int, *, n_workers: int = 1, align: int = 1,
               block_rows: int | None = None) -> list[tuple[int, int]]:
    """Half-open row intervals ``[(lo, hi), ...]`` covering ``range(n_rows)``, for tasks.

    Parameters
    ----------
    n_rows : int
        Rows to split (>= 0).
    n_workers : int, default=1
        Tasks that can run at once: about :data:`BLOCKS_PER_WORKER` blocks per worker.
    align : int, default=1
        Every block but the last is a multiple of this many rows (the row chunk an
        in-process kernel works in, so that a block's chunks are the in-process ones and
        the results are identical bit for bit).
    block_rows : int, optional
        Rows per block instead of the even split (rounded up to a multiple of ``align``).

    Returns
    -------
    list of (int, int)
        Ascending, contiguous; empty when ``n_rows`` is 0.

    Raises
    ------
    ValueError
        If ``n_rows`` is negative, or ``align``, ``n_workers`` or ``block_rows`` below 1.
    """
    if n_rows < 0 or align < 1 or n_workers < 1 or (block_rows is not None and block_rows < 1):
        raise ValueError(f"row_blocks needs n_rows >= 0 and align, n_workers, block_rows >= 1; "
                         f"got n_rows={n_rows}, align={align}, n_workers={n_workers}, "
                         f"block_rows={block_rows}.")
    size = block_rows or -(-n_rows // (BLOCKS_PER_WORKER * n_workers))
    size = max(align, -(-size // align) * align)
    return [(lo, min(lo + size, n_rows)) for lo in range(0, n_rows, size)]


def _n_rows(columns: dict[str, np.ndarray]) -> int:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns of unequal lengths {sorted(lengths)}")
    return lengths.pop()


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not parts:
        return {}
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _code_root() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[1])


def _check_reachable(address: str) -> None:
    """Fail fast with a clear message when nothing listens at ``host:port``."""
    if address == "auto":
        return  # ray.init finds (or fails to find) the cluster started on this machine
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EngineUnavailableError(
            f"{ADDRESS_ENV}={address!r} is not a Ray address; give host:port (the head's GCS "
            "port, 6379 by default), ray://host:port (Ray Client, 10001), 'auto' or 'local'.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_TIMEOUT):
            pass
    except OSError as e:
        raise EngineUnavailableError(
            f"the Ray cluster at {address!r} ({ADDRESS_ENV}) cannot be reached: {e}. Start it "
            "(`ray start --head` on the head node) or fix the address; unset "
            f"{ADDRESS_ENV} to run jobs in this process instead.") from None


def engine_from_env() -> Engine:
    """The engine the configuration asks for (see the module docstring).

    Raises
    ------
    EngineUnavailableError
        If a Ray cluster is configured but cannot be reached or started.
    """
    address = os.environ.get(ADDRESS_ENV, "").strip()
    if not address:
        return InProcessEngine()
    cpus = os.environ.get(CPUS_ENV, "").strip()
    store = os.environ.get(STORE_ENV, "").strip()
    retries = os.environ.get(RETRIES_ENV, "").strip()
    return RayEngine(address, num_cpus=int(cpus) if cpus else None,
                     object_store_mb=int(store) if store else None,
                     max_retries=int(retries) if retries else 3)
