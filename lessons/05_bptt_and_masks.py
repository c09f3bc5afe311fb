# %% [markdown]
# # Lesson 5: backpropagation through time, masks for variable lengths, truncation
#
# An RNN unrolled over $T$ steps is an ordinary (deep) network whose layers
# share weights. Backpropagation through time (BPTT) is backpropagation on
# that unrolled network: walk the steps in reverse, carry the state gradient
# $dh_{t}$ from step to step, and *add up* each step's contribution to the
# shared weights' gradients. minirnn's `Cell.backward` does exactly that.
#
# Real batches hold sequences of different lengths, padded to the longest.
# A mask $m_{t,n} \in \lbrace 0, 1 \rbrace$ per position (step $t$, sequence
# $n$) says which are real. This lesson shows what the mask must do (and
# checks that minirnn does it), then looks at *truncated* BPTT: cutting a
# long text into windows and carrying the state from one window to the next.
# The details: docs/bptt.md.
#
# Run it: `python lessons/05_bptt_and_masks.py` (a few seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/05_bptt_and_masks.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import matplotlib.pyplot as plt
import numpy as np

from minirnn import CharRNN, ModelConfig, get_backend
from minirnn.gradcheck import check_model, format_table, rel_error
from minirnn.lessons import figures, quick, save_figure

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("05_bptt_and_masks")

be = get_backend("numpy", "float64")  # float64: we compare numbers to many digits

# %% [markdown]
# ## A padded batch
#
# Three words of lengths 7, 4 and 2, padded with the id 0 to length 7. The
# targets are the inputs shifted by one (the next character), as in lesson 1.

# %%
words = ["recurre", "gate", "rn"]
text = "".join(words)
chars = sorted(set(text))  # sorted: the vocabulary never depends on hash order
stoi = {c: i for i, c in enumerate(chars)}
V, T = len(chars), max(len(w) for w in words)
lengths = np.array([len(w) for w in words])
x = np.zeros((len(words), T), dtype=np.int64)
y = np.zeros_like(x)
for n, w in enumerate(words):
    ids = [stoi[c] for c in w]
    x[n, : len(w)] = ids
    y[n, : len(w)] = ids[1:] + ids[:1]  # the next character (wrapping, to keep it short)
mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)  # (N, T)
print("ids:\n", x)
print("mask:\n", mask.astype(int))

# %% [markdown]
# ## What the mask must do
#
# Past a sequence's end, the mask makes three promises:
#
# 1. the state is carried unchanged: $h_{t,n} = m_{t,n}\, \tilde h_{t,n} + (1-m_{t,n})\, h_{t-1,n}$,
#    where $\tilde h_{t,n}$ is what the cell's step computes, so the final
#    state is the state after the last *real* character;
# 2. the output there is zero (so the logits there are just the decoder's
#    bias), and the loss ignores it:
#    $L = \sum_{t,n} m_{t,n}\,\ell_{t,n} / \max(\sum_{t,n} m_{t,n}, 1)$;
# 3. so nothing about the padding can change the loss or any gradient.
#
# We check each one against running every sequence alone, without padding.

# %%
model = CharRNN(ModelConfig(vocab_size=V, hidden_size=8, num_layers=2, cell="lstm"), be, seed=0)
logits, final, _ = model.forward(x, lengths=lengths)  # logits (T, N, V)
pad = mask.T == 0  # (T, N): the padded positions
# the top layer's output there is zero, so the decoder gives just its bias: h W + b = 0 W + b
print(
    "logits past the end minus the decoder's bias, largest:",
    np.abs(logits[pad] - model.params["dec.b"]).max(),
)
assert (logits[pad] == model.params["dec.b"]).all()
for n, w in enumerate(words):
    _, alone, _ = model.forward(x[n : n + 1, : len(w)])
    err = max(np.abs(final[layer][k][n] - alone[layer][k][0]).max() for layer in range(2) for k in range(2))
    print(f"{w!r:>10}: final state, padded batch vs alone: {err:.1e}")
    assert err < 1e-12

loss, _, _ = model.loss_and_grads(x, y, lengths=lengths)
g_padded = model.grad_flat.copy()
nll_sum, count = 0.0, 0
for n, w in enumerate(words):
    loss_n, _, _, _ = model.loss(x[n : n + 1, : len(w)], y[n : n + 1, : len(w)])
    nll_sum += float(loss_n) * len(w)
    count += len(w)
print(f"masked loss {float(loss):.10f}, mean over real characters run alone {nll_sum / count:.10f}")
assert abs(float(loss) - nll_sum / count) < 1e-12

x_junk = x.copy()
x_junk[mask == 0] = V - 1  # different padding ids
y_junk = y.copy()
y_junk[mask == 0] = 1
loss_junk, _, _ = model.loss_and_grads(x_junk, y_junk, lengths=lengths)
print(
    f"other padding: loss changes by {abs(float(loss_junk) - float(loss)):.1e}, "
    f"gradient by {rel_error(model.grad_flat, g_padded):.1e} (both should be 0)"
)
assert rel_error(model.grad_flat, g_padded) < 1e-14

# %% [markdown]
# ## A gradient check with masks
#
# The whole two-layer model, with variable lengths, dropout and a given
# initial state, through the real loss. You should see every row PASS with
# relative errors around 1e-8 or smaller. (`python -m minirnn.gradcheck`
# runs this for every cell.)

# %%
rows = check_model("lstm", be)
print(format_table(rows[:6] + rows[-4:]))
print(f"... {len(rows)} arrays checked, largest error {max(r.error for r in rows):.1e}")
assert all(r.passed for r in rows)

