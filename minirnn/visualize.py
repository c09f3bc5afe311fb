"""Text coloured by what the model thinks: one hidden unit's activation, and its confidence in each character.

    python -m minirnn.visualize --checkpoint RUN_DIR                      # 400 characters the model writes
    python -m minirnn.visualize --checkpoint RUN_DIR --text "ROMEO: ..." --unit 17 --png page.png
    python -m minirnn.visualize --checkpoint RUN_DIR --text-file act1.txt --state c --out act1.html

This is the picture Karpathy's "The Unreasonable Effectiveness of Recurrent
Neural Networks" made famous. The model reads the text one character at a
time, carrying its state, as when it generates (minirnn.sample). For each
character we record

* the activation of one unit of one layer's state after reading it: h, in
  [-1, 1], or for an LSTM tanh(c) of the cell state (``--state c``);
* the probability the model gave to that character *before* reading it: its
  confidence in what actually came next (the first character has none).

The page is one self-contained HTML file (no scripts, no downloads) with a
tooltip on every character; ``--png`` also draws both panels as an image.
Without ``--unit`` the unit whose activation varies most over the text is shown.
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy

from . import cli
from .backend import BackendError
from .checkpoint import CheckpointError
from .data import DataError, Vocab, load_text
from .layers import softmax
from .model import CharRNN, ConfigError


class VisualizeError(ValueError):
    """Options that cannot work (a unit out of range, text the vocabulary lacks); one line."""


@dataclass
class Trace:
    """What the model did while reading ``text`` (L characters)."""

    text: str
    acts: numpy.ndarray  # (L, H) the chosen state of the chosen layer after each character
    confidence: numpy.ndarray  # (L,) p(text[t] | text[:t]); NaN for t = 0
    top: list  # (L,) the most likely character *after* text[t], with its probability: (char, p)
    layer: int
    state: str  # "h" or "c" (shown as tanh(c))


def trace(model: CharRNN, vocab: Vocab, text: str, layer: int = -1, state: str = "h") -> Trace:
    """Feed ``text`` through ``model`` one character at a time and record activations and confidences."""
    if not text:
        raise VisualizeError("the text is empty")
    unknown = vocab.missing(text)
    if unknown:
        raise VisualizeError(f"the text has characters the vocabulary lacks: {''.join(unknown)!r}")
    L = len(model.cells)
    if not -L <= layer < L:
        raise VisualizeError(f"--layer {layer} does not exist: the model has {L} layer(s), 0..{L - 1}")
    layer %= L
    names = model.cells[layer].state_names
    if state not in names:
        raise VisualizeError(f"--state {state}: this {model.config.cell} layer's state is {', '.join(names)}")
    k = names.index(state)
    be = model.backend
    ids = vocab.encode(text)
    probs, states = [], []
    s = model.zero_state(1)
    for i in ids:
        logits, s = model.step(be.asarray(numpy.array([i])), s)  # one character, carrying the state
        probs.append(softmax(logits)[0])  # (V,) what comes after this character
        states.append(s[layer][k][0])  # (H,)
    # Kept on the device until here: one copy to the host for the whole text, not two per character.
    p = be.to_host(be.xp.stack(probs)).astype(numpy.float64)  # (L, V)
    acts = be.to_host(be.xp.stack(states)).astype(numpy.float64)  # (L, H)
    if state == "c":
        acts = numpy.tanh(acts)  # c is unbounded; tanh(c) is what h sees
    confidence = numpy.full(len(text), numpy.nan)
    confidence[1:] = p[numpy.arange(len(text) - 1), ids[1:]]  # p(text[t] | text[:t])
    top = [(vocab.chars[j], float(p[t, j])) for t, j in enumerate(p.argmax(axis=1))]
    return Trace(text, acts, confidence, top, layer, state)


def pick_unit(tr: Trace) -> int:
    """The unit whose activation varies most over the text: usually one worth looking at."""
    return int(tr.acts.std(axis=0).argmax())


# -- colours ----------------------------------------------------------------------------------------------
# Each map runs from white to one colour. The far ends are light enough that black text on them has a WCAG
# contrast ratio of at least 7 (the AAA level for small text), and every colour in between is lighter still:
# tests/test_visualize_page.py computes the ratios. (Pure blue, rgb(0,0,255), gives black text 2.4.)
NEGATIVE = (100, 160, 240)  # -1: blue
POSITIVE = (255, 120, 110)  # +1: red
CONFIDENT = (55, 195, 55)  # p = 1: green
NO_PREDICTION = (230, 230, 230)  # the first character: light grey
TEXT_COLOUR = "#000"


def _towards(colour, v: float) -> str:
    """White (v = 0) to ``colour`` (v = 1), straight through sRGB."""
    return "rgb({},{},{})".format(*(round(255 - (255 - c) * v) for c in colour))


def _diverging(v: float) -> str:
    """-1 blue, 0 white, +1 red (as Karpathy's pages)."""
    v = float(numpy.clip(v, -1, 1))
    return _towards(POSITIVE, v) if v >= 0 else _towards(NEGATIVE, -v)


def _sequential(p: float) -> str:
    """0 white to 1 green; NaN (no prediction) light grey."""
    if not numpy.isfinite(p):
        return _towards(NO_PREDICTION, 1)
    return _towards(CONFIDENT, float(numpy.clip(p, 0, 1)))


def _shown(c: str) -> str:
    """A character as the page draws it: whitespace as a visible mark, a space as one that never collapses."""
    return {"\n": "↵", " ": "\u00a0", "\t": "→"}.get(c, c)


def _named(c: str) -> str:
    """A character as a tooltip names it: whitespace by name, the rest quoted ('e', '\\r')."""
    return {"\n": "newline", " ": "space", "\t": "tab"}.get(c) or repr(c)


# -- the HTML page ------------------------------------------------------------------------------------------
def to_html(tr: Trace, unit: int, title: str = "minirnn") -> str:
    """A self-contained HTML page: the text twice, coloured by unit ``unit`` and by confidence."""

    def panel(colour, tip):
        spans = []
        for t, c in enumerate(tr.text):
            spans.append(
                f'<span style="background:{colour(t)}" title="{html.escape(tip(t))}">'
                f"{html.escape(_shown(c))}</span>" + ("<br>" if c == "\n" else "")
            )
        return "".join(spans)

    def nxt(t):
        c, p = tr.top[t]
        return f"next most likely {_named(c)} ({p:.2f})"

    state = "h" if tr.state == "h" else "tanh(c)"
    act = panel(
        lambda t: _diverging(tr.acts[t, unit]),
        lambda t: f"{state}[{unit}] = {tr.acts[t, unit]:+.3f}; {nxt(t)}",
    )
    conf = panel(
        lambda t: _sequential(tr.confidence[t]),
        lambda t: (
            "no prediction for the first character"
            if t == 0
            else f"p({_named(tr.text[t])}) = {tr.confidence[t]:.3f}; {nxt(t)}"
        ),
    )
    mean = numpy.nanmean(numpy.log(tr.confidence[1:])) if len(tr.text) > 1 else float("nan")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }}
