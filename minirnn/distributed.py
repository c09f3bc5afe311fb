"""Data-parallel training across processes with MPI: one rank per core, GPU or machine.

    mpiexec -n 4 python -m minirnn.train --max-steps 2000        # 4 ranks on this machine
    mpiexec -f hosts -n 8 python -m minirnn.train ...            # 8 ranks on the machines in `hosts`

parallel.py splits a batch into shards, one per core of one process. This file
does the same across processes, which share no memory and no interpreter lock,
and may be on other machines; they talk through MPI (mpi4py, ``pip install
'minirnn[mpi]'``). It follows Horovod and PyTorch's DistributedDataParallel:

* **Start.** Rank 0 prepares the text first (and writes its cache), then the
  other ranks read it. Every rank reports whether that worked; if one failed,
  every rank stops and only the lowest failing rank prints its one line.
  Rank 0 then broadcasts the parameters and Adam's moments, and every rank
  checks that its text, vocabulary and place in the data are rank 0's.
* **Every step.** Every rank draws the same batch and the same dropout seed a
  single process would (the same generators, seeded alike), and takes its
  rows of it: ``split_rows(N, size)[rank]``. It runs forward and backward on
  those rows with the whole batch's dropout masks, dividing the loss by the
  whole batch's count, so the ranks' gradients add up to the batch's. One
  in-place ``Allreduce`` of the flat gradient buffer sums them; then global
  norm, clipping and Adam run on every rank on the same numbers, so the
  parameters stay identical without being sent again.
* **Edges.** The losses are summed by a small Allreduce when a line is
  printed; evaluation is split across ranks (each takes a contiguous run of
  the validation batches) and reduced. Rank 0 alone prints, writes
  metrics.jsonl and checkpoints.

A run is distributed when an MPI launcher started it: ``mpiexec`` (MPICH,
Intel MPI), ``mpirun`` (Open MPI) and Slurm's ``srun`` leave their mark in the
environment (PMI_SIZE, OMPI_COMM_WORLD_SIZE, PMIX_RANK), as Horovod relies on
its launcher. Then mpi4py is imported and the run uses its world, even a world
of one. Without a launcher nothing here imports MPI: a single process.
docs/distributed.md says more, with figures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import warnings

import numpy

from .parallel import cpu_count, split_rows

LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")


class MPIUnavailable(RuntimeError):
    """An MPI launcher started this process, but mpi4py cannot be imported; one line naming the extra."""


class DistributedError(ValueError):
    """Ranks that cannot train together (too few rows, different files); the message is one line."""


class PeerFailed(RuntimeError):
    """Another rank failed and printed why; this rank stops quietly, with exit status ``code``."""

    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code


def launched_by_mpi(environ=os.environ) -> bool:
    """True when an MPI launcher started this process (see the module docstring)."""
    return any(name in environ for name in LAUNCHER_VARIABLES)


def world():
    """The world this process trains in: :class:`MPIWorld` under an MPI launcher, else :class:`Single`.

    Raises MPIUnavailable (one line naming the extra) when MPI is asked for but mpi4py is missing."""
    if not launched_by_mpi():
        return Single()
    try:
        with warnings.catch_warnings():  # mpi4py's own warning of a foreign launcher: ours below is one line
            warnings.simplefilter("ignore", RuntimeWarning)
            from mpi4py import MPI
    except ImportError:
        raise MPIUnavailable(
            "started by an MPI launcher, but mpi4py is not installed: "
            "pip install 'minirnn[mpi]' (mpi4py and mpich)"
        ) from None
    launched = int(os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE") or 0)
    if launched and MPI.COMM_WORLD.Get_size() != launched:  # e.g. Open MPI's mpirun, MPICH's mpi4py
        raise MPIUnavailable(
            f"the launcher started {launched} processes but MPI sees a world of {MPI.COMM_WORLD.Get_size()}: "
            "mpiexec and mpi4py belong to different MPI libraries; use the mpiexec next to your python"
        )
    return MPIWorld(MPI)


class Single:
    """One process: every method is what train.py did before MPI, so a single run is unchanged to the bit."""

    rank, size, local_rank = 0, 1, 0

    @property
    def writes(self) -> bool:
        """Whether this rank prints and writes files (rank 0 only)."""
        return self.rank == 0

    def setup(self, prepare_run, config):
        return prepare_run(config)

    def threads(self):
        """CPU threads for this rank's shards when --threads is 0: None, one per core (parallel.py)."""
        return None

    def loss_and_grads(self, dp, x, y, dropout_seed):
        """The loss of the whole batch x, y (host (N, T)) and its gradient in ``dp.model.grads``;
        ``dp`` is the model's parallel.DataParallel. In a world of several ranks: this rank's share
        of the loss (the sum over the ranks is the batch's), and the whole batch's gradient."""
        be = dp.model.backend
        return dp.loss_and_grads(be.asarray(x), be.asarray(y), dropout_seed=dropout_seed)

    def sum(self, *values: float) -> tuple:
        """Host numbers summed over the ranks (here: themselves)."""
        return values

    def agree_stop(self, caught):
        """The signal name every rank stops for (None: go on). One rank's signal stops them all."""
        return caught

    def evaluate(self, evaluate, model, ids, batch_size, seq_length, max_batches):
        """``evaluate(model, ids, ...)`` -> (loss, accuracy) over the validation windows."""
        return evaluate(model, ids, batch_size, seq_length, max_batches)

    def together(self, collective=()):
        """A context for the training loop: in a world of several ranks, a failure of one ends all.
        ``collective``: exception types that every rank raises alike (train.Diverged)."""
        return contextlib.nullcontext()


