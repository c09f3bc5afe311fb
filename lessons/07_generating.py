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
# This lesson uses the model that ships with minirnn, trained on Tiny
# Shakespeare by the recipe in `minirnn/pretrained/MODEL.md` (lesson 6 shows
# how to train your own, and `--checkpoint RUN_DIR` samples from it). It
# writes the generation loop by hand, checks it against
# `minirnn.sample.sample`, and then looks inside the model with
# `minirnn.visualize` for units that track something we can name. Carrying
# state is explained in docs/bptt.md; every flag of `python -m minirnn.sample`
# and `python -m minirnn.visualize` is in docs/flags.md and docs/index.md.
#
# Run it: `python lessons/07_generating.py` (about 20 seconds), or open it as a notebook
# (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in a few seconds on shorter texts, whose numbers mean less:
# `MINIRNN_QUICK=1 python lessons/07_generating.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import re

import matplotlib.pyplot as plt
import numpy as np

from minirnn import data, pretrained
from minirnn.lessons import figures, quick, save_figure, show_image
from minirnn.sample import load_model, sample
from minirnn.visualize import trace, visualize

QUICK = quick()  # MINIRNN_QUICK=1: shorter texts. In a notebook you may write QUICK = True here
FIGURES = figures("07_generating")

LENGTH = 300 if QUICK else 2000  # characters generated for each comparison below
PASSAGE = 1200 if QUICK else 6000  # characters of held-out text read when looking inside

# %% [markdown]
# ## The model
#
# `load_model` reads a checkpoint (lesson 8 says what is in one). The shipped
# model is the tutorial's kind of network: character ids in, two LSTM layers,
# a dense decoder to 65 logits. Its validation loss, over every character of
# the held-out last 10% of Tiny Shakespeare, is stored with it (and
# `python -m minirnn.evaluate` measures it again).

# %%
model, vocab, meta = load_model(pretrained.shipped())
be = model.backend
cfg = meta["model"]
print(
    f"{cfg['num_layers']} {cfg['cell'].upper()} layers of {cfg['hidden_size']} units, "
    f"{model.num_params():,} parameters, vocabulary {len(vocab)}"
)
print(f"validation loss {meta['val_loss']:.3f} nats per character")
assert (cfg["cell"], cfg["num_layers"], len(vocab)) == ("lstm", 2, 65)  # "two LSTM layers", "65 logits"
assert meta["train"]["val_fraction"] == 0.1  # "the held-out last 10%"

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


mine = generate("ROMEO:\n", 300, temperature=0.8, seed=1)
lib = sample(model, vocab, "ROMEO:\n", 300, temperature=0.8, seed=1)[0]
print(mine)
print("\nthe same as minirnn.sample.sample:", mine == lib)
assert mine == lib

# %% [markdown]
# ## Carrying the state, or not
#
# Now the same loop, but resetting the state to zero before every step. The
# model then sees only the one character it is given, so all it can use is
# which character tends to follow which. To put a number on the difference we
# count, in each text, the share of its words that occur in the training text
# (the first 90% of Tiny Shakespeare). With the state carried, most words are
# real; without it, only short ones, by luck, and far fewer of them.

# %%
text = data.load_text()
known = set(re.findall(r"[a-z']+", text[: int(0.9 * len(text))].lower()))  # the training text's words


def real_words(s):
    """The share of the words in ``s`` that occur in the training text."""
    words = re.findall(r"[a-z']+", s.lower())
    return sum(w in known for w in words) / max(len(words), 1)


carried = generate("ROMEO:\n", LENGTH, temperature=0.8, seed=1)
forgetful = generate("ROMEO:\n", LENGTH, temperature=0.8, seed=1, carry_state=False)
print(forgetful[:300])
print(f"\nreal words: {real_words(carried):.0%} with the state carried, {real_words(forgetful):.0%} without")
if not QUICK:
    assert real_words(carried) > 0.8 and real_words(forgetful) < 0.6  # "most words", "far fewer"

