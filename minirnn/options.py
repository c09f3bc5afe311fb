"""The options of a training run: :class:`TrainConfig`, its one validation, and the command line.

Every flag of ``python -m minirnn.train`` is a field of TrainConfig with the
flag's name (``--hidden-size`` is ``hidden_size``); docs/flags.md describes
them. The command line is parsed once, keeping only the flags the user typed:
a new run fills the rest from TrainConfig's defaults, a resume from the run's
own configuration (:func:`resume_config`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from . import checks, schedule
from .cli import KeepPathsWhole, OneLineParser, add_backend_flag, docs_page
from .model import ModelConfig, is_import_path


class TrainError(ValueError):
    """Training options that cannot work together; one line."""


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
    max_minutes: float = 0.0  # stop at the first step past this many minutes of training in all; 0: no limit
    # the learning-rate schedule (schedule.py) and weight decay
    lr_schedule: str = "constant"  # constant | cosine (warm-up, cosine to min_lr) | epoch (char-rnn's decay)
    warmup_steps: int = 0  # cosine: steps of linear warm-up
    min_lr: float = 0.0  # cosine: the floor
    lr_decay_steps: int = 0  # cosine: the step the floor is reached; 0: --max-steps of the run's start
    lr_decay: float = 0.97  # epoch: factor per epoch
    lr_decay_after: int = 10  # epoch: the first epoch whose end decays
    weight_decay: float = 0.0  # AdamW's decoupled decay of the weight matrices (optim.py)
    # the run
    seed: int = 0  # initial weights, batch order, dropout masks
    backend: str = "numpy"  # numpy | cupy
    threads: int = (
        0  # CPU threads; the batch is split into one shard per thread (parallel.py). 0: one per core
    )
    dtype: str = "float32"
    out: str | None = None  # run directory; None: runs/<date-time>
    resume: str | None = None  # a run directory (its newest checkpoint) or a checkpoint file
    from_best: bool = False  # with resume: a run directory's best checkpoint instead of its newest
    print_every: int = 20
    eval_every: int = 100  # 0: never
    eval_batches: int = 20  # validation batches per evaluation; 0: the whole validation text
    checkpoint_every: int = 100  # 0: only at the end
    keep: int = 2  # checkpoints kept, newest first
    quiet: bool = False  # no progress lines

    def validate(self) -> TrainConfig:
        """Raise TrainError (ConfigError for the model's shape) naming the first option that cannot work."""
        bad = checks.first_problem(asdict(self), RULES)
        if bad is not None:
            name, value, rule = bad
            raise TrainError(f"{flag(name)} must be {rule.want}, got {checks.short(value)}")
        self.model_config(vocab_size=2).validate(name=flag)  # the model's rules, under the flags' names
        problem = schedule.check(lr_schedule(self, steps_per_epoch=1))
        if problem:
            raise TrainError(problem)
        return self

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size, self.hidden_size, self.num_layers, self.cell, self.dropout)


def lr_schedule(config: TrainConfig, steps_per_epoch: int) -> schedule.Schedule:
    """The run's schedule; a cosine without --lr-decay-steps decays over --max-steps."""
    return schedule.Schedule(
        config.lr_schedule,
        config.lr,
        config.warmup_steps,
        config.lr_decay_steps or config.max_steps,
        config.min_lr,
        config.lr_decay,
        config.lr_decay_after,
        steps_per_epoch,
    )


# What each option must be; the model's own (hidden_size, num_layers, cell, dropout) are ModelConfig.RULES.
RULES = {
    "data": checks.text(none_ok=True),
    "val_fraction": checks.number(0.0, 1.0),
    "cache_dir": checks.Rule(lambda v: v is None or isinstance(v, str), "a directory, or '' for no cache"),
    "lr": checks.number(0.0, low_open=True, want="a positive number"),
    "batch_size": checks.integer(1),
    "seq_length": checks.integer(1),
    "clip": checks.number(0.0, want="0 (off) or a positive number"),
    "max_steps": checks.integer(1),
    "max_minutes": checks.number(0.0, want="0 (no limit) or more"),
    "lr_schedule": checks.choice(*schedule.SCHEDULES),
    "warmup_steps": checks.integer(0),
    "min_lr": checks.number(0.0),
    "lr_decay_steps": checks.integer(0),
    "lr_decay": checks.number(0.0, low_open=True, want="a positive number"),
    "lr_decay_after": checks.integer(0),
    "weight_decay": checks.number(0.0, want="0 or more"),
    "seed": checks.integer(0),
    "backend": checks.Rule(lambda v: isinstance(v, str) and v != "", "a backend name"),
    "threads": checks.integer(0),
    "dtype": checks.choice("float32", "float64"),
    "out": checks.text(none_ok=True),
    "resume": checks.text(none_ok=True),
    "from_best": checks.flag_rule(),
    "print_every": checks.integer(1),
    "eval_every": checks.integer(0),
    "eval_batches": checks.integer(0),
    "checkpoint_every": checks.integer(0),
    "keep": checks.integer(1),
    "quiet": checks.flag_rule(),
}

# What makes a run the run it is: a resume must keep these.
FIXED = (
    "val_fraction",
    "cell",
    "hidden_size",
    "num_layers",
    "dropout",
    "lr",
    "batch_size",
    "seq_length",
    "clip",
    "seed",
    "dtype",
    "lr_schedule",
    "warmup_steps",
    "min_lr",
    "lr_decay_steps",
    "lr_decay",
    "lr_decay_after",
    "weight_decay",
)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def from_dict(stored: dict, where: str) -> TrainConfig:
    """A TrainConfig from a run's stored options (a checkpoint's "train", a config.json), checked field by
    field; ``where`` names the file in the one-line error. Unknown keys (a newer minirnn's) are ignored."""
    from .checkpoint import CheckpointError

    if not isinstance(stored, dict):
        raise CheckpointError(f"{where} is damaged: its options are not a JSON object")
    known = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in stored.items() if k in known})
    values = asdict(config)
    for rules in (RULES, ModelConfig.RULES):
        bad = checks.first_problem(values, {k: r for k, r in rules.items() if k in values})
        if bad is not None:
            name, value, rule = bad
            raise CheckpointError(
                f"{where} is damaged: train.{name} is {checks.short(value)}, not {rule.want}"
            )
    return config


def stored_options(run_or_checkpoint) -> tuple[dict, str]:
    """The options a run was started with, and the file they came from: its newest checkpoint's, or
    (a run killed before its first checkpoint) its config.json."""
    from . import checkpoint

    path = Path(run_or_checkpoint)
    if (
        path.is_dir()
        and not checkpoint.list_checkpoints(path / "checkpoints")
        and (path / "config.json").is_file()
    ):
        try:
            return json.loads((path / "config.json").read_text("utf-8")), str(path / "config.json")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise checkpoint.CheckpointError(
                f"{path / 'config.json'} cannot be read ({type(exc).__name__})"
            ) from None
    meta, jpath = checkpoint.read_meta(path)
    if "train" not in meta:
        raise checkpoint.CheckpointError(f"{jpath} has no training configuration to resume from")
    if not {"optimizer", "rng", "data"} <= set(meta):  # the shipped model, say
        raise checkpoint.CheckpointError(
            f"{jpath} has no training state: it can be sampled from, not resumed"
        )
    return meta["train"], str(jpath)


def resume_config(path, **overrides) -> TrainConfig:
    """The configuration of the run at ``path`` with ``overrides`` (the flags the user typed).

    The options in FIXED must agree with the run's; train() checks that once it holds the run.
    A cell given by import path is code, so it is taken from the file only when ``overrides``
    names the same cell: a checkpoint never chooses what gets imported.
    """
    if path == "" or path is None:
        raise TrainError("--resume needs a run directory or a checkpoint file, got ''")
    if "out" in overrides:
        raise TrainError("--resume continues in the run's own directory; drop --out")
    stored, where = stored_options(path)
    config = from_dict(stored, where)
    if is_import_path(config.cell) and overrides.get("cell") != config.cell:
        from .checkpoint import CheckpointError

        raise CheckpointError(
            f"the run's cell {config.cell!r} is code that resuming never imports on its own: "
            f"if you trust it, pass --cell {config.cell}"
        )
    return replace(config, **dict(overrides, resume=str(path), out=None))


