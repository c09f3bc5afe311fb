# %% [markdown]
# # Lesson 7: generating text: priming, carrying state, temperature
#
# A model trained to predict the next character can write: give it some text
# to read (the *prime*), draw a next character from its prediction, feed that
# character back in, and repeat. Three things decide what comes out:
#
# * **the prime**: reading it leaves the model in a state that "remembers" it;
# * **carrying the state**: each step must start from the state the previous
#   step left, or the model forgets everything but the last character;
# * **the temperature** $\tau$: we draw from $\mathrm{softmax}(z/\tau)$ instead of
#   $\mathrm{softmax}(z)$. Below 1 the distribution sharpens (safer, more
#   repetitive text), above 1 it flattens (more surprising, more mistakes).
#
# This lesson trains a small model for a few hundred steps, writes the
# generation loop by hand, checks it against `minirnn.sample.sample`, and
# then looks inside the model with `minirnn.visualize`. Carrying state is
# explained in docs/bptt.md; every flag of `python -m minirnn.sample` and
# `python -m minirnn.visualize` is in docs/flags.md and docs/index.md.
#
# Run it: `python lessons/07_generating.py` (about 20 seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/07_generating.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import shutil

import matplotlib.pyplot as plt
import numpy as np

from minirnn import data
from minirnn.lessons import figures, quick, save_figure, show_image
from minirnn.sample import load_model, sample
from minirnn.train import TrainConfig, train
from minirnn.visualize import visualize

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("07_generating")

STEPS = 20 if QUICK else 700  # try 3000 (a few minutes) for much better text

# %% [markdown]
# ## A model to generate with
#
# `minirnn.train.train` is what `python -m minirnn.train` runs. A one-layer
# LSTM of 128 units, 700 steps: about 15 seconds on an idle CPU, and a
# validation loss near 2.1 (printed at the end of the run), enough for
# word-like text (the tutorial's bigger model reaches about 1.5 after a few
# thousand steps). The run directory (checkpoints, metrics,
# loss curve) goes into the figures folder.

