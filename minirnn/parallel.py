"""Data parallelism on the CPU: the batch split into shards, one per core.

NumPy runs a matrix multiply on every core (its BLAS is multi-threaded) but an
elementwise operation on one. In a recurrent layer's time loop the two
alternate: one GEMM, then the gate arithmetic, then the next GEMM. So while the
gates are computed, every core but one waits. On a 2-core machine that is a
third of a training step spent half idle.

Split the batch instead: rows 0..63 on one core and rows 64..127 on the other,
each running exactly the code a whole batch would (forward, loss, backward)
with a one-threaded BLAS, in its own thread. NumPy releases Python's global
lock inside its loops and BLAS calls, so the threads really run at once, and
both cores stay busy through the GEMMs and the gates alike. This is what
data-parallel training on several GPUs does, on the cores of one CPU.

The loss of a batch is a sum over its positions divided by their count, so the
gradient of the batch is the sum of the shards' gradients when each shard
divides by the *whole* batch's count (CharRNN.loss_and_grads does). Only the
order of the floating-point additions changes.

threadpoolctl (a small library from the scikit-learn project) sets the number
of BLAS threads while the shards run, whichever BLAS NumPy was built with.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def shard_count(rows: int, threads: int, min_rows: int = 32) -> int:
    """How many shards a batch of ``rows`` is split into: one per thread, each of at least
    ``min_rows`` rows (below about 32 a GEMM is too thin to run at full speed on one core).
    min_rows 0: never split."""
    if min_rows <= 0 or threads <= 1:
        return 1
    return max(1, min(threads, rows // min_rows))


def split_rows(rows: int, shards: int) -> list[slice]:
    """``shards`` contiguous, nearly equal slices of range(rows)."""
    edges = [rows * k // shards for k in range(shards + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


class _Pool:
    """The worker threads and the BLAS thread limit, made once and shared."""

    _lock = threading.Lock()
    _executor: ThreadPoolExecutor | None = None
    _size = 0
    _blas = None  # a threadpoolctl.ThreadpoolController, or False when threadpoolctl is missing

    @classmethod
    def executor(cls, size: int) -> ThreadPoolExecutor:
        with cls._lock:
            if cls._executor is None or cls._size < size:
                if cls._executor is not None:
                    cls._executor.shutdown(wait=True)
                cls._executor, cls._size = ThreadPoolExecutor(size, thread_name_prefix="minirnn-shard"), size
            return cls._executor

    @classmethod
    def blas(cls):
        """The threadpoolctl controller of the BLAS libraries loaded, or False without threadpoolctl."""
        if cls._blas is None:
            try:
                from threadpoolctl import ThreadpoolController
                cls._blas = ThreadpoolController()
            except ImportError:
                cls._blas = False
        return cls._blas

    @classmethod
    def one_blas_thread(cls):
        """A context in which BLAS runs on the calling thread only (a no-op without threadpoolctl).
        The limit starts when this is called (threadpoolctl's way) and ends when the context exits."""
        return cls.blas().limit(limits=1, user_api="blas") if cls.blas() else contextlib.nullcontext()


def can_shard() -> bool:
    """Sharding pays only with a BLAS whose threads we can limit (else shards and BLAS fight for cores)."""
    return _Pool.blas() is not False


def run_shards(fn, count: int) -> list:
    """[fn(0), fn(1), ..., fn(count - 1)], each in its own thread, BLAS one-threaded meanwhile."""
    if count == 1:
        return [fn(0)]
    pool = _Pool.executor(count)
    with _Pool.one_blas_thread():
        futures = [pool.submit(fn, k) for k in range(count)]
        return [f.result() for f in futures]
