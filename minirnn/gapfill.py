"""Gap filling: predict the characters hidden in the middle of a text, from both sides.

    window  "Now is the winter of our"
    input   "Now is the___nter of our"     k = 3 characters replaced by the mask symbol (here _)
    target  " wi"                          the hidden characters, one prediction per position

A bidirectional model reads the window both ways, so at a hidden position it
knows what comes before *and* after the gap; a forward-only model of about the
same size knows only what comes before. The loss and the accuracy count the
hidden positions only. Run the comparison:

    python -m minirnn.gapfill --steps 1500          # both models, then accuracy on held-out windows

Legend: N batch, W window length (the time axis), k gap length, V vocabulary
(the text's characters; the mask symbol is one more input id, V), H hidden units.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass

import numpy

from .backend import Backend, BackendError, get_backend
from .bidirectional import Bidirectional
from .cell import onehot, sub_tree
from .cli import OneLineParser, add_backend_flag
from .data import DataError, load_text
from .init import truncated_normal
from .layers import dense_backward, dense_forward, sequence_cross_entropy, sequence_cross_entropy_backward
from .malloc import keep_freed_memory
from .model import ConfigError, make_cell
from .optim import Adam, clip_by_global_norm


@dataclass
class GapConfig:
    window: int = 24  # W: characters per window, gap included
    gap: int = 3  # k: hidden characters, in the middle of the window
    hidden: int = 64  # H of each direction of the bidirectional model
    cell: str = "lstm"  # rnn | lstm | gru | module:Class
    steps: int = 1500  # training steps for each model
    batch: int = 64  # windows per step
    lr: float = 1e-2  # Adam's learning rate: high, since only the gap's k characters give a signal
    clip: float = 5.0  # clip the gradient's global norm to this (0: off)
    eval_windows: int = 2000  # held-out windows for the accuracy
    val_fraction: float = 0.1  # the end of the text held out for evaluation
    seed: int = 0


def make_windows(ids, starts, window: int, gap: int, mask_id: int):
    """Host arrays: ids (len,) integer text; starts (N,) window starts.

    Returns x (N, W) with the gap replaced by ``mask_id``, y (N, W) the true
    characters, and weights (N, W), 1 on the gap and 0 elsewhere.
    """
    y = ids[starts[:, None] + numpy.arange(window)[None, :]]  # (N, W)
    g0 = (window - gap) // 2  # the gap's first position
    x = y.copy()
    x[:, g0 : g0 + gap] = mask_id
    weights = numpy.zeros(y.shape)
    weights[:, g0 : g0 + gap] = 1.0
    return x, y, weights


class GapFiller:
    """One-hot (V + 1 with the mask symbol) -> a recurrent layer -> dense -> logits over V.

    bidirectional=True: a :class:`Bidirectional` layer (parameters fw.*, bw.*),
    H units each way, 2H features into the decoder. False: the same forward
    cell alone (fw.*). The decoder is dec.W, dec.b.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        bidirectional: bool,
        cell: str = "lstm",
        backend: Backend | None = None,
        seed: int = 0,
    ):
        self.V, self.H, self.bidirectional = vocab_size, hidden_size, bidirectional
        self.backend = backend or get_backend()
        c = make_cell(cell)
        self.layer = Bidirectional(c, make_cell(cell)) if bidirectional else c
        self.features = 2 * hidden_size if bidirectional else hidden_size  # into the decoder
        rng = numpy.random.default_rng(seed)
        host = self.layer.init_params(vocab_size + 1, hidden_size, rng)
        if not bidirectional:
            host = {f"fw.{k}": v for k, v in host.items()}
        host["dec.W"] = truncated_normal(rng, 0.1, (self.features, vocab_size))
        host["dec.b"] = numpy.zeros(vocab_size)
        self.params = {k: self.backend.asarray(v) for k, v in host.items()}
        self.grads = {k: self.backend.xp.zeros_like(v) for k, v in self.params.items()}

    def num_params(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    def _layer_tree(self, tree):
        """The recurrent layer's part of a parameter (or gradient) tree, named as it expects."""
        return (
            {k: v for k, v in tree.items() if not k.startswith("dec.")}
            if self.bidirectional
            else sub_tree(tree, "fw.")
        )

    def forward(self, x):
        """x (N, W) ids -> logits (W, N, V), cache. Windows are never padded: no mask."""
        be, xp = self.backend, self.backend.xp
        N, W = x.shape
        ids = xp.ascontiguousarray(x.T)  # (W, N)
        inp = ids if self.layer.takes_ids else onehot(ids, self.V + 1, be.dtype)
        state0 = self.layer.zero_state(xp, N, self.H, be.dtype)
        hs, _, lcache = self.layer.forward(self._layer_tree(self.params), inp, state0, None)  # (W, N, F)
        logits, dcache = dense_forward(
            hs.reshape(W * N, self.features), self.params["dec.W"], self.params["dec.b"]
        )
        return logits.reshape(W, N, self.V), (lcache, dcache)

    def loss_and_grads(self, x, y, weights):
        """Mean cross-entropy over the gap; fills ``self.grads``. x, y, weights (N, W).
        Returns the loss (0-d)."""
        xp = self.backend.xp
        logits, (lcache, dcache) = self.forward(x)
        W, N, V = logits.shape
        loss, ce = sequence_cross_entropy(
            logits.reshape(W * N, V),
            xp.ascontiguousarray(y.T).reshape(W * N),
            xp.ascontiguousarray(weights.T).reshape(W * N),
        )
        for g in self.grads.values():
            g.fill(0)
        dh = dense_backward(
            sequence_cross_entropy_backward(ce), dcache, self.params["dec.W"], self.grads, "dec."
        )
        dstate_T = self.layer.zero_state(
            xp, N, self.H, logits.dtype
        )  # the loss does not read the final state
        self.layer.backward(
            self._layer_tree(self.params),
            dh.reshape(W, N, self.features),
            dstate_T,
            lcache,
            self._layer_tree(self.grads),
        )
        return loss

    def evaluate(self, x, y, weights, batch: int = 500):
        """Loss and accuracy over the gap positions of many windows (host arrays in, host floats out).

        Returns (mean loss, accuracy, accuracy at each gap position from left to right).
        """
        be, total_loss, hits, n = self.backend, 0.0, numpy.zeros(x.shape[1]), 0
        for i in range(0, len(x), batch):
            xb, yb, wb = (be.asarray(a[i : i + batch]) for a in (x, y, weights))
            logits, _ = self.forward(xb)
            W, N, V = logits.shape
            wt = be.xp.ascontiguousarray(wb.T)  # (W, N)
            total_loss += (
                be.scalar(
                    sequence_cross_entropy(logits.reshape(W * N, V), yb.T.reshape(W * N), wt.reshape(W * N))[
                        0
                    ]
                )
                * N
            )
            hits += be.to_host(((logits.argmax(axis=2) == yb.T) * wt).sum(axis=1))  # (W,) per position
            n += N
        gap = weights[0] > 0  # the same positions in every window
        per_position = hits[gap] / n
        return total_loss / n, float(per_position.mean()), [float(a) for a in per_position]


def matched_hidden(vocab_size: int, hidden: int, cell: str = "lstm") -> int:
    """The forward-only hidden size whose model has about as many parameters as the
    bidirectional one with ``hidden`` units each way."""

    def count(H, bi):
        layer = Bidirectional(make_cell(cell)) if bi else make_cell(cell)
        rec = sum(int(numpy.prod(s)) for s in layer.param_shapes(vocab_size + 1, H).values())
        return rec + (2 * H if bi else H) * vocab_size + vocab_size

    target = count(hidden, True)
    return min(range(1, 4 * hidden), key=lambda H: abs(count(H, False) - target))


def train(model: GapFiller, ids, cfg: GapConfig, log=print):
    """Train on random windows of the integer text ``ids`` with Adam and global-norm clipping."""
    rng = numpy.random.default_rng(cfg.seed)
    be, opt = model.backend, Adam(model.params, lr=cfg.lr)
    for step in range(1, cfg.steps + 1):
        starts = rng.integers(0, len(ids) - cfg.window, size=cfg.batch)
        x, y, w = (be.asarray(a) for a in make_windows(ids, starts, cfg.window, cfg.gap, model.V))
        loss = model.loss_and_grads(x, y, w)
        clip_by_global_norm(model.grads, cfg.clip)
        opt.step(model.grads)
        if log and (step % max(1, cfg.steps // 5) == 0 or step == cfg.steps):
            log(f"  step {step:5d}  loss {be.scalar(loss):.3f}")  # a host sync, a few times per run


def compare(text: str, cfg: GapConfig | None = None, backend: Backend | None = None, log=print) -> dict:
    """Train a bidirectional and a forward-only gap filler of about equal size on the first
    part of ``text`` and measure both on held-out windows from its end.

    Returns {"config", "vocab", "baseline", "models": [{name, hidden, params, loss, accuracy,
    per_position, seconds}, ...]}; accuracies are over the hidden characters.
    """
    cfg = cfg or GapConfig()
    backend = backend or get_backend()
    vocab = sorted(set(text))  # sorted: the same ids on every run
    V = len(vocab)
    lookup = {ch: i for i, ch in enumerate(vocab)}
    ids = numpy.array([lookup[ch] for ch in text])  # (len,)
    split = int(len(ids) * (1 - cfg.val_fraction))
    train_ids, val_ids = ids[:split], ids[split:]
    erng = numpy.random.default_rng(cfg.seed + 1)  # fixed held-out windows, the same for both models
    starts = erng.integers(0, len(val_ids) - cfg.window, size=cfg.eval_windows)
    val = make_windows(val_ids, starts, cfg.window, cfg.gap, V)
    counts = numpy.bincount(train_ids, minlength=V)
    baseline = float((val[1][val[2] > 0] == counts.argmax()).mean())  # always guess the commonest character
    results = []
    for name, bi, H in (
        ("bidirectional", True, cfg.hidden),
        ("forward-only", False, matched_hidden(V, cfg.hidden, cfg.cell)),
    ):
        model = GapFiller(V, H, bi, cfg.cell, backend, cfg.seed)
        if log:
            log(f"{name}: H {H}, {model.num_params()} parameters")
        start = time.perf_counter()
        train(model, train_ids, cfg, log)
        seconds = time.perf_counter() - start
        loss, acc, per_position = model.evaluate(*val)
        results.append(
            {
                "name": name,
                "hidden": H,
                "params": model.num_params(),
                "loss": loss,
                "accuracy": acc,
                "per_position": per_position,
                "seconds": seconds,
            }
        )
    return {"config": asdict(cfg), "vocab": V, "baseline": baseline, "models": results}


def format_results(res: dict) -> str:
    c = res["config"]
    lines = [
        f"gap filling: window {c['window']}, gap {c['gap']}, {c['cell']}, {c['steps']} steps of "
        f"{c['batch']} windows, {c['eval_windows']} held-out windows",
        f"{'model':<15} {'H':>4} {'params':>8} {'val loss':>9} {'accuracy':>9} {'train s':>8}"
        "   by gap position",
    ]
    for m in res["models"]:
        by_pos = " ".join(f"{a:.0%}" for a in m["per_position"])
        lines.append(
            f"{m['name']:<15} {m['hidden']:>4} {m['params']:>8} {m['loss']:>9.3f} "
            f"{m['accuracy']:>9.1%} {m['seconds']:>8.1f}   {by_pos}"
        )
    lines.append(f"{'commonest char':<15} {'':>4} {'':>8} {'':>9} {res['baseline']:>9.1%}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = OneLineParser(
        prog="python -m minirnn.gapfill",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Fill gaps in text: a bidirectional model against a forward-only one.",
    )
    d = GapConfig()
    g = ap.add_argument_group("task")
    g.add_argument("--data", default=None, help="a UTF-8 text file (default: the bundled Tiny Shakespeare)")
    g.add_argument("--window", type=int, default=d.window, help="characters per window, gap included")
    g.add_argument("--gap", type=int, default=d.gap, help="hidden characters in the middle of each window")
    g.add_argument(
        "--eval-windows", type=int, default=d.eval_windows, help="held-out windows for the accuracy"
    )
    g = ap.add_argument_group("model and training")
    g.add_argument("--cell", default=d.cell, help="rnn, lstm, gru or module:Class")
    g.add_argument(
        "--hidden",
        type=int,
        default=d.hidden,
        help="hidden units per direction of the bidirectional model (the forward-only one is matched)",
    )
    g.add_argument("--steps", type=int, default=d.steps, help="training steps for each model")
    g.add_argument("--batch", type=int, default=d.batch, help="windows per step")
    g.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    g.add_argument("--clip", type=float, default=d.clip, help="global-norm clipping threshold (0: off)")
    g.add_argument("--seed", type=int, default=d.seed, help="random seed")
    add_backend_flag(g)
    args = ap.parse_args(argv)
    cfg = GapConfig(
        args.window,
        args.gap,
        args.hidden,
        args.cell,
        args.steps,
        args.batch,
        args.lr,
        args.clip,
        args.eval_windows,
        seed=args.seed,
    )
    if cfg.gap < 1 or cfg.gap > cfg.window - 2:
        ap.error("--gap must be between 1 and window - 2, so that both sides show some text")
    for name in ("hidden", "steps", "batch", "eval_windows"):
        if getattr(cfg, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    try:
        text = load_text(args.data)
        be = get_backend(args.backend, "float32")
        make_cell(cfg.cell)
        keep_freed_memory()  # each step reuses the last one's memory (malloc.py)
        results = compare(text, cfg, be)
    except (DataError, BackendError, ConfigError) as exc:
        print(f"minirnn.gapfill: error: {exc}", file=sys.stderr)
        return 2
    print(format_results(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
