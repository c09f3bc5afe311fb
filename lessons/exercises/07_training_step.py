# %% [markdown]
# # Exercise 7: a whole training step, trained on Tiny Shakespeare
#
# Everything so far, put together: a one-layer vanilla-RNN language model
# that reads characters and predicts the next one, the model of
# `python -m minirnn.train --cell rnn --num-layers 1`. You write
#
# * `loss_and_grads(params, x, y) -> (loss, grads)`: the forward pass over a
#   batch of character ids and the backward pass, giving the mean
#   cross-entropy and the gradient of every parameter;
# * `train_step(params, opt, x, y, max_norm) -> (loss, norm)`: one step of
#   training: gradients, clipping by global norm, one Adam update.
#
# This time you use minirnn's pieces, the ones exercises 1 to 6 had you
# write: the cell's sequence pass `CELL.forward` / `CELL.backward` (exercise 3,
# for ids), `layers.dense_forward` / `dense_backward` (exercise 1),
# `layers.sequence_cross_entropy` and its backward (exercise 1), and
# `optim.clip_by_global_norm` and `optim.Adam` (exercise 6). How they chain is
# [docs/derivations.md#the-whole-model](../../docs/derivations.md#the-whole-model);
# lesson 6 (lessons/06_training.py) trains the same way with `CharRNN`.
#
# The parameters are a dict with minirnn's names (docs/parameters.md):
# `l0.Wx` (V, H), `l0.Wh` (H, H), `l0.b` (H,) for the cell, `dec.W` (H, V)
# and `dec.b` (V,) for the decoder. The grader checks your step against
# `CharRNN`, then trains with it on Tiny Shakespeare. Grade:
# `python -m minirnn.grade 07_training_step.py` (a few seconds).

# %%
import os

import numpy as np

from minirnn import CharRNN, ModelConfig, data, get_backend, layers, optim
from minirnn.gradcheck import rel_error
from minirnn.rnn import RNN

CELL = RNN()
QUICK = os.environ.get("MINIRNN_QUICK") == "1"  # the tests' quick mode: a short run

# %% [markdown]
# ## Forward and backward over a batch
#
# `x` and `y` are (N, T) ids, `y` being `x` shifted by one character. The
# cell wants time first: `CELL.forward(p, ids, (h0,))` takes ids (T, N) (a
# one-hot input, looked up as rows of `Wx`) and returns `hs` (T, N, H), the
# final state and a cache. Then:
#
# 1. the decoder on every position at once: `layers.dense_forward(hs.reshape(T * N, H), W, b)`;
# 2. the loss against the targets in the same (time-major) order, `y.T.reshape(T * N)`;
# 3. backward in reverse order: `sequence_cross_entropy_backward`,
#    `dense_backward(dlogits, cache, W, grads, "dec.")` (it *adds* into
#    `grads["dec.W"]` and `grads["dec.b"]`), and `CELL.backward(p, dhs, (dh_T,), cache, cell_grads)`
#    with zero `dh_T` and `cell_grads` the `l0.` entries of `grads` without their prefix.
#
# Start from a zero state, as `minirnn.train` does for every batch.


# %%
def loss_and_grads(params, x, y):
    """params: l0.Wx, l0.Wh, l0.b, dec.W, dec.b; x, y (N, T) ids -> loss (float), grads (same keys)."""
    ### BEGIN SOLUTION  forward (cell, decoder, loss), then backward in reverse; start from a zero state
    N, T = x.shape
    H = params["l0.Wh"].shape[0]
    p = {k[3:]: v for k, v in params.items() if k.startswith("l0.")}  # the cell's own names: Wx, Wh, b
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    h0 = np.zeros((N, H), dtype=params["l0.Wh"].dtype)
    hs, _, cache = CELL.forward(p, np.ascontiguousarray(x.T), (h0,))  # (T, N, H)
    logits, dcache = layers.dense_forward(hs.reshape(T * N, H), params["dec.W"], params["dec.b"])
    loss, lcache = layers.sequence_cross_entropy(logits, y.T.reshape(T * N))
    dlogits = layers.sequence_cross_entropy_backward(lcache)  # (T*N, V)
    dhs = layers.dense_backward(dlogits, dcache, params["dec.W"], grads, "dec.")  # (T*N, H)
    cell_grads = {k[3:]: v for k, v in grads.items() if k.startswith("l0.")}  # the same arrays as grads
    CELL.backward(p, dhs.reshape(T, N, H), (np.zeros_like(h0),), cache, cell_grads)
    return float(loss), grads
    ### END SOLUTION


