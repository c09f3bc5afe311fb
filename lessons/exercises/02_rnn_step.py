# %% [markdown]
# # Exercise 2: one step of the vanilla RNN, forward and backward
#
# The vanilla RNN mixes the new input with the old state and squashes the result:
#
# $$a_t = x_t W_x + h_{t-1} W_h + b \quad (N, H), \qquad h_t = \tanh(a_t) \quad (N, H)$$
#
# You write one step forward, `rnn_step_forward(x, h_prev, Wx, Wh, b) -> (h, cache)`,
# and its backward pass, `rnn_step_backward(dh, cache) -> (dx, dh_prev, dWx, dWh, db)`.
# Lesson 2 (lessons/02_rnn_cell.py) walks through the same step; the
# derivation is [docs/derivations.md#vanilla-rnn](../../docs/derivations.md#vanilla-rnn).
# Shapes: N sequences in the batch, D input features, H hidden units.
#
# Replace each `raise NotImplementedError("TODO: ...")`, try each function in
# the cell below it, then grade: `python -m minirnn.grade 02_rnn_step.py`.
# (The "try it" cells are under `if __name__ == "__main__":` so that the
# grader, which imports this file, skips them.)

# %%
import numpy as np

from minirnn.gradcheck import numerical_gradient, rel_error
from minirnn.rnn import RNN

rng = np.random.default_rng(0)
N, D, H = 2, 4, 5

# %% [markdown]
# ## Forward
#
# Keep in the cache what the backward pass needs. $\tanh'(a) = 1 - \tanh^2(a)$
# is cheapest from the output, so keep $h_t$ rather than $a_t$, and keep the
# inputs $x_t$, $h_{t-1}$ and the weights.


# %%
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    """x (N, D), h_prev (N, H), Wx (D, H), Wh (H, H), b (H,) -> h (N, H), cache."""
    ### BEGIN SOLUTION  a = x·Wx + h_prev·Wh + b, h = tanh(a); keep what the backward pass needs
    h = np.tanh(x @ Wx + h_prev @ Wh + b)  # (N, H)
    return h, (x, h_prev, Wx, Wh, h)
    ### END SOLUTION


# %%
if __name__ == "__main__":  # against minirnn's RNN cell: a difference of 0 or about 1e-16
    x, h_prev = rng.normal(size=(N, D)), rng.normal(size=(N, H))
    Wx, Wh, b = 0.5 * rng.normal(size=(D, H)), 0.5 * rng.normal(size=(H, H)), 0.1 * rng.normal(size=H)
    p = {"Wx": Wx, "Wh": Wh, "b": b}
    h, cache = rnn_step_forward(x, h_prev, Wx, Wh, b)
    (h_lib,), _ = RNN().step_forward(p, x, (h_prev,))
    print("h: relative error against minirnn", rel_error(h, h_lib))
    assert rel_error(h, h_lib) < 1e-12

# %% [markdown]
# ## Backward
#
# Given `dh` $= \partial L/\partial h_t$, first go back through the tanh,
# then through the two matrix products and the bias:
#
# $$da = dh \odot (1 - h_t^2),\quad dx = da\,W_x^\top,\quad dh_{t-1} = da\,W_h^\top,\quad
# dW_x = x_t^\top da,\quad dW_h = h_{t-1}^\top da,\quad db = \textstyle\sum_n da_{n,:}$$


# %%
def rnn_step_backward(dh, cache):
    """dh (N, H) -> dx (N, D), dh_prev (N, H), dWx (D, H), dWh (H, H), db (H,)."""
    ### BEGIN SOLUTION  da = dh ⊙ (1 - h²), then the matrix products' gradients
    x, h_prev, Wx, Wh, h = cache
    da = dh * (1 - h * h)  # (N, H)
    return da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)
    ### END SOLUTION


# %% [markdown]
# Check it against central differences of your forward, through
# $L = \sum h_t \odot dh$: relative errors around 1e-10 or smaller. An error
# near 1e-2 or bigger is a bug.

# %%
if __name__ == "__main__":
    dh = rng.normal(size=(N, H))
    grads = rnn_step_backward(dh, cache)

    def loss():
        return (rnn_step_forward(x, h_prev, Wx, Wh, b)[0] * dh).sum()

    for name, grad, array in zip(("dx", "dh_prev", "dWx", "dWh", "db"), grads, (x, h_prev, Wx, Wh, b)):
        err = rel_error(grad, numerical_gradient(loss, array))
        print(f"{name:<8} relative error {err:.1e}")
        assert err < 1e-7

# %% [markdown]
# ## Grade it
#
# `python -m minirnn.grade 02_rnn_step.py`: every row should end in PASS.