# %%
run_dir = FIGURES / "run"
shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run each time the lesson runs
train(
    TrainConfig(
        cell="lstm",
        hidden_size=128,
        num_layers=1,
        batch_size=32,
        lr=3e-3,
        max_steps=STEPS,
        print_every=max(1, STEPS // 5),
        eval_every=STEPS,
        eval_batches=4,
        checkpoint_every=0,
        out=str(run_dir),
    )
)
model, vocab, meta = load_model(run_dir)  # back from the checkpoint: lesson 8 says how
be = model.backend
final_val = meta["metrics"]["val_loss"]  # the last evaluation, kept in the checkpoint
print(f"validation loss after {STEPS} steps: {final_val:.3f}")
if not QUICK:
    assert abs(final_val - 2.1) < 0.1, final_val  # "a validation loss near 2.1", above

# %% [markdown]
# ## Generation, by hand
#
# `model.step(ids, state)` runs one time step for a batch of characters and
# returns the logits of the next one and the new state. We read the prime one
# character at a time, then draw: the softmax of the logits divided by the
# temperature gives probabilities $p$, and we pick the first character whose
# cumulative probability passes a uniform random number (the tutorial's
# `weighted_pick`). Then we check that `minirnn.sample.sample`, given the
# same seed, writes exactly the same text.


# %%
def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def generate(prime, length, temperature=1.0, seed=0, carry_state=True):
    rng = np.random.default_rng(seed)
    state = model.zero_state(1)
    for c in prime:  # reading the prime: the state now holds it
        logits, state = model.step(be.asarray(np.array([vocab.index[c]])), state)
    out = []
    for _ in range(length):
        p = softmax(be.to_host(logits)[0].astype(np.float64) / temperature)  # (V,)
        i = min(int((p.cumsum() < rng.random((1, 1))).sum()), len(p) - 1)  # inverse CDF draw
        out.append(vocab.chars[i])
        if not carry_state:
            state = model.zero_state(1)  # forget everything: the wrong way, for comparison
        logits, state = model.step(be.asarray(np.array([i])), state)
    return prime + "".join(out)


mine = generate("ROMEO:\n", 200, temperature=0.8, seed=1)
lib = sample(model, vocab, "ROMEO:\n", 200, temperature=0.8, seed=1)[0]
print(mine)
print("\nthe same as minirnn.sample.sample:", mine == lib)
assert mine == lib

# %% [markdown]
# ## Carrying the state, or not
#
# Now the same loop, but resetting the state to zero before every step. The
# model then sees only the one character it is given, so it can only learn
# which character tends to follow which. You should see plausible pairs of
# letters and even line breaks after a colon, but hardly a real word: with the
# state carried, the same model spells `my`, `your`, `and`, `the`.

# %%
print(generate("ROMEO:\n", 200, temperature=0.8, seed=1, carry_state=False))

# %% [markdown]
# ## Temperature
#
# Three temperatures, the same seed. You should see at 0.5 common words and
# repeated phrases, at 1.0 the model's own mix, at 1.5 many invented words
# and odd punctuation. The picture shows why: the distribution of the next
# character after the prime `"The k"`, at each temperature.

# %%
for tau in (0.5, 1.0, 1.5):
    print(f"--- temperature {tau} ---")
    print(sample(model, vocab, "The ", 160, temperature=tau, seed=2)[0])

state = model.zero_state(1)
for c in "The k":
    logits, state = model.step(be.asarray(np.array([vocab.index[c]])), state)
z = be.to_host(logits)[0].astype(np.float64)
top = np.argsort(-z)[:12]
SHOWN = {" ": "␣", "\n": "\\n"}  # characters with no mark of their own get a visible symbol
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
for ax, tau in zip(axes, (0.5, 1.0, 1.5)):
    p = softmax(z / tau)
    ax.bar([SHOWN.get(vocab.chars[i], vocab.chars[i]) for i in top], p[top])
    ax.set_title(f"temperature {tau}")
    ax.set_xlabel('next character after "The k" (␣: a space)')
axes[0].set_ylabel("probability")
save_figure(fig, FIGURES / "temperature.png")

# %% [markdown]
# ## Looking inside: one unit, and the model's confidence
#
# `minirnn.visualize` reads a text one character at a time (as generation
# does) and colours each character twice: by the activation of one hidden
# unit after reading it (blue negative, red positive), and by the probability
# the model gave that character before it came (white: a surprise, green:
# expected). The same from a terminal:
# `python -m minirnn.visualize --checkpoint RUN_DIR --png page.png`.
#
# What you should see, in the confidence panel: the colon after a speaker's
# name and the line break after the colon in deep green (the model is sure of
# them), the ends of common words (`the`, `you`, `my lord`) green, and the
# first letter of most words pale: the start of a word is hard to guess, its
# end is not. The unit shown is the one whose activation varies most over
# the text (its number is printed below). It may have learnt something you
# can name, such as red across the speakers' names in capitals (`ANTONIO:`)
# and blue inside the lines of speech: the lesson prints its mean activation
# over capital letters and over the other characters, so you can tell. Open
# `visualize.html` in a browser and hover over the characters for the
# numbers; with `--unit K` (here `unit=K`) you can look at the others. With
# longer training more units become readable, as in Karpathy's blog post
# (quotes, line length, inside a word).

# %%
text = data.load_text()
passage = text[-1000:-600] if QUICK else text[-1500:-800]  # from the validation part, never trained on
tr, unit = visualize(
    model,
    vocab,
    passage,
    out=FIGURES / "visualize.html",
    png=FIGURES / "visualize.png",
    title=f"lesson 7: an LSTM of 128 units after {STEPS} steps",
)
print(f"unit {unit}; mean probability of the next character {np.nanmean(tr.confidence):.2f}")
capital = np.array([c.isupper() for c in tr.text])  # (L,)
print(
    f"unit {unit}: mean activation {tr.acts[capital, unit].mean():+.2f} over capital letters, "
    f"{tr.acts[~capital, unit].mean():+.2f} over the other characters"
)
print(f"wrote {FIGURES / 'visualize.html'}")
show_image(FIGURES / "visualize.png")
