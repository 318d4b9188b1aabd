"""backend.threads.cpu_threads: a process-wide limit that overlapping jobs share."""

import threading

import pytest
import torch
from threadpoolctl import threadpool_info

from backend.threads import cpu_threads


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_overlapping_jobs_restore_the_counts_once():
    torch.set_num_threads(2)
    blas_before = _blas_threads()
    with cpu_threads("cpu"):
        assert torch.get_num_threads() == 1
        assert set(_blas_threads()) <= {1}  # in the entering thread
    assert torch.get_num_threads() == 2 and _blas_threads() == blas_before
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def job_a():
        with cpu_threads("cpu"):
            a_in.set()
            b_in.wait(5)
        a_out.set()  # A leaves while B still runs

    def job_b():
        a_in.wait(5)
        with cpu_threads("cpu"):
            b_in.set()
            a_out.wait(5)
            seen["torch"] = torch.get_num_threads()

    threads = [threading.Thread(target=job_a), threading.Thread(target=job_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["torch"] == 1  # still limited for B after A left
    assert torch.get_num_threads() == 2  # restored once, by the last one out


def test_cuda_is_left_alone():
    torch.set_num_threads(2)
    with cpu_threads("cuda:0"):
        assert torch.get_num_threads() == 2
