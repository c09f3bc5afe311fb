# %% [markdown]
# # Lesson 9: a validation set, and accuracy as well as loss
#
# The tutorial trains without a validation set and prints only the training
# loss. Its exercises 2 and 3 ask for both:
#
# * **a validation set**: text the model never trains on, to measure how well
#   it does on text it has not seen. `minirnn.data.split` holds back the last
#   10% of Tiny Shakespeare (a contiguous block: neighbouring characters are
#   too alike for a random sample of positions to be "unseen");
# * **accuracy**: the fraction of positions where the most likely next
#   character is the right one. The loss measures how much probability the
#   model gives the right character; accuracy only whether it ranks it first.
#   Accuracy is easier to explain, the loss is what training minimises and
#   what tells you more (a model can grow more confident without changing its
#   first choice).
#
# Run it: `python lessons/09_validation.py` (about 20 seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/09_validation.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import shutil

import matplotlib.pyplot as plt
import numpy as np

from minirnn import Adam, CharRNN, ModelConfig, clip_by_global_norm, data, get_backend
from minirnn.layers import accuracy
from minirnn.lessons import figures, quick, save_figure, show_image
from minirnn.train import TrainConfig, evaluate, train

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("09_validation")

STEPS = 30 if QUICK else 800
EVAL_EVERY = 10 if QUICK else 50
EVAL_BATCHES = 2 if QUICK else 8  # validation batches of 64 x 50 characters per evaluation
N, T, H, LR = 32, 50, 128, 3e-3

# %% [markdown]
# ## Accuracy, by hand and from the library
#
# For logits $z$ (T, N, V) and targets $y$ (N, T), accuracy is the mean of
# $[\arg\max_j z_{t,n,j} = y_{n,t}]$. `minirnn.layers.accuracy` computes it
# (with an optional mask) as a 0-d array, and `minirnn.train.evaluate` averages
# loss and accuracy over validation windows, each starting from a zero state
# as training does. Check both against a by-hand computation on one batch:
# you should see the same numbers, and, for an untrained model, an accuracy
# near $1/65 \approx 0.015$ or whatever the most common prediction happens to hit.

# %%
be = get_backend("numpy", "float32")
vocab, ids = data.prepare(data.load_text())
train_ids, val_ids = data.split(ids, 0.1)
print(f"training text {len(train_ids):,} characters, validation text {len(val_ids):,}")

model = CharRNN(ModelConfig(len(vocab), H, 1, "lstm"), be, seed=0)
x, y = next(data.eval_windows(val_ids, 64, T))  # the first validation batch, (64, T) each
loss, logits, _, _ = model.loss(be.asarray(x), be.asarray(y))  # logits (T, N, V): time first
by_hand = (be.to_host(logits).argmax(axis=2) == y.T).mean()
lib = be.scalar(accuracy(logits.reshape(-1, len(vocab)), be.asarray(np.ascontiguousarray(y.T).reshape(-1))))
val_loss, val_acc = evaluate(model, val_ids, 64, T, max_batches=1)
print(f"accuracy by hand {by_hand:.4f}, layers.accuracy {lib:.4f}, train.evaluate {val_acc:.4f}")
print(f"loss: model.loss {be.scalar(loss):.4f}, train.evaluate {val_loss:.4f}")
assert abs(by_hand - lib) < 1e-6 and abs(lib - val_acc) < 1e-6 and abs(be.scalar(loss) - val_loss) < 1e-5

# %% [markdown]
# ## Training, with both curves
#
# The loop of lesson 6, now recording the training accuracy of every batch
# (from the logits the step computes anyway: it costs nothing) and, every
# `EVAL_EVERY` steps, the validation loss and accuracy.

# %%
opt = Adam(model.params, LR)
batches = data.Batches(train_ids, N, T, seed=[0, 1])
train_loss, train_acc, space_share, val = [], [], [], []
SPACE = vocab.index[" "]
for step in range(1, STEPS + 1):
    x, y = batches.next()
    xd, yd = be.asarray(x), be.asarray(y)
    loss, logits, _ = model.loss_and_grads(xd, yd)
    targets = be.xp.ascontiguousarray(yd.T).reshape(-1)  # time-major, as the logits
    train_acc.append(be.scalar(accuracy(logits.reshape(-1, len(vocab)), targets)))
    space_share.append(float((be.to_host(logits).argmax(axis=2) == SPACE).mean()))  # how often it says " "
    train_loss.append(be.scalar(loss))
    clip_by_global_norm(model.grads, 5.0)
    opt.step(model.grads)
    if step % EVAL_EVERY == 0:
        val.append((step, *evaluate(model, val_ids, 64, T, max_batches=EVAL_BATCHES)))
        print(
            f"step {step:>4}  train loss {np.mean(train_loss[-EVAL_EVERY:]):.3f} "
            f"acc {np.mean(train_acc[-EVAL_EVERY:]):.3f}   "
            f"validation loss {val[-1][1]:.3f} acc {val[-1][2]:.3f}"
        )

