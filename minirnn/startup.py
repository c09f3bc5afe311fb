"""Everything a training run needs before its first step, built and checked before anything is written.

    new run:  check the options -> read the text -> build the model -> create and lock RUN_DIR
    resume:   check the options -> lock RUN_DIR -> read its newest checkpoint (or, killed before
              its first, its config.json) -> check it is the same run -> read the text -> build,
              restore -> sweep what a killed run left

A resume locks first so that the checkpoint it reads is the newest one; a new
run creates its directory last, so that a refusal writes nothing.

Under MPI (distributed.py) rank 0 alone locks, creates and sweeps; every rank
builds the run, rank 0 first (it writes the text's cache), and a refusal on any
rank stops them all before anything is written.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy

from . import checkpoint, checks, distributed
from .backend import get_backend
from .checkpoint import CheckpointError
from .checks import check_fits
from .data import Batches, Vocab, check_length, default_cache_dir, prepare_file, split
from .model import CharRNN
from .optim import Adam
from .options import FIXED, TrainConfig, TrainError, flag, stored_options
from .rundir import RunDir, check_new, create_new, run_of


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
    run_dir: Path | None = None
    step: int = 0  # steps already taken (a resumed run starts at its checkpoint's)
    elapsed: float = 0.0  # seconds spent training before this call


def prepare_run(config: TrainConfig, resumed: Path | None = None, speaks: bool = True) -> Setup:
    """Load the text and, for a resume of the run in ``resumed``, where it stands; check that they agree
    and that the model fits; build it. Writes nothing but the text's cache. ``speaks`` False (MPI ranks
    other than 0): no note on stderr."""
    meta = arrays = None
    if resumed is not None:
        meta, arrays, stored, stored_vocab = _run_so_far(config, resumed)
        for name in FIXED:  # the one check that a resume is the same run
            was = stored.get(name, getattr(TrainConfig(), name))  # an older run's: the default then
            if getattr(config, name) != was:
                raise TrainError(
                    f"{flag(name)} {getattr(config, name)} differs from the run's {was}: "
                    f"a resumed run keeps its model, data layout and optimiser settings"
                )
        if meta is not None and config.max_steps <= meta["step"]:
            raise TrainError(f"the checkpoint is at step {meta['step']}: pass a --max-steps above that")
    if resumed is None and config.lr_schedule == "cosine" and not config.lr_decay_steps:
        config = replace(config, lr_decay_steps=config.max_steps)  # fixed now, so a longer resume keeps it
    if config.data:  # stored absolute, so that a resume from another directory finds the text
        config = replace(
            config, data=os.path.abspath(config.data)
        )  # (symlinks kept: a loop is read's to report)
    be = get_backend(config.backend, config.dtype)
    # Read, count and encode in pieces; with a cache the ids are a memory map every rank shares (data.py).
    cache = None if config.cache_dir == "" else (config.cache_dir or default_cache_dir())

    def check(length):  # the length is checked before anything is written
        check_length(length, config.batch_size, config.seq_length, config.val_fraction)

    vocab, ids = prepare_file(config.data, cache, check)
    if resumed is not None and stored_vocab is not None and stored_vocab != vocab.chars:
        raise CheckpointError(vocab_difference(stored_vocab, vocab.chars))
    model_config = config.model_config(len(vocab))
    check_fits(
        model_config.training_bytes(config.batch_size, config.seq_length, numpy.dtype(config.dtype).itemsize),
        f"--hidden-size {config.hidden_size} with --num-layers {config.num_layers}, --batch-size "
        f"{config.batch_size} and --seq-length {config.seq_length}",
    )
    train_ids, val_ids = split(ids, config.val_fraction)
    model = CharRNN(model_config, be, config.seed)
    run = Setup(
        config,
        vocab,
        val_ids,
        model,
        Adam(model.params, config.lr, weight_decay=config.weight_decay),
        Batches(train_ids, config.batch_size, config.seq_length, seed=[config.seed, 1]),
        numpy.random.default_rng([config.seed, 2]),
        resumed,
    )
    if meta is not None:
        checkpoint.restore_training(meta, arrays, model, run.opt, run.batches, run.dropout_rng)
        run.step, run.elapsed = meta["step"], meta.get("elapsed", 0.0)
        was = meta["train"].get("backend", "numpy")  # each backend its own masks: docs/backend.md
        if config.dropout > 0 and was != config.backend and not config.quiet and speaks:
            print(
                f"note: this run trained on {was} and resumes on {config.backend}, whose generator draws "
                "other dropout masks from the same seeds: not the run an uninterrupted one would be",
                file=sys.stderr,
            )
    return run


def _run_so_far(config: TrainConfig, run_dir: Path):
    """(meta, arrays) of the checkpoint to resume from, and the run's options and vocabulary. A run killed
    before its first checkpoint has none: (None, None) and its config.json, so it starts again."""
    if not checkpoint.list_checkpoints(run_dir / "checkpoints"):
        return None, None, stored_options(run_dir)[0], _read_vocab(run_dir / "vocab.json")
    meta, arrays = checkpoint.load(config.resume)
    if "train" not in meta:
        raise CheckpointError(
            f"{checkpoint.find(config.resume)} has no training state: it can be sampled from, not resumed"
        )
    return meta, arrays, meta["train"], meta.get("vocab")


def _read_vocab(path: Path):
    try:
        return json.loads(path.read_text("utf-8"))["chars"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a run killed before it wrote vocab.json: the text decides


def vocab_difference(stored: list, chars: list) -> str:
    """One line saying how the text's vocabulary differs from the run's."""
    new, old = [c for c in chars if c not in set(stored)], [c for c in stored if c not in set(chars)]
    if new or old:
        parts = ([f"has {checks.short(''.join(new))}, which the run never saw"] if new else []) + (
            [f"lacks {checks.short(''.join(old))}"] if old else []
        )
        how = " and ".join(parts)
    else:
        how = (
            f"has the same {len(chars)} symbols, in another order of frequency (its character counts differ)"
        )
    return (
        f"the text's vocabulary differs from the run's: it {how}; resume on the text the run was trained on"
    )


def start(config: TrainConfig, world=None) -> tuple[RunDir | None, Setup]:
    """Hold the run directory and build the run. A resume takes the lock first, so that the checkpoint it
    reads is the newest, then sweeps what a killed run left; a new run creates its directory last, once
    everything is checked, so that a refusal writes nothing.

    ``world`` (distributed.py; default one process): rank 0 holds the directory, the other ranks build the
    same run and hold nothing (None). ``world.setup`` builds on rank 0 first, agrees on errors and
    broadcasts rank 0's state."""
    world = world or distributed.Single()
    held = None

    def build(config):
        nonlocal held
        if not world.writes:  # rank 0 holds the lock while the other ranks read what it read
            return prepare_run(config, run_of(config.resume) if config.resume else None, speaks=False)
        if config.resume:
            held = RunDir(run_of(config.resume))
            held.claim()
            return prepare_run(config, held.path)
        if config.out:
            check_new(Path(config.out))  # before the work, not only after it
        return prepare_run(config)

    try:
        run = world.setup(build, config)
        error = None
        if world.writes:  # every rank has built the run: now rank 0 may write
            try:
                if held is None:
                    held = create_new(config.out)
                else:
                    held.sweep()
            except Exception as exc:
                error = exc
        _agree(world, error)
    except BaseException:
        if held is not None:
            held.close()
        raise
    run.run_dir = held.path if held is not None else run.run_dir
    return held, run


def _agree(world, error):
    """Rank 0's ``error`` (or None) raised on rank 0; the other ranks stop quietly with its exit status."""
    code = 0 if error is None else 2 if isinstance(error, TrainError) else 1
    (agreed,) = world.sum(float(code))
    if error is not None:
        raise error
    if agreed:
        raise distributed.PeerFailed("rank 0 failed", code=int(agreed))
