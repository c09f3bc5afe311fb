# %% [markdown]
# # Lesson 4: the LSTM cell, and why its cell state carries gradient
#
# An LSTM keeps two vectors: the output $h$ and the *cell state* $c$. Four
# gates, all computed from the same $x_t$ and $h_{t-1}$, decide what to write
# and what to keep:
#
# $$\begin{aligned}
# i &= \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i) &&\text{input gate: how much to write}\\
# f &= \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f) &&\text{forget gate: how much to keep}\\
# o &= \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o) &&\text{output gate: how much to show}\\
# g &= \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g) &&\text{candidate values}\\
# c_t &= f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t)
# \end{aligned}$$
#
# minirnn stores the four gates' weights side by side in one matrix
# (`Wx` is (D, 4H), gate order i, f, o, g) so that one matrix product serves
# all four. The backward pass is derived in docs/derivations.md#lstm.
#
# Run it: `python lessons/04_lstm_cell.py` (a few seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/04_lstm_cell.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import matplotlib.pyplot as plt
import numpy as np

from minirnn.backend import get_backend
from minirnn.gradcheck import check_cell, format_table, rel_error
from minirnn.lessons import figures, quick, save_figure
from minirnn.lstm import LSTM, lstm_gates_backward

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("04_lstm_cell")

# %% [markdown]
# ## The gates one by one, against the fused cell
#
# First the equations exactly as written above, with a separate weight
# matrix per gate. Then we cut minirnn's fused `Wx`, `Wh`, `b` into those
# per-gate blocks and check that `LSTM.step_forward` computes the same $h_t$
# and $c_t$. You should see differences around 1e-16.


# %%
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_step_by_gate(x, h_prev, c_prev, W):
    """W maps a gate name to its (Wx, Wh, b)."""
    pre = {k: x @ Wx + h_prev @ Wh + b for k, (Wx, Wh, b) in W.items()}  # (N, H) each
    i, f, o = sigmoid(pre["i"]), sigmoid(pre["f"]), sigmoid(pre["o"])
    g = np.tanh(pre["g"])
    c = f * c_prev + i * g  # (N, H)
    return o * np.tanh(c), c


rng = np.random.default_rng(0)
N, D, H = 3, 4, 5
cell = LSTM()
p = cell.init_params(D, H, rng)
x, h_prev, c_prev = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))

blocks = {name: slice(k * H, (k + 1) * H) for k, name in enumerate("ifog")}  # gate order i, f, o, g
W = {name: (p["Wx"][:, s], p["Wh"][:, s], p["b"][s]) for name, s in blocks.items()}
h_mine, c_mine = lstm_step_by_gate(x, h_prev, c_prev, W)
(h_lib, c_lib), cache = cell.step_forward(p, x, (h_prev, c_prev))
print("h_t: gate by gate vs fused, largest difference", np.abs(h_mine - h_lib).max())
print("c_t: gate by gate vs fused, largest difference", np.abs(c_mine - c_lib).max())
assert np.allclose(h_mine, h_lib, atol=1e-12) and np.allclose(c_mine, c_lib, atol=1e-12)
print(
    "forget-gate bias starts at",
    p["b"][blocks["f"]][0],
    "so f starts near sigmoid(1) =",
    round(sigmoid(1.0), 3),
)

