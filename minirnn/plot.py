"""The loss curve of a run, from its metrics.jsonl: ``python -m minirnn.plot RUN_DIR``.

Training draws RUN_DIR/loss.png when it ends; this draws it on demand, also
while the run is still going (the metrics file is written line by line, and a
line being written is skipped). Left: training loss (of the batch at each logged
step, and its mean since the previous one) and validation loss against the step. Right:
validation accuracy. ``--tutorial`` adds the losses the TensorFlow tutorial
printed, for comparison.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The tutorial's printed training loss at these steps (its run of the same model on Tiny Shakespeare).
TUTORIAL = {
    20: 3.443,
    40: 3.356,
    60: 3.315,
    80: 3.206,
    100: 3.081,
    120: 2.922,
    140: 2.787,
    160: 2.628,
    180: 2.485,
    200: 2.415,
    220: 2.368,
    240: 2.320,
    260: 2.328,
    280: 2.263,
    300: 2.242,
    320: 2.172,
    340: 2.184,
    360: 2.166,
    380: 2.114,
    400: 2.106,
    420: 2.095,
    440: 2.083,
    460: 2.058,
}


class PlotError(ValueError):
    """No metrics to draw; one line."""


def read_metrics(run_dir) -> list[dict]:
    """The rows of RUN_DIR/metrics.jsonl; an incomplete last line (a run mid-write) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not Path(run_dir).is_dir():
        raise PlotError(f"no such run directory: {run_dir}")
    if not path.is_file():
        raise PlotError(f"{run_dir} has no metrics.jsonl yet")
    rows = []
    for line in path.read_text("utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def plot_run(run_dir, out=None, tutorial=False) -> Path:
    """Draw the run's curves into ``out`` (default RUN_DIR/loss.png), atomically. Returns the path."""
    # The object-oriented API (Figure + Agg canvas) needs no display and keeps no global state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_metrics(run_dir)
    train = [(r["step"], r["loss"], r["loss_avg"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"], r["val_acc"]) for r in rows if "val_loss" in r]
    if not train and not val:
        raise PlotError(f"{run_dir}/metrics.jsonl has no rows yet")
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax, ax2 = fig.subplots(1, 2)
    if train:
        steps, loss, avg = zip(*train)
        ax.plot(steps, loss, ".-", label="training loss of the batch at that step")
        ax.plot(steps, avg, "-", alpha=0.5, label="training loss, mean since the previous point")
    if val:
        steps, vloss, vacc = zip(*val)
        ax.plot(steps, vloss, "o-", label="validation loss (held-out text)")
        ax2.plot(steps, vacc, "o-", color="C2")
    if tutorial:
        ax.plot(list(TUTORIAL), list(TUTORIAL.values()), "x", color="k", label="TensorFlow tutorial")
    ax.set(xlabel="step", ylabel="cross-entropy (nats per character)", title="Loss: training and validation")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax2.set(xlabel="step", ylabel="share of next characters ranked first", title="Validation accuracy")
    fig.suptitle(f"run directory: {Path(run_dir).resolve().name}", fontsize=9, color="gray")  # which run
    ax2.grid(alpha=0.3)
    out = Path(out) if out else Path(run_dir) / "loss.png"
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, out)  # a viewer never sees half a PNG
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half PNG behind
        raise
    return out


def main(argv=None) -> int:
    from .cli import OneLineParser

    ap = OneLineParser(
        prog="python -m minirnn.plot",
        description="Draw a run's loss curve (RUN_DIR/loss.png) from its metrics.jsonl, "
        "also while the run is still training.",
    )
    ap.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by python -m minirnn.train")
    ap.add_argument("--out", metavar="FILE", help="where to write the PNG (default RUN_DIR/loss.png)")
    ap.add_argument("--tutorial", action="store_true", help="mark the losses the TensorFlow tutorial printed")
    args = ap.parse_args(argv)
    try:
        path = plot_run(args.run_dir, args.out, args.tutorial)
    except (PlotError, OSError) as exc:
        print(f"minirnn.plot: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