# -- the command line ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The flags, grouped. Only the flags the user typed appear in the result: the defaults shown in
    the help are TrainConfig's, filled in by TrainConfig itself (or by the run, on --resume)."""
    d = TrainConfig()
    ap = OneLineParser(
        prog="python -m minirnn.train",
        argument_default=argparse.SUPPRESS,
        description="Train a character-level RNN on a UTF-8 text (default: Tiny Shakespeare). "
        f"Every flag is described in {docs_page('flags.md')}.",
        formatter_class=KeepPathsWhole,
    )

    def add(group, name, help, **kw):
        if kw.get("type") in (int, float):
            kw.setdefault("metavar", "N" if kw["type"] is int else "X")
        group.add_argument(name, help=help, **kw)

    g = ap.add_argument_group("data")
    add(g, "--data", "UTF-8 text file to train on (default: the bundled Tiny Shakespeare)", metavar="FILE")
    add(
        g,
        "--val-fraction",
        f"last fraction of the text held out for validation (default {d.val_fraction}; 0: none)",
        type=float,
    )
    add(
        g,
        "--cache-dir",
        "where encoded texts are cached, keyed by content hash (default ~/.cache/minirnn; '' to disable)",
        metavar="DIR",
    )
    g = ap.add_argument_group("model")
    add(g, "--cell", f"recurrent cell: rnn, {d.cell} (default), gru, or your own as module:Class")
    add(g, "--hidden-size", f"units per layer (default {d.hidden_size})", type=int)
    add(g, "--num-layers", f"stacked layers (default {d.num_layers})", type=int)
    add(
        g,
        "--dropout",
        "probability of dropping a layer's output while training, in [0, 1) (default 0)",
        type=float,
    )
    g = ap.add_argument_group("optimisation (the tutorial's defaults)")
    add(g, "--lr", f"Adam learning rate (default {d.lr:g})", type=float)
    add(g, "--batch-size", f"sequences per batch, N (default {d.batch_size})", type=int)
    add(
        g,
        "--seq-length",
        f"characters per sequence, T: how far back gradients flow (default {d.seq_length})",
        type=int,
    )
    add(
        g,
        "--clip",
        f"clip the gradient's global norm at this value; 0 turns clipping off (default {d.clip:g})",
        type=float,
    )
    add(
        g,
        "--max-steps",
        f"stop after this many steps in all, counting steps before a resume (default {d.max_steps})",
        type=int,
    )
    add(
        g,
        "--max-minutes",
        "also stop at the first step past this many minutes of training in all, and save "
        "(default 0: no limit)",
        type=float,
    )
    g = ap.add_argument_group("learning-rate schedule and weight decay (docs/optim.md)")
    add(
        g,
        "--lr-schedule",
        "constant (default), cosine (warm-up, then cosine down to --min-lr), or epoch "
        "(char-rnn: times --lr-decay every epoch from --lr-decay-after on)",
        choices=list(schedule.SCHEDULES),
    )
    add(g, "--warmup-steps", "cosine: steps of linear warm-up to --lr (default 0)", type=int)
    add(g, "--min-lr", "cosine: the floor the rate decays to (default 0)", type=float)
    add(g, "--lr-decay-steps", "cosine: the step the floor is reached (default 0: --max-steps)", type=int)
    add(g, "--lr-decay", "epoch: the factor per epoch (default 0.97)", type=float)
    add(g, "--lr-decay-after", "epoch: the first epoch whose end decays the rate (default 10)", type=int)
    add(
        g,
        "--weight-decay",
        "AdamW's decoupled decay of the weight matrices, per unit of lr (default 0)",
        type=float,
    )
    g = ap.add_argument_group("run")
    add(
        g,
        "--seed",
        "seed for the weights, batch order and dropout, 0 or more: same seed, same losses (default 0)",
        type=int,
    )
    add_backend_flag(g, default=argparse.SUPPRESS)
    add(
        g,
        "--threads",
        "CPU threads: the batch is split into one shard per thread (default 0: one per core)",
        type=int,
    )
    add(g, "--dtype", "float32 (default) or float64", choices=["float32", "float64"])
    add(g, "--out", "run directory to create (default runs/<date-time>)", metavar="DIR")
    add(g, "--resume", "continue the run in this directory from its newest checkpoint", metavar="RUN_DIR")
    add(
        g,
        "--from-best",
        "with --resume: continue from the run's best checkpoint instead",
        action="store_true",
    )
    add(g, "--print-every", f"print the loss every this many steps (default {d.print_every})", type=int)
    add(
        g,
        "--eval-every",
        f"validation loss and accuracy every this many steps (default {d.eval_every}; 0: never)",
        type=int,
    )
    add(
        g, "--eval-batches", f"validation batches per evaluation (default {d.eval_batches}; 0: all)", type=int
    )
    add(
        g,
        "--checkpoint-every",
        f"save a checkpoint every this many steps (default {d.checkpoint_every}; 0: at the end only)",
        type=int,
    )
    add(g, "--keep", f"how many of the newest checkpoints to keep (default {d.keep})", type=int)
    add(g, "--quiet", "print nothing but errors", action="store_true")
    return ap


def parse(argv=None) -> TrainConfig:
    """The command line -> the run's TrainConfig (for --resume, the run's own options with what was typed)."""
    typed = vars(build_parser().parse_args(argv))
    from_best = typed.pop("from_best", False)  # resolved here, into the checkpoint file --resume names
    if "resume" in typed:
        from .pretrained import resolve

        if typed["resume"] in ("", None):
            raise TrainError("--resume needs a run directory or a checkpoint file, got ''")
        from .checkpoint import CheckpointError

        target = typed.pop("resume")
        try:  # which checkpoint; a run killed before its first one starts again from its config.json
            path, note = resolve(target, not from_best, "--from-best", default="newest")
        except CheckpointError:
            if from_best:
                raise
            path, note = target, None
        config = resume_config(path, **typed)
        if note and not config.quiet:
            print(note.replace("using", "resuming from", 1), flush=True)
        return config
    if from_best:
        raise TrainError(
            "--from-best picks the checkpoint that --resume continues from: give --resume RUN_DIR"
        )
    return TrainConfig(**typed)
