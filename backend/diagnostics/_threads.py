"""CPU thread limit shared by the spectral diagnostics."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def cpu_threads(device: str, threads: int = 1):
    """Limit torch and BLAS to ``threads`` threads while on the CPU, then restore.

    The diagnostics run many small or mid-sized dense decompositions. On a shared
    machine, multi-threaded BLAS and OpenMP spin-wait against other processes: on
    2 cores at load 8-10, all-MiniLM-L6-v2's weight analysis took 126 s with 2 threads
    and 10 s with one. A no-op on CUDA.
    """
    if not device.startswith("cpu"):
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)
