# %% [markdown]
# # Lesson 8: checkpoints, and resuming a run exactly
#
# Training for hours without saving is asking for trouble: a crash, a full
# disk or a closed laptop lid loses everything. A *checkpoint* is a snapshot
# from which training can continue as if it had never stopped, and from which
# you can generate text later without the training data.
#
# What must a checkpoint hold for the continuation to be *exact*? More than
# the parameters:
#
# * the parameters, of course;
# * Adam's two running averages per parameter, $m$ and $v$, and its step count
#   $t$ (the bias correction depends on it);
# * where training is in the data (epoch, position, the shuffling generator);
# * the generator of dropout masks;
# * the configuration and the vocabulary, so the model can be rebuilt and a
#   mismatched resume refused.
#
# This lesson trains a run in one go, trains the same run in two halves with a
# stop and a resume in between, and checks that the losses are identical. Then
# it shows what goes wrong when only the parameters are saved. The format is
# described field by field in docs/checkpoints.md.
#
# Run it: `python lessons/08_checkpoints.py` (about 15 seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/08_checkpoints.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import json
import shutil

import matplotlib.pyplot as plt
import numpy as np

from minirnn import Adam, CharRNN, ModelConfig, checkpoint, clip_by_global_norm, data
from minirnn.lessons import figures, quick, save_figure
from minirnn.train import TrainConfig, resume_config, train

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("08_checkpoints")

HALF = 10 if QUICK else 200  # steps before the stop; the run has twice as many
runs = FIGURES / "runs"
shutil.rmtree(runs, ignore_errors=True)
base = dict(
    cell="lstm",
    hidden_size=64,
    num_layers=1,
    batch_size=32,
    lr=3e-3,
    dropout=0.2,
    print_every=1,
    eval_every=0,
    checkpoint_every=HALF,
    quiet=True,
)

# %% [markdown]
# ## One run in one go, one run in two halves
#
# Both use the same configuration, with dropout 0.2 so that the dropout
# generator matters too. The second run stops after `HALF` steps (its last
# checkpoint is written then), and `resume_config` + `train` continue it: the
# same as `python -m minirnn.train --resume RUN_DIR --max-steps ...` on the
# command line. You should see the two loss curves coincide exactly.

# %%
whole = train(TrainConfig(**base, max_steps=2 * HALF, out=str(runs / "whole")))
first = train(TrainConfig(**base, max_steps=HALF, out=str(runs / "halves")))
print("stopped at step", first.step, "checkpoint", first.checkpoint.name)
second = train(resume_config(runs / "halves", max_steps=2 * HALF, quiet=True))
print("resumed to step", second.step)

loss_whole = np.array([r["loss"] for r in whole.history])
loss_halves = np.array([r["loss"] for r in first.history + second.history])
print("largest difference between the two runs' losses:", np.abs(loss_whole - loss_halves).max())
assert np.array_equal(loss_whole, loss_halves)

# %% [markdown]
# ## What is in a checkpoint
#
# Two files: a JSON with everything but the arrays, written last, and an
# `.npz` with the arrays, named by its SHA-256 so that a damaged or
# half-written file is detected. (Why in that order: docs/checkpoints.md.)

# %%
ckpt_dir = runs / "halves" / "checkpoints"
print(sorted(p.name for p in ckpt_dir.iterdir()))  # step HALF, and step 2 * HALF written at the end
ckpt_json = dict(checkpoint.list_checkpoints(ckpt_dir))[HALF]  # the one the resume started from
meta, arrays = checkpoint.load(ckpt_json)
print("JSON keys:", sorted(meta))
print("model:", meta["model"])
print("optimizer:", meta["optimizer"])
print("vocabulary:", repr("".join(meta["vocab"])))
for name in sorted(arrays)[:6]:
    print(f"  {name:<16} {arrays[name].shape} {arrays[name].dtype}")
print(f"  ... {len(arrays)} arrays in all")
print("the JSON, as it starts on disk:", json.dumps(json.loads(ckpt_json.read_text()))[:200], "...")

# %% [markdown]
# ## Loading a model from a checkpoint
#
# `checkpoint.build_model` rebuilds the `CharRNN` from the JSON's `model`
# entry and loads the parameters: the same as making a fresh `CharRNN` from
# that entry and loading the arrays into it by hand, as below (you should see
# a difference of 0). Whether it is the *trained* model is checked in the next
# section, against the loss the run itself logged.

