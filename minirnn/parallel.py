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
divides by the *whole* batch's count (:class:`DataParallel` passes it to each
shard's ``CharRNN.loss_and_grads``). Only the order of the floating-point
additions changes. Which batches are split, and how thin a shard may be, is
decided here, not by the model or the cells.

threadpoolctl (a small library from the scikit-learn project) sets the number
of BLAS threads while the shards run, whichever BLAS NumPy was built with.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .model import named_views


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# Below about 32 rows a GEMM no longer runs at full speed on one core: no shard is thinner.
MIN_ROWS = 32


def shard_count(rows: int, threads: int, min_rows: int = MIN_ROWS) -> int:
    """How many shards a batch of ``rows`` is split into: one per thread, each of at least
    ``min_rows`` rows. min_rows 0: never split."""
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


class DataParallel:
    """A model's training step with the batch split into shards, one per CPU core.

    >>> dp = DataParallel(model)                      # doctest: +SKIP
    >>> loss, logits, final = dp.loss_and_grads(x, y, dropout_seed=7)

    It returns what ``model.loss_and_grads`` returns for the whole batch, and leaves the
    whole batch's gradient in ``model.grads``. On a GPU (or with one thread) it is just
    that call: one stream already does the whole batch at once.
    """

    def __init__(self, model, threads: int | None = None, min_rows: int = MIN_ROWS):
        self.model = model
        self.threads = 1 if model.backend.on_device else (threads or cpu_count())
        self.min_rows = min_rows
        self._buffers = []  # gradient buffers for shards 1, 2, ...; shard 0 uses model.grads

    def shards(self, N: int) -> int:
        """How many shards a batch of N rows is split into."""
        if self.threads <= 1 or not can_shard():
            return 1
        return shard_count(N, self.threads, self.min_rows)

    def loss_and_grads(
        self, x, y, state=None, lengths=None, dropout_seed=None, shards=None, *, drops=None, count=None
    ):
        """x, y (N, T) ids; the rest as ``CharRNN.loss_and_grads``. shards: how many (default
        :meth:`shards`). Returns loss (0-d), logits (T, N, V) and the final state.

        ``drops`` and ``count``, as the model's, for when x, y are themselves rows of a bigger
        batch (an MPI rank's, distributed.py): that batch's masks (these rows) and its count."""
        model, xp = self.model, self.model.backend.xp
        N, T = x.shape
        shards = self.shards(N) if shards is None else shards
        if shards <= 1 and drops is None and count is None:
            return model.loss_and_grads(x, y, state, lengths, dropout_seed)
        if shards <= 1:
            return model.loss_and_grads(x, y, state, lengths, drops=drops, count=count)
        if drops is None:
            drops = model.dropout_masks(dropout_seed, T, N)  # drawn for the whole batch, then split
        # Each shard divides its loss by the whole batch's count, so that losses and gradients add up.
        if count is None:
            count = T * N if lengths is None else xp.maximum(xp.minimum(lengths, T).sum(), 1)
        while len(self._buffers) < shards - 1:
            self._buffers.append(model.backend.zeros(model.flat.size))
        grads = [model.grads] + [named_views(b, model.shapes) for b in self._buffers[: shards - 1]]
        rows = split_rows(N, shards)

        def shard(k):
            r = rows[k]
            return model.loss_and_grads(
                x[r],
                y[r],
                None if state is None else [tuple(s[r] for s in layer) for layer in state],
                None if lengths is None else lengths[r],
                drops=[None if d is None else d[:, r] for d in drops],
                count=count,
                grads=grads[k],
            )

        parts = run_shards(shard, shards)  # [(loss, logits, final state), ...], one per shard
        for extra in self._buffers[: shards - 1]:
            model.grad_flat += extra
        loss = parts[0][0]
        for part in parts[1:]:
            loss = loss + part[0]
        logits = xp.concatenate([part[1] for part in parts], axis=1)  # (T, N, V)
        finals = zip(*(part[2] for part in parts))  # per layer, the shards' final states
        final = [tuple(xp.concatenate(s, axis=0) for s in zip(*layer)) for layer in finals]
        return loss, logits, final