# %% [markdown]
# ## The backward pass through the cell state
#
# $c_t$ reaches the loss in two ways: directly (through $c_{t+1}$, carried
# in `dc`) and through $h_t = o\odot\tanh(c_t)$. So the total is
# $dc_t = dc + dh \odot o \odot (1-\tanh^2 c_t)$, and because
# $c_t = f\odot c_{t-1} + \dots$, the part of the gradient that step $t$ passes
# back *along the cell state* is just
#
# $$dc_{t-1}^{\text{carried}} = \frac{\partial L}{\partial c_t} \odot f.$$
#
# No matrix product, no squashing function: an element-wise scaling by the
# forget gate. That is the whole reason LSTMs remember. It is not the whole
# gradient of $c_{t-1}$: $c_{t-1}$ also made $h_{t-1} = o_{t-1}\odot\tanh(c_{t-1})$,
# which feeds all four gates of step $t$ through $W_h$. That second path comes
# back as `dh_prev`, and step $t-1$ adds it to $dc$ exactly as step $t$ does
# here ($dc + dh \odot o \odot (1-\tanh^2 c)$). docs/derivations.md#lstm has both.
# Below we compute the carried part by hand and compare it with minirnn's
# `lstm_gates_backward`; the last section measures how much the other
# path adds.

# %%
gates = cache.gates  # what the step kept for its backward: i, f, o, g, c_prev, tanh_c, (N, H) each
dh, dc = rng.normal(size=(N, H)), rng.normal(size=(N, H))
dc_total = dc + dh * gates.o * (1 - gates.tanh_c**2)
dc_prev_mine = dc_total * gates.f
dc_prev_lib = lstm_gates_backward(dh, dc, *gates)[-1]  # the last of its results: dL/dc_{t-1}
print("dL/dc_{t-1}: by hand vs lstm_gates_backward:", f"{rel_error(dc_prev_mine, dc_prev_lib):.1e}")
assert rel_error(dc_prev_mine, dc_prev_lib) < 1e-12

# %% [markdown]
# ## Gradient check of the whole cell
#
# Every parameter, the inputs, and both initial states $h_0$ and $c_0$, over
# a short sequence with variable lengths. You should see relative errors
# around 1e-10 or smaller, and PASS in every row.

# %%
rows = check_cell("lstm", get_backend("numpy", "float64"))
print(format_table(rows))
assert all(r.passed for r in rows)

# %% [markdown]
# ## The gradient along the cell state, over time
#
# Put a loss on the last cell state only and walk back. If only the direct
# path mattered, $\lVert\partial L/\partial c_t\rVert$ would be the upstream
# gradient multiplied, element by element, by every forget gate from $t+1$ to
# $T$. We compute that "direct path" beside the measured gradient, for three
# forget-gate biases (0: gates half shut, 2: mostly open, 4: nearly always
# open). We shrink $W_h$ (times 0.2) so that the other paths, through
# $h_{t-1}$ and the gates, are weak and the direct one stands out; try 1.0.
#
# You should see each solid line (measured) follow its dashed line (forget
# gates alone) on a scale of many powers of ten, always at or above it: the
# other paths add gradient. How much they add is printed for four draws of
# weights and inputs, as the ratio measured / forget gates alone at $t = 0$:
# largest for bias 0, whose direct path has all but vanished, smallest for
# bias 4. The upstream gradient has norm 1, so $\lVert\partial L/\partial c_0\rVert$
# is the share of it left after $T$ steps: almost nothing with bias 0, a good
# part with bias 4 (both printed). The second panel shows the forget gates of a
# few units over time for bias 2: they move with the input, mostly between
# 0.7 and 1 (the share in that range is printed).

# %%
T = 30 if QUICK else 80
Nb, Db, Hb = 8, 16, 32


