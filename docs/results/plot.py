"""Draw docs/img/results.png from the metrics files in this folder: python docs/results/plot.py

Each *.jsonl here is a run's metrics.jsonl (one JSON object per line, as training writes it),
copied from its run directory; the first line of each may be {"label": ..., "note": ...}, with
"evaluate": {step: loss} for checkpoints that python -m minirnn.evaluate measured (drawn as stars).
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent


def read(path):
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    head = rows[0] if "label" in rows[0] else {"label": path.stem}
    return head, [r for r in rows if "val_loss" in r]


def table():
    """The markdown table of docs/results.md: one row per run, from its metrics."""
    out = [
        "| run | steps | minutes | best validation loss (step) | last validation loss |",
        "|---|---|---|---|---|",
    ]
    for path in sorted(HERE.glob("*.jsonl")):
        head, rows = read(path)
        best = min(rows, key=lambda r: r["val_loss"])
        last = rows[-1]
        approx = "≈" if head.get("estimated_minutes") else ""
        out.append(
            f"| {head['label']} | {last['step']:,} | {approx}{last['elapsed'] / 60:.0f} | "
            f"{best['val_loss']:.3f} ({best['step']:,}) | {last['val_loss']:.3f} |"
        )
    return "\n".join(out)


def main(out=HERE.parent / "img" / "results.png"):
    fig, (by_time, by_step) = plt.subplots(1, 2, figsize=(11, 6.4))
    paths = sorted(HERE.glob("*.jsonl"))
    colours = plt.get_cmap("tab10").colors + ("black", "goldenrod", "lightgreen", "plum")
    assert len(paths) <= len(colours), "more runs than colours: add colours"
    for path, colour in zip(paths, colours):
        head, rows = read(path)
        style = "--" if head.get("estimated_minutes") else "-"
        losses = [r["val_loss"] for r in rows]
        by_time.plot([r["elapsed"] / 60 for r in rows], losses, style, marker=".", color=colour)
        by_step.plot([r["step"] for r in rows], losses, style, marker=".", color=colour, label=head["label"])
        for step, loss in head.get("evaluate", {}).items():  # python -m minirnn.evaluate of a checkpoint
            at = next(r for r in rows if r["step"] == int(step))
            for ax, x in ((by_time, at["elapsed"] / 60), (by_step, int(step))):
                ax.plot([x], [loss], "*", ms=8, color=colour)
    panels = ((by_time, "minutes of training (wall clock, 2-core CPU)"), (by_step, "step"))
    for ax, xlabel in panels:
        ax.axhline(1.50, color="grey", lw=0.8, ls=":")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss (nats/char)")
        ax.set_ylim(1.4, 2.3)
        ax.grid(alpha=0.3)
    fig.legend(fontsize=7.5, loc="lower center", ncol=2, frameon=False)
    by_time.text(1, 1.41, "★ python -m minirnn.evaluate: every held-out character, state carried", fontsize=7)
    by_time.set_title("against minutes: machines differ, some runs shared theirs (see the text)", fontsize=9)
    by_step.set_title("against steps: what the minutes do not distort", fontsize=9)
    fig.tight_layout(rect=(0, 0.25, 1, 1))  # the bottom quarter for the legend
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    print(table())


if __name__ == "__main__":
    main(*sys.argv[1:])
