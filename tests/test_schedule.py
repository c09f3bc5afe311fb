"""Learning-rate schedules (schedule.py): their formulas, their flags, exact resume under them,
the --max-minutes budget, and the best checkpoint kept apart from the newest."""

import json
import math
from dataclasses import replace

import numpy
import pytest

from minirnn import checkpoint
from minirnn.schedule import Schedule, check, lr_at
from minirnn.train import TrainError, resume_config, train

from .test_train import TINY, assert_one_line_error, cli, losses, tiny, train_cli


def test_cosine_warms_up_linearly_then_follows_half_a_cosine_to_the_floor():
    s = Schedule("cosine", lr=1e-3, warmup_steps=10, decay_steps=110, min_lr=1e-4)
    assert [lr_at(t, s) for t in (0, 4, 9)] == pytest.approx([1e-4, 5e-4, 1e-3])  # lr·(t+1)/W
    assert lr_at(10, s) == pytest.approx(1e-3)  # the peak, where the cosine starts
    assert lr_at(60, s) == pytest.approx((1e-3 + 1e-4) / 2)  # half-way down: cos(π/2) = 0
    assert lr_at(110, s) == lr_at(10_000, s) == 1e-4  # the floor, and it stays there
    rates = [lr_at(t, s) for t in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))  # never rises after the warm-up


def test_epoch_decay_is_char_rnns():
    # char-rnn multiplies by the decay after the last batch of epoch e, for e >= decay_after.
    s = Schedule("epoch", lr=2e-3, decay=0.5, decay_after=2, steps_per_epoch=10)
    assert [lr_at(t, s) for t in (0, 19)] == [2e-3, 2e-3]  # epochs 1 and 2 run at lr
    assert lr_at(20, s) == 1e-3  # epoch 2 ended: first decay
    assert lr_at(29, s) == 1e-3 and lr_at(30, s) == 5e-4


def test_constant_is_the_tutorials():
    assert {lr_at(t, Schedule(lr=3e-3)) for t in (0, 1, 10_000)} == {3e-3}


@pytest.mark.parametrize(
    "settings, needle",
    [
        (dict(name="linear"), "--lr-schedule"),
        (dict(name="cosine", warmup_steps=-1, decay_steps=5), "--warmup-steps"),
        (dict(name="cosine", warmup_steps=10, decay_steps=10), "--lr-decay-steps"),
        (dict(min_lr=1.0), "--min-lr"),
        (dict(decay=0.0), "--lr-decay"),
        (dict(decay_after=0), "--lr-decay-after"),
    ],
)
def test_bad_schedules_are_named(settings, needle):
    assert needle in check(Schedule(**settings))


def test_bad_schedule_flags_exit_2_and_write_nothing(tmp_path):
    proc = train_cli(
        tmp_path,
        "--lr-schedule",
        "cosine",
        "--warmup-steps",
        "600",
        "--out",
        "run",
    )
    assert_one_line_error(proc, "--lr-decay-steps")
    assert not (tmp_path / "run").exists()
    assert_one_line_error(
        cli("minirnn.train", "--data", "t.txt", *TINY, "--max-minutes", "-1", cwd=tmp_path), "--max-minutes"
    )


def test_the_optimizer_runs_at_the_scheduled_rate(tmp_path):
    result = train(tiny(tmp_path, lr_schedule="cosine", warmup_steps=3, min_lr=1e-4, max_steps=10))
    s = Schedule("cosine", 1e-3, 3, 10, 1e-4)
    rates = {r["step"]: r["lr"] for r in result.history if "lr" in r}
    assert rates == {t: lr_at(t - 1, s) for t in range(1, 11)}  # the row of step t logs the rate it used


