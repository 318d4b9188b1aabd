"""One process-wide CPU thread limit, shared by every job that needs it.

torch's intra-op thread count and the BLAS libraries' thread counts are process-wide
settings. Jobs run concurrently in the job runner's threads, so a limit taken and
restored by each job would be restored in the wrong order when two overlap (A saves
N, B saves 1, A restores N while B runs, B restores 1: torch stays at 1 thread).
:func:`cpu_threads` is therefore reference-counted: the first job in sets the limit,
the last one out restores what was there before, for torch's count. BLAS and OpenMP
counts go through threadpoolctl, taken and restored by each entering thread, so two
overlapping jobs can still restore those in the wrong order. A process-wide reference
count for them was tried and dropped: with numpy 2.4's scipy-openblas, once a limit
had been taken and restored in one thread, a limit taken in another thread was not
reported by ``threadpool_info()`` there, so it could not be tested to hold.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

__all__ = ["cpu_threads"]

_LOCK = threading.Lock()
_USERS = 0
_TORCH_BEFORE = 0


@contextmanager
def cpu_threads(device: str):
    """One torch and one BLAS thread while on the CPU, then the previous counts.

    The diagnostics run many small or mid-sized dense decompositions, and the location
    encoders train tiny networks: threads inside one such operation only add
    synchronisation, and on a shared machine multi-threaded BLAS and OpenMP spin-wait
    against other processes (on 2 cores at load 8-10, all-MiniLM-L6-v2's weight
    analysis took 126 s with 2 threads and 10 s with one; a SIREN on the airports
    0.2 s with one thread, 11-32 s with two). Work that parallelises runs on worker
    threads instead (``analyze_weights(n_jobs=...)``). A no-op on CUDA.

    Parameters
    ----------
    device : str
        Torch device string; only ``"cpu..."`` sets a limit.
    """
    global _USERS, _TORCH_BEFORE
    if not str(device).startswith("cpu"):
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    with _LOCK:
        if _USERS == 0:
            _TORCH_BEFORE = torch.get_num_threads()
            torch.set_num_threads(1)
        _USERS += 1
    try:
        # BLAS and OpenMP limits through threadpoolctl, taken and restored by each
        # entering thread (OpenMP's counts are per thread anyway).
        with threadpool_limits(limits=1):
            yield
    finally:
        with _LOCK:
            _USERS -= 1
            if _USERS == 0:
                torch.set_num_threads(_TORCH_BEFORE)
