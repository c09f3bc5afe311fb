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
# Run it: `python lessons/06_training.py` (about a minute), or open it as a notebook
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
from matplotlib.ticker import NullFormatter, ScalarFormatter

from minirnn import SGD, Adam, CharRNN, ModelConfig, clip_by_global_norm, data, get_backend
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
# $$m \gets \beta_1 m + (1-\beta_1) g,\qquad v \gets \beta_2 v + (1-\beta_2) g^2,$$
#
# $$\theta \gets \theta - \mathrm{lr}\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m}{\sqrt v + \epsilon}$$
#
# (The fraction in the middle undoes the bias of $m$ and $v$ towards their
# zero start; TensorFlow, and minirnn, fold it into the step size.) Three
# steps by hand against `minirnn.Adam`: you should see differences of 0, or
# around 1e-16 if the arithmetic runs in another order.

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
        mine[k] -= lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m[k] / (np.sqrt(v[k]) + eps)
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
print(
    f"cosine with the original: global-norm clip {cos(flat, lib_flat):.4f}, "
    f"element-wise clamp {cos(flat, clamped):.4f}"
)
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


def run(cell, lr, clip, steps=STEPS, seed=0, optimizer=Adam):
    """Train a one-layer model by hand; returns per-step losses and gradient norms (before clipping)."""
    model = CharRNN(ModelConfig(len(vocab), HIDDEN[cell], 1, cell), be, seed=seed)
    opt = optimizer(model.params, lr)
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
    result = train(
        TrainConfig(
            cell="lstm",
            hidden_size=HIDDEN["lstm"],
            num_layers=1,
            lr=2e-3,
            batch_size=N,
            seq_length=T,
            clip=5.0,
            max_steps=check_steps,
            print_every=1,
            eval_every=0,
            checkpoint_every=0,
            out=str(Path(tmp) / "run"),
            cache_dir="",
            quiet=True,
        )
    )
lib_losses = np.array([row["loss"] for row in result.history if "loss" in row])
print("by hand:      ", losses[-5:].round(4))
print("minirnn.train:", lib_losses[-5:].round(4))
assert np.allclose(losses, lib_losses, rtol=1e-5)

# %% [markdown]
# ## Exercise 6: no clipping, and a learning rate that is too high
#
# The vanilla RNN (128 units) is where exploding gradients live (lesson 3),
# so every run here uses it, for `STEPS` steps, with three seeds each: one
# run is one draw, and a spike can land anywhere. We record the loss and the
# gradient norm before clipping.
#
# **Without clipping.** Adam hides most of what clipping is for. It divides
# each step by the running root-mean-square of the gradient, so one huge
# gradient moves each parameter by at most about $3\,\mathrm{lr}$
# ($(1-\beta_1)/\sqrt{1-\beta_2} \approx 3.2$), whatever its size. So we take
# the optimiser clipping was invented for (Pascanu et al., 2013,
# [arXiv:1211.5063](https://arxiv.org/abs/1211.5063)): plain gradient descent,
# $\theta \leftarrow \theta - \mathrm{lr}\, g$, where a gradient 1000 times too
# long is a step 1000 times too long. Learning rate 1, with the gradient
# clipped to length 1 and without.
#
# What you should see: without clipping, within a few dozen steps the norm
# shoots far above the threshold (printed: more than ten times it, in every
# seed), each of those steps throws the weights far away, and the loss ends
# *above* $\log 65 \approx 4.17$, worse than guessing every character with
# equal probability. With clipping, the same runs learn. Both are checked
# below, for every seed.

# %%
SEEDS = (0, 1, 2)
LOG_V = float(np.log(len(vocab)))  # the loss of a uniform guess


def final(losses):
    """The mean loss of the last 10 steps; infinite for a run that ended in NaN or overflow."""
    return float(losses[-10:].mean()) if np.isfinite(losses).all() else np.inf


start = time.perf_counter()
sgd = {(clip, seed): run("rnn", 1.0, clip, seed=seed, optimizer=SGD) for clip in (1.0, 0.0) for seed in SEEDS}
for (clip, seed), (losses, norms) in sgd.items():
    setting = f"clip {clip:g}" if clip else "no clipping"
    print(
        f"SGD lr 1, {setting:<11} seed {seed}: final loss {final(losses):6.3f}"
        f"   largest norm {norms.max():10.1f}   steps with norm > 1: {(norms > 1).sum():>3}"
    )
for seed in SEEDS:
    (clipped, clipped_norms), (unclipped, unclipped_norms) = sgd[1.0, seed], sgd[0.0, seed]
    assert unclipped_norms.max() > 10, seed  # the gradient explodes: more than 10 times the threshold
    assert final(unclipped) > LOG_V > final(clipped), seed  # unclipped: worse than a uniform guess
