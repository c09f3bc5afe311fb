"""Training: ``python -m minirnn.train`` on the command line, :func:`train` from Python.

    python -m minirnn.train                          # Tiny Shakespeare, the tutorial's settings, 500 steps
    python -m minirnn.train --data my.txt --cell gru --max-steps 5000
    python -m minirnn.train --resume runs/20260101-120000 --max-steps 1000

One step is the tutorial's: a batch x, y (N, T) starting from a zero state,
forward and backward through T steps, clip the gradient's global norm at 5,
one Adam update. Every ``print_every`` steps a line shows the loss; every
``eval_every`` steps the validation loss and accuracy; every
``checkpoint_every`` steps a checkpoint (checkpoint.py). The options are
options.py's TrainConfig (flags: docs/flags.md); the run directory, held by
one process at a time, is rundir.py's; the progress line, progress.py's.

The loop never waits for the GPU except at those edges: the loss and the
gradient norm are summed as device arrays and read once per print.

Under an MPI launcher (``mpiexec -n 4 python -m minirnn.train``) every rank
runs this loop on its rows of each batch, and rank 0 alone writes: the run
directory, its lock, metrics, checkpoints, the curve and the progress lines
(distributed.py).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy

from . import checkpoint, cli, distributed, schedule
from .backend import BackendError
from .checkpoint import CheckpointError
from .checks import TooBig
from .data import DataError, eval_windows
from .layers import accuracy
from .malloc import keep_freed_memory
from .model import ConfigError
from .optim import clip_by_global_norm
from .options import TrainConfig, TrainError, build_parser, lr_schedule, parse, resume_config
from .parallel import DataParallel
from .progress import Diverged, Window, progress_line
from .startup import Setup, start

__all__ = [
    "Diverged",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "build_parser",
    "evaluate",
    "main",
    "resume_config",
    "train",
]


@dataclass
class TrainResult:
    run_dir: Path
    step: int  # steps taken, in all
    history: list = field(default_factory=list)  # the metrics rows written by this call
    checkpoint: Path | None = None  # the newest checkpoint
    stopped_by: str | None = None  # "SIGINT" / "SIGTERM" when a signal ended the run
    out_of_time: bool = False  # --max-minutes ended the run


# -- the pieces of a step's surroundings ---------------------------------------------------------------------
def evaluate(model, ids, batch_size, seq_length, max_batches=0):
    """Mean loss and accuracy over the validation windows (no dropout). One host sync, at the end."""
    be, V = model.backend, model.config.vocab_size
    loss_sum = hit_sum = 0.0
    count = 0
    for i, (x, y) in enumerate(eval_windows(ids, batch_size, seq_length)):
        if max_batches and i >= max_batches:
            break
        loss, logits, _, _ = model.loss(be.asarray(x), be.asarray(y))  # logits (T, n, V)
        targets = be.asarray(numpy.ascontiguousarray(y.T).reshape(-1))  # time-major, as the logits
        loss_sum = loss_sum + loss * x.size
        hit_sum = hit_sum + accuracy(logits.reshape(-1, V), targets) * x.size
        count += x.size
    return be.scalar(loss_sum) / count, be.scalar(hit_sum) / count


def save_checkpoint(run: Setup, step: int, elapsed: float, last_row: dict, write: bool = True) -> Path | None:
    """A checkpoint of the current state, but only of finite parameters: a NaN never replaces good ones.
    ``write`` False (MPI ranks other than 0): only the check, which every rank makes alike."""
    be = run.model.backend
    if not bool(be.to_host(be.xp.isfinite(run.model.flat).all())):
        raise Diverged(f"the parameters are no longer finite at step {step}")
    if not write:
        return None
    meta = {
        "model": run.model.config.to_dict(),
        "train": asdict(run.config),
        "vocab": run.vocab.chars,
        "dtype": run.config.dtype,
        "backend": run.config.backend,
        "elapsed": elapsed,
        "metrics": last_row,
    }
    if last_row.get("step") == step and "val_loss" in last_row:  # what the best checkpoint is chosen by
        meta["val_loss"] = last_row["val_loss"]
    meta.update(checkpoint.training_meta(run.opt, run.batches, run.dropout_rng))
    arrays = checkpoint.training_arrays(run.model, run.opt)
    return checkpoint.save(run.run_dir / "checkpoints", step, arrays, meta, run.config.keep)


# -- the training loop ---------------------------------------------------------------------------------------
def train(config: TrainConfig) -> TrainResult:
    """Train (or continue) a run. Raises DataError, TrainError, CheckpointError, ConfigError, TooBig or
    BackendError for bad input (before writing anything), Diverged when the loss stops being finite,
    cli.Interrupted on a second signal. Under MPI also distributed.MPIUnavailable or DistributedError (bad
    input), and on the ranks that did not fail, distributed.PeerFailed."""
    config.validate()
    world = distributed.world()  # one process, or one rank of an MPI job (distributed.py)
    held, run = start(config, world)  # MPI: rank 0 first, agreed errors, state broadcast from rank 0
    if not world.writes:  # another rank: the same loop, writing nothing and holding no lock
        with open(os.devnull, "w") as metrics:
            return loop(run, metrics, world)
    with held:
        if config.resume:  # from an older checkpoint (--from-best): the newer ones step aside, kept
            checkpoint.set_aside_after(held.path / "checkpoints", run.step)
        held.write_json("config.json", asdict(run.config))  # first: a run killed now can be resumed
        held.write_json("vocab.json", {"chars": run.vocab.chars})
        try:
            with held.open_metrics(run.step) as metrics:
                return loop(run, metrics, world)
        except cli.Interrupted as exc:
            exc.run_dir = held.path  # for the message: which checkpoint is the newest
            raise


def loop(run: Setup, metrics, world=None) -> TrainResult:
    """The steps from ``run.step`` to ``config.max_steps``; ``world`` as :func:`train`'s (default one
    process): only a rank that ``world.writes`` prints, plots and saves."""
    world = world or distributed.Single()
    config, model, be, step = run.config, run.model, run.model.backend, run.step
    result = TrainResult(run.run_dir, step)
    say = (lambda *a: None) if config.quiet or not world.writes else (lambda *a: print(*a, flush=True))
    say(
        f"run {run.run_dir}: {model.num_params():,} parameters, vocabulary {len(run.vocab)}, "
        f"{len(run.batches)} batches per epoch, {len(run.val_ids):,} validation characters, {be}"
        + (f", resumed at step {step}" if config.resume else "")
        + (f", {world.size} MPI ranks of {config.batch_size // world.size}+ rows" if world.size > 1 else "")
    )

    def due(every):  # an edge of the loop: every `every` steps, and the last step
        return every > 0 and (step % every == 0 or step == config.max_steps or out_of_time)

    # one shard of the batch per core (parallel.py); per MPI rank, its share of the cores
    step_fn = DataParallel(model, config.threads or world.threads())
    window, t0 = Window(step), time.perf_counter()
    stop = None  # the signal every rank agreed to stop for
    sched, out_of_time = lr_schedule(config, len(run.batches)), False  # schedule.py; --max-minutes
    # NumPy's overflow warnings would bury the one line that says what happened; NaNs are caught at the edges.
    # world.together: under MPI, a failure of one rank ends them all (Diverged: all alike, rank 0 says why).
    with (
        cli.SignalCatcher() as signals,
        numpy.errstate(over="ignore", invalid="ignore"),
        world.together(collective=Diverged),
    ):
        try:
            while step < config.max_steps and stop is None and not out_of_time:
                x, y = run.batches.next()  # host (N, T) each
                seed = int(run.dropout_rng.integers(2**31 - 1))  # drawn every step, so resumes line up
                # Under MPI this rank's rows, then one Allreduce of the gradient; the loss is the rank's share
                loss, _, _ = world.loss_and_grads(step_fn, x, y, seed if config.dropout > 0 else None)
                norm = clip_by_global_norm(model.grads, config.clip)  # before clipping; 0-d, on the device
                run.opt.lr = schedule.lr_at(step, sched)  # a pure function of the step: resumes line up
                run.opt.step(model.grads)
                step += 1
                stop = world.agree_stop(signals.caught)  # every rank stops after the same step
                if config.max_minutes:  # past the budget on any rank: all stop after this step
                    past = run.elapsed + time.perf_counter() - t0 > 60 * config.max_minutes
                    out_of_time = world.sum(float(past))[0] > 0
                window.add(loss, norm, x.size)
                row = {}
                if due(config.print_every):
                    row, left = window.row(be, step, loss, config.max_steps, world)
                    row["lr"] = run.opt.lr
                    say(progress_line(row, config.max_steps, left))
                if len(run.val_ids) and due(config.eval_every):
                    val_loss, val_acc = world.evaluate(  # under MPI each rank a part, then summed
                        evaluate,
                        model,
                        run.val_ids,
                        config.batch_size,
                        config.seq_length,
                        config.eval_batches,
                    )
                    row.update(step=step, val_loss=val_loss, val_acc=val_acc)
                    say(f"step {step:>6}  validation loss {val_loss:.3f}  accuracy {val_acc:.3f}")
                if row:
                    row["elapsed"] = run.elapsed + time.perf_counter() - t0
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()  # readable by python -m minirnn.plot while we train
                    result.history.append(row)
                if (
                    due(config.checkpoint_every)
                    or step == config.max_steps
                    or stop is not None
                    or out_of_time
                ):
                    window.check_finite(be, step, world)
                    save_checkpoint(
                        run,
                        step,
                        run.elapsed + time.perf_counter() - t0,
                        (result.history or [{}])[-1],
                        write=world.writes,  # the finiteness check on every rank, the file on rank 0
                    )
            if (
                step == run.step
                and world.writes
                and not checkpoint.list_checkpoints(run.run_dir / "checkpoints")
            ):
                save_checkpoint(run, step, run.elapsed, {})  # a signal before the first step: keep the start
        except Diverged as exc:
            if not world.writes:  # every rank diverges alike; rank 0 says why (world.together)
                raise
            raise Diverged(
                f"training stopped: {exc}; {_newest(run.run_dir)}. Try a smaller --lr, or clipping (--clip 5)"
            ) from None
        finally:
            result.step = step
        if world.writes:
            _plot_quietly(run.run_dir)
    result.checkpoint = checkpoint.find(run.run_dir) if world.writes else None
    result.stopped_by, result.out_of_time = stop, out_of_time
    if out_of_time and not stop and world.writes:
        say(
            f"--max-minutes {config.max_minutes:g}: stopped at step {step}, saved {result.checkpoint}; "
            f"continue with python -m minirnn.train --resume {run.run_dir} --max-minutes M "
            "(M counts all the minutes)"
        )
    elif stop and world.writes:  # printed even with --quiet: it says how to go on
        print(
            f"{stop}: saved step {step} to {result.checkpoint}; continue with "
            f"python -m minirnn.train --resume {run.run_dir} --max-steps {config.max_steps}",
            flush=True,
        )
    elif world.writes:
        say(f"done: step {step}, checkpoint {result.checkpoint}, curve {run.run_dir / 'loss.png'}")
    return result


def _newest(run_dir, adjective="last good") -> str:
    last = checkpoint.list_checkpoints(Path(run_dir) / "checkpoints")
    return f"the {adjective} checkpoint is {last[-1][1]}" if last else "no checkpoint was written"


def _plot_quietly(run_dir):
    """Draw loss.png; a plotting problem must not cost the user a finished run."""
    from .plot import PlotError, plot_run  # matplotlib is imported only in plot_run

    try:
        plot_run(run_dir)
    except PlotError:
        pass  # no rows yet (stopped before the first progress line): nothing to draw
    except Exception as exc:
        print(f"warning: could not draw {run_dir / 'loss.png'}: {exc}", file=sys.stderr)


# -- the command line ----------------------------------------------------------------------------------------
PROG = "minirnn.train"
BAD_INPUT = (
    DataError,
    TrainError,
    CheckpointError,
    ConfigError,
    BackendError,
    TooBig,
    distributed.MPIUnavailable,
    distributed.DistributedError,
)


def main(argv=None) -> int:
    try:
        cli.catch_ctrl_c()  # (before this line, a Ctrl-C already exits quietly: cli.quiet_until_main)
        config = parse(argv)
        keep_freed_memory()  # each step reuses the last one's memory, not fresh pages (malloc.py)
        result = train(config)
    except BAD_INPUT as exc:
        return cli.fail(PROG, f"error: {exc}", 2)
    except distributed.PeerFailed as exc:  # another MPI rank failed, and printed why
        return exc.code
    except Diverged as exc:
        return cli.fail(PROG, str(exc), 1)
    except (OSError, MemoryError) as exc:  # e.g. a full disk, or a run directory we may not write to
        return cli.fail(
            PROG, f"error: {cli.describe(exc)}", 1, cli.machine_hint(exc, "python -m minirnn.train")
        )
    except cli.Interrupted as exc:  # a second signal: the step under way is lost, the checkpoints are not
        line, hint = f"{exc.signame}: stopped at once, without saving the step under way", None
        if exc.run_dir is not None:
            line += "; " + _newest(exc.run_dir, "newest")
            hint = f"continue with python -m minirnn.train --resume {exc.run_dir}" + (
                "" if checkpoint.list_checkpoints(exc.run_dir / "checkpoints") else " (it starts again)"
            )
        return cli.fail(PROG, line, 128 + signal.Signals[exc.signame].value, hint)
    except KeyboardInterrupt:
        return cli.fail(PROG, "interrupted before training started", 130)
    return 128 + signal.Signals[result.stopped_by].value if result.stopped_by else 0


if __name__ == "__main__":
    sys.exit(cli.run(PROG, main))
