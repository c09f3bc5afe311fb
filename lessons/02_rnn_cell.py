# %% [markdown]
# # Lesson 2: the vanilla RNN cell, forward and backward, by hand
#
# A vanilla RNN keeps one vector of memory, the hidden state $h$. Each time
# step mixes the new input with the old state and squashes the result:
#
# $$a_t = x_t W_x + h_{t-1} W_h + b, \qquad h_t = \tanh(a_t)$$
#
# minirnn writes vectors as rows, one row per sequence in the batch, so
# $x_t$ is (N, D), $h_t$ is (N, H), $W_x$ is (D, H) and $W_h$ is (H, H).
# (The tutorial's column form $a = W h + U x + b$ is the same thing with
# $W_x = U^\top$ and $W_h = W^\top$; see docs/parameters.md.)
#
# In this lesson you write one step forward and backward yourself in NumPy,
# compare it with `minirnn.rnn.RNN`, and check both against finite
# differences. The derivation is in docs/derivations.md#vanilla-rnn.
#
# Run it: `python lessons/02_rnn_cell.py` (a few seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/02_rnn_cell.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import matplotlib.pyplot as plt
import numpy as np

from minirnn.backend import get_backend
from minirnn.gradcheck import check_cell, format_table, numerical_gradient, rel_error
from minirnn.lessons import figures, quick, save_figure
from minirnn.rnn import RNN

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("02_rnn_cell")

# %% [markdown]
# ## One step forward
#
# The cache keeps what the backward pass will need: the step's input, the
# previous state and the new state (tanh's derivative is cheapest from its
# output, $1 - h^2$).


# %%
def rnn_step_forward(x, h_prev, Wx, Wh, b):
    a = x @ Wx + h_prev @ Wh + b  # (N, H)
    h = np.tanh(a)  # (N, H)
    return h, (x, h_prev, h)


rng = np.random.default_rng(0)
N, D, H = 2, 4, 5  # tiny, so the finite differences below are quick
x = rng.normal(size=(N, D))
h_prev = rng.normal(size=(N, H))
Wx, Wh, b = rng.normal(size=(D, H)) * 0.5, rng.normal(size=(H, H)) * 0.5, rng.normal(size=H) * 0.1

h, cache = rnn_step_forward(x, h_prev, Wx, Wh, b)
print("h_t =\n", h.round(3))

# %% [markdown]
# ## One step backward
#
# Given $\partial L/\partial h_t$ (called `dh`), the chain rule through
# $\tanh$ gives $da = dh \odot (1 - h_t^2)$, and then each product is a
# matrix product:
#
# $$dW_x = x_t^\top da,\quad dW_h = h_{t-1}^\top da,\quad db = \textstyle\sum_n da,
# \quad dx_t = da\, W_x^\top,\quad dh_{t-1} = da\, W_h^\top$$


# %%
def rnn_step_backward(dh, cache, Wx, Wh):
    x, h_prev, h = cache
    da = dh * (1 - h * h)  # (N, H)
    return {"Wx": x.T @ da, "Wh": h_prev.T @ da, "b": da.sum(axis=0), "x": da @ Wx.T, "h_prev": da @ Wh.T}


dh = rng.normal(size=(N, H))  # a random upstream gradient: L = sum(h * dh)
mine = rnn_step_backward(dh, cache, Wx, Wh)

# %% [markdown]
# ## The same step in minirnn
#
# `RNN.step_forward(p, x, state)` and `RNN.step_backward(p, dstate, cache, grads)`
# are the library's versions. `step_backward` *adds* the weight gradients
# into `grads` (the same weights are used at every step, so over a sequence
# their gradient is a sum) and returns `dx` and the state gradient.
# You should see differences of 0 or around 1e-16: the same arithmetic.

# %%
cell = RNN()
p = {"Wx": Wx, "Wh": Wh, "b": b}
(h_lib,), lib_cache = cell.step_forward(p, x, (h_prev,))
grads = {k: np.zeros_like(v) for k, v in p.items()}
dx_lib, (dh_prev_lib,) = cell.step_backward(p, (dh,), lib_cache, grads)
print("forward, largest difference:", np.abs(h_lib - h).max())
for name, lib in [
    ("Wx", grads["Wx"]),
    ("Wh", grads["Wh"]),
    ("b", grads["b"]),
    ("x", dx_lib),
    ("h_prev", dh_prev_lib),
]:
    print(f"d{name:<7} mine vs minirnn: {rel_error(mine[name], lib):.1e}")
    assert rel_error(mine[name], lib) < 1e-12