print(f"{len(sgd)} runs in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# **Too high a learning rate.** Now Adam, clipped at 5 as the tutorial
# does, at three learning rates: 2e-3, 2e-2 and 1e-1. What you should see:
# with the default 300 steps 2e-2 ends lowest (it learns faster than 2e-3:
# checked when `QUICK` is off, since in 40 steps the order of those two can
# go either way); 1e-1 is too high: each step overshoots, the loss falls more
# slowly or climbs back, and it ends above the 2e-2 run in every seed, already
# after 40 steps (checked in both modes). Clipping cannot rescue it: it bounds
# the length of the gradient, and Adam's step does not grow with that length;
# clipping bounds the damage of one bad gradient, it cannot make a step size
# that is simply too big a good one.

# %%
start = time.perf_counter()
LRS = (2e-3, 2e-2, 1e-1)
adam = {(lr, seed): run("rnn", lr, 5.0, seed=seed) for lr in LRS for seed in SEEDS}
for (lr, seed), (losses, norms) in adam.items():
    print(
        f"Adam lr {lr:<5g} clip 5, seed {seed}: final loss {final(losses):6.3f}   "
        f"largest norm {norms.max():8.1f}   steps with norm > 5: {(norms > 5).sum():>3}"
    )
for seed in SEEDS:
    assert final(adam[1e-1, seed][0]) > final(adam[2e-2, seed][0]), seed  # too high: worse, clipped or not
    if not QUICK:
        assert final(adam[2e-2, seed][0]) < final(adam[2e-3, seed][0]), seed  # larger, up to a point: faster
print(f"{len(adam)} runs in {time.perf_counter() - start:.1f} s")


def smooth(a, k=10):
    k = min(k, len(a))
    return np.convolve(a, np.ones(k) / k, mode="valid")


def draw(ax_loss, ax_norm, runs, label_of, color_of, threshold, title):
    labelled = set()
    for key, (losses, norms) in runs.items():
        label, color = label_of(key), color_of(key)
        first = label not in labelled
        labelled.add(label)
        steps = np.arange(1, len(losses) + 1)
        curve = smooth(losses)
        ax_loss.plot(
            steps[len(steps) - len(curve) :],
            curve,
            color=color,
            lw=1.2,
            label=f"{label} ({len(SEEDS)} seeds)" if first else None,
        )
        ax_norm.semilogy(steps, norms, color=color, lw=0.8, alpha=0.8, label=label if first else None)
    ax_loss.axhline(LOG_V, color="gray", ls=":", lw=1, label="uniform guess, log 65")
    ax_loss.set(xlabel="step", ylabel="training loss (moving average of 10 steps)", title=f"{title}: loss")
    ax_norm.axhline(threshold, color="k", ls="--", lw=1, label=f"clipping threshold {threshold:g}")
    ax_norm.set(xlabel="step", ylabel="gradient norm before clipping", title=f"{title}: gradient norm")
    ax_loss.legend(fontsize=8)
    ax_norm.legend(fontsize=8)


fig, axes = plt.subplots(2, 2, figsize=(12, 8))
draw(
    axes[0, 0],
    axes[0, 1],
    sgd,
    lambda k: f"clip at {k[0]:g}" if k[0] else "no clipping",
    lambda k: "C0" if k[0] else "C3",
    1.0,
    "SGD, lr 1",
)
draw(
    axes[1, 0],
    axes[1, 1],
    adam,
    lambda k: f"lr {k[0]:g}",
    lambda k: f"C{LRS.index(k[0]) + 1}",
    5.0,
    "Adam, clip at 5",
)
for ax in (axes[0, 0], axes[1, 0]):  # a log scale: losses far above the uniform guess stay on the plot
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_yticks([t for t in (2, 3, 4, 6, 10, 20, 40) if low <= t <= high])  # plain numbers, in range
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
save_figure(fig, FIGURES / "clipping_and_lr.png")

# %% [markdown]
# ## Try it
#
# * `STEPS = 1000`, or Adam without clipping (`run("rnn", 2e-2, 0.0)`): Adam's
#   division by the running size of the gradient absorbs most spikes, but not
#   all of them, and which seed meets one is a matter of chance.
# * The same experiment with the real command: `python -m minirnn.train
#   --cell rnn --hidden-size 64 --num-layers 1 --lr 0.02 --clip 0` (every flag
#   is in docs/flags.md). If the loss becomes NaN, the command stops and says
#   so; docs/troubleshooting.md has what to do.
# * A smaller model that does about as well: lesson 11.
