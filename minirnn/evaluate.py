"""How good a model is on held-out text: ``python -m minirnn.evaluate`` and :func:`evaluate_text`.

    python -m minirnn.evaluate                                # the shipped model, Tiny Shakespeare's last 10%
    python -m minirnn.evaluate --checkpoint runs/shakespeare  # a run's best checkpoint, on its own text
    python -m minirnn.evaluate --checkpoint RUN_DIR --data other.txt --val-fraction 1

Every character of the held-out part is predicted once, with the state carried from
character to character, as sampling carries it. For speed the part is cut into STREAMS
pieces read side by side as one batch; each piece starts from a zero state and first
reads the BURN_IN characters before it without scoring them, so every prediction sees
at least that much context (the first piece's context is the end of the training text).
That differs from the validation loss training prints, where every window of
``seq_length`` characters starts from a zero state and the last few characters are
left out: the stream sees more context, so its loss is a little lower (docs/results.md).

Three figures, over the N held-out characters c_i with the model's p(c_i | c_<i):
    loss       -1/N Σ ln p(c_i | c_<i)      nats per character
    bits       loss / ln 2                   bits per character
    accuracy   1/N Σ [argmax p(· | c_<i) = c_i]
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy
from threadpoolctl import threadpool_limits

from . import checkpoint, cli
from .backend import BackendError, get_backend
from .checkpoint import CheckpointError
from .cli import OneLineParser
from .data import DataError, Vocab, load_text, split
from .model import ConfigError

STREAMS = 128  # rows read side by side, as a batch: the held-out text in 128 pieces of about 870 characters
BURN_IN = 100  # characters each row reads, unscored, before its piece: every prediction has this much context
CHUNK = 200  # characters per forward call: bounds the memory of the forward's cache


@dataclass
class Evaluation:
    loss: float  # nats per character
    accuracy: float  # next-character accuracy
    characters: int  # N, the characters predicted

    @property
    def bits(self) -> float:
        return self.loss / math.log(2)

    def __str__(self):
        return (
            f"validation loss {self.loss:.3f} nats/char ({self.bits:.3f} bits), "
            f"accuracy {self.accuracy:.3f}, {self.characters:,} characters"
        )


def evaluate_ids(model, ids, first: int, streams: int = STREAMS, burn_in: int = BURN_IN) -> Evaluation:
    """Predict every one of ids[first:]; ``first`` >= 1.

    The targets are cut into ``streams`` rows of S consecutive characters (the last padded).
    Each row starts from a zero state, reads the b = min(burn_in, first - 1) characters before
    its piece without scoring them, then predicts its piece, the state carried from chunk to chunk.
    """
    be = model.backend
    ids = numpy.asarray(ids, dtype=numpy.int64)
    n = len(ids) - first
    streams = max(1, min(streams, n))
    S, b = -(-n // streams), min(burn_in, first - 1)  # ceil(n / streams)
    padded = numpy.concatenate([ids, numpy.zeros(streams * S - n, numpy.int64)])  # padding sits at the end
    starts = first + S * numpy.arange(streams)  # (R,) each row's first target
    x = padded[starts[:, None] - 1 - b + numpy.arange(b + S)]  # (R, b + S) inputs, burn-in first
    y = padded[starts[:, None] + numpy.arange(S)]  # (R, S) targets
    valid = starts[:, None] + numpy.arange(S) < len(ids)  # (R, S) False on the padding
    state = None
    if b:
        _, state, _ = model.forward(be.asarray(x[:, :b]), None)  # context only: not scored
    nll = hits = 0.0
    for start in range(0, S, CHUNK):
        logits, state, _ = model.forward(be.asarray(x[:, b + start : b + start + CHUNK]), state)  # (T, R, V)
        z = be.to_host(logits).astype(numpy.float64).transpose(1, 0, 2)  # (R, T, V), float64 for the sums
        yt, vt = y[:, start : start + CHUNK], valid[:, start : start + CHUNK]
        zmax = z.max(axis=2, keepdims=True)
        log_norm = (zmax + numpy.log(numpy.exp(z - zmax).sum(axis=2, keepdims=True)))[..., 0]  # (R, T)
        picked = numpy.take_along_axis(z, yt[..., None], axis=2)[..., 0]  # (R, T) the targets' logits
        nll += ((log_norm - picked) * vt).sum()  # -ln p(target) = logsumexp z - z_target
        hits += ((z.argmax(axis=2) == yt) & vt).sum()
    return Evaluation(nll / n, hits / n, n)


def evaluate_text(model, vocab: Vocab, text: str, val_fraction: float = 0.1, streams: int = STREAMS):
    """The model's figures on the last ``val_fraction`` of ``text``, split as training splits it.

    The characters before the held-out part are read as context, so all of its characters are predicted.
    """
    if not 0.0 < val_fraction <= 1.0:
        raise DataError(f"--val-fraction must be in (0, 1], got {val_fraction}")
    ids = vocab.encode(text)  # DataError naming symbols the model does not know
    train_ids, val_ids = split(ids, val_fraction) if val_fraction < 1 else (ids[:1], ids[1:])
    if len(val_ids) < 1:
        raise DataError(
            f"the held-out part of the text is empty ({len(ids)} characters, --val-fraction {val_fraction})"
        )
    # One BLAS thread: the products are small (STREAMS x H), and on a busy machine OpenBLAS's
    # threads mostly wait for each other (measured: 19 s instead of 97 s with two, load 14 on 2 cores).
    with threadpool_limits(1):
        return evaluate_ids(model, ids, len(train_ids), streams)


PROG = "minirnn.evaluate"


def main(argv=None) -> int:
    from .pretrained import resolve

    ap = OneLineParser(
        prog="python -m minirnn.evaluate",
        description="Loss (nats and bits per character) and next-character accuracy of a "
        "checkpoint on the whole held-out part of a text.",
    )
    ap.add_argument(
        "--checkpoint",
        metavar="PATH",
        default=None,
        help="a run directory (its best checkpoint), or a checkpoint file "
        "(default: the model shipped with minirnn)",
    )
    ap.add_argument("--newest", action="store_true", help="a run directory's newest checkpoint, not its best")
    ap.add_argument(
        "--data",
        metavar="FILE",
        default=None,
        help="the text (default: the one the checkpoint was trained on, else Tiny Shakespeare)",
    )
    ap.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="the last fraction of the text to evaluate (default: the checkpoint's, else 0.1; 1: all of it)",
    )
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cupy"], help="numpy (default) or cupy")
    args = ap.parse_args(argv)
    try:
        path, note = resolve(args.checkpoint, args.newest)  # said once it worked: errors stay one line
        meta, arrays = checkpoint.load(path)
        model = checkpoint.build_model(meta, arrays, get_backend(args.backend, "float32"))
        trained = meta.get("train", {})
        data = args.data if args.data is not None else trained.get("data")
        if data is not None and args.data is None and not Path(data).is_file():
            raise DataError(f"the checkpoint was trained on {data}, which is not here: pass --data FILE")
        fraction = args.val_fraction if args.val_fraction is not None else trained.get("val_fraction") or 0.1
        result = evaluate_text(model, Vocab(meta["vocab"]), load_text(data), fraction)
    except (DataError, CheckpointError, BackendError, ConfigError) as exc:
        return cli.fail(PROG, f"error: {exc}", 2)
    except OSError as exc:
        return cli.fail(PROG, f"error: {exc.strerror or exc}: {exc.filename or ''}", 2)
    print(note, file=sys.stderr)
    print(
        f"{path}: step {meta.get('step', '?')}, text {data or 'Tiny Shakespeare (bundled)'}, "
        f"the last {fraction:g} of it"
    )
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
