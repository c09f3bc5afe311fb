"""Learning-rate schedules: the learning rate of step ``t`` as a pure function of ``t``.

    constant   lr at every step (the tutorial's)
    cosine     a linear warm-up to lr over ``warmup_steps``, then half a cosine down to ``min_lr``
               at ``decay_steps``, then ``min_lr`` (nanoGPT's get_lr in train.py)
    epoch      lr, multiplied by ``decay`` at the end of every epoch from epoch ``decay_after`` on
               (char-rnn's --learning_rate_decay and --learning_rate_decay_after, train.lua)

Steps count from 0: step ``t`` is the (t+1)-th update. Because the rate depends on
nothing but ``t`` and the run's fixed settings, a resumed run sets the same rates as
one that never stopped, and exact resume stays exact (tests/test_schedule.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("constant", "cosine", "epoch")


@dataclass(frozen=True)
class Schedule:
    name: str = "constant"  # constant | cosine | epoch
    lr: float = 1e-3  # the peak (cosine) or starting (epoch) rate
    warmup_steps: int = 0  # cosine: steps of linear warm-up from lr/warmup_steps to lr
    decay_steps: int = 0  # cosine: the step at which the rate reaches min_lr and stays there
    min_lr: float = 0.0  # cosine: the floor
    decay: float = 0.97  # epoch: the factor applied at the end of each epoch ...
    decay_after: int = 10  # epoch: ... from the end of this epoch on (char-rnn counts epochs from 1)
    steps_per_epoch: int = 1  # epoch: batches in one pass over the training text


def lr_at(t: int, s: Schedule) -> float:
    """The learning rate of step ``t`` (0-based) under schedule ``s``."""
    if s.name == "constant":
        return s.lr
    if s.name == "cosine":
        if t < s.warmup_steps:  # 1) linear warm-up: Adam's early steps are large relative to its moments
            return s.lr * (t + 1) / s.warmup_steps
        if t >= s.decay_steps:  # 3) past the horizon: the floor
            return s.min_lr
        ratio = (t - s.warmup_steps) / (s.decay_steps - s.warmup_steps)  # 2) in [0, 1)
        coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # from 1 down to 0
        return s.min_lr + coeff * (s.lr - s.min_lr)
    if s.name == "epoch":
        # char-rnn decays after iteration i when i % ntrain == 0 and epoch i/ntrain >= decay_after;
        # step t follows t updates, i.e. t // steps_per_epoch finished epochs.
        epochs_done = t // s.steps_per_epoch
        return s.lr * s.decay ** max(0, epochs_done - s.decay_after + 1)
    raise ValueError(f"unknown learning-rate schedule {s.name!r}; choose one of {', '.join(SCHEDULES)}")


def check(s: Schedule) -> str | None:
    """What is wrong with a schedule's settings, as one line for the user, or None."""
    if s.name not in SCHEDULES:
        return f"--lr-schedule must be one of {', '.join(SCHEDULES)}, got {s.name!r}"
    if s.warmup_steps < 0:
        return f"--warmup-steps must be 0 or more, got {s.warmup_steps}"
    if not (0.0 <= s.min_lr <= s.lr and math.isfinite(s.min_lr)):
        return f"--min-lr must be in [0, --lr], got {s.min_lr}"
    if s.name == "cosine" and s.decay_steps <= s.warmup_steps:
        return f"--lr-decay-steps ({s.decay_steps}) must be above --warmup-steps ({s.warmup_steps})"
    if not (0.0 < s.decay <= 1.0):
        return f"--lr-decay must be in (0, 1], got {s.decay}"
    if s.decay_after < 1:
        return f"--lr-decay-after must be a positive number of epochs, got {s.decay_after}"
    return None