# %% [markdown]
# ## Temperature
#
# Three temperatures, the same seed. At 0.5 you should see common words and
# repeated phrases, at 1.0 the model's own mix, at 1.5 many invented words
# and odd punctuation: the share of real words falls as the temperature
# rises. The picture shows why: the distribution of the next character after
# the prime `"The k"`, at each temperature.

# %%
shares = {}
for tau in (0.5, 1.0, 1.5):
    print(f"--- temperature {tau} ---")
    print(sample(model, vocab, "The ", 200, temperature=tau, seed=2)[0])
    shares[tau] = real_words(sample(model, vocab, "The ", LENGTH, temperature=tau, seed=3)[0])
print("real words by temperature:", ", ".join(f"{tau}: {s:.0%}" for tau, s in shares.items()))
if not QUICK:
    assert shares[0.5] > shares[1.0] > shares[1.5]  # "falls as the temperature rises"

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
# ## Looking inside: units that track something
#
# `minirnn.visualize` reads a text one character at a time (as generation
# does) and records every unit's activation after each character. Most units
# are hard to name. To find the ones that are not, we read a stretch of the
# held-out text and measure, for every unit of the second layer's cell state
# ($\tanh(c_t)$, what $h_t$ sees), its correlation with two things we can
# compute from the text itself:
#
# * the **position in the line**: 0 at a line break, 1, 2, 3 ... after it;
# * being inside a **speaker's name**: the lines such as `ROMEO:` that begin
#   each speech in Tiny Shakespeare, capitals ending in a colon.
#
# In this model each has a unit that follows it closely. The speaker unit's
# correlation is almost 1 in size (0.98): it is nearly a switch, one sign
# across every name from its first letter to its colon, the other sign from
# the line break after the colon through the whole speech. The line-position
# unit's correlation is above 0.7: at each line break it drops, then climbs
# steadily, on average 90% of the way to its top within 30 to 40 characters,
# and stays there until the next break, a counter that saturates about where a verse line ends
# (Karpathy's "line length" cell behaves alike). The sign of a unit means
# nothing (the next layer can read it either way); the size says how closely
# it tracks. The numbers are printed below, and checked against those words.

# %%
passage = text[-PASSAGE:]  # from the validation part, never trained on
tr = trace(model, vocab, passage, layer=1, state="c")  # tr.acts: (L, H), tanh(c_t) after each character

line_pos = np.zeros(len(passage))  # characters since the last line break
for i in range(1, len(passage)):
    line_pos[i] = 0 if passage[i] == "\n" else line_pos[i - 1] + 1
in_name = np.zeros(len(passage))  # 1 inside a line such as "ROMEO:"
start = 0
for line in passage.split("\n"):
    if line.endswith(":") and line[:-1].replace(" ", "").isupper():
        in_name[start : start + len(line)] = 1
    start += len(line) + 1


def correlations(feature):
    """Each unit's correlation with ``feature`` (L,) over the passage: (H,)."""
    a = (tr.acts - tr.acts.mean(0)) / (tr.acts.std(0) + 1e-12)
    f = (feature - feature.mean()) / feature.std()
    return (a * f[:, None]).mean(0)


r_line, r_name = correlations(line_pos), correlations(in_name)
line_unit, name_unit = int(np.abs(r_line).argmax()), int(np.abs(r_name).argmax())
print(f"position in the line: unit {line_unit}, correlation {r_line[line_unit]:+.2f}")
print(f"speaker's name: unit {name_unit}, correlation {r_name[name_unit]:+.2f}")
median = np.median(np.abs(r_line)), np.median(np.abs(r_name))
print(f"the median unit's correlation, in size: {median[0]:.2f} and {median[1]:.2f}")

line_act = np.sign(r_line[line_unit]) * tr.acts[:, line_unit]  # the way up that climbs along the line
counted = [k for k in range(1, 60) if (line_pos == k).any()]  # positions after the line break
by_pos = np.array([line_act[line_pos == k].mean() for k in counted])  # mean activation at each
climbed = counted[int(np.argmax(by_pos >= by_pos.min() + 0.9 * (by_pos.max() - by_pos.min())))]
print(f"the line unit is 90% of the way up, on average, {climbed} characters into a line")
name_act = np.sign(r_name[name_unit]) * tr.acts[:, name_unit]  # positive: the names' side
names_whole = bool((name_act[in_name == 1] > 0).all())  # every character of every name
print(f"the speaker unit is on the names' side at every character of every name: {bool(names_whole)}")
if not QUICK:
    assert abs(r_line[line_unit]) > 0.7 and f"{abs(r_name[name_unit]):.2f}" == "0.98"  # as the text says
    assert 30 <= climbed <= 40 and names_whole  # "within 30 to 40 characters", "from its first letter"
    assert max(median) < 0.25  # below: "the median unit's correlations are small"

