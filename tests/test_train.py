"""minirnn.train: bad input (exit 2, one line, nothing written), determinism, exact resume,
NaN stop, signals, metrics and the loss curve. Tiny configurations throughout."""

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy
import pytest

from minirnn import checkpoint
from minirnn.checkpoint import CheckpointError
from minirnn.model import CharRNN
from minirnn.train import Diverged, TrainConfig, TrainError, build_parser, resume_config, train

from . import strict_xp

ROOT = Path(__file__).resolve().parents[1]
TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
) * 8
TINY = ["--hidden-size", "16", "--batch-size", "4", "--seq-length", "8", "--cache-dir", ""]


def tiny(tmp_path, **kw) -> TrainConfig:
    data = tmp_path / "text.txt"
    if not data.exists():
        data.write_text(TEXT)
    base = dict(
        data=str(data),
        hidden_size=16,
        batch_size=4,
        seq_length=8,
        max_steps=10,
        print_every=1,
        eval_every=5,
        checkpoint_every=5,
        cache_dir="",
        quiet=True,
        out=str(tmp_path / "run"),
    )
    return TrainConfig(**dict(base, **kw))


def cli(module, *args, cwd, **popen):
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cwd / "xdg-cache"), MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", module, *args]
    if popen:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def losses(history):
    return {r["step"]: r["loss"] for r in history if "loss" in r}


# -- bad input -----------------------------------------------------------------------------------------------
def make_input(tmp_path, case):
    p = tmp_path / "input.txt"
    if case == "missing":
        return p, ["no such file"]
    if case == "empty":
        p.write_bytes(b"")
        return p, ["is empty"]
    if case == "directory":
        p.mkdir()
        return p, ["is a directory"]
    if case == "not utf-8":
        p.write_bytes(b"hello \xff\xfe world" * 20)
        return p, ["not UTF-8", "offset 6"]
    if case == "too short":
        p.write_text("abcdefghij" * 3)
        return p, ["too few", "needs at least 90"]
    if case == "one symbol":
        p.write_text("a" * 1000)
        return p, ["only one distinct symbol"]


@pytest.mark.parametrize("case", ["missing", "empty", "directory", "not utf-8", "too short", "one symbol"])
def test_bad_text_exits_2_with_one_line_and_writes_nothing(tmp_path, case):
    path, needles = make_input(tmp_path, case)
    before = sorted(tmp_path.rglob("*"))
    proc = cli("minirnn.train", "--data", str(path), *TINY[:-2], "--val-fraction", "0.1", cwd=tmp_path)
    assert_one_line_error(proc, *needles)
    assert sorted(tmp_path.rglob("*")) == before  # no run directory, no cache (XDG_CACHE_HOME is in tmp_path)


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--seq-length", "-3"], "--seq-length must be a positive integer"),
        (["--hidden-size", "0"], "--hidden-size"),
        (["--num-layers", "0"], "--num-layers"),
        (["--max-steps", "0"], "--max-steps"),
        (["--print-every", "0"], "--print-every"),
        (["--keep", "0"], "--keep"),
        (["--dropout", "1.0"], "--dropout must be in [0, 1)"),
        (["--dropout", "-0.1"], "--dropout must be in [0, 1)"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--lr", "nan"], "--lr"),
        (["--clip", "-1"], "--clip"),
        (["--val-fraction", "1.5"], "--val-fraction"),
        (["--cell", "nosuchcell"], "unknown cell"),
        (["--cell", "nosuchmodule:Cell"], "cannot load cell"),
    ],
)
def test_nonsensical_flags_exit_2(tmp_path, flags, needle):
    (tmp_path / "t.txt").write_text(TEXT)
    proc = cli("minirnn.train", "--data", "t.txt", *TINY, *flags, cwd=tmp_path)
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_unavailable_cupy_is_one_line(tmp_path):
    proc = cli("minirnn.train", *TINY, "--backend", "cupy", cwd=tmp_path)
    assert_one_line_error(proc, "CuPy")


def test_an_existing_run_is_never_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "precious.txt").write_text("keep me")
    with pytest.raises(TrainError, match="choose another --out"):
        train(tiny(tmp_path))
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["precious.txt"]
    assert (tmp_path / "run" / "precious.txt").read_text() == "keep me"
    train(tiny(tmp_path, out=str(tmp_path / "done"), max_steps=2))
    with pytest.raises(TrainError, match="--resume"):  # an existing run: say how to continue it
        train(tiny(tmp_path, out=str(tmp_path / "done")))


