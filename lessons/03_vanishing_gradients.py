# %% [markdown]
# # Lesson 3: vanishing and exploding gradients, made visible
#
# Training an RNN sends the gradient backwards through time: the gradient
# that reaches $h_t$ from a loss at a later step $\tau$ is a product of one
# Jacobian per step in between,
#
# $$\frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_\tau}
# \prod_{s=t+1}^{\tau} \frac{\partial h_s}{\partial h_{s-1}},\qquad
# \frac{\partial h_s}{\partial h_{s-1}} = \operatorname{diag}(1 - h_s^2)\,W_h^\top
# \text{ (vanilla RNN, in row form: } dh_{s-1} = (dh_s \odot (1-h_s^2))\,W_h^\top).$$
#
# If those factors are mostly smaller than one, the product shrinks
# geometrically (vanishing); if larger, it grows (exploding). Here we put a
# loss at the **last** step only and measure $\lVert \partial L/\partial h_t \rVert$
# for every earlier $t$, for vanilla RNNs with three sizes of $W_h$ and for an
# LSTM. docs/bptt.md explains BPTT; lesson 4 explains why the LSTM differs.
#
# Run it: `python lessons/03_vanishing_gradients.py` (a few seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/03_vanishing_gradients.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import matplotlib.pyplot as plt
import numpy as np

from minirnn.gradcheck import rel_error
from minirnn.lessons import figures, quick, save_figure
from minirnn.lstm import LSTM
from minirnn.rnn import RNN

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("03_vanishing_gradients")

T = 40 if QUICK else 100  # time steps; try 300
N, D, H = 4, 8, 32  # batch, input size, hidden units
rng = np.random.default_rng(0)
x = rng.normal(size=(T, N, D))  # random inputs, (T, N, D)

# %% [markdown]
# ## Walking backwards, one step at a time
#
# We run the cell forward with `step_forward`, keeping each step's cache,
# then walk `reversed(range(T))` with `step_backward`, carrying the state
# gradient, exactly as min-char-rnn does. At each step we record the norm of
# $\partial L/\partial h_t$ (and, for the LSTM, of $\partial L/\partial c_t$).
# The upstream gradient at the last step has norm 1, so every number on the
# plot is "how much of it survived".

# %%
def gradient_norms(cell, p):
    """Norms of dL/dh_t (and dL/dc_t) for t = 0..T-1 when only h_{T-1} feeds the loss."""
    state = cell.zero_state(np, N, H, np.float64)
    caches = []
    for t in range(T):
        state, cache = cell.step_forward(p, x[t], state)
        caches.append(cache)
    g = rng.normal(size=(N, H))
    g /= np.linalg.norm(g)  # dL/dh_{T-1}, norm 1
    dstate = (g,) + tuple(np.zeros((N, H)) for _ in cell.state_names[1:])
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    norms = np.zeros((T, len(dstate)))
    for t in reversed(range(T)):
        norms[t] = [np.linalg.norm(d) for d in dstate]  # dL/d(state_t)
        _, dstate = cell.step_backward(p, dstate, caches[t], grads)
    return norms, dstate, g


def orthogonal(seed, H):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(H, H)))
    return q  # every singular value is 1


# %% [markdown]
# The size of $W_h$ is set by its largest singular value, the *gain*: an
# orthogonal matrix times the gain. With gain 0.5 each step at best halves
# the gradient; with gain 2 it can double it (tanh's slope $1-h^2 \le 1$ pulls
# the other way, so it is a tug of war). The LSTM uses minirnn's own
# initialisation (forget-gate bias 1), and once more with forget-gate bias 3.

# %%
curves = {}
for gain in (0.5, 1.0, 2.0):
    cell = RNN()
    p = cell.init_params(D, H, np.random.default_rng(1))
    p["Wh"] = gain * orthogonal(2, H)
    curves[f"RNN, gain {gain}"] = gradient_norms(cell, p)[0][:, 0]