def cell_state_gradient(forget_bias, wh_scale=0.2, seed=1):
    """Norms of dL/dc_t (measured, all paths) and of the direct path, t = 0..T-1; and f of sequence 0."""
    rng = np.random.default_rng(seed)
    pb = cell.init_params(Db, Hb, rng)
    pb["b"][Hb : 2 * Hb] = forget_bias  # the f block of the fused bias
    pb["Wh"] *= wh_scale
    xs = rng.normal(size=(T, Nb, Db))
    state, caches = cell.zero_state(np, Nb, Hb, np.float64), []
    for t in range(T):
        state, cache = cell.step_forward(pb, xs[t], state)
        caches.append(cache)
    upstream = rng.normal(size=(Nb, Hb))
    upstream /= np.linalg.norm(upstream)  # norm 1: what reaches c_0 is the share that survives
    dstate = (np.zeros((Nb, Hb)), upstream)  # dL/dh_T = 0, dL/dc_T = upstream
    grads = {k: np.zeros_like(v) for k, v in pb.items()}
    measured, direct_norm, forget = np.zeros(T), np.zeros(T), np.zeros((T, Hb))
    direct = upstream.copy()
    for t in reversed(range(T)):
        measured[t], direct_norm[t] = np.linalg.norm(dstate[1]), np.linalg.norm(direct)
        f_t = caches[t].gates.f  # the step's cache keeps x, h_prev and the gates (i, f, o, g, c_prev, tanh_c)
        forget[t] = f_t[0]
        direct = direct * f_t  # the direct path alone: times f, step by step
        _, dstate = cell.step_backward(pb, dstate, caches[t], grads)
    return measured, direct_norm, forget


BIASES, SEEDS = (0.0, 2.0, 4.0), (1, 2, 3, 4)
runs = {(bias, seed): cell_state_gradient(bias, seed=seed) for bias in BIASES for seed in SEEDS}
ratio = {}
for bias in BIASES:
    at_0 = np.array([[runs[bias, seed][0][0], runs[bias, seed][1][0]] for seed in SEEDS])  # measured, direct
    ratio[bias] = at_0[:, 0] / at_0[:, 1]
    print(
        f"forget bias {bias:g}: |dL/dc_0| measured {at_0[:, 0].min():.1e} to {at_0[:, 0].max():.1e}, "
        f"forget gates alone {at_0[:, 1].min():.1e} to {at_0[:, 1].max():.1e}; "
        f"measured / alone {ratio[bias].min():.2f} to {ratio[bias].max():.2f}"
    )
    assert (ratio[bias] >= 1).all()  # the other paths add to the carried gradient, in every draw
assert ratio[0.0].min() > ratio[4.0].max()  # and matter most where the forget gates shut the direct path
forget_shown = runs[2.0, SEEDS[0]][2]
in_range = np.mean((forget_shown >= 0.7) & (forget_shown <= 1))
print(f"bias 2: {in_range:.0%} of the forget gates lie in [0.7, 1]")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
for bias, color in zip(BIASES, ("C0", "C1", "C2")):
    measured, direct_norm, _ = runs[bias, SEEDS[0]]
    ax1.semilogy(measured, color=color, lw=2, label=f"forget bias {bias:g}: measured")
    ax1.semilogy(direct_norm, color=color, lw=1.5, ls="--", label=f"forget bias {bias:g}: forget gates alone")
ax1.set_xlabel("time step t (the loss is on c at the last step)")
ax1.set_ylabel("norm of dL/dc_t")
ax1.set_title("Gradient along the cell state")
ax1.legend(fontsize=7)
im = ax2.imshow(forget_shown[:, :12].T, aspect="auto", cmap="viridis", vmin=0, vmax=1)
ax2.set_xlabel("time step t")
ax2.set_ylabel("unit")
ax2.set_title("forget gate f of 12 units (bias 2, sequence 0)")
fig.colorbar(im, ax=ax2)
save_figure(fig, FIGURES / "cell_state_gradient.png")

# %% [markdown]
# ## What you should have seen
#
# * the fused cell equals the gate-by-gate equations (1e-16);
# * every gradient-check row PASSes with errors near 1e-10 or smaller;
# * `cell_state_gradient.png`: each measured curve following its forget-gate
#   curve, at or above it. Along $c$, each step multiplies the gradient by a forget gate, not
#   by a matrix and a tanh slope as in the vanilla RNN (lesson 3), so the
#   network controls how long gradient (and memory) lasts.
#
# Try it: `cell_state_gradient(2.0, wh_scale=1.0)`. The measured gradient now
# lies well above the direct path: the paths through $h$ add to it (and with
# a large $W_h$ they can make it explode, just as in a vanilla RNN).
