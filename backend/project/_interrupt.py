"""Cancellation for library calls that cannot be interrupted from inside."""

from __future__ import annotations

import threading
from typing import Any, Callable

__all__ = ["interruptible"]

POLL_SECONDS = 0.2


def interruptible(fn: Callable[[], Any], progress: Callable[[float, str], None] | None,
                  fraction: float, message: str) -> Any:
    """Run ``fn()`` in a helper thread; poll ``progress`` every 0.2 s while it runs.

    ``progress(fraction, message)`` raising (e.g. ``JobCancelled``) stops the *caller*
    at once: the exception propagates and ``fn``'s result is discarded when it ends.
    Use it only for bounded work (a numba or scipy call of seconds), whose leftover
    CPU time after a cancel is bounded too; unbounded loops must check inside instead.

    Parameters
    ----------
    fn : callable () -> Any
    progress : callable(fraction, message) or None
        None: ``fn`` runs in the calling thread.
    fraction : float
    message : str

    Returns
    -------
    Any
        What ``fn`` returned; its exception is re-raised here.
    """
    if progress is None:
        return fn()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    t = threading.Thread(target=target, name="interruptible", daemon=True)
    t.start()
    while True:
        progress(fraction, message)
        t.join(POLL_SECONDS)
        if not t.is_alive():
            break
    if "error" in box:
        raise box["error"]
    return box["value"]