lstm = LSTM()
p_lstm = lstm.init_params(D, H, np.random.default_rng(1))
norms, dstate0, g_last = gradient_norms(lstm, p_lstm)
curves["LSTM, forget bias 1 (default)"] = norms[:, 0]
c_norms = norms[:, 1]
p_lstm3 = {k: v.copy() for k, v in p_lstm.items()}
p_lstm3["b"][H:2 * H] = 3.0  # the f block of the fused bias (gate order i, f, o, g)
curves["LSTM, forget bias 3"] = gradient_norms(lstm, p_lstm3)[0][:, 0]

for name, c in curves.items():
    print(f"{name:<32} |dL/dh_t| at t = T-1: {c[-1]:.1e}   at t = 0: {c[0]:.1e}")

# %% [markdown]
# ## Check against the library
#
# minirnn's `LSTM.backward` runs the same BPTT in one call (with the weight
# gradients gathered in a single matrix product after the loop). Feeding it a
# `dhs` that is zero except at the last step must give the same
# $\partial L/\partial h_0$ and $\partial L/\partial c_0$ as our loop: you
# should see relative errors around 1e-15.

# %%
hs, _, cache = lstm.forward(p_lstm, x, lstm.zero_state(np, N, H, np.float64))
dhs = np.zeros_like(hs)
dhs[-1] = g_last
grads = {k: np.zeros_like(v) for k, v in p_lstm.items()}
_, (dh0, dc0) = lstm.backward(p_lstm, dhs, (np.zeros((N, H)), np.zeros((N, H))), cache, grads)
print("dL/dh_0, our loop vs LSTM.backward:", f"{rel_error(dstate0[0], dh0):.1e}")
print("dL/dc_0, our loop vs LSTM.backward:", f"{rel_error(dstate0[1], dc0):.1e}")
assert rel_error(dstate0[0], dh0) < 1e-10 and rel_error(dstate0[1], dc0) < 1e-10

# %% [markdown]
# ## The picture
#
# You should see, on a log scale: the gain-0.5 RNN falling in a straight line
# (geometric decay, about 1e-35 after 100 steps); gain 1 falling more slowly
# (about 1e-10); gain 2 *rising* as it goes back in time (exploding: about
# 1e5); the default LSTM, whose forget gates start near σ(1) ≈ 0.73, decaying
# about like the gain-1 RNN; and the LSTM with forget bias 3 (σ(3) ≈ 0.95)
# barely decaying at all. The dashed line is
# $\lVert\partial L/\partial c_t\rVert$ for the default LSTM: it runs just
# above the solid one, because the cell state is the path the gradient
# travels along (lesson 4). Training teaches the forget gates when to stay
# open; the initial bias only decides where they start.

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
t = np.arange(T)
for name, c in curves.items():
    ax.semilogy(t, np.maximum(c, 1e-300), label=name, lw=2)
# dL/dc_{T-1} is zero (only h_{T-1} feeds the loss), so the dashed line stops one step early
ax.semilogy(t[:-1], c_norms[:-1], "k--", lw=1, label="LSTM default, |dL/dc_t|")
ax.axhline(1.0, color="gray", lw=0.5)
ax.set_xlabel("time step t (the loss is at the last step)")
ax.set_ylabel("norm of dL/dh_t")
ax.set_title("How much gradient reaches step t")
ax.legend(fontsize=8)
save_figure(fig, FIGURES / "grad_norm_vs_t.png")

# %% [markdown]
# ## What you should have seen, and what to try
#
# * The RNN curves are nearly straight lines on the log scale: each step
#   multiplies the gradient by about the same factor.
# * Exploding gradients are not an instability of the forward pass (the
#   states stay in [-1, 1]); they are a property of the product of Jacobians.
#   Lesson 6 shows what they do to training, and how clipping tames them.
# * Try `T = 300`, a larger input scale (`x = 3 * rng.normal(...)`, which
#   saturates tanh), or a GRU (`from minirnn.gru import GRU`).