# %%
if __name__ == "__main__":  # against minirnn's CharRNN on a small batch: errors of about 1e-15
    be = get_backend("numpy", "float64")
    vocab, ids = data.prepare(data.load_text())
    V, H = len(vocab), 64
    model = CharRNN(ModelConfig(V, H, num_layers=1, cell="rnn"), be, seed=0)
    params = model.host_params()
    x, y = ids[:200].reshape(4, 50), ids[1:201].reshape(4, 50)
    loss, grads = loss_and_grads(params, x, y)
    lib_loss = float(model.loss_and_grads(x, y)[0])
    print(f"loss {loss:.6f}, minirnn {lib_loss:.6f}")
    for k in grads:
        print(f"d{k:<6} relative error against minirnn {rel_error(grads[k], model.grads[k]):.1e}")
        assert rel_error(grads[k], model.grads[k]) < 1e-10

# %% [markdown]
# ## One training step
#
# Clip the gradients (the norm `clip_by_global_norm` returns is the one
# before clipping: return it), then let the optimiser update the parameters
# in place: `opt.step(grads)`.


# %%
def train_step(params, opt, x, y, max_norm):
    """One step: gradients of the batch, clipped to max_norm, one opt.step. Returns loss and norm."""
    ### BEGIN SOLUTION  loss_and_grads, then clip_by_global_norm, then opt.step
    loss, grads = loss_and_grads(params, x, y)
    norm = optim.clip_by_global_norm(grads, max_norm)
    opt.step(grads)
    return loss, float(norm)
    ### END SOLUTION


# %% [markdown]
# ## Train it on Tiny Shakespeare
#
# Batches of 32 windows of 50 characters, Adam at a learning rate of 2e-3,
# clipping at 5. The loss starts near $\ln V = \ln 65 \approx 4.17$ (a uniform
# guess) and should fall below 2.6 in 300 steps: the model has learnt which
# characters are common and which follow which. Then it writes some text.

# %%
if __name__ == "__main__":
    STEPS = 40 if QUICK else 300
    params = model.host_params()
    opt = optim.Adam(params, lr=2e-3)
    train, _ = data.split(ids)
    batches = data.Batches(train, 32, 50, seed=0)
    losses = []
    for step in range(1, STEPS + 1):
        loss, norm = train_step(params, opt, *batches.next(), max_norm=5.0)
        losses.append(loss)
        if step % 50 == 0 or step == STEPS:
            print(f"step {step:4d}  loss {loss:.3f}  gradient norm {norm:.2f}")
    start, end = np.mean(losses[:5]), np.mean(losses[-5:])
    print(f"loss: {start:.2f} at the start (ln 65 = {np.log(65):.2f}), {end:.2f} at the end")
    assert abs(start - np.log(65)) < 0.3
    assert QUICK or end < 2.6

# %% [markdown]
# Sampling, one character at a time, from the trained weights: each step
# feeds the last character back in (a one-hot row) and carries the state.

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)
    p = {k[3:]: v for k, v in params.items() if k.startswith("l0.")}
    h, char, text = np.zeros((1, H)), vocab.encode("T"), "T"
    for _ in range(200):
        (h,), _ = CELL.step_forward(p, np.eye(V)[char], (h,))
        logits = h @ params["dec.W"] + params["dec.b"]
        prob = np.exp(logits[0] - logits.max())
        char = rng.choice(V, size=1, p=prob / prob.sum())
        text += vocab.decode(char)
    print(text)

# %% [markdown]
# ## Grade it
#
# `python -m minirnn.grade 07_training_step.py`: both rows should end in
# PASS. The grader trains your `train_step` for a few steps on Tiny
# Shakespeare and compares every loss with minirnn's.
