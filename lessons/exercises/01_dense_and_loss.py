# %% [markdown]
# # Exercise 1: the dense layer and the softmax cross-entropy, forward and backward
#
# A language model ends in two pieces that have nothing recurrent about them:
# a dense layer that turns each hidden state into one score (a *logit*) per
# character, and the softmax cross-entropy that turns the scores into a loss.
# You write both, forward and backward, in NumPy:
#
# * `dense_forward(x, W, b) -> (y, cache)` and `dense_backward(dy, cache) -> (dx, dW, db)`;
# * `softmax_cross_entropy(logits, targets, mask) -> (loss, dlogits)`.
#
# The derivations are in docs/derivations.md, sections
# [Dense layer](../../docs/derivations.md#dense-layer) and
# [Softmax cross-entropy, with a mask](../../docs/derivations.md#softmax-cross-entropy-with-a-mask).
# Shapes: M rows (one per position of the batch), H features in, V characters.
#
# How to work: replace each `raise NotImplementedError("TODO: ...")` with your
# code, run the cell below it to try it, and when you are done grade the file
# in a terminal:
#
#     python -m minirnn.grade 01_dense_and_loss.py
#
# The grader imports this file, checks every function against minirnn's own
# and against central differences, and prints one row per function. The
# "try it" cells start with `if __name__ == "__main__":` so that they run here
# (in a notebook or with `python 01_dense_and_loss.py`) but not when the
# grader imports the file.

# %%
import numpy as np

from minirnn import layers
from minirnn.gradcheck import numerical_gradient, rel_error

rng = np.random.default_rng(0)
M, H, V = 6, 4, 5

# %% [markdown]
# ## The dense layer, forward
#
# One row per position: $y = xW + b$, with $x$ (M, H), $W$ (H, V), $b$ (V,)
# added to every row, $y$ (M, V). Return `y` and a *cache*: whatever your
# backward pass will need (here: `x` and `W`).


# %%
def dense_forward(x, W, b):
    """x (M, H), W (H, V), b (V,) -> y (M, V), cache."""
    ### BEGIN SOLUTION  y = x·W + b, and a cache with what dense_backward needs (x and W)
    y = x @ W + b  # (M, V)
    return y, (x, W)
    ### END SOLUTION


# %%
if __name__ == "__main__":  # try it: the same numbers as minirnn's layer (a difference of 0 or about 1e-16)
    x, W, b = rng.normal(size=(M, H)), rng.normal(size=(H, V)), rng.normal(size=V)
    y, _ = dense_forward(x, W, b)
    y_lib, _ = layers.dense_forward(x, W, b)
    print("y: relative error against minirnn", rel_error(y, y_lib))
    assert rel_error(y, y_lib) < 1e-12

# %% [markdown]
# ## The dense layer, backward
#
# Given `dy` $= \partial L/\partial y$ (M, V), return the gradients of the
# input and of both parameters. The shapes tell you where the transposes go:
# each gradient has the shape of what it is the gradient of.
#
# $$dW = x^\top dy \ \ (H, V), \qquad db = \textstyle\sum_m dy_{m,:} \ \ (V,),
# \qquad dx = dy\, W^\top \ \ (M, H)$$


# %%
def dense_backward(dy, cache):
    """dy (M, V) -> dx (M, H), dW (H, V), db (V,)."""
    ### BEGIN SOLUTION  dx = dy·Wᵀ, dW = xᵀ·dy, db = the sum of dy's rows
    x, W = cache
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)
    ### END SOLUTION


# %% [markdown]
# A gradient check: `numerical_gradient(f, a)` nudges every element of `a`
# up and down and watches the scalar `f()` change (central differences). For
# $L = \sum y \odot dy$ its answer is the gradient of each input. You should
# see relative errors around 1e-10 or smaller.

# %%
if __name__ == "__main__":
    dy = rng.normal(size=(M, V))
    dx, dW, db = dense_backward(dy, dense_forward(x, W, b)[1])

    def loss():
        return (dense_forward(x, W, b)[0] * dy).sum()

    for name, grad, array in (("dx", dx, x), ("dW", dW, W), ("db", db, b)):
        err = rel_error(grad, numerical_gradient(loss, array))
        print(f"{name}: relative error against central differences {err:.1e}")
        assert err < 1e-7

# %% [markdown]
# ## Softmax cross-entropy, with a mask
#
# Each row of `logits` (M, V) scores every character; `targets` (M,) are
# the right ones. The probabilities are $p_m = \mathrm{softmax}(z_m)$ and the
# loss is the mean of $-\log p_{m, y_m}$ over the positions that count:
#
# $$L = \frac{1}{\sum_m w_m} \sum_m w_m \left(-\log p_{m, y_m}\right), \qquad
# dz_m = \frac{w_m}{\sum_m w_m}\big(p_m - \mathrm{onehot}(y_m)\big)$$
#
# where $w_m$ is `mask[m]`: 1 for a real position, 0 for padding (`mask=None`:
# every position is real, and the mean is over all M). Three things to get
# right:
#
# * divide by the number of positions kept, $\sum_m w_m$, not by M;
# * compute $\log p$ stably: subtract each row's maximum before `np.exp`
#   (the logits of a real model can be large enough to overflow);
# * return the loss (a float) and `dlogits` (M, V).


# %%
def softmax_cross_entropy(logits, targets, mask=None):
    """logits (M, V), targets (M,) ids, mask (M,) of 0/1 or None -> loss (a float), dlogits (M, V)."""
    ### BEGIN SOLUTION  the masked mean of -log p[target], and its gradient w·(p - onehot) / Σ w
    M = logits.shape[0]
    w = np.ones(M, dtype=logits.dtype) if mask is None else mask
    count = max(w.sum(), 1)  # an all-padding batch gives 0, not 0/0
    z = logits - logits.max(axis=1, keepdims=True)  # the largest logit of each row is 0: exp cannot overflow
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # (M, V)
    rows = np.arange(M)
    loss = -(w * logp[rows, targets]).sum() / count
    dlogits = np.exp(logp)  # p
    dlogits[rows, targets] -= 1
    dlogits *= w[:, None] / count
    return float(loss), dlogits
    ### END SOLUTION


# %%
if __name__ == "__main__":  # against minirnn's loss, with two padded positions: errors of about 1e-16
    logits, targets = rng.normal(size=(M, V)), rng.integers(0, V, size=M)
    mask = np.array([1, 1, 1, 1, 0, 0], dtype=float)
    loss, dlogits = softmax_cross_entropy(logits, targets, mask)
    lib_loss, cache = layers.sequence_cross_entropy(logits, targets, mask)
    print(f"loss {loss:.6f}, minirnn {float(lib_loss):.6f}")
    lib_dlogits = layers.sequence_cross_entropy_backward(cache)
    print("dlogits: relative error against minirnn", rel_error(dlogits, lib_dlogits))
    assert abs(loss - float(lib_loss)) < 1e-12
    print("padded rows of dlogits (should be zero):", np.abs(dlogits[4:]).max())

# %% [markdown]
# ## Grade it
#
# In a terminal, in this file's folder: `python -m minirnn.grade 01_dense_and_loss.py`.
# Every row should end in PASS. A FAIL row says which array is wrong, by how
# much, and, when it recognises the mistake, what it probably is.
