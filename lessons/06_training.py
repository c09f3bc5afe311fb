# %% [markdown]
# # Lesson 6: training with Adam and gradient clipping (and what goes wrong without)
#
# One training step of the tutorial's model is four lines:
#
# 1. forward and backward over a batch: `loss = model.loss_and_grads(x, y)`;
# 2. cap the length of the whole gradient: `clip_by_global_norm(model.grads, 5)`;
# 3. one Adam update: `opt.step(model.grads)`;
# 4. repeat with the next batch.
#
# This lesson writes Adam's update and the clipping by hand and checks them
# against `minirnn.optim`, writes the training loop and checks it against
# `minirnn.train.train`, and then does the tutorial's exercise 6: what
# happens without clipping, or with a learning rate that is too high?
# Equations and the reasons: docs/optim.md.
#
# Run it: `python lessons/06_training.py` (about 15 seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/06_training.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minirnn import Adam, CharRNN, ModelConfig, clip_by_global_norm, data, get_backend
from minirnn.gradcheck import rel_error
from minirnn.lessons import figures, quick, save_figure
from minirnn.train import TrainConfig, train

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("06_training")

STEPS = 40 if QUICK else 300  # training steps per experiment; try 1000
N, T = 32, 50  # batch, sequence length
HIDDEN = {"rnn": 128, "lstm": 64}  # small models: this lesson is about the optimiser

# %% [markdown]
# ## Adam, by hand
#
# Adam keeps two running averages per parameter: $m$ of the gradient and
# $v$ of its square. The step divides one by the square root of the other,
# so every parameter moves by about `lr` whatever the scale of its gradient:
#
# $$m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
# \theta \leftarrow \theta - \mathrm{lr}\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m}{\sqrt v + \epsilon}$$
#
# (The fraction in the middle undoes the bias of $m$ and $v$ towards their
# zero start; TensorFlow, and minirnn, fold it into the step size.) Three
# steps by hand against `minirnn.Adam`: you should see differences around 1e-16.

# %%
rng = np.random.default_rng(0)
theta = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
mine = {k: v.copy() for k, v in theta.items()}
m = {k: np.zeros_like(v) for k, v in theta.items()}
v = {k: np.zeros_like(v) for k, v in theta.items()}
lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
opt = Adam(theta, lr)
for t in range(1, 4):
    g = {k: rng.normal(size=a.shape) for k, a in theta.items()}
    for k in mine:
        m[k] = b1 * m[k] + (1 - b1) * g[k]
        v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
        mine[k] -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m[k] / (np.sqrt(v[k]) + eps)
    opt.step(g)
for k in mine:
    print(f"{k}: by hand vs minirnn.Adam, largest difference {np.abs(mine[k] - theta[k]).max():.1e}")
    assert np.allclose(mine[k], theta[k], rtol=0, atol=1e-14)

# %% [markdown]
# ## Clipping: the global norm, and the element-wise clamp
#
# Clipping by global norm treats all the gradients as one long vector $g$ and,
# when $\lVert g\rVert$ exceeds a threshold $c$, shrinks it to length $c$:
# $g \leftarrow g \cdot c / \max(\lVert g\rVert, c)$. The direction is kept.
# char-rnn and min-char-rnn instead clamp every element to $[-5, 5]$, which
# keeps small elements and flattens large ones, so it also turns the
# gradient. Below, a gradient with one large entry: you should see a cosine
# of 1 after global-norm clipping and well below 1 after clamping.

# %%
grads = {"Wh": np.array([[40.0, 1.0], [-2.0, 0.5]]), "b": np.array([3.0, -1.0])}
flat = np.concatenate([a.ravel() for a in grads.values()])
by_hand = flat * 5 / max(np.linalg.norm(flat), 5)
clamped = np.clip(flat, -5, 5)
lib = {k: a.copy() for k, a in grads.items()}
norm = clip_by_global_norm(lib, 5.0)  # in place; returns the norm before clipping
lib_flat = np.concatenate([a.ravel() for a in lib.values()])
print(f"norm before {float(norm):.2f}, after {np.linalg.norm(lib_flat):.2f}")
print(f"global norm, by hand vs clip_by_global_norm: {rel_error(by_hand, lib_flat):.1e}")
cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
print(f"cosine with the original: global-norm clip {cos(flat, lib_flat):.4f}, "
      f"element-wise clamp {cos(flat, clamped):.4f}")
assert rel_error(by_hand, lib_flat) < 1e-14

# %% [markdown]
# ## The training loop, by hand, against `minirnn.train`
#
# Now the four lines on Tiny Shakespeare. `minirnn.train.train` does the
# same, plus logging, validation and checkpoints; given the same seeds it
# must produce the very same losses. We build the batches and the model
# exactly as it does (batch order from the seed `[seed, 1]`, weights from
# `seed`) and compare. You should see equal losses, to float32 rounding.

# %%
be = get_backend("numpy", "float32")
text = data.load_text()
vocab, ids = data.prepare(text)
train_ids, val_ids = data.split(ids, 0.1)