.text {{ color: {TEXT_COLOUR}; font-family: monospace; font-size: 15px; line-height: 1.6;
         border: 1px solid #ccc; padding: 0.8em; white-space: normal; word-wrap: break-word; }}
.key span {{ display: inline-block; width: 3em; text-align: center; font-size: 13px; color: {TEXT_COLOUR}; }}
</style></head><body>
<h2>{html.escape(title)}</h2>
<p>The model read this text one character at a time, carrying its state. \
Hover over a character for the numbers.</p>
<h3>Unit {unit} of layer {tr.layer} ({state}) after each character</h3>
<p class="key"><span style="background:{_diverging(-1)}">−1</span>\
<span style="background:{_diverging(0)}">0</span>\
<span style="background:{_diverging(1)}">+1</span></p>
<div class="text">{act}</div>
<h3>Confidence: the probability the model gave each character before it came</h3>
<p class="key"><span style="background:{_sequential(0)}">0</span>\
<span style="background:{_sequential(0.5)}">0.5</span><span style="background:{_sequential(1)}">1</span> \
&nbsp; mean log-probability {mean:.3f} nats per character</p>
<div class="text">{conf}</div>
</body></html>
"""


# -- the PNG ------------------------------------------------------------------------------------------------
def to_png(tr: Trace, unit: int, path, width: int = 80, title: str = "minirnn") -> Path:
    """Both panels as one image: characters on a grid, each on its colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows, col = [[]], 0  # positions (t, row, column), wrapping at newlines and at ``width``
    for t, c in enumerate(tr.text):
        rows[-1].append((t, col))
        col += 1
        if c == "\n" or col >= width:
            rows.append([])
            col = 0
    n_rows = len(rows)
    fig = Figure(figsize=(width * 0.11 + 0.5, 2 * (n_rows * 0.2 + 0.6)))
    FigureCanvasAgg(fig)
    panels = [
        (
            f"unit {unit} of layer {tr.layer} ({'h' if tr.state == 'h' else 'tanh(c)'}): blue −1, red +1",
            lambda t: _diverging(tr.acts[t, unit]),
        ),
        ("confidence in each character: white 0, green 1", lambda t: _sequential(tr.confidence[t])),
    ]
    for k, (label, colour) in enumerate(panels):
        ax = fig.add_subplot(2, 1, k + 1)
        ax.set_xlim(0, width)
        ax.set_ylim(n_rows, 0)
        ax.axis("off")
        ax.set_title(label if k else f"{title}\n{label}", fontsize=9, loc="left")
        for r, row in enumerate(rows):
            for t, cpos in row:
                rgb = [int(v) / 255 for v in colour(t)[4:-1].split(",")]
                ax.add_patch(Rectangle((cpos, r), 1, 1, color=rgb, lw=0))
                ax.text(
                    cpos + 0.5,
                    r + 0.55,
                    _shown(tr.text[t]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    family="monospace",
                )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def visualize(
    model: CharRNN,
    vocab: Vocab,
    text: str,
    unit: int | None = None,
    layer: int = -1,
    state: str = "h",
    out=None,
    png=None,
    title: str = "minirnn",
):
    """Trace ``text`` and write the HTML page (``out``) and/or the PNG (``png``). Returns (trace, unit)."""
    tr = trace(model, vocab, text, layer, state)
    H = model.config.hidden_size
    if unit is None:
        unit = pick_unit(tr)
    if not 0 <= unit < H:
        raise VisualizeError(f"--unit {unit} does not exist: the layer has {H} units, 0..{H - 1}")
    if out is not None:
        Path(out).write_text(to_html(tr, unit, title), encoding="utf-8")
    if png is not None:
        to_png(tr, unit, png, title=title)
    return tr, unit


# -- the command line -------------------------------------------------------------------------------------
PROG = "minirnn.visualize"


def main(argv=None) -> int:
    from .cli import OneLineParser, add_model_flags
    from .pretrained import resolve
    from .sample import SampleError, load_model, sample

    ap = OneLineParser(
        prog="python -m minirnn.visualize",
        description="Colour a text by one hidden unit's activation and by the model's "
        "confidence in each next character, as a self-contained HTML page "
        "(and a PNG).",
    )
    add_model_flags(ap)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--text", help="the text to read (default: 400 characters the model writes itself)")
    src.add_argument("--text-file", metavar="FILE", help="read the text from a UTF-8 file")
    ap.add_argument(
        "--max-chars", type=int, default=2000, help="use at most this many characters (default 2000)"
    )
    ap.add_argument(
        "--unit", type=int, default=None, help="which unit to show (default: the one that varies most)"
    )
    ap.add_argument("--layer", type=int, default=-1, help="which layer, 0 first, -1 the last (default)")
    ap.add_argument("--state", default="h", choices=["h", "c"], help="h (default), or an LSTM's cell state c")
    ap.add_argument("--out", metavar="FILE", help="the HTML page to write (default RUN_DIR/visualize.html)")
    ap.add_argument("--png", metavar="FILE", help="also draw both panels into this PNG")
    ap.add_argument(
        "--seed", type=int, default=0, help="seed for the generated text when --text is not given"
    )
    args = ap.parse_args(argv)
    try:
        if args.max_chars < 1:
            raise VisualizeError(f"--max-chars must be at least 1, got {args.max_chars}")
        path, note = resolve(args.checkpoint, args.newest)  # which checkpoint: pretrained/__init__.py
        model, vocab, meta = load_model(path, args.backend, args.cell)
        if args.text is not None:
            text = args.text
        elif args.text_file is not None:
            text = load_text(args.text_file)
        else:
            prime = "\n" if "\n" in vocab.index else vocab.chars[0]
            text = sample(model, vocab, prime, 399, temperature=0.8, seed=args.seed)[0]
        text = text[: args.max_chars]
        ckpt = Path(path)  # RUN_DIR/checkpoints/ckpt-*.json; the shipped model's folder is not ours to write
        out = args.out or (ckpt.parent.parent if args.checkpoint else Path()) / "visualize.html"
        title = (
            f"{meta['model'].get('cell', '?')} {meta['model'].get('num_layers', '?')}x"
            f"{meta['model'].get('hidden_size', '?')}, step {meta.get('step', '?')}"
        )
        _, unit = visualize(model, vocab, text, args.unit, args.layer, args.state, out, args.png, title)
    except (VisualizeError, SampleError, DataError, CheckpointError, ConfigError, BackendError) as exc:
        return cli.fail(PROG, f"error: {exc}", 2)
    except OSError as exc:
        return cli.fail(PROG, f"error: cannot write {exc.filename}: {exc.strerror}", 2)
    print(note, file=sys.stderr)
    print(f"unit {unit}: wrote {out}" + (f" and {args.png}" if args.png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