# -- what a run writes ---------------------------------------------------------------------------------------
def test_cli_run_writes_metrics_checkpoints_and_curve(tmp_path):
    proc = train_cli(
        tmp_path,
        "--max-steps",
        "12",
        "--print-every",
        "4",
        "--eval-every",
        "6",
        "--checkpoint-every",
        "4",
    )
    assert proc.returncode == 0, proc.stderr
    assert "char/s" in proc.stdout and "left" in proc.stdout and "validation loss" in proc.stdout
    (run,) = (tmp_path / "runs").iterdir()  # the default run directory: runs/<date-time>
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 6, 8, 12]
    assert {"loss", "grad_norm", "lr", "elapsed"} <= set(rows[0]) and {"val_loss", "val_acc"} <= set(rows[1])
    assert [s for s, _ in checkpoint.list_checkpoints(run / "checkpoints")] == [8, 12]  # keep 2
    assert (run / "loss.png").is_file(), proc.stderr
    assert (run / "loss.png").stat().st_size > 0 and json.loads((run / "vocab.json").read_text())["chars"]
    proc = cli("minirnn.plot", str(run), "--out", "again.png", cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "again.png").exists()
    assert_one_line_error(cli("minirnn.plot", "nowhere", cwd=tmp_path), "no such run directory")