class MPIWorld(Single):
    """The ranks of MPI's COMM_WORLD. Only buffer-based (upper-case) mpi4py calls: nothing is pickled."""

    def __init__(self, MPI):
        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        # The ranks on this machine: local rank k uses GPU k (modulo the GPUs there are), and
        # they share its cores: each gets cores / local ranks threads for shards and for BLAS.
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()

    def __repr__(self):
        return f"MPIWorld(rank {self.rank} of {self.size}, local rank {self.local_rank})"

    def threads(self):
        """This rank's share of the machine's cores (at least 1): ranks on one machine must not
        each start a thread per core, or 2 ranks on 2 cores run 4 threads."""
        return max(1, cpu_count() // self.local_size)

    # -- start -------------------------------------------------------------------------------------
    def setup(self, prepare_run, config):
        """Rank 0 runs ``prepare_run(config)`` first (it writes the text's cache), then the others;
        then the state is broadcast from rank 0 and checked. One failure stops every rank."""
        from .backend import use_device

        if config.backend != "numpy":
            use_device(config.backend, self.local_rank)
        limit_blas_threads(config.threads or self.threads())
        run = error = None
        if config.batch_size < self.size:
            error = DistributedError(
                f"--batch-size {config.batch_size} is smaller than the {self.size} ranks: "
                "each rank needs at least one row"
            )
            self._agree(error)
        for turn in (0, 1):
            if (self.rank == 0) == (turn == 0):
                try:
                    run = prepare_run(config)
                except Exception as exc:  # every rank must hear of it before anyone stops
                    error = exc
            self._agree(error)
        try:
            self._broadcast_state(run)
            mine = self._fingerprint(run)
            theirs = mine.copy()
            self.comm.Bcast(theirs, root=0)
            if not numpy.array_equal(mine, theirs):
                raise DistributedError(
                    f"rank {self.rank}'s text, vocabulary or checkpoint differs from rank 0's: "
                    "every rank must read the same files"
                )
        except Exception as exc:
            error = exc
        self._agree(error)
        return run

    def _agree(self, error):
        """All ranks learn if any failed: the lowest failing rank re-raises, the others stop quietly."""
        flag = numpy.array([self.rank if error is not None else self.size], numpy.int64)
        self.comm.Allreduce(self.MPI.IN_PLACE, flag, op=self.MPI.MIN)
        first = int(flag[0])
        if first == self.rank:
            raise error
        if first < self.size:
            raise PeerFailed(f"rank {first} failed")

    def _broadcast_state(self, run):
        """Parameters and Adam's moments from rank 0, so every rank starts from the same state."""
        arrays = [run.model.flat] + list(run.opt.m.values()) + list(run.opt.v.values())
        for a in arrays:
            self._bcast(a, run.model.backend)

    def _bcast(self, a, be):
        if be.on_device:
            host = numpy.ascontiguousarray(be.to_host(a))
            self.comm.Bcast(host, root=0)
            a[...] = be.asarray(host)
        else:
            self.comm.Bcast(a, root=0)

    @staticmethod
    def _fingerprint(run) -> numpy.ndarray:
        """SHA-256 of what every rank must share: the vocabulary, the data's size and place, the step."""
        state = {
            "vocab": run.vocab.chars,
            "batches": run.batches.state_dict(),
            "val": len(run.val_ids),
            "dropout_rng": run.dropout_rng.bit_generator.state,
            "step": run.step,
            "params": run.model.num_params(),
        }
        digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).digest()
        return numpy.frombuffer(digest, numpy.uint8).copy()

    # -- every step --------------------------------------------------------------------------------
    def loss_and_grads(self, dp, x, y, dropout_seed):
        model = dp.model
        be, xp = model.backend, model.backend.xp
        N, T = x.shape
        mine = split_rows(N, self.size)[self.rank]
        drops = model.dropout_masks(dropout_seed, T, N)  # the whole batch's masks, then this rank's rows
        drops = [None if d is None else xp.ascontiguousarray(d[:, mine]) for d in drops]
        # Within the rank, DataParallel splits the rows again, one shard per thread (--threads).
        loss, logits, final = dp.loss_and_grads(
            be.asarray(x[mine]), be.asarray(y[mine]), drops=drops, count=T * N
        )
        self.allreduce(model.grad_flat, be)
        return loss, logits, final

    def allreduce(self, flat, be):
        """Sum ``flat`` over the ranks in place: one Allreduce. On a GPU through one host buffer:
        one device-to-host copy (the step's only wait for the GPU) and one host-to-device copy."""
        if be.on_device:
            host = numpy.ascontiguousarray(be.to_host(flat))
            self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
            flat[...] = be.asarray(host)
        else:
            self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)

    def agree_stop(self, caught):
        """One small Allreduce of a signal number: every rank stops after the same step."""
        import signal

        number = numpy.array([signal.Signals[caught].value if caught else 0], numpy.int64)
        self.comm.Allreduce(self.MPI.IN_PLACE, number, op=self.MPI.MAX)
        return signal.Signals(int(number[0])).name if number[0] else None

    # -- edges -------------------------------------------------------------------------------------
    def sum(self, *values: float) -> tuple:
        buf = numpy.array(values, numpy.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        return tuple(float(v) for v in buf)

    def evaluate(self, evaluate, model, ids, batch_size, seq_length, max_batches):
        """Each rank evaluates a contiguous run of the validation batches; the means are weighted by
        their counts and summed. The same windows as one process, so the same numbers to rounding."""
        N, T = batch_size, seq_length
        batches = -(-((len(ids) - 1) // T) // N)  # ceil(windows / N)
        if max_batches:
            batches = min(batches, max_batches)
        first, last = (batches * k // self.size for k in (self.rank, self.rank + 1))
        part = ids[first * N * T : min(last * N * T + 1, len(ids))]
        count = ((len(part) - 1) // T) * T if last > first else 0  # positions this rank scores
        loss = acc = 0.0
        if count:
            loss, acc = evaluate(model, part, N, T, 0)
        loss_sum, acc_sum, total = self.sum(loss * count, acc * count, count)
        return loss_sum / total, acc_sum / total

    @contextlib.contextmanager
    def together(self, collective=()):
        """If this rank fails alone mid-run (a full disk on rank 0, a second Ctrl-C), the others would
        wait for it in the next Allreduce for ever: say why in one line and abort the whole job."""
        try:
            yield
        except collective:  # every rank sees the same loss and parameters: they all stop here together,
            if self.rank == 0:  # and rank 0 says why
                raise
            raise PeerFailed("rank 0 reports the divergence", code=1) from None
        except BaseException as exc:
            code = 130 if isinstance(exc, KeyboardInterrupt) else 1
            what = "interrupted" if code == 130 else f"{type(exc).__name__}: {exc}"
            print(
                f"minirnn.train: rank {self.rank}: {what}; stopping every rank", file=sys.stderr, flush=True
            )
            self.comm.Abort(code)


def limit_blas_threads(n: int):
    """BLAS on at most ``n`` threads in this process from now on (threadpoolctl; a no-op without it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=n, user_api="blas")
