# %% [markdown]
# # Lesson 10: RNN vs GRU vs LSTM, at an equal budget
#
# The tutorial's exercise 4: try other cells. A fair comparison needs a
# fixed budget, or the cell with more parameters (or more time) wins by
# default. An LSTM has four gates' worth of weights per unit, a GRU three, a
# vanilla RNN one, so at the same number of *parameters* the RNN gets about
# twice as many units as the LSTM. At the same *time*, whichever cell is
# cheapest per step gets more steps.
#
# This lesson picks, for each cell, the hidden size whose parameter count is
# closest to a budget (`minirnn.num_params` counts them from the shapes),
# trains each for the same number of steps (or the same seconds: set
# `BUDGET = "time"`), and prints a results table. Equal parameters do not
# mean equal arithmetic: the first layer's input is one character id, so
# $x_t W_x$ is a row lookup (no multiplies at all), and the multiply-adds per
# character are those of $W_h$ ($G \cdot H \cdot H$ for $G$ gates) and of the
# decoder ($H \cdot V$). The cell with the most units spends the most
# (printed below). The equations of the three cells: docs/derivations.md;
# their parameters: docs/parameters.md.
#
# Run it: `python lessons/10_cell_comparison.py` (about 30 seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/10_cell_comparison.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minirnn import Adam, CharRNN, ModelConfig, clip_by_global_norm, data, get_backend, num_params
from minirnn.lessons import figures, quick, save_figure
from minirnn.train import evaluate

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("10_cell_comparison")

BUDGET = "params"  # "params": same parameters and steps; "time": same parameters and seconds
PARAMS = 50_000  # the parameter budget; the tutorial's model has 873,026
STEPS = 30 if QUICK else 800  # steps per cell when BUDGET == "params"
SECONDS = 2 if QUICK else 12  # seconds per cell when BUDGET == "time"
EVAL_EVERY = 10 if QUICK else 100
N, T, LR = 32, 50, 3e-3

# %% [markdown]
# ## The same budget, three sizes
#
# You should see hidden sizes of 167 (RNN), 92 (GRU) and 78 (LSTM)
# for 50,000 parameters with one layer and Tiny Shakespeare's 65 characters,
# and the vanilla RNN doing the most multiply-adds per character.

# %%
be = get_backend("numpy", "float32")
vocab, ids = data.prepare(data.load_text())
train_ids, val_ids = data.split(ids, 0.1)
V = len(vocab)


def hidden_for(cell, budget, layers=1):
    """The hidden size whose parameter count is closest to the budget."""
    return min(range(1, 1024), key=lambda H: abs(num_params(V, H, layers, cell) - budget))


sizes = {cell: hidden_for(cell, PARAMS) for cell in ("rnn", "gru", "lstm")}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
macs = {cell: GATES[cell] * H * H + H * V for cell, H in sizes.items()}  # W_h, then the decoder
for cell, H in sizes.items():
    print(
        f"{cell:>4}: H = {H:>3}, {num_params(V, H, 1, cell):,} parameters, "
        f"{macs[cell]:,} multiply-adds per character"
    )
assert macs["rnn"] > macs["gru"] > macs["lstm"]
if PARAMS == 50_000:
    assert sizes == {"rnn": 167, "gru": 92, "lstm": 78}  # the sizes the text names

# %% [markdown]
# ## Training each one
#
# The loop of lesson 6 (forward and backward, clip at 5, Adam), with the
# validation loss and accuracy measured every few steps by
# `minirnn.train.evaluate` on windows of the held-out text.


# %%
def train_cell(cell, H, seed=0):
    model = CharRNN(ModelConfig(V, H, 1, cell), be, seed=seed)
    opt = Adam(model.params, LR)
    batches = data.Batches(train_ids, N, T, seed=[seed, 1])
    curve, recent, step, start = [], [], 0, time.perf_counter()
    while (step < STEPS) if BUDGET == "params" else (time.perf_counter() - start < SECONDS):
        x, y = batches.next()
        loss, _, _ = model.loss_and_grads(be.asarray(x), be.asarray(y))
        clip_by_global_norm(model.grads, 5.0)
        opt.step(model.grads)
        step += 1
        recent = (recent + [be.scalar(loss)])[-20:]
        if step % EVAL_EVERY == 0:
            train_time = time.perf_counter() - start
            val_loss, val_acc = evaluate(model, val_ids, 64, T, max_batches=2 if QUICK else 8)
            start += time.perf_counter() - start - train_time  # evaluation time does not count
            curve.append((step, train_time, val_loss, val_acc))
    seconds = time.perf_counter() - start
    val_loss, val_acc = evaluate(model, val_ids, 64, T, max_batches=2 if QUICK else 8)
    curve.append((step, seconds, val_loss, val_acc))
    return {
        "cell": cell,
        "H": H,
        "params": model.num_params(),
        "steps": step,
        "seconds": seconds,
        "train_loss": float(np.mean(recent)),
        "val_loss": val_loss,
        "val_acc": val_acc,
        "curve": curve,
    }


