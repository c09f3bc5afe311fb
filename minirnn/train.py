"""Training: ``python -m minirnn.train`` on the command line, :func:`train` from Python.

    python -m minirnn.train                          # Tiny Shakespeare, the tutorial's settings, 500 steps
    python -m minirnn.train --data my.txt --cell gru --max-steps 5000
    python -m minirnn.train --resume runs/20260101-120000 --max-steps 1000

One step is the tutorial's: a batch x, y (N, T) starting from a zero state,
forward and backward through T steps, clip the gradient's global norm at 5,
one Adam update. Every ``print_every`` steps a line shows the loss; every
``eval_every`` steps the validation loss and accuracy. A run directory holds
config.json, vocab.json, metrics.jsonl (one JSON object per line, written as it
comes), loss.png, and checkpoints/ (see minirnn/checkpoint.py). Flags:
docs/flags.md.

The loop never waits for the GPU except at those edges: the loss and the
gradient norm are summed as device arrays and read once per print.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy

from . import checkpoint, distributed
from .backend import BackendError, get_backend
from .checkpoint import CheckpointError
from .cli import KeepPathsWhole, OneLineParser, add_backend_flag, docs_page
from .data import (
    Batches,
    DataError,
    Vocab,
    check_length,
    default_cache_dir,
    eval_windows,
    prepare_file,
    split,
)
from .layers import accuracy
from .malloc import keep_freed_memory
from .model import CharRNN, ConfigError, ModelConfig
from .optim import Adam, clip_by_global_norm
from .parallel import DataParallel
from .plot import read_metrics


class TrainError(ValueError):
    """Training options that cannot work together; one line."""


class Diverged(RuntimeError):
    """The loss or the parameters stopped being finite numbers."""


@dataclass
class TrainConfig:
    # data
    data: str | None = None  # a UTF-8 text file; None: the bundled Tiny Shakespeare
    val_fraction: float = 0.1  # the last part of the text, held out for validation (0: none)
    cache_dir: str | None = None  # where encoded texts are cached; None: ~/.cache/minirnn, "": no cache
    # model
    cell: str = "lstm"  # rnn | lstm | gru | module:Class
    hidden_size: int = 256  # H, units per layer
    num_layers: int = 2
    dropout: float = 0.0  # on each layer's output, while training
    # optimisation (the tutorial's values)
    lr: float = 1e-3  # Adam's learning rate
    batch_size: int = 128  # N
    seq_length: int = 50  # T, the steps backpropagated through
    clip: float = 5.0  # global-norm clipping threshold; 0 turns it off
    max_steps: int = 500  # total steps of the run, counted from its start (also across resumes)
    # the run
    seed: int = 0  # initial weights, batch order, dropout masks
    backend: str = "numpy"  # numpy | cupy
    threads: int = 0  # CPU threads; the batch is split into one shard per thread (parallel.py). 0: one per core
    dtype: str = "float32"
    out: str | None = None  # run directory; None: runs/<date-time>
    resume: str | None = None  # a run directory (its newest checkpoint) or a checkpoint file
    print_every: int = 20
    eval_every: int = 100  # 0: never
    eval_batches: int = 20  # validation batches per evaluation; 0: the whole validation text
    checkpoint_every: int = 100  # 0: only at the end
    keep: int = 2  # checkpoints kept, newest first
    quiet: bool = False  # no progress lines

    def validate(self):
        positive = ["hidden_size", "num_layers", "batch_size", "seq_length", "max_steps", "print_every", "keep"]
        for name in positive:
            if getattr(self, name) < 1:
                raise TrainError(f"{flag(name)} must be a positive integer, got {getattr(self, name)}")
        for name in ["eval_every", "eval_batches", "checkpoint_every", "threads"]:
            if getattr(self, name) < 0:
                raise TrainError(f"{flag(name)} must be 0 or more, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise TrainError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise TrainError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainError(f"--lr must be a positive number, got {self.lr}")
        if not (self.clip >= 0 and math.isfinite(self.clip)):
            raise TrainError(f"--clip must be 0 (off) or positive, got {self.clip}")
        return self


# What makes a run the run it is: a resume must keep these (see resume_config).
FIXED = ("val_fraction", "cell", "hidden_size", "num_layers", "dropout", "lr", "batch_size", "seq_length",
         "clip", "seed", "dtype")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass
class TrainResult:
    run_dir: Path
    step: int  # steps taken, in all
    history: list = field(default_factory=list)  # the metrics rows written by this call
    checkpoint: Path | None = None  # the newest checkpoint
    stopped_by: str | None = None  # "SIGINT" / "SIGTERM" when a signal ended the run


def resume_config(path, **overrides) -> TrainConfig:
    """The configuration of the run a checkpoint belongs to, with ``overrides``; those in FIXED must agree."""
    meta, _ = checkpoint.load(path)
    if "train" not in meta:
        raise CheckpointError(f"{checkpoint.find(path)} has no training configuration to resume from")
    stored = {k: v for k, v in meta["train"].items() if k in {f.name for f in fields(TrainConfig)}}
    for name, value in overrides.items():
        if name in FIXED and value != stored.get(name):
            raise TrainError(f"{flag(name)} {value} differs from the checkpoint's {stored.get(name)}: "
                             "a resumed run keeps its model, data layout and optimiser settings")
    return replace(TrainConfig(**stored), **dict(overrides, resume=str(path), out=None))


# -- the pieces of a step's surroundings ---------------------------------------------------------------------------
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


class SignalCatcher:
    """While active, SIGINT and SIGTERM only set ``self.caught``: the loop saves and stops at the next step.

    A second signal raises KeyboardInterrupt at once, for a user who does not want to wait.
    """

    def __init__(self):
        self.caught, self.saved = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum, frame):
        if self.caught is not None:
            raise KeyboardInterrupt
        self.caught = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self.saved.items():
            signal.signal(sig, old)


def new_run_dir(config: TrainConfig) -> Path:
    """The run directory to create: --out, or runs/<date-time> (with a suffix if that is taken)."""
    if config.out:
        out = Path(config.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise TrainError(f"{out} already exists and is not an empty directory; choose another --out "
                             f"or continue that run with --resume {out}")
        return out
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


# -- the training loop -----------------------------------------------------------------------------------------
@dataclass
class Setup:
    """Everything a run needs, built and checked before anything is written."""
    config: TrainConfig
    vocab: Vocab
    val_ids: numpy.ndarray  # (L_val,) the held-out text
    model: CharRNN
    opt: Adam
    batches: Batches
    dropout_rng: numpy.random.Generator  # one dropout seed per step
    run_dir: Path
    step: int = 0  # steps already taken (a resumed run starts at its checkpoint's)
    elapsed: float = 0.0  # seconds spent training before this call


def prepare_run(config: TrainConfig) -> Setup:
    """Check the options, load the text and (on resume) the checkpoint, build the model. Writes nothing."""
    config.validate()
    meta = arrays = None
    if config.resume:
        meta, arrays = checkpoint.load(config.resume)
        if not {"train", "vocab", "optimizer", "rng", "data"} <= set(meta):
            raise CheckpointError(f"{checkpoint.find(config.resume)} lacks the training state: "
                                  "it can be sampled from, not resumed")
        for name in FIXED:
            if getattr(config, name) != meta["train"].get(name):
                raise TrainError(f"{flag(name)} {getattr(config, name)} differs from the checkpoint's "
                                 f"{meta['train'].get(name)}; use resume_config() to continue a run")
        if config.max_steps <= meta["step"]:
            raise TrainError(f"the checkpoint is at step {meta['step']}: pass a --max-steps above that")
    if config.data:  # stored absolute, so that a resume from another directory finds the text
        config = replace(config, data=str(Path(config.data).resolve()))
    be = get_backend(config.backend, config.dtype)
    # Read, count and encode in pieces; with a cache the ids are a memory map every rank shares (data.py).
    cache = None if config.cache_dir == "" else (config.cache_dir or default_cache_dir())
    vocab, ids = prepare_file(config.data, cache,  # the length is checked before anything is written
                              lambda L: check_length(L, config.batch_size, config.seq_length, config.val_fraction))
    if meta is not None and Vocab(meta["vocab"]) != vocab:
        raise CheckpointError(f"the checkpoint's vocabulary ({len(meta['vocab'])} symbols) does not match "
                              f"the data's ({len(vocab)} symbols): resume on the text it was trained on")
    train_ids, val_ids = split(ids, config.val_fraction)
    model = CharRNN(ModelConfig(len(vocab), config.hidden_size, config.num_layers, config.cell, config.dropout),
                    be, config.seed)
    run = Setup(config, vocab, val_ids, model, Adam(model.params, config.lr),
                Batches(train_ids, config.batch_size, config.seq_length, seed=[config.seed, 1]),
                numpy.random.default_rng([config.seed, 2]), None)
    if meta is None:
        run.run_dir = new_run_dir(config)
    else:
        checkpoint.restore_training(meta, arrays, model, run.opt, run.batches, run.dropout_rng)
        was = meta["train"].get("backend", "numpy")  # each backend its own masks: docs/backend.md
        if config.dropout > 0 and was != config.backend and not config.quiet:
            print(f"note: this run trained on {was} and resumes on {config.backend}, whose generator draws "
                  "other dropout masks from the same seeds: not the run an uninterrupted one would be",
                  file=sys.stderr)
        run.run_dir = checkpoint.find(config.resume).parent.parent  # RUN_DIR/checkpoints/ckpt-*.json
        run.step, run.elapsed = meta["step"], meta.get("elapsed", 0.0)
    return run


def save_checkpoint(run: Setup, step: int, elapsed: float, last_row: dict, write: bool = True) -> Path | None:
    """A checkpoint of the current state, but only of finite parameters: a NaN never replaces good ones.
    ``write`` False (MPI ranks other than 0): only the check, which every rank makes alike (issue 13)."""
    be = run.model.backend
    if not bool(be.to_host(be.xp.isfinite(run.model.flat).all())):
        raise Diverged(f"the parameters are no longer finite at step {step}")
    if not write:
        return None
    meta = {"model": run.model.config.to_dict(), "train": asdict(run.config), "vocab": run.vocab.chars,
            "dtype": run.config.dtype, "backend": run.config.backend, "elapsed": elapsed, "metrics": last_row}
    meta.update(checkpoint.training_meta(run.opt, run.batches, run.dropout_rng))
    arrays = checkpoint.training_arrays(run.model, run.opt)
    return checkpoint.save(run.run_dir / "checkpoints", step, arrays, meta, run.config.keep)


def train(config: TrainConfig) -> TrainResult:
    """Train (or continue) a run. Raises DataError, TrainError, CheckpointError, ConfigError or
    BackendError for bad input (before writing anything), Diverged when the loss stops being finite."""
    world = distributed.world()  # issue 13: one process, or one rank of an MPI job (distributed.py)
    run = world.setup(prepare_run, config)  # MPI: rank 0 first, agreed errors, state broadcast from rank 0
    config, model, be, step = run.config, run.model, run.model.backend, run.step
    # Everything is checked: from here on we write (rank 0 only).
    metrics_path, tmp = run.run_dir / "metrics.jsonl", run.run_dir / ".metrics.jsonl.tmp"
    if world.writes:  # issue 13
        run.run_dir.mkdir(parents=True, exist_ok=True)
        (run.run_dir / "config.json").write_text(json.dumps(asdict(config), indent=1))
        (run.run_dir / "vocab.json").write_text(run.vocab.to_json(), encoding="utf-8")
        kept = [r for r in read_metrics(run.run_dir) if r.get("step", 0) <= step] if config.resume else []
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))  # a resume drops rows past its checkpoint
        os.replace(tmp, metrics_path)
    result = TrainResult(run.run_dir, step)
    say = (lambda *a: None) if config.quiet or not world.writes else (lambda *a: print(*a, flush=True))
    say(f"run {run.run_dir}: {model.num_params():,} parameters, vocabulary {len(run.vocab)}, "
        f"{len(run.batches)} batches per epoch, {len(run.val_ids):,} validation characters, {be}"
        + (f", resumed at step {step}" if config.resume else "")
        + (f", {world.size} MPI ranks of {config.batch_size // world.size}+ rows" if world.size > 1 else ""))

    def is_edge(every):
        return every and (step % every == 0 or step == config.max_steps)

    # one shard of the batch per core (parallel.py); issue 13: per MPI rank, its share of the cores
    step_fn = DataParallel(model, config.threads or world.threads())
    t0 = t_window = time.perf_counter()
    start_step, saved_step, window, loss_sum, norm_sum = step, step, 0, 0.0, 0.0
    stop = None  # issue 13: the signal every rank agreed to stop for
    # NumPy's overflow warnings would bury the one line that says what happened; NaNs are caught at the edges.
    with SignalCatcher() as signals, open(metrics_path if world.writes else os.devnull, "a") as metrics, \
            numpy.errstate(over="ignore", invalid="ignore"), world.together(collective=Diverged):
        try:
            while step < config.max_steps and stop is None:
                x, y = run.batches.next()  # host (N, T) each
                seed = int(run.dropout_rng.integers(2 ** 31 - 1))  # drawn every step, so resumes line up
                # issue 13: under MPI this rank's rows, then one Allreduce of the gradient; the rank's loss
                loss, _, _ = world.loss_and_grads(step_fn, x, y, seed if config.dropout > 0 else None)
                norm = clip_by_global_norm(model.grads, config.clip)  # before clipping; 0-d, on the device
                run.opt.step(model.grads)
                step, window = step + 1, window + 1
                stop = world.agree_stop(signals.caught)  # issue 13: every rank stops after the same step
                loss_sum, norm_sum = loss_sum + loss, norm_sum + norm  # device sums: no sync here
                row = {}
                if is_edge(config.print_every):  # an edge: now we may wait for the numbers
                    total, last = world.sum(be.scalar(loss_sum), be.scalar(loss))  # issue 13: over the ranks
                    avg = total / window
                    if not math.isfinite(avg):
                        raise Diverged(f"the loss is {avg} at step {step}")
                    rate = window * x.size / (time.perf_counter() - t_window)
                    left = (config.max_steps - step) * (time.perf_counter() - t0) / (step - start_step)
                    row = {"step": step, "loss": last, "loss_avg": avg,
                           "grad_norm": be.scalar(norm_sum) / window, "lr": run.opt.lr, "chars_per_sec": rate}
                    say(f"step {step:>6}/{config.max_steps}  loss {row['loss']:.3f} (avg {avg:.3f})  "
                        f"grad norm {row['grad_norm']:.2f}  {rate:,.0f} char/s  {_duration(left)} left")
                    window, loss_sum, norm_sum = 0, 0.0, 0.0
                if len(run.val_ids) and is_edge(config.eval_every):
                    val_loss, val_acc = world.evaluate(evaluate, model, run.val_ids, config.batch_size,
                                                       config.seq_length, config.eval_batches)  # issue 13
                    row.update(step=step, val_loss=val_loss, val_acc=val_acc)
                    say(f"step {step:>6}  validation loss {val_loss:.3f}  accuracy {val_acc:.3f}")
                if row:
                    row["elapsed"] = run.elapsed + time.perf_counter() - t0
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()  # readable by python -m minirnn.plot while we train
                    result.history.append(row)
                    t_window = time.perf_counter()
                if config.checkpoint_every and step % config.checkpoint_every == 0 or \
                        step == config.max_steps or stop:
                    if window and not math.isfinite(world.sum(be.scalar(loss_sum))[0]):
                        raise Diverged(f"the loss is not finite before step {step}")
                    save_checkpoint(run, step, run.elapsed + time.perf_counter() - t0,
                                    (result.history or [{}])[-1], write=world.writes)  # issue 13
                    saved_step = step
            if step == saved_step == start_step and not config.resume and world.writes:  # a signal, no step
                save_checkpoint(run, step, 0.0, {})
        except Diverged as exc:
            last = checkpoint.list_checkpoints(run.run_dir / "checkpoints")
            where = f"the last good checkpoint is {last[-1][1]}" if last else "no checkpoint was written"
            raise Diverged(f"training stopped: {exc}; {where}. Try a smaller --lr, or clipping (--clip 5)") from None
        finally:
            result.step = step
            if world.writes:  # issue 13
                _plot_quietly(run.run_dir)
    result.checkpoint = checkpoint.find(run.run_dir) if world.writes else None
    result.stopped_by = stop
    if stop:
        say(f"{stop}: saved step {step} to {result.checkpoint}; continue with "
            f"python -m minirnn.train --resume {run.run_dir} --max-steps {config.max_steps}")
    else:
        say(f"done: step {step}, checkpoint {result.checkpoint}, curve {run.run_dir / 'loss.png'}")
    return result


def _plot_quietly(run_dir):
    """Draw loss.png; a plotting problem must not cost the user a finished run."""
    try:
        from .plot import plot_run  # matplotlib is imported only here
        plot_run(run_dir)
    except Exception as exc:
        print(f"warning: could not draw {run_dir / 'loss.png'}: {exc}", file=sys.stderr)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


# -- the command line -----------------------------------------------------------------------------------------
def build_parser(suppress_defaults=False) -> argparse.ArgumentParser:
    """The flags, grouped. With ``suppress_defaults`` only the flags the user typed appear in the result."""
    d = TrainConfig()
    ap = OneLineParser(prog="python -m minirnn.train",
                       argument_default=argparse.SUPPRESS if suppress_defaults else None,
                       description="Train a character-level RNN on a UTF-8 text (default: Tiny Shakespeare). "
                                   f"Every flag is described in {docs_page('flags.md')}.",
                       formatter_class=KeepPathsWhole)

    def add(group, name, help, **kw):
        if not suppress_defaults:
            kw.setdefault("default", getattr(d, name.lstrip("-").replace("-", "_")))
        if kw.get("type") in (int, float):
            kw.setdefault("metavar", "N" if kw["type"] is int else "X")
        group.add_argument(name, help=help, **kw)

    g = ap.add_argument_group("data")
    add(g, "--data", "UTF-8 text file to train on (default: the bundled Tiny Shakespeare)", metavar="FILE")
    add(g, "--val-fraction", "last fraction of the text held out for validation (default 0.1; 0: none)", type=float)
    add(g, "--cache-dir", "where encoded texts are cached, keyed by content hash (default ~/.cache/minirnn; "
                          "'' to disable)", metavar="DIR")
    g = ap.add_argument_group("model")
    add(g, "--cell", "recurrent cell: rnn, lstm (default), gru, or your own as module:Class")
    add(g, "--hidden-size", "units per layer (default 256)", type=int)
    add(g, "--num-layers", "stacked layers (default 2)", type=int)
    add(g, "--dropout", "probability of dropping a layer's output while training, in [0, 1) (default 0)", type=float)
    g = ap.add_argument_group("optimisation (the tutorial's defaults)")
    add(g, "--lr", "Adam learning rate (default 1e-3)", type=float)
    add(g, "--batch-size", "sequences per batch, N (default 128)", type=int)
    add(g, "--seq-length", "characters per sequence, T: how far back gradients flow (default 50)", type=int)
    add(g, "--clip", "clip the gradient's global norm at this value; 0 turns clipping off (default 5)", type=float)
    add(g, "--max-steps", "stop after this many steps in all, counting steps before a resume (default 500)", type=int)
    g = ap.add_argument_group("run")
    add(g, "--seed", "seed for the weights, batch order and dropout: same seed, same losses (default 0)", type=int)
    add_backend_flag(g, default=argparse.SUPPRESS if suppress_defaults else d.backend)
    add(g, "--threads", "CPU threads: the batch is split into one shard per thread (default 0: one per core)",
        type=int)
    add(g, "--dtype", "float32 (default) or float64", choices=["float32", "float64"])
    add(g, "--out", "run directory to create (default runs/<date-time>)", metavar="DIR")
    add(g, "--resume", "continue the run in this directory from its newest checkpoint", metavar="RUN_DIR")
    add(g, "--print-every", "print the loss every this many steps (default 20)", type=int)
    add(g, "--eval-every", "validation loss and accuracy every this many steps (default 100; 0: never)", type=int)
    add(g, "--eval-batches", "validation batches per evaluation (default 20; 0: all)", type=int)
    add(g, "--checkpoint-every", "save a checkpoint every this many steps (default 100; 0: at the end only)", type=int)
    add(g, "--keep", "how many of the newest checkpoints to keep (default 2)", type=int)
    add(g, "--quiet", "print nothing but errors", action="store_true")
    return ap


def main(argv=None) -> int:
    args = vars(build_parser().parse_args(argv))
    try:
        if args["resume"]:
            typed = vars(build_parser(suppress_defaults=True).parse_args(argv))  # only what the user typed
            if "out" in typed:
                raise TrainError("--resume continues in the run's own directory; drop --out")
            config = resume_config(typed.pop("resume"), **typed)
        else:
            config = TrainConfig(**args)
        keep_freed_memory()  # every step reuses the last one's memory instead of faulting in fresh pages (malloc.py)
        result = train(config)
    except (DataError, TrainError, CheckpointError, ConfigError, BackendError, distributed.MPIUnavailable,
            distributed.DistributedError) as exc:
        print(f"minirnn.train: error: {exc}", file=sys.stderr)
        return 2
    except distributed.PeerFailed as exc:  # issue 13: another rank failed, and printed why
        return exc.code
    except Diverged as exc:
        print(f"minirnn.train: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a full disk or a run directory we may not write to
        print(f"minirnn.train: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("minirnn.train: interrupted; stopped without saving this step", file=sys.stderr)
        return 130
    return 128 + signal.Signals[result.stopped_by].value if result.stopped_by else 0


if __name__ == "__main__":
    sys.exit(main())