@pytest.mark.parametrize(
    "schedule",
    [
        dict(lr_schedule="cosine", warmup_steps=4, min_lr=1e-4),
        dict(lr_schedule="epoch", lr_decay=0.8, lr_decay_after=1),
    ],
)
def test_resume_under_a_schedule_is_exact_to_the_bit(tmp_path, schedule):
    # 12 batches per epoch: 20 steps cross the warm-up, the cosine and two epoch ends.
    cfg = tiny(
        tmp_path, dropout=0.25, max_steps=20, checkpoint_every=0, eval_every=0, weight_decay=0.1, **schedule
    )
    whole = train(replace(cfg, out=str(tmp_path / "whole")))
    # The cosine's horizon is fixed at the run's start (20), so stopping at 7 does not shorten it.
    first = train(
        replace(
            cfg,
            out=str(tmp_path / "split"),
            max_steps=7,
            lr_decay_steps=20 if schedule["lr_schedule"] == "cosine" else 0,
        )
    )
    rest = train(resume_config(tmp_path / "split", max_steps=20))
    assert {**losses(first.history), **losses(rest.history)} == losses(whole.history)
    _, a = checkpoint.load(tmp_path / "whole")
    _, b = checkpoint.load(tmp_path / "split")
    for name in a:
        assert numpy.array_equal(a[name], b[name]), name


def test_a_cosine_horizon_is_fixed_when_the_run_starts(tmp_path):
    first = train(tiny(tmp_path, lr_schedule="cosine", max_steps=6))
    assert json.loads((first.run_dir / "config.json").read_text())["lr_decay_steps"] == 6
    rest = train(resume_config(first.run_dir, max_steps=9))  # past the horizon: the floor
    assert [r["lr"] for r in rest.history if "lr" in r] == [0.0, 0.0, 0.0]
    with pytest.raises(TrainError, match="--warmup-steps"):
        train(resume_config(first.run_dir, max_steps=12, warmup_steps=2))  # the schedule belongs to the run


def test_max_minutes_stops_at_the_first_step_past_the_budget_and_saves(tmp_path):
    # 1e-9 minutes is past after the first step: that step is taken, evaluated and saved.
    result = train(tiny(tmp_path, max_steps=1000, max_minutes=1e-9, checkpoint_every=0, eval_every=100))
    assert result.step == 1 and result.out_of_time and result.stopped_by is None
    meta, _ = checkpoint.load(result.run_dir)
    assert meta["step"] == 1 and "val_loss" in meta
    assert result.history[-1]["step"] == 1 and "val_loss" in result.history[-1]


def test_max_minutes_exits_0_and_says_how_to_continue(tmp_path):
    proc = train_cli(
        tmp_path,
        "--max-steps",
        "1000",
        "--max-minutes",
        "1e-9",
        "--out",
        "run",
    )
    assert proc.returncode == 0, proc.stderr
    assert "--max-minutes 1e-09: stopped at step 1" in proc.stdout and "--resume run" in proc.stdout


def test_the_best_checkpoint_is_kept_apart_from_the_newest(tmp_path):
    ckpt_dir = tmp_path / "checkpoints"
    arrays = {"param.w": numpy.zeros(2)}
    for step, val in [(1, 2.0), (2, 1.5), (3, 1.7), (4, 1.8), (5, None)]:
        meta = {} if val is None else {"val_loss": val}
        checkpoint.save(ckpt_dir, step, arrays, meta, keep=2)
    assert [s for s, _ in checkpoint.list_checkpoints(ckpt_dir)] == [2, 4, 5]  # the best, then the newest 2
    assert checkpoint.best(ckpt_dir).name == "ckpt-000002.json"
    assert checkpoint.find_best(tmp_path).name == "ckpt-000002.json"  # the run directory
    assert checkpoint.find(tmp_path).name == "ckpt-000005.json"  # the newest, as before
    checkpoint.save(ckpt_dir, 6, arrays, {"val_loss": 1.2}, keep=2)  # a new best: the old one goes
    assert [s for s, _ in checkpoint.list_checkpoints(ckpt_dir)] == [5, 6]


def test_a_run_keeps_its_best_checkpoint(tmp_path):
    result = train(tiny(tmp_path, max_steps=30, eval_every=5, checkpoint_every=5, keep=1, lr=1e-2))
    by_step = {r["step"]: r["val_loss"] for r in result.history if "val_loss" in r}
    best_step = min(by_step, key=lambda s: (by_step[s], -s))
    meta, _ = checkpoint.load(checkpoint.find_best(result.run_dir))
    assert meta["step"] == best_step and meta["val_loss"] == by_step[best_step]
    assert math.isfinite(meta["val_loss"])