results = []
for cell, H in sizes.items():
    r = train_cell(cell, H)
    results.append(r)
    print(f"{cell:>4} done: {r['steps']} steps in {r['seconds']:.1f} s, validation loss {r['val_loss']:.3f}")
if not QUICK and BUDGET == "params":  # the text below: losses near 2, accuracies around 0.4
    assert all(abs(r["val_loss"] - 2.0) < 0.2 and abs(r["val_acc"] - 0.4) < 0.05 for r in results), results

# %% [markdown]
# ## The results table
#
# Written to `results.md` in the figures folder too, and followed by what
# this run found: which cell reached the lowest validation loss, and how the
# time per step compares. With the defaults (800 steps) expect validation
# losses near 2 and accuracies around 0.4 (the most likely next character is
# right about two times in five); the order of the cells is one draw: change
# `seed` in `train_cell` before trusting a gap of a few hundredths.
#
# Time per step does not follow the parameter count. The RNN does the most
# multiply-adds, but in one product; the GRU and the LSTM add gates, whose
# elementwise work and whose several smaller products cost time of their own.
# On a CPU with small matrices that overhead is a large part of a step, so
# the ms/step column can differ by more than the arithmetic suggests (and
# depends on your machine: compare the printed ratios). Early in training, on
# text whose useful context is short, gates buy little; the gated cells pull
# ahead with longer training and longer dependencies: try `STEPS = 3000`
# (a few minutes), a larger `PARAMS`, or `BUDGET = "time"` for an equal
# number of seconds each.
# docs/results.md makes the same comparison at full size, with its own runs
# and their figures.

# %%
each = f"{STEPS} steps each" if BUDGET == "params" else f"{SECONDS} s each"
lines = [
    f"Budget: {PARAMS:,} parameters, {each}" + f" (batch {N} x {T}, Adam lr {LR:g}, clip 5).",
    "",
    "| cell | hidden | parameters | steps | seconds | ms/step | train loss | val loss | val accuracy |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for r in results:
    lines.append(
        f"| {r['cell']} | {r['H']} | {r['params']:,} | {r['steps']} | {r['seconds']:.1f} | "
        f"{1000 * r['seconds'] / r['steps']:.1f} | {r['train_loss']:.3f} | {r['val_loss']:.3f} | "
        f"{r['val_acc']:.3f} |"
    )
table = "\n".join(lines)
print(table)
by_loss = sorted(results, key=lambda r: r["val_loss"])
ms = {r["cell"]: 1000 * r["seconds"] / r["steps"] for r in results}
print("lowest validation loss first:", ", ".join(f"{r['cell']} {r['val_loss']:.3f}" for r in by_loss))
print(
    "time per step relative to the RNN:",
    ", ".join(f"{c} {ms[c] / ms['rnn']:.2f}" for c in ms),
    "; multiply-adds relative to the RNN:",
    ", ".join(f"{c} {macs[c] / macs['rnn']:.2f}" for c in macs),
)
(FIGURES / "results.md").write_text(table + "\n")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for r in results:  # the same curves twice: against steps, then against training seconds
    steps, secs, vl, va = zip(*r["curve"])
    ax1.plot(steps, vl, "o-", label=f"{r['cell']} (H={r['H']})")
    ax2.plot(secs, vl, "o-", label=f"{r['cell']} (H={r['H']})")
ax1.set_xlabel("training step")
ax1.set_ylabel("validation loss (nats per character)")
ax1.set_title(f"Validation loss against steps ({PARAMS:,} parameters each)")
ax1.legend()
ax2.set_xlabel("training seconds (evaluation not counted)")
ax2.set_title("The same runs against time")
ax2.legend()
save_figure(fig, FIGURES / "cells.png")
print(f"wrote {FIGURES / 'results.md'}")
