# %% [markdown]
# # Lesson 11: overfitting, dropout, and a smaller model that does as well
#
# The tutorial's exercise 5 asks how to regularise the model; exercise 6
# asks for a model with fewer parameters that performs about as well.
#
# To see overfitting within a minute on a CPU we make it easy to overfit:
# we train on only the first 10,000 characters of Tiny Shakespeare and
# validate on 10,000 characters from further on. A 108,000-parameter LSTM can
# nearly memorise 10,000 characters, and you will watch its validation loss
# turn round and climb while its training loss keeps falling.
#
# Then three remedies:
#
# * **dropout**: while training, zero each unit of a layer's output with
#   probability $p$ and scale the rest by $1/(1-p)$ (so nothing changes at
#   evaluation time). minirnn applies it to each layer's output,
#   `ModelConfig(dropout=p)`; `dropout_seed` fixes the masks of one step.
# * **early stopping**: keep the weights from the step where the validation
#   loss was lowest (lesson 8's checkpoints make that easy);
# * **a smaller model**: fewer parameters, less room to memorise.
#
# Run it: `python lessons/11_regularisation.py` (about 40 seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/11_regularisation.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minirnn import Adam, CharRNN, ModelConfig, clip_by_global_norm, data, get_backend
from minirnn.lessons import figures, quick, save_figure
from minirnn.train import evaluate

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("11_regularisation")

STEPS = 60 if QUICK else 600  # about 100 passes over the small training text
EVAL_EVERY = 20 if QUICK else 50
N, T, LR = 32, 50, 5e-3

# %%
be = get_backend("numpy", "float32")
vocab, ids = data.prepare(data.load_text())
train_ids, val_ids = ids[:10_000], ids[40_000:50_000]  # a deliberately small training text
print(f"training on {len(train_ids):,} characters, validating on {len(val_ids):,}")


def run(hidden, dropout, seed=0):
    """Train a one-layer LSTM; every EVAL_EVERY steps, the loss on (part of) the training text and on
    validation."""
    model = CharRNN(ModelConfig(len(vocab), hidden, 1, "lstm", dropout), be, seed=seed)
    opt = Adam(model.params, LR)
    batches = data.Batches(train_ids, N, T, seed=[seed, 1])
    seeds = np.random.default_rng([seed, 2])  # one dropout seed per step
    curve = []
    for step in range(1, STEPS + 1):
        x, y = batches.next()
        drop_seed = int(seeds.integers(2**31 - 1)) if dropout > 0 else None  # None: no dropout
        model.loss_and_grads(be.asarray(x), be.asarray(y), dropout_seed=drop_seed)
        clip_by_global_norm(model.grads, 5.0)
        opt.step(model.grads)
        if step % EVAL_EVERY == 0:
            # evaluation runs without dropout: model.loss is called without a dropout_seed
            train_loss, _ = evaluate(model, train_ids, 64, T, max_batches=2 if QUICK else 4)
            val_loss, val_acc = evaluate(model, val_ids, 64, T, max_batches=2 if QUICK else 4)
            curve.append((step, train_loss, val_loss, val_acc))
    return model.num_params(), np.array(curve)


# %% [markdown]
# ## Three runs
#
# A 128-unit LSTM without and with dropout 0.5, and a 64-unit LSTM with about
# a third of the parameters.

# %%
runs = {}
for label, hidden, dropout in (("H=128", 128, 0.0), ("H=128, dropout 0.5", 128, 0.5), ("H=64", 64, 0.0)):
    start = time.perf_counter()
    params, curve = run(hidden, dropout)
    runs[label] = (params, curve)
    best = curve[curve[:, 2].argmin()]
    print(
        f"{label:<20} {params:>7,} parameters  best validation loss {best[2]:.3f} at step {int(best[0])}, "
        f"final {curve[-1, 2]:.3f} (train {curve[-1, 1]:.3f})  [{time.perf_counter() - start:.1f} s]"
    )

best = {label: curve[:, 2].min() for label, (_, curve) in runs.items()}  # the best validation loss
climb = {label: curve[-1, 2] - best[label] for label, (_, curve) in runs.items()}  # final minus best
if not QUICK:  # what the text below says; quick runs are too short to overfit
    assert climb["H=128"] > 0.2 and runs["H=128"][1][-1, 1] < best["H=128"]  # overfits: train far below
    assert abs(best["H=128, dropout 0.5"] - best["H=128"]) < 0.05  # dropout on the output hardly helps
    assert best["H=64"] - best["H=128"] < 0.1 and climb["H=64"] < climb["H=128"]  # as good, climbs less

# %% [markdown]
# ## The picture, and what you should see
#
# The numbers are the ones printed above; with the defaults (600 steps) the
# lesson checks each comparison below (in quick mode the runs are too short
# to overfit).
#
# * Without dropout the big model's training loss (dashed) keeps falling,
#   far below its best validation loss, while its validation loss (solid)
#   bottoms out and then climbs back up by more than 0.2: it is learning
#   this text, not English.
# * With dropout 0.5 the curves hardly move: a best validation loss within
#   0.05 of the run without it, and the same climb afterwards. That is
#   worth understanding rather than hiding. Here dropout only touches the
#   one layer's *output*, on its way to the decoder; the memorising happens
#   in the recurrent weights, which it never sees. Zaremba et al. (2014)
#   get their gains from dropout *between* stacked layers of much bigger
#   models trained far longer; dropping the recurrent connections too needs
#   one mask per sequence, reused at every step (Gal and Ghahramani's
#   "variational" dropout), which minirnn does not do.
# * Early stopping, the lowest point of each solid curve, is the cheap and
#   reliable remedy in this setting: the best value instead of the final one.
# * The 64-unit model, with a third of the parameters, reaches a best
#   validation loss within 0.1 of the big one, and climbs far less after it:
#   exercise 6's "fewer parameters, about as good".
#
# Try: dropout 0.2 and 0.7; two layers (`ModelConfig(..., num_layers=2,
# dropout=0.5)`, where dropout also sits between the layers); or the whole
# text (`train_ids, val_ids = data.split(ids)`), where a model this size
# does not overfit in 600 steps at all.

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
for i, (label, (params, curve)) in enumerate(runs.items()):
    ax.plot(
        curve[:, 0], curve[:, 2], "-o", color=f"C{i}", ms=3, label=f"{label} ({params:,} params): validation"
    )
    ax.plot(curve[:, 0], curve[:, 1], "--", color=f"C{i}", label=f"{label}: training")
ax.set_xlabel("step")
ax.set_ylabel("loss (cross-entropy, nats per character)")
ax.set_title("Overfitting a 10,000-character text")
ax.legend(fontsize=8)
save_figure(fig, FIGURES / "overfitting.png")