# %% [markdown]
# ## The picture, and what you should see
#
# Both losses fall from about $\log 65 \approx 4.17$ (a uniform guess), and
# both accuracies rise; the values at the start and the end are printed
# below. With a million training characters, a 108,000-parameter model is
# nowhere near memorising (lesson 11 shows what that looks like): the
# validation loss stays close to the training loss. Early on it is even
# *below* the training curve, which averages the last `EVAL_EVERY` batches
# and so lags behind the model being evaluated; by the end validation is a
# little above training (the gap is printed).
#
# Note the start. For the first steps the model's first choice is almost
# always a space (the share is printed), so its accuracy is just how often
# the next character is a space, about 0.15, while the loss is already
# falling: it learns which characters are common long before it can rank the
# right one first. The loss sees progress that the accuracy cannot.


# %%
def trailing_mean(a, k=20):
    """The mean of the last k values at each step (fewer at the start), so the curve starts at step 1."""
    c = np.cumsum(np.concatenate([[0.0], a]))  # c[i]: the sum of the first i values
    i = np.arange(1, len(a) + 1)
    n = np.minimum(i, k)
    return (c[i] - c[i - n]) / n


steps = np.arange(1, STEPS + 1)
v_steps, v_loss, v_acc = map(np.array, zip(*val))
early = min(50, STEPS)  # "the first steps"
space_freq = float(np.mean(val_ids == SPACE))
print(
    f"steps 1 to {early}: a space is the first choice {np.mean(space_share[:early]):.0%} of the time; "
    f"accuracy {np.mean(train_acc[:early]):.3f} (spaces are {space_freq:.3f} of the text); "
    f"loss {train_loss[0]:.2f} at step 1, {train_loss[min(9, STEPS - 1)]:.2f} at step 10, "
    f"{np.mean(train_loss[early - 10 : early]):.2f} around step {early}"
)
assert np.mean(space_share[:early]) > 0.9 and abs(np.mean(train_acc[:early]) - space_freq) < 0.05
assert np.mean(train_loss[early - 10 : early]) < train_loss[0] - 0.5  # while the loss falls
end_loss, end_acc = np.mean(train_loss[-EVAL_EVERY:]), np.mean(train_acc[-EVAL_EVERY:])
print(
    f"end: training loss {end_loss:.3f}, accuracy {end_acc:.3f}; "
    f"validation loss {v_loss[-1]:.3f}, accuracy {v_acc[-1]:.3f}; "
    f"validation minus training loss {v_loss[-1] - end_loss:+.3f}"
)
if not QUICK:  # in quick mode the end is still the start
    assert 0 < v_loss[-1] - end_loss < 0.1

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
panels = [
    (ax1, train_loss, v_loss, "cross-entropy loss (nats per character)", "Loss"),
    (ax2, train_acc, v_acc, "accuracy of the most likely next character", "Accuracy"),
]
for ax, train_curve, val_curve, ylabel, title in panels:
    ax.plot(steps, train_curve, color="C0", lw=0.8, alpha=0.5, label="training batch, each step")
    ax.plot(
        steps, trailing_mean(np.array(train_curve)), color="C0", label="training, mean of the last 20 steps"
    )
    ax.plot(v_steps, val_curve, "o-", color="C1", label="validation (held-out text)")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}: training and validation")
ax2.axhline(space_freq, color="gray", ls=":", lw=1, label="always guessing a space")
ax1.legend(fontsize=8)
ax2.legend(fontsize=8, loc="lower right")
save_figure(fig, FIGURES / "validation.png")

# %% [markdown]
# ## The same from the command line
#
# `python -m minirnn.train` evaluates on the held-out text every
# `--eval-every` steps (`--val-fraction` sets its size), prints the
# validation loss and accuracy, writes them to `RUN_DIR/metrics.jsonl`, and
# draws `RUN_DIR/loss.png`; `python -m minirnn.plot RUN_DIR` redraws it at any
# time, also while training runs (docs/flags.md lists the flags). A short run
# to show the rows it writes:

# %%
run_dir = FIGURES / "run"
shutil.rmtree(run_dir, ignore_errors=True)
result = train(
    TrainConfig(
        hidden_size=32,
        num_layers=1,
        batch_size=16,
        max_steps=20 if QUICK else 60,
        print_every=10,
        eval_every=10 if QUICK else 30,
        eval_batches=2,
        checkpoint_every=0,
        out=str(run_dir),
        quiet=True,
    )
)
for row in result.history:
    if "val_loss" in row:
        print(
            {
                k: round(v, 3) if isinstance(v, float) else v
                for k, v in row.items()
                if k in ("step", "loss", "val_loss", "val_acc")
            }
        )
show_image(run_dir / "loss.png")  # drawn by minirnn.plot when the run ended
