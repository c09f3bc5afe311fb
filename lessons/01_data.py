# %% [markdown]
# # Lesson 1: the data: a vocabulary, ids, batches and shifted targets
#
# A character-level language model reads text one character at a time and,
# at every position, predicts the next character: it models
# $p(x_t \mid x_0, \dots, x_{t-1})$. Before any network, the text has to become
# numbers. This lesson walks through what `minirnn.data` does to Tiny
# Shakespeare (about 1.1 million characters, shipped inside the package):
#
# 1. list the distinct characters (the *vocabulary*) and give each an id;
# 2. turn the text into one long array of ids;
# 3. keep the last 10% apart for validation (lesson 9);
# 4. cut the rest into batches of N rows × T steps, with targets that are
#    the same windows moved one character to the right.
#
# Run it: `python lessons/01_data.py` (a few seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/01_data.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import matplotlib.pyplot as plt
import numpy as np

from minirnn import data
from minirnn.lessons import figures, quick, save_figure

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("01_data")

# %% [markdown]
# ## The text
#
# `data.load_text()` with no argument reads the bundled Tiny Shakespeare; give
# it a path to use your own UTF-8 text.

# %%
text = data.load_text()
print(f"{len(text):,} characters. The beginning:\n")
print(text[:300])

# %% [markdown]
# ## The vocabulary
#
# `Vocab.from_text` counts every character and orders them by frequency,
# most frequent first (the tutorial's loader does the same), breaking ties by
# code point so that the order is the same on every machine and every run.
# (`sorted(set(text))` would also be stable; `list(set(text))` would not:
# Python's set order can change between runs, and a model trained with one
# order is nonsense with another.) You should see 65 characters, space first.
# The tutorial's copy of the text has Windows line ends, so it also counts
# `'\r'` and gets 66.

# %%
vocab = data.Vocab.from_text(text)
print(f"vocabulary of {len(vocab)} characters:", repr("".join(vocab.chars)))
assert len(vocab) == 65 and vocab.chars[0] == " "
ids = vocab.encode(text)
print("ids:", ids[:20], "...", ids.dtype, ids.shape)
print("decode(ids[:20]) =", repr(vocab.decode(ids[:20])))
assert vocab.decode(ids[:300]) == text[:300]  # encoding loses nothing

# %% [markdown]
# ## Training and validation
#
# `data.split` keeps the last 10% of the text for validation. It is a
# contiguous block, not a random sample of characters: neighbouring
# characters are strongly related, so random positions would leak the
# validation text into training.

# %%
train_ids, val_ids = data.split(ids, 0.1)
print(f"train {len(train_ids):,} ids, validation {len(val_ids):,} ids")

# %% [markdown]
# ## Batches, and targets shifted by one
#
# `data.Batches` lays the training ids out as N rows, cuts each row into
# windows of T, and serves the windows as (x, y) pairs of shape (N, T):
# `y` is `x` one character later, so `y[n, t]` is the character that follows
# `x[n, t]`. Print a batch as ids and as characters (as the tutorial does);
# you should see the target row equal to the input row moved left by one.

# %%
N, T = (8, 20) if QUICK else (64, 50)  # batch size, sequence length
batches = data.Batches(train_ids, batch_size=N, seq_length=T, seed=0)
print(f"{len(batches)} batches of shape ({N}, {T}) per epoch")
x, y = batches.x[0], batches.y[0]  # the first batch in text order (next() shuffles)
print("input  ids:", x[0, :20])
print("target ids:", y[0, :20])
print("input  chars:", [vocab.chars[i] for i in x[0, :20]])
print("target chars:", [vocab.chars[i] for i in y[0, :20]])
assert (x[0, 1:] == y[0, :-1]).all()

# %% [markdown]
# Each row of one batch continues in the same row of the next batch (in
# text order): row 0 of batch 1 starts where row 0 of batch 0 stopped. This
# is what makes it possible to carry the RNN's state from one batch to the
# next (lesson 5). Training reshuffles the order of the batches each epoch.

# %%
assert batches.x[1][0, 0] == batches.y[0][0, -1]
print("row 0 of batch 0 ends   ", repr(vocab.decode(batches.x[0][0, -10:])))
print("row 0 of batch 1 begins ", repr(vocab.decode(batches.x[1][0, :10])))

# %% [markdown]
# ## Pictures
#
# `vocabulary.png`: how often each character occurs, on a log scale (space,
# then `e`, `t`, `o`, ...; the rarest, like `$` and `&`, appear only a
# handful of times). `batch.png`: the first rows of a batch drawn as
# characters, input above target, so you can see the shift.

# %%
counts = np.bincount(ids, minlength=len(vocab))
print("the rarest:", ", ".join(f"{vocab.chars[i]!r} {counts[i]}" for i in np.argsort(counts)[:4]))
fig, ax = plt.subplots(figsize=(12, 3.5))
ax.bar(range(len(vocab)), counts)
ax.set_yscale("log")
ax.set_xticks(
    range(len(vocab)), [repr(c)[1:-1] if c.strip() else repr(c) for c in vocab.chars], fontsize=7, rotation=90
)
ax.set_ylabel("count")
ax.set_title(f"Tiny Shakespeare: {len(vocab)} characters, most frequent first")
save_figure(fig, FIGURES / "vocabulary.png")

rows, cols = 4, min(T, 20)
fig, ax = plt.subplots(figsize=(cols * 0.45, rows * 0.9))
ax.set_xlim(-0.5, cols - 0.5)
ax.set_ylim(2 * rows - 0.5, -0.5)
for r in range(rows):
    for t in range(cols):
        for k, (arr, color) in enumerate(((x, "tab:blue"), (y, "tab:red"))):
            c = vocab.chars[arr[r, t]]
            ax.text(t, 2 * r + k, {"\n": "\\n", " ": "␣"}.get(c, c), ha="center", va="center", color=color)
ax.set_yticks(range(2 * rows), [f"x[{r}]" if k == 0 else f"y[{r}]" for r in range(rows) for k in (0, 1)])
ax.set_xticks(range(cols))
ax.set_xlabel("time step t")
ax.set_title("a batch: inputs (blue) and targets (red), one character later")
save_figure(fig, FIGURES / "batch.png")

# %% [markdown]
# ## What you should have seen
#
# * 65 characters in the vocabulary, space the most frequent;
# * the target ids equal the input ids moved left by one;
# * two pictures in the figures folder.
#
# Next: lesson 2 builds the simplest recurrent cell that reads these ids.
