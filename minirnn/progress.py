"""The progress line that training prints every ``--print-every`` steps, and what it checks.

The loop adds each step's loss and gradient norm to a :class:`Window` as device arrays (no wait
for a GPU); at a progress line the window's sums are read once, averaged, checked to be finite,
and turned into the row that metrics.jsonl records and the line the user sees:

    step    500/5000  loss 1.912 (avg 1.957)  grad norm 0.74  17,600 char/s  4m12s left
"""

from __future__ import annotations

import math
import time

from . import distributed


class Diverged(RuntimeError):
    """The loss or the parameters stopped being finite numbers."""


class Window:
    """The steps since the last progress line: device sums of the loss and gradient norm (no sync to add)."""

    def __init__(self, step: int):
        self.start_step, self.t0 = step, time.perf_counter()
        self.reset()

    def reset(self):
        self.steps, self.chars, self.loss_sum, self.norm_sum, self.t = 0, 0, 0.0, 0.0, time.perf_counter()

    def add(self, loss, norm, chars: int):
        self.steps, self.chars = self.steps + 1, self.chars + chars
        self.loss_sum, self.norm_sum = self.loss_sum + loss, self.norm_sum + norm

    def check_finite(self, be, step: int, world=None):
        """Diverged if the window's loss is not finite (under MPI: summed over the ranks, so all agree)."""
        world = world or distributed.Single()
        if self.steps and not math.isfinite(world.sum(be.scalar(self.loss_sum))[0]):
            raise Diverged(f"the loss is not finite before step {step}")

    def row(self, be, step: int, loss, max_steps: int, world=None) -> tuple[dict, str]:
        """The progress row of ``step`` (an edge: now we may wait for the numbers) and the time left;
        starts a new window. Under MPI the losses are the ranks' shares, summed here."""
        world = world or distributed.Single()
        total, last = world.sum(be.scalar(self.loss_sum), be.scalar(loss))
        avg = total / self.steps
        if not math.isfinite(avg):
            raise Diverged(f"the loss is {avg} at step {step}")
        now = time.perf_counter()
        left = (max_steps - step) * (now - self.t0) / (step - self.start_step)
        row = {
            "step": step,
            "loss": last,
            "loss_avg": avg,
            "grad_norm": be.scalar(self.norm_sum) / self.steps,
            "chars_per_sec": self.chars / (now - self.t),
        }
        self.reset()
        return row, _duration(left)


def progress_line(row: dict, max_steps: int, left: str) -> str:
    return (
        f"step {row['step']:>6}/{max_steps}  loss {row['loss']:.3f} (avg {row['loss_avg']:.3f})  "
        f"grad norm {row['grad_norm']:.2f}  {row['chars_per_sec']:,.0f} char/s  {left} left"
    )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )
