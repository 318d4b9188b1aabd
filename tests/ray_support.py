"""Task functions and a job kind for the engine tests (module level: Ray workers import them
by name)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from backend.engines import RayEngine, Task
from backend.jobs import JobContext, JobKind
from backend.params import Param, ParamSpec
from backend.results import Result


def wait_for(condition, timeout: float, what: str):
    """``condition()``'s first truthy value, polled every 50 ms; AssertionError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def square(x: int) -> int:
    return x * x


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"boom at {x}")
    return x


def die_once(marker: str) -> int:
    """Kills its own worker process the first time (no marker yet), returns 42 after."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os._exit(1)
    return 42


def sleep_after_marker(folder: str, i: int, seconds: float) -> int:
    """Says it started (a file in ``folder``), then sleeps."""
    (Path(folder) / f"started-{i}").write_text(str(os.getpid()))
    time.sleep(seconds)
    (Path(folder) / f"finished-{i}").write_text("")
    return i


@dataclass(frozen=True)
class SleepResult(Result):
    n: int


def run_sleepy(ctx: JobContext) -> SleepResult:
    folder = ctx.params["folder"]
    done = ctx.map(sleep_after_marker, [Task(f"sleeper {i}", (folder, i, 120.0)) for i in range(4)])
    return SleepResult(n=len(done))


SLEEPY = JobKind("ray_sleepy", params=ParamSpec(Param("folder", str, "", help="marker folder")),
                 run=run_sleepy, result=SleepResult, title="Sleeps on the engine")


class WrappingEngine(RayEngine):
    """The session's Ray cluster, every task's ``fn(*args)`` run as
    ``wrapper(extra, fn, *args)`` (to kill or fail chosen tasks of real kernels)."""

    def __init__(self, wrapper, extra) -> None:
        super().__init__("local")  # Ray is initialised: the same cluster
        self.wrapper, self.extra = wrapper, extra

    def map(self, fn, tasks, **options):
        return super().map(self.wrapper, [Task(t.label, (self.extra, fn, *t.args))
                                          for t in tasks], **options)


def die_first(marker: str, fn, *args):
    """The first task to start (the one that creates ``marker``) kills its worker
    process; every other task, and its retry, runs ``fn(*args)``."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return fn(*args)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os._exit(1)


def fail_at_row(where: tuple[int, int], fn, *args):
    """Raises in the block task whose argument ``args[where[0]]`` (its first row, ``lo``)
    is ``where[1]``; runs ``fn(*args)`` elsewhere."""
    position, row = where
    if args[position] == row:
        raise RuntimeError(f"simulated failure in the block at row {row}")
    return fn(*args)