# %% [markdown]
# ## A gradient check
#
# Nudge one number up and down, see how the loss changes, and compare with
# the analytic gradient. `minirnn.gradcheck.numerical_gradient` does this for
# every element of an array (it changes the array in place and puts it back).
# In float64 you should see relative errors around 1e-10 or smaller. An error
# near 1e-2 or bigger means a bug in the backward pass.

# %%
arrays = {"Wx": Wx, "Wh": Wh, "b": b, "x": x, "h_prev": h_prev}


def loss():
    return float((rnn_step_forward(x, h_prev, Wx, Wh, b)[0] * dh).sum())


errors = {}
for name, arr in arrays.items():
    errors[name] = rel_error(mine[name], numerical_gradient(loss, arr))
    print(f"d{name:<7} relative error {errors[name]:.1e}")
assert max(errors.values()) < 1e-7

# %% [markdown]
# ## Over a whole sequence
#
# `minirnn.gradcheck.check_cell` runs the library's sequence forward and
# backward (BPTT, lesson 5) over 4 steps with variable lengths and checks every
# parameter and input, including the initial state. The same table comes out
# of `python -m minirnn.gradcheck --cell rnn` in a terminal.

# %%
rows = check_cell("rnn", get_backend("numpy", "float64"))
print(format_table(rows))
assert all(r.passed for r in rows)

# %% [markdown]
# ## Why the step size h matters
#
# A finite difference has two errors: the Taylor remainder, which shrinks as
# h shrinks, and rounding, which grows as h shrinks (we divide a tiny
# difference by a tiny h). The plot shows both for the simple two-point
# central difference and for the four-point stencil minirnn uses. You should
# see V shapes, both rising on the left (rounding) and on the right
# (truncation): the four-point stencil's truncation error shrinks faster
# (as $h^4$ instead of $h^2$), so its best step is larger and its best error
# lower. The lesson prints where each one is best, and checks those two facts.


# %%
def two_point(f, arr, h):
    grad, flat = np.zeros(arr.size), arr.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad.reshape(arr.shape)


steps = np.logspace(-9, -1, 9 if QUICK else 17)
err2 = [rel_error(mine["Wh"], two_point(loss, Wh, s)) for s in steps]
err4 = [rel_error(mine["Wh"], numerical_gradient(loss, Wh, s)) for s in steps]
best2, best4 = int(np.argmin(err2)), int(np.argmin(err4))
print(f"two-point:  smallest error {err2[best2]:.1e} at h = {steps[best2]:.0e}")
print(f"four-point: smallest error {err4[best4]:.1e} at h = {steps[best4]:.0e}")
assert 0 < best2 < len(steps) - 1 and 0 < best4 < len(steps) - 1  # a V: worse on both sides
assert steps[best4] > steps[best2] and err4[best4] < err2[best2]  # the stencil: a larger h, a lower error
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(steps, np.maximum(err2, 1e-17), "o-", label="two-point central difference")
ax.loglog(steps, np.maximum(err4, 1e-17), "s-", label="four-point stencil (minirnn)")
ax.set_xlabel("step size h")
ax.set_ylabel("relative error of dWh")
ax.set_title("Finite differences: truncation vs rounding")
ax.legend()
save_figure(fig, FIGURES / "step_size.png")

fig, ax = plt.subplots(figsize=(6, 3.5))
names = [f"{r.name}" for r in rows]
ax.bar(names, [max(r.error, 1e-17) for r in rows])
ax.set_yscale("log")
ax.axhline(1e-7, color="red", linestyle="--", label="tolerance 1e-7")
ax.set_ylabel("max relative error")
ax.set_title("Gradient check of minirnn.rnn.RNN over a sequence")
ax.legend()
save_figure(fig, FIGURES / "gradcheck.png")
print(f"largest relative error of the sequence check: {max(r.error for r in rows):.1e}")

# %% [markdown]
# ## What you should have seen
#
# * your step and minirnn's agree to rounding (1e-16);
# * every relative error far below the tolerance 1e-7 (the largest is printed below);
# * `step_size.png`: two V-shaped curves, the four-point one lower and to the right.
#
# Try it: break the backward pass (write `dh * (1 - h)` instead of
# `dh * (1 - h * h)`) and run again; the check fails loudly.