def run(cell, lr, clip, steps=STEPS, seed=0):
    """Train a one-layer model by hand; returns per-step losses and gradient norms (before clipping)."""
    model = CharRNN(ModelConfig(len(vocab), HIDDEN[cell], 1, cell), be, seed=seed)
    opt = Adam(model.params, lr)
    batches = data.Batches(train_ids, N, T, seed=[seed, 1])
    losses, norms = [], []
    for _ in range(steps):
        x, y = batches.next()
        loss, _, _ = model.loss_and_grads(be.asarray(x), be.asarray(y))  # forward + backward
        norm = clip_by_global_norm(model.grads, clip)  # clip == 0: off
        opt.step(model.grads)  # Adam
        losses.append(be.scalar(loss))
        norms.append(be.scalar(norm))
        if not np.isfinite(losses[-1]):
            break
    return np.array(losses), np.array(norms)


check_steps = 10 if QUICK else 20
losses, _ = run("lstm", 2e-3, 5.0, steps=check_steps)
with tempfile.TemporaryDirectory() as tmp:
    result = train(TrainConfig(cell="lstm", hidden_size=HIDDEN["lstm"], num_layers=1, lr=2e-3, batch_size=N,
                               seq_length=T, clip=5.0, max_steps=check_steps, print_every=1, eval_every=0,
                               checkpoint_every=0, out=str(Path(tmp) / "run"), cache_dir="", quiet=True))
lib_losses = np.array([row["loss"] for row in result.history if "loss" in row])
print("by hand:      ", losses[-5:].round(4))
print("minirnn.train:", lib_losses[-5:].round(4))
assert np.allclose(losses, lib_losses, rtol=1e-5)

# %% [markdown]
# ## Exercise 6: no clipping, and learning rates that are too high
#
# Seven runs of the same length. The vanilla RNN (128 units) is where
# exploding gradients live (lesson 3), so six runs use it: three learning
# rates, each with and without clipping. The last run is a small LSTM.
# Look at two things: the loss, and the gradient norm before clipping (the
# dashed line is the threshold, 5).
#
# What you should see, with the default 300 steps:
#
# * at 2e-3 and 2e-2 the norm stays near or below 5, clipping hardly ever
#   acts, and the curves with and without it almost coincide (final losses
#   near 2.26 and 2.05: the larger rate learns faster);
# * at 5e-2 the learning rate is too high: the norm spikes far above 5 (to
#   about 100, once to thousands), and after each spike the loss jumps. The
#   unclipped run takes its spike at full length: its loss leaps back to
#   about 4 and ends near 2.85. Clipped, every spike is cut to length 5 and
#   the loss ends lower (about 2.5), but still well above the 2e-2 run:
#   clipping bounds the damage of each bad step, it cannot make a step size
#   that is simply too big a good one;
# * the LSTM's gradient norm stays below 1: for this model and learning
#   rate, clipping is a seat belt, not the engine.
#
# One run is one draw: change `seed` in `run` and the spikes land elsewhere.

# %%
runs = [("rnn", 2e-3, 5.0), ("rnn", 2e-3, 0.0), ("rnn", 2e-2, 5.0), ("rnn", 2e-2, 0.0),
        ("rnn", 5e-2, 5.0), ("rnn", 5e-2, 0.0), ("lstm", 2e-3, 5.0)]
results = {}
start = time.perf_counter()
for cell, lr, clip in runs:
    label = f"{cell}, lr {lr:g}, " + (f"clip {clip:g}" if clip else "no clipping")
    results[label] = run(cell, lr, clip)
    losses, norms = results[label]
    print(f"{label:<30} final loss (mean of last 20) {losses[-20:].mean():.3f}   "
          f"largest norm {norms.max():8.1f}   steps with norm > 5: {(norms > 5).sum()}")
print(f"{len(runs)} runs in {time.perf_counter() - start:.1f} s")


def smooth(a, k=10):
    k = min(k, len(a))
    return np.convolve(a, np.ones(k) / k, mode="valid")


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
for i, (label, (losses, norms)) in enumerate(results.items()):
    style = "-" if "no clipping" not in label else ":"
    ax1.plot(smooth(losses), style, color=f"C{i // 2}", label=label, lw=1.5)  # one colour per learning rate
    ax2.semilogy(norms, style, color=f"C{i // 2}", label=label, lw=1)
ax1.set_xlabel("step")
ax1.set_ylabel("training loss (moving average of 10)")
ax1.set_ylim(top=4.5)
ax1.set_title("Loss")
ax1.legend(fontsize=7)
ax2.axhline(5, color="k", ls="--", lw=1)
ax2.set_xlabel("step")
ax2.set_ylabel("global gradient norm, before clipping")
ax2.set_title("Gradient norm (dashed: the clipping threshold)")
save_figure(fig, FIGURES / "clipping_and_lr.png")

# %% [markdown]
# ## Try it
#
# * `STEPS = 1000`: the differences between clipped and unclipped runs grow.
# * The same experiment with the real command: `python -m minirnn.train
#   --cell rnn --hidden-size 64 --num-layers 1 --lr 0.02 --clip 0` (every flag
#   is in docs/flags.md). If the loss becomes NaN, the command stops and says
#   so; docs/troubleshooting.md has what to do.
# * A smaller model that does about as well: lesson 11.
