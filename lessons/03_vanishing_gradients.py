# %% [markdown]
# # Lesson 3: vanishing and exploding gradients, made visible
#
# Training an RNN sends the gradient backwards through time: the gradient
# that reaches $h_t$ from a loss at a later step $\tau$ is a product of one
# Jacobian per step in between,
#
# $$\frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_\tau}\,
# J_\tau J_{\tau-1} \cdots J_{t+1},\qquad
# J_s = \frac{\partial h_s}{\partial h_{s-1}} = \operatorname{diag}(1 - h_s^2)\,W_h^\top
# \text{ (vanilla RNN)}.$$
#
# The gradients are rows, so each step multiplies on the right, and the order
# matters: matrices do not commute. One step of it is the row form
# $dh_{s-1} = (dh_s \odot (1-h_s^2))\,W_h^\top$ of lesson 2.
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
SEEDS = range(5)  # one picture is one draw of inputs and weights; the numbers are printed for five

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
def gradient_norms(cell, p, seed):
    """Norms of dL/dh_t (and dL/dc_t) for t = 0..T-1 when only h_{T-1} feeds the loss; random inputs."""
    rng = np.random.default_rng([seed, 0])
    x = rng.normal(size=(T, N, D))  # random inputs, (T, N, D)
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
    return norms, dstate, (x, g)


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
def all_curves(seed):
    """Every curve of the picture for one draw: name -> norms of dL/dh_t; and the LSTM's dL/dc_t."""
    curves = {}
    for gain in (0.5, 1.0, 2.0):
        cell = RNN()
        p = cell.init_params(D, H, np.random.default_rng([seed, 1]))
        p["Wh"] = gain * orthogonal([seed, 2], H)
        curves[f"RNN, gain {gain}"] = gradient_norms(cell, p, seed)[0][:, 0]
    lstm = LSTM()
    p = lstm.init_params(D, H, np.random.default_rng([seed, 1]))
    norms, *_ = gradient_norms(lstm, p, seed)
    curves["LSTM, forget bias 1 (default)"] = norms[:, 0]
    p["b"][H : 2 * H] = 3.0  # the f block of the fused bias (gate order i, f, o, g)
    curves["LSTM, forget bias 3"] = gradient_norms(lstm, p, seed)[0][:, 0]
    return curves, norms[:, 1]


draws = [all_curves(seed) for seed in SEEDS]
curves, c_norms = draws[0]  # the draw the picture shows
at_0 = {name: np.array([d[0][name][0] for d in draws]) for name in curves}  # |dL/dh_0|, one per draw
print(f"|dL/dh_0| after {T - 1} steps back (|dL/dh_{{T-1}}| = 1), over {len(SEEDS)} draws:")
for name, values in at_0.items():
    print(
        f"  {name:<31} from {values.min():.1e} to {values.max():.1e}   (the picture's draw: {values[0]:.1e})"
    )

# %% [markdown]
# ## Check against the library
#
# minirnn's `LSTM.backward` runs the same BPTT in one call (with the weight
# gradients gathered in a single matrix product after the loop). Feeding it a
# `dhs` that is zero except at the last step must give the same
# $\partial L/\partial h_0$ and $\partial L/\partial c_0$ as our loop: you
# should see relative errors of 0 or a few times 1e-16 (rounding).

# %%
lstm = LSTM()
p_lstm = lstm.init_params(D, H, np.random.default_rng([0, 1]))
_, dstate0, (x, g_last) = gradient_norms(lstm, p_lstm, seed=0)
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
# You should see, on a log scale, reading from the right (where the loss is)
# to the left (back in time): the gain-0.5 RNN falling in a straight line
# (geometric decay); gain 1 falling more slowly; gain 2 *rising* as it goes
# back in time (exploding); the default LSTM, whose forget gates start near
# σ(1) ≈ 0.73, decaying; and the LSTM with forget bias 3 (σ(3) ≈ 0.95)
# decaying far less. How far each one falls depends on the draw of inputs and
# weights: the numbers printed above are the spread over five draws, and in
# every draw the curves keep this order (checked below). The dashed line is
# $\lVert\partial L/\partial c_t\rVert$ for the default LSTM, beside its
# $\lVert\partial L/\partial h_t\rVert$: along the cell state the gradient is
# carried by the forget gates (lesson 4). Training teaches the forget gates
# when to stay open; the initial bias only decides where they start.

# %%
for seed, (d, _) in zip(SEEDS, draws):  # the order of the curves holds in every draw
    h0 = {name: c[0] for name, c in d.items()}
    assert h0["RNN, gain 0.5"] < h0["RNN, gain 1.0"] < 1 < h0["RNN, gain 2.0"], seed
    assert h0["LSTM, forget bias 1 (default)"] < h0["LSTM, forget bias 3"], seed

fig, ax = plt.subplots(figsize=(8, 4.8))
t = np.arange(T)
for name, c in curves.items():
    ax.semilogy(t, np.maximum(c, 1e-300), label=f"{name}: |dL/dh_t|", lw=2)
# dL/dc_{T-1} is zero (only h_{T-1} feeds the loss), so the dashed line stops one step early
ax.semilogy(t[:-1], c_norms[:-1], "k--", lw=1, label="LSTM, forget bias 1 (default): |dL/dc_t|")
ax.axhline(1.0, color="gray", lw=0.5)
ax.annotate(
    "",
    xy=(0.55, 0.4),
    xytext=(0.97, 0.4),
    xycoords="axes fraction",
    arrowprops={"arrowstyle": "->", "color": "gray", "lw": 1.5},
)
ax.text(
    0.76,
    0.42,
    "backward pass: the gradient\ntravels back in time",
    transform=ax.transAxes,
    ha="center",
    va="bottom",
    color="gray",
    fontsize=8,
)
ax.set_xlabel(f"time step t (forward time runs left to right; the loss is at t = {T - 1})")
ax.set_ylabel("norm of the gradient (|dL/dh_t|, |dL/dc_t|)")
ax.set_title(f"How much of a unit gradient at step {T - 1} reaches step t")
ax.legend(fontsize=7, loc="lower right")
save_figure(fig, FIGURES / "grad_norm_vs_t.png")

# %% [markdown]
# ## What you should have seen, and what to try
#
# * The RNN curves are nearly straight lines on the log scale: each step
#   multiplies the gradient by about the same factor.
# * Exploding gradients are not an instability of the forward pass (the
#   states stay in [-1, 1]); they are a property of the product of Jacobians.
#   Lesson 6 shows what they do to training, and how clipping tames them.
# * Try `T = 300`, a larger input scale (`x = 3 * rng.normal(...)` in
#   `gradient_norms`, which saturates tanh), or a GRU (`from minirnn.gru import GRU`).
