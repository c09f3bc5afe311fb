# %% [markdown]
# # Lesson 12: the appendix: your own cell, a decoder inside a cell, a bidirectional RNN
#
# The tutorial's appendix shows three things a library user eventually wants:
#
# 1. **writing your own cell**, so that the library's machinery (sequences,
#    masks, stacking, training, gradient checks) runs it;
# 2. **a decoder inside the cell** (`DenseDecoderCell`): the dense layer that
#    turns hidden states into logits, moved into the cell, so the cell's
#    output *is* the logits;
# 3. **a bidirectional RNN**, one cell reading left to right and one right to
#    left, which can fill a gap in the middle of a text from both sides.
#
# minirnn has all three: the cell contract in `minirnn/cell.py`,
# `DenseDecoderCell` and `StackedCell` in `minirnn/wrappers.py`,
# `Bidirectional` in `minirnn/bidirectional.py` and the gap-filling task in
# `minirnn/gapfill.py`. docs/appendix.md explains them in detail.
#
# Run it: `python lessons/12_appendix.py` (about 20 seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/12_appendix.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import matplotlib.pyplot as plt
import numpy as np

from minirnn import LSTM, CharRNN, ModelConfig, gapfill, get_backend
from minirnn.cell import Cell
from minirnn.gradcheck import check_cell, format_table, rel_error
from minirnn.init import gate_kernels
from minirnn.lessons import figures, quick, save_figure
from minirnn.wrappers import DenseDecoderCell, StackedCell, decoded_lm_backward, decoded_lm_loss

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("12_appendix")

# %% [markdown]
# ## 1. Your own cell: a leaky RNN
#
# A cell is a subclass of `Cell` with a list of state names, its parameter
# shapes and initial values, and one step forward and backward. Here is a
# *leaky* RNN: it moves only part of the way towards the new value each step,
# so its state changes slowly (a crude cousin of the LSTM's forget gate):
#
# $$u_t = \tanh(x_t W_x + h_{t-1} W_h + b),\qquad h_t = (1-\alpha)\, h_{t-1} + \alpha\, u_t$$
#
# Its backward, by the chain rule: $du = \alpha\,dh$, $da = du \odot (1-u^2)$,
# the usual products for $W_x$, $W_h$, $b$ and $dx_t$, and
# $dh_{t-1} = (1-\alpha)\,dh + da\,W_h^\top$: the leak is a direct path for the
# gradient, just like the LSTM's cell state.


# %%
class LeakyRNN(Cell):
    """h_t = (1 - alpha) h_{t-1} + alpha tanh(x_t Wx + h_{t-1} Wh + b)."""

    name = "leaky"
    state_names = ("h",)
    alpha = 0.5

    def param_shapes(self, D, H):
        return {"Wx": (D, H), "Wh": (H, H), "b": (H,)}

    def init_params(self, D, H, rng):
        Wx, Wh = gate_kernels(rng, D, H, 1)  # the built-in cells' initialisation
        return {"Wx": Wx, "Wh": Wh, "b": np.zeros(H)}

    def step_forward(self, p, x, state):
        (h_prev,) = state
        u = np.tanh(x @ p["Wx"] + h_prev @ p["Wh"] + p["b"])  # (N, H)
        h = (1 - self.alpha) * h_prev + self.alpha * u  # (N, H)
        return (h,), (x, h_prev, u)

    def step_backward(self, p, dstate, cache, grads):
        (dh,) = dstate
        x, h_prev, u = cache
        da = self.alpha * dh * (1 - u * u)  # (N, H)
        grads["Wx"] += x.T @ da  # += : the weights are shared by every step
        grads["Wh"] += h_prev.T @ da
        grads["b"] += da.sum(axis=0)
        return da @ p["Wx"].T, ((1 - self.alpha) * dh + da @ p["Wh"].T,)


# %% [markdown]
# Everything else comes from the library. The gradient check finds the cell
# by its import path, `module:Class`; for a class defined in this script (or
# notebook) the module is `__main__`. From a terminal, with the class in a
# file `mycells.py`: `python -m minirnn.gradcheck --cell mycells:LeakyRNN`.
# You should see every row PASS, with errors near 1e-10 or smaller.

# %%
CELL = f"{__name__}:LeakyRNN"
rows = check_cell(CELL, get_backend("numpy", "float64"))
print(format_table(rows))
assert all(r.passed for r in rows)

# %% [markdown]
# And a whole model: `ModelConfig(cell="module:Class")` stacks it, adds the
# decoder, and trains it like any built-in cell (`python -m minirnn.train
# --cell mycells:LeakyRNN` does the same from a terminal).

# %%
be = get_backend("numpy", "float64")
rng = np.random.default_rng(0)
V, H, N, T = 12, 16, 4, 10
model = CharRNN(ModelConfig(vocab_size=V, hidden_size=H, num_layers=2, cell=CELL), be, seed=0)
x, y = rng.integers(0, V, size=(N, T)), rng.integers(0, V, size=(N, T))
loss, _, _ = model.loss_and_grads(x, y)
print(
    f"a two-layer leaky RNN: {model.num_params()} parameters, loss {float(loss):.4f} "
    f"(log V = {np.log(V):.4f})"
)