def test_plot_reads_a_run_that_is_still_writing(tmp_path):
    from minirnn.plot import plot_run

    rows = [
        {"step": 20, "loss": 3.4, "loss_avg": 3.6, "elapsed": 1.0},
        {"step": 40, "loss": 3.3, "loss_avg": 3.35, "val_loss": 3.3, "val_acc": 0.2, "elapsed": 2.0},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 60, "lo')
    assert plot_run(tmp_path, tutorial=True).stat().st_size > 0


def test_same_seed_same_losses_and_another_seed_differs(tmp_path):
    a = train(tiny(tmp_path, out=str(tmp_path / "a"), dropout=0.3))
    b = train(tiny(tmp_path, out=str(tmp_path / "b"), dropout=0.3))
    c = train(tiny(tmp_path, out=str(tmp_path / "c"), dropout=0.3, seed=1))
    assert losses(a.history) == losses(b.history)
    assert losses(a.history) != losses(c.history)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_resume_is_exact_to_the_bit(tmp_path, cell):
    # 12 batches per epoch here, so the 20 steps cross two epoch boundaries; dropout tests its generator too.
    cfg = tiny(tmp_path, cell=cell, dropout=0.25, max_steps=20, checkpoint_every=0, eval_every=0)
    whole = train(replace(cfg, out=str(tmp_path / "whole")))
    first = train(replace(cfg, out=str(tmp_path / "split"), max_steps=7))
    assert first.checkpoint.name == "ckpt-000007.json"
    rest = train(resume_config(tmp_path / "split", max_steps=20))
    combined = {**losses(first.history), **losses(rest.history)}
    assert combined == losses(whole.history)  # floats compared exactly
    assert len(combined) == 20
    _, a = checkpoint.load(tmp_path / "whole")
    _, b = checkpoint.load(tmp_path / "split")
    for name in a:
        assert numpy.array_equal(a[name], b[name]), name


def test_cli_resume_continues_and_checks_the_checkpoint(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    args = ["--data", "t.txt", *TINY, "--print-every", "1", "--checkpoint-every", "0"]
    assert cli("minirnn.train", *args, "--max-steps", "6", "--out", "one", cwd=tmp_path).returncode == 0
    assert cli("minirnn.train", *args, "--max-steps", "3", "--out", "two", cwd=tmp_path).returncode == 0
    proc = cli("minirnn.train", "--resume", "two", "--max-steps", "6", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    def read(run):
        return [
            json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        ]

    assert read("one") == read("two")
    # Settings that define the run cannot change on resume; --max-steps must go beyond the checkpoint.
    assert_one_line_error(
        cli("minirnn.train", "--resume", "two", "--hidden-size", "32", cwd=tmp_path), "--hidden-size"
    )
    assert_one_line_error(cli("minirnn.train", "--resume", "two", "--max-steps", "6", cwd=tmp_path), "step 6")
    # Another text, another vocabulary.
    (tmp_path / "other.txt").write_text(TEXT.upper())
    assert_one_line_error(
        cli("minirnn.train", "--resume", "two", "--data", "other.txt", "--max-steps", "9", cwd=tmp_path),
        "vocabulary",
    )


@pytest.mark.parametrize("damage", ["truncate", "version"])
def test_resume_from_a_damaged_checkpoint_exits_2(tmp_path, damage):
    train(tiny(tmp_path, max_steps=3))
    path = checkpoint.find(tmp_path / "run")
    meta = json.loads(path.read_text())
    if damage == "truncate":
        npz = path.with_name(meta["arrays"]["file"])
        npz.write_bytes(npz.read_bytes()[:200])
        needle = "corrupt or truncated"
    else:
        path.write_text(json.dumps(dict(meta, format_version=0)))
        needle = "format version 0"
    assert_one_line_error(cli("minirnn.train", "--resume", "run", "--max-steps", "6", cwd=tmp_path), needle)
    with pytest.raises(CheckpointError):
        train(resume_config(tmp_path / "run", max_steps=6))


def test_no_host_sync_between_the_edges(tmp_path):
    """On the strict device stand-in, 10 more steps between the same edges cost no more host copies."""
    counts = []
    for steps in (5, 15):
        before = strict_xp.TRANSFERS["to_host"]
        train(
            tiny(
                tmp_path,
                out=str(tmp_path / f"r{steps}"),
                backend="strict",
                max_steps=steps,
                print_every=steps,
                eval_every=0,
                checkpoint_every=0,
            )
        )
        counts.append(strict_xp.TRANSFERS["to_host"] - before)
    assert counts[0] == counts[1]


# -- failures during training --------------------------------------------------------------------------------
def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = CharRNN.loss_and_grads
    calls = []

    def poisoned(self, *args, **kw):
        loss, logits, state = real(self, *args, **kw)
        calls.append(1)
        if len(calls) >= 8:  # from step 8 on, the gradients explode into NaN
            self.grad_flat[...] = numpy.nan
            loss = loss * numpy.nan
        return loss, logits, state

    monkeypatch.setattr(CharRNN, "loss_and_grads", poisoned)
    with pytest.raises(Diverged, match="last good checkpoint is .*ckpt-000005.json"):
        train(tiny(tmp_path, max_steps=20, print_every=10, checkpoint_every=5))
    monkeypatch.undo()
    meta, arrays = checkpoint.load(tmp_path / "run")
    assert meta["step"] == 5 and all(numpy.isfinite(a).all() for a in arrays.values())
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path / "run" / "checkpoints")] == [5]


def train_cli(tmp_path, *flags):
    """``python -m minirnn.train`` on the tiny text, written to tmp_path/t.txt, with TINY and ``flags``."""
    (tmp_path / "t.txt").write_text(TEXT)
    return cli("minirnn.train", "--data", "t.txt", *TINY, *flags, cwd=tmp_path)


# A learning rate of 1e38 with clipping off overflows float32 within a few steps; a checkpoint a step.
DIVERGING = ["--lr", "1e38", "--clip", "0", "--max-steps", "50", "--print-every", "1"]
DIVERGING += ["--checkpoint-every", "1", "--out", "run"]


def test_nan_from_the_cli_exits_1_with_a_message(tmp_path):
    proc = train_cli(
        tmp_path,
        *DIVERGING,
    )
    if proc.returncode == 0:
        pytest.skip("this platform's float32 did not overflow")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "training stopped" in line and "last good checkpoint is" in line
    meta, arrays = checkpoint.load(tmp_path / "run")
    assert all(numpy.isfinite(a).all() for a in arrays.values())


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_exits_cleanly(tmp_path, sig, code):
    (tmp_path / "t.txt").write_text(TEXT)
    proc = cli(
        "minirnn.train",
        "--data",
        "t.txt",
        *TINY,
        "--max-steps",
        "1000000",
        "--print-every",
        "1",
        "--eval-every",
        "0",
        "--checkpoint-every",
        "0",
        "--out",
        "run",
        cwd=tmp_path,
        popen=True,
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 3):
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and signal.Signals(sig).name in out
    meta, _ = checkpoint.load(tmp_path / "run")
    assert meta["step"] >= 3
    resumed = train(resume_config(tmp_path / "run", max_steps=meta["step"] + 2, quiet=True))
    assert resumed.step == meta["step"] + 2


# -- defaults ------------------------------------------------------------------------------------------------
def test_defaults_are_the_tutorials_and_bounded():
    d = TrainConfig()
    assert (d.lr, d.batch_size, d.seq_length, d.hidden_size, d.num_layers, d.cell, d.clip, d.print_every) == (
        1e-3,
        128,
        50,
        256,
        2,
        "lstm",
        5.0,
        20,
    )
    assert d.max_steps <= 500 and d.keep == 2 and d.data is None
    args = vars(build_parser().parse_args([]))
    assert TrainConfig(**args) == d
    help_text = " ".join(build_parser().format_help().split())
    assert "0 turns clipping off" in help_text and "--max-steps" in help_text


def test_a_cell_by_import_path(tmp_path):
    result = train(tiny(tmp_path, cell="minirnn.gru:GRU", max_steps=2))
    assert checkpoint.load(result.run_dir)[0]["model"]["cell"] == "minirnn.gru:GRU"


def test_clip_zero_turns_clipping_off(tmp_path):
    result = train(tiny(tmp_path, clip=0.0, max_steps=3))
    assert all(math.isfinite(r["loss"]) for r in result.history)