# %%
model = checkpoint.build_model(meta, arrays)
vocab = data.Vocab(meta["vocab"])
probe = vocab.encode("ROMEO: What say you?")[None, :]
logits_a, _, _ = model.forward(probe)
twin = CharRNN(ModelConfig(**meta["model"]), model.backend)  # fresh weights...
twin.load_params({k[len("param.") :]: a for k, a in arrays.items() if k.startswith("param.")})  # ...replaced
logits_b, _, _ = twin.forward(probe)
print("largest difference of the logits:", float(np.abs(logits_a - logits_b).max()))
assert np.array_equal(logits_a, logits_b)

# %% [markdown]
# ## The simplest checkpoint, and what it forgets
#
# The parameters alone fit in one line: `numpy.savez(path, **model.host_params())`.
# Loading them gives the same model (the same logits, as above). But resume
# training from them with a *fresh* Adam and the loss curve changes: $m$ and
# $v$ restart from zero, the bias correction restarts at $t = 1$, and the first
# steps after the "resume" are as large as the very first steps of training.
# We continue the stopped run for `HALF` steps both ways, with the same
# batches and dropout masks, and compare. You should see the red curve leave
# the exact one right after the resume (Adam's first steps are its largest,
# each parameter moving by about lr whatever its gradient), then run close to
# it but no longer on it; the mean gaps over the first five steps and over the
# second half are printed, and the lesson checks that the curves differ and
# stay within 0.05. With this small model and learning rate the harm is small;
# the point is that it is no longer the same run, so results stop being
# reproducible, and with a large learning rate the jump can undo much of the
# training.

# %%
np.savez(runs / "params_only.npz", **model.host_params())
with np.load(runs / "params_only.npz") as f:
    params_only = {k: f[k] for k in f.files}

text = data.load_text()
vocab_, ids = data.prepare(text, None)
train_ids, _ = data.split(ids, 0.1)
cfg = TrainConfig(**base, max_steps=2 * HALF)
model = CharRNN(
    ModelConfig(len(vocab_), cfg.hidden_size, cfg.num_layers, cfg.cell, cfg.dropout), seed=cfg.seed
)
model.load_params(params_only)
opt = Adam(model.params, cfg.lr)  # fresh: m = v = 0, t = 0
batches = data.Batches(train_ids, cfg.batch_size, cfg.seq_length, seed=[cfg.seed, 1])
batches.load_state_dict(meta["data"]["batches"])  # the same batches as the exact resume
dropout_rng = np.random.default_rng([cfg.seed, 2])
dropout_rng.bit_generator.state = meta["rng"]["dropout"]  # and the same dropout masks
fresh = []
for _ in range(HALF):
    x, y = batches.next()
    loss, _, _ = model.loss_and_grads(x, y, dropout_seed=int(dropout_rng.integers(2**31 - 1)))
    clip_by_global_norm(model.grads, cfg.clip)
    opt.step(model.grads)
    fresh.append(float(loss))
# Before its first update, the loaded model must compute what the run computed at that step: same
# parameters, same batch, same dropout masks. That checks the checkpoint against the training run itself.
print(
    f"step {HALF + 1}: the run logged loss {loss_halves[HALF]:.6f}, the loaded model computes {fresh[0]:.6f}"
)
assert np.isclose(fresh[0], loss_halves[HALF], rtol=1e-6, atol=0)
gap = np.array(fresh) - loss_halves[HALF:]
print(
    f"after the resume, parameters only minus exact: {gap[:5].mean():+.3f} over the first 5 steps, "
    f"{gap[-HALF // 2 :].mean():+.3f} over the last {HALF // 2}"
)
assert (gap != 0).any() and abs(gap[-HALF // 2 :].mean()) < 0.05  # another run, close to the exact one

steps = np.arange(1, 2 * HALF + 1)
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(steps, loss_whole, lw=3, alpha=0.4, label="one run, no stop")
ax.plot(steps, loss_halves, "k--", lw=1, label="stopped and resumed from the checkpoint")
ax.plot(steps[HALF:], fresh, color="C3", lw=1, label="resumed from the parameters only (fresh Adam)")
ax.axvline(HALF, color="gray", lw=0.5)
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.set_title("Resuming: exactly, and from the parameters alone")
ax.legend()
save_figure(fig, FIGURES / "resume.png")

# %% [markdown]
# ## On the command line
#
# ```bash
# python -m minirnn.train --out runs/a --max-steps 1000     # Ctrl-C at any time: it saves, then stops
# python -m minirnn.train --resume runs/a --max-steps 2000  # continues from the newest checkpoint
# python -m minirnn.sample --checkpoint runs/a              # needs only the checkpoint
# ```
#
# A resume refuses options that would change what the run is (another
# hidden size, learning rate, batch size...) with one line that says which:
# docs/flags.md lists them.