# %% [markdown]
# ## Truncated BPTT and carrying state
#
# A 1 MB text cannot be unrolled in one piece. Instead we cut it into
# windows of $k$ characters, run them in order, and hand each window's final
# state to the next one as its initial state. The *forward* pass is then
# exactly the forward pass over the whole text, but the *backward* pass stops
# at each window's start: gradient from a later window never reaches an
# earlier one. That is truncated BPTT: it limits how far back the model can
# learn a dependency to about $k$ steps.
#
# Below, one sequence of 96 characters: the full-BPTT gradient, then the
# truncated gradient for several window lengths $k$ (weighting each window's
# loss by its share of characters so that the losses agree). We compare the
# gradients of the recurrent weights `l0.Wh`; the decoder's gradient depends
# only on the forward pass, so truncation leaves it alone. You should see
# the losses equal to rounding (about 1e-15, printed) for every $k$, and the
# cosine similarity of the gradients rising towards 1 as $k$ grows, and
# reaching it exactly when one window covers the whole sequence: short
# windows miss part of the gradient, long ones catch almost all of it. Where
# it starts depends on the draw of weights and text, so we run four: the
# cosine at $k = 1$ over them is printed, and the rise is not always
# monotone from one $k$ to the next.

# %%
L = 48 if QUICK else 96
V2 = 12
windows = [1, 2, 4, 8, 16, 48] if QUICK else [1, 2, 4, 8, 16, 32, 96]
SEEDS = (1, 2, 3, 4)


def truncation_cosines(seed):
    """For each window length k: cos(truncated gradient of l0.Wh, full gradient); and the largest loss gap."""
    big = CharRNN(ModelConfig(vocab_size=V2, hidden_size=16, num_layers=1, cell="lstm"), be, seed=seed)
    big.params["l0.Wh"][...] *= 1.5  # a stronger recurrence, so that long-range gradient matters
    seq = np.random.default_rng([seed, 0]).integers(0, V2, size=(4, L + 1))
    xs, ys = seq[:, :-1], seq[:, 1:]
    full_loss, _, _ = big.loss_and_grads(xs, ys)
    g_full = big.grads["l0.Wh"].copy().ravel()  # the recurrent weights' gradient
    cosines, gap = [], 0.0
    for k in windows:
        state, total, g = None, 0.0, np.zeros_like(g_full)
        for start in range(0, L, k):
            xw, yw = xs[:, start : start + k], ys[:, start : start + k]
            loss_w, _, state = big.loss_and_grads(xw, yw, state)  # carry the state forward...
            share = xw.shape[1] / L  # ...but not the gradient backward: that is the truncation
            total += float(loss_w) * share
            g += big.grads["l0.Wh"].ravel() * share
        cosines.append(float(g @ g_full / np.linalg.norm(g) / np.linalg.norm(g_full)))
        gap = max(gap, abs(total - float(full_loss)))
    return np.array(cosines), gap


results = {seed: truncation_cosines(seed) for seed in SEEDS}
for seed, (cosines, gap) in results.items():
    print(
        f"seed {seed}: loss, windowed minus full, at most {gap:.1e}; "
        f"cosine(truncated, full) for k = {windows}:",
        " ".join(f"{c:.3f}" for c in cosines),
    )
    assert gap < 1e-10  # the forward pass is the same: carrying the state loses nothing
    assert abs(cosines[-1] - 1) < 1e-12  # one window over the whole sequence: the full gradient
    assert cosines[0] < cosines[-1]
at_1 = [cosines[0] for cosines, _ in results.values()]
print(f"at k = 1, over {len(SEEDS)} draws: from {min(at_1):.2f} to {max(at_1):.2f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.imshow(mask, cmap="Greys", vmin=0, vmax=3)
for n, w in enumerate(words):
    for t in range(T):
        ax1.text(
            t,
            n,
            w[t] if t < len(w) else "pad",
            ha="center",
            va="center",
            color="black" if t < len(w) else "gray",
            fontsize=9,
        )
ax1.set_yticks(range(len(words)), [f"n={n}, length {len(w)}" for n, w in enumerate(words)])
ax1.set_xticks(range(T))
ax1.set_xlabel("time step t")
ax1.set_title("A padded batch: mask 1 (grey) and 0 (white)")
for seed, (cosines, _) in results.items():
    ax2.semilogx(windows, cosines, "o-", base=2, label=f"draw {seed}")
ax2.set_xlabel("window length k (steps of BPTT)")
ax2.set_ylabel("cosine(truncated gradient, full gradient)")
ax2.set_title(f"Truncated BPTT on sequences of {L}")
ax2.set_ylim(min(at_1) - 0.05, 1.02)
ax2.legend(fontsize=8)
save_figure(fig, FIGURES / "mask_and_truncation.png")

# %% [markdown]
# ## What you should have seen
#
# * final states of the padded batch equal those of each word run alone, and
#   the logits past each word's end are exactly the decoder's bias;
# * the masked loss equals the mean loss over real characters, and changing
#   the padding changes nothing (0.0);
# * the gradient check PASSes in every row;
# * `mask_and_truncation.png`: the mask as a picture, and the cosine rising
#   to 1 as the window grows (it is exactly 1 when one window covers the
#   whole sequence).
#
# The tutorial's training loop, and `python -m minirnn.train` (lesson 6),
# start every batch from a zero state instead: it is simpler, and with the
# batches reshuffled every epoch, the previous batch is not the text that
# came before. Carrying state comes back when we generate text (lesson 7):
# there the state is the model's whole memory of what it has written.