# %% [markdown]
# ## 2. The decoder inside the cell
#
# `DenseDecoderCell(cell, V)` wraps any cell and applies $y_t = h_t W + b$ at
# each step, inside the cell. `StackedCell` is the tutorial's `MultiRNNCell`.
# Their parameter names are chosen so that
# `DenseDecoderCell(StackedCell([LSTM(), LSTM()]), V)` has exactly the names of
# a two-layer `CharRNN` (`l0.Wx`, ..., `dec.W`, `dec.b`). So we can give both
# the *same* parameters and compare: moving the decoder into the cell changes
# where the code is, not the arithmetic. You should see the losses equal and
# the gradients equal to rounding (about 1e-16).

# %%
lm = CharRNN(ModelConfig(vocab_size=V, hidden_size=H, num_layers=2, cell="lstm"), be, seed=1)
decoded = DenseDecoderCell(StackedCell([LSTM(), LSTM()]), V)
assert set(decoded.param_shapes(V, H)) == set(lm.params)
p = dict(lm.params)  # the very same arrays
grads = {k: np.zeros_like(v) for k, v in p.items()}
loss_cell, logits_cell, _, cache = decoded_lm_loss(decoded, p, x, y, V)
decoded_lm_backward(decoded, p, cache, grads)
loss_lm, logits_lm, _ = lm.loss_and_grads(x, y)
print(f"loss: decoder in the cell {float(loss_cell):.12f}, decoder after the cells {float(loss_lm):.12f}")
worst = max(rel_error(grads[k], lm.grads[k]) for k in p)
print(f"largest relative difference of any gradient: {worst:.1e}")
assert abs(float(loss_cell) - float(loss_lm)) < 1e-12 and worst < 1e-10

# %% [markdown]
# ## 3. A bidirectional RNN fills a gap
#
# A bidirectional layer runs one cell forwards and another backwards over the
# same sequence and puts their outputs side by side, so the output at each
# position knows the whole sequence, before *and* after it. That makes it
# useless for generating text left to right (the future does not exist yet)
# but good at filling a gap. `minirnn.gapfill.compare` trains two models of
# about the same size on windows of 24 characters of Tiny Shakespeare whose
# middle 3 characters are hidden, then measures on held-out text how often
# each one guesses a hidden character right:
#
# * a bidirectional LSTM (64 units each way);
# * a forward-only LSTM with as many parameters (about 100 units), which
#   sees only the text before the gap.
#
# What you should see (600 steps; the table prints the numbers): the
# bidirectional model right more often than the forward-only one, and both
# well above always guessing the most common character (a space). By
# position: the forward-only model does best at the gap's first character (it
# follows directly from the text it saw) and worse at each one after; the
# bidirectional one loses less towards the gap's end, or even gains, since
# the text after the gap tells it about the last character. The lesson checks
# these comparisons when `QUICK` is off (20 steps teach neither model much).
# More steps help both (`python -m minirnn.gapfill --steps 3000`).

# %%
cfg = gapfill.GapConfig(steps=20 if QUICK else 600, eval_windows=100 if QUICK else 1000)
res = gapfill.compare(gapfill.load_text(), cfg, log=None)
print(gapfill.format_results(res))
bi, fwd = res["models"]  # bidirectional, then forward-only
assert bi["name"] == "bidirectional" and fwd["name"] == "forward-only"
if not QUICK:
    assert bi["accuracy"] > fwd["accuracy"] > res["baseline"]
    fwd_pos, bi_pos = fwd["per_position"], bi["per_position"]
    assert all(a > b for a, b in zip(fwd_pos, fwd_pos[1:]))  # forward-only: worse at each later position
    assert bi_pos[-1] - bi_pos[0] > fwd_pos[-1] - fwd_pos[0]  # the text after the gap helps at its end

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
names = [m["name"] for m in res["models"]] + ["commonest character"]
accs = [m["accuracy"] for m in res["models"]] + [res["baseline"]]
ax1.bar(names, accs, color=["C0", "C1", "C7"])
for i, a in enumerate(accs):
    ax1.text(i, a, f"{a:.0%}", ha="center", va="bottom")
ax1.set_ylabel("accuracy on hidden characters")
ax1.set_title(f"Filling a {cfg.gap}-character gap ({cfg.steps} steps)")
for i, m in enumerate(res["models"]):
    ax2.plot(
        range(1, cfg.gap + 1),
        m["per_position"],
        "o-",
        color=f"C{i}",
        label=f"{m['name']} (H={m['hidden']}, {m['params']:,} params)",
    )
ax2.axhline(res["baseline"], color="C7", ls="--", label="commonest character")
ax2.set_xticks(range(1, cfg.gap + 1))
ax2.set_xlabel("position in the gap")
ax2.set_ylabel("accuracy")
ax2.set_title("accuracy by position in the gap")
ax2.legend(fontsize=8)
save_figure(fig, FIGURES / "appendix.png")

# %% [markdown]
# ## Try it
#
# * Change `alpha` in `LeakyRNN` and train it with `python -m minirnn.train
#   --cell mycells:LeakyRNN --hidden-size 128 --num-layers 1` (move the class
#   into `mycells.py` first). Compare it with `--cell rnn` (lesson 10's table).
# * A gap of 8 characters: `gapfill.GapConfig(gap=8, window=32)`.
# * A bidirectional GRU: `gapfill.GapConfig(cell="gru")`.