# %% [markdown]
# The line-position unit over the passage's first 240 characters, against
# the position itself: both reset at each line break, and the unit levels
# off where the position keeps climbing.

# %%
show = slice(0, 240)
fig, ax = plt.subplots(figsize=(12, 3))
sign = np.sign(r_line[line_unit])  # drawn the way up that climbs with the position
ax.plot(sign * tr.acts[show, line_unit], label=f"unit {line_unit}, tanh(c) (sign {sign:+.0f})")
ax.plot(line_pos[show] / line_pos.max(), label="position in the line, scaled to 0..1", alpha=0.7)
for i, c in enumerate(passage[show]):
    if c == "\n":
        ax.axvline(i, color="grey", lw=0.5)
ax.set_xlabel("character of the passage (grey lines: line breaks)")
ax.legend(loc="upper right", fontsize=8)
save_figure(fig, FIGURES / "line_unit.png")

# %% [markdown]
# The same units in `minirnn.visualize`'s picture: each character coloured
# by the unit's activation after reading it (blue negative, red positive), and
# below by the probability the model gave that character before it came
# (white: a surprise, green: expected). Look in the confidence panel for the
# line break after a speaker's colon in deep green (the model gave it a
# probability near 1 on average over the passage), the colon itself green
# (about 0.8), and the first letters of words pale (about 0.1) against their
# last letters (about 0.6): the start of a word is hard to guess, its end is
# not. The averages are printed below. From a terminal:
# `python -m minirnn.visualize --layer 1 --state c --unit K --png page.png`
# (without `--checkpoint` it reads the shipped model). Open `visualize.html`
# in a browser and hover over the characters for the numbers.

# %%
conf = tr.confidence  # (L,) p(passage[t] | passage[:t])
colons = np.array([i for i in range(len(passage) - 1) if passage[i] == ":" and in_name[i]])
firsts = [i for i in range(1, len(passage)) if passage[i].isalpha() and not passage[i - 1].isalpha()]
lasts = [  # a letter after a letter, before a non-letter
    i for i in range(1, len(passage) - 1) if passage[i - 1 : i + 1].isalpha() and not passage[i + 1].isalpha()
]
means = conf[colons + 1].mean(), conf[colons].mean(), conf[firsts].mean(), conf[lasts].mean()
print("mean probability: line break after a name's colon {:.2f}, the colon {:.2f}, ".format(*means[:2]))
print("  first letter of a word {:.2f}, last letter of a word {:.2f}".format(*means[2:]))
if not QUICK:
    assert means[0] > 0.95 and 0.7 < means[1] < 0.9 and means[2] < 0.2 and 0.5 < means[3] < 0.7  # the text

short = passage[:700]
for unit, name in ((name_unit, "visualize"), (line_unit, "visualize_line")):
    visualize(
        model,
        vocab,
        short,
        unit=unit,
        layer=1,
        state="c",
        out=FIGURES / f"{name}.html",
        png=FIGURES / f"{name}.png",
        title=f"the shipped model, layer 1, tanh(c) of unit {unit}",
    )
    show_image(FIGURES / f"{name}.png")
print(f"wrote {FIGURES / 'visualize.html'} and {FIGURES / 'visualize_line.html'}")
assert model.config.hidden_size == 384  # "the layer's 384 units", below

# %% [markdown]
# Two of the layer's 384 units are easy to name. Most others follow neither
# feature (the median unit's correlations, printed above, are small), and
# what they do respond to is not one thing a label fits. Try `correlations`
# with features of your own: inside a word, after a comma, a capital letter
# at the start of a line.
