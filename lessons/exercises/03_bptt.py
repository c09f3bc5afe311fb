# %% [markdown]
# # Exercise 3: backpropagation through time, over a padded batch
#
# A cell's step is one link of a chain; backpropagation through time (BPTT)
# walks the chain. You write the two loops, forward and backward, around
# minirnn's vanilla RNN step (exercise 2's step, already written for you as
# `CELL.step_forward` and `CELL.step_backward`):
#
# * `rnn_forward(x, h0, p, mask=None) -> (hs, h_T, cache)`, x (T, N, D), mask (T, N);
# * `rnn_backward(dhs, dh_T, cache) -> (dx, dh0, grads)`, grads a dict with `Wx`, `Wh`, `b`.
#
# The sequences of a batch need not have the same length: `mask[t, n]` is 1
# while sequence n is still going and 0 after its end. Past a sequence's end
#
# * its state is **carried unchanged**: $h_t = m_t \odot \tilde h_t + (1 - m_t) \odot h_{t-1}$,
#   where $\tilde h_t$ is what the step computes;
# * its output is **zero**: `hs[t]` $= m_t \odot \tilde h_t$.
#
# The backward pass is the chain rule through those two lines, walking
# `reversed(range(T))` and carrying `dh`. Read
# [docs/bptt.md](../../docs/bptt.md#masks-sequences-of-different-lengths-in-one-batch)
# first; lesson 5 (lessons/05_bptt_and_masks.py) shows the same thing on pictures.
#
# Try each function in the cell below it, then grade: `python -m minirnn.grade 03_bptt.py`.
# (The "try it" cells run here, not when the grader imports the file.)

# %%
import numpy as np

from minirnn.gradcheck import numerical_gradient, rel_error
from minirnn.rnn import RNN

# CELL.step_forward(p, x_t, (h,)) -> ((h_new,), cache); CELL.step_backward(p, (dh,), cache, grads)
CELL = RNN()
rng = np.random.default_rng(0)
T, N, D, H = 4, 3, 2, 5

# %% [markdown]
# ## Forward
#
# `CELL.step_forward(p, x[t], (h,))` returns the new state as a one-element
# tuple `(h_new,)` and the step's cache. Keep every step's cache (and the
# mask, and `p`) in your cache: the backward pass walks them in reverse.
# With `mask=None` every position is real.


# %%
def rnn_forward(x, h0, p, mask=None):
    """x (T, N, D), h0 (N, H), p {"Wx", "Wh", "b"}, mask (T, N) or None -> hs (T, N, H), h_T (N, H), cache."""
    ### BEGIN SOLUTION  one CELL.step_forward per t; past the end hold the state and zero the output
    T = x.shape[0]
    m_all = np.ones(x.shape[:2], dtype=x.dtype) if mask is None else mask
    hs = np.zeros((T,) + h0.shape, dtype=h0.dtype)
    h, caches = h0, []
    for t in range(T):
        (h_new,), cache = CELL.step_forward(p, x[t], (h,))
        m = m_all[t][:, None]  # (N, 1)
        hs[t] = m * h_new  # the output is zero past a sequence's end
        h = m * h_new + (1 - m) * h  # and the state is carried unchanged
        caches.append(cache)
    return hs, h, (p, m_all, caches)
    ### END SOLUTION


# %%
if __name__ == "__main__":  # a padded batch: lengths 4, 2 and 1. Against minirnn: errors of about 1e-16
    p = {
        "Wx": 0.5 * rng.normal(size=(D, H)),
        "Wh": 0.5 * rng.normal(size=(H, H)),
        "b": 0.1 * rng.normal(size=H),
    }
    x, h0 = rng.normal(size=(T, N, D)), rng.normal(size=(N, H))
    mask = (np.arange(T)[:, None] < np.array([4, 2, 1])[None, :]).astype(float)  # (T, N)
    hs, h_T, cache = rnn_forward(x, h0, p, mask)
    hs_lib, (h_T_lib,), _ = CELL.forward(p, x, (h0,), mask)
    print("hs:  relative error against minirnn", rel_error(hs, hs_lib))
    print("h_T: relative error against minirnn", rel_error(h_T, h_T_lib))
    assert rel_error(hs, hs_lib) < 1e-12 and rel_error(h_T, h_T_lib) < 1e-12

# %% [markdown]
# ## Backward
#
# `dhs` (T, N, H) is the gradient of the loss with respect to the outputs,
# `dh_T` (N, H) with respect to the final state. Walk the steps in reverse
# carrying `dh` (start with `dh = dh_T`). At step t, with $m = $ `mask[t][:, None]`:
#
# * the step itself receives `m * (dhs[t] + dh)`: zero past the end;
# * `CELL.step_backward(p, (that,), cache_t, grads)` *adds* the weight
#   gradients into `grads` and returns `dx[t]` and `(dh_prev,)`;
# * the state was carried past the end, so its gradient is carried back:
#   `dh = dh_prev + (1 - m) * dh`.


# %%
def rnn_backward(dhs, dh_T, cache):
    """dhs (T, N, H), dh_T (N, H) -> dx (T, N, D), dh0 (N, H), grads {"Wx", "Wh", "b"}."""
    ### BEGIN SOLUTION  walk reversed(range(T)) carrying dh; the step gets m·(dhs[t] + dh), carry (1 - m)·dh
    p, m_all, caches = cache
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dx, dh = [None] * len(caches), dh_T
    for t in reversed(range(len(caches))):
        m = m_all[t][:, None]
        dx[t], (dh_prev,) = CELL.step_backward(p, (m * (dhs[t] + dh),), caches[t], grads)
        dh = dh_prev + (1 - m) * dh
    return np.stack(dx), dh, grads
    ### END SOLUTION


# %% [markdown]
# Central differences through $L = \sum hs \odot dhs + \sum h_T \odot dh_T$:
# you should see relative errors around 1e-10 or smaller for every array.

# %%
if __name__ == "__main__":
    dhs, dh_T = rng.normal(size=(T, N, H)), rng.normal(size=(N, H))
    dx, dh0, grads = rnn_backward(dhs, dh_T, cache)

    def loss():
        hs, h_T, _ = rnn_forward(x, h0, p, mask)
        return (hs * dhs).sum() + (h_T * dh_T).sum()

    for name, grad, array in [("dx", dx, x), ("dh0", dh0, h0)] + [(f"d{k}", grads[k], p[k]) for k in p]:
        err = rel_error(grad, numerical_gradient(loss, array))
        print(f"{name:<4} relative error {err:.1e}")
        assert err < 1e-7

# %% [markdown]
# ## Grade it
#
# `python -m minirnn.grade 03_bptt.py`: every row should end in PASS.
