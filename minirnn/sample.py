"""Generating text from a trained model: ``python -m minirnn.sample`` and :func:`sample`.

    python -m minirnn.sample --checkpoint runs/20260101-120000
    python -m minirnn.sample --checkpoint RUN_DIR --prime "ROMEO:" --temperature 0.7 --num-samples 3

As in the tutorial: the prime text is read first, and the state it leaves
behind is where generation starts; then each drawn character is fed back in,
one step at a time, carrying the state. Only the checkpoint is needed (it holds
the vocabulary), not the training text.

How the next character is chosen from the logits z (V,):
    greedy        the most likely one, argmax z
    temperature   p = softmax(z / temperature): below 1 sharpens p (more conservative,
                  more repetitive), above 1 flattens it (more surprising, more errors)
    top-k         only the k most likely characters keep their probability
"""

from __future__ import annotations

import sys

import numpy

from . import checkpoint, checks, cli
from .backend import BackendError, get_backend
from .checkpoint import CheckpointError
from .cli import KeepPathsWhole, OneLineParser, add_model_flags, docs_page
from .data import DataError, Vocab, decode, read_bytes
from .model import ConfigError
from .pretrained import resolve

PRIME_CHUNK = 256  # prime characters read per forward call: long primes need no long caches


class SampleError(ValueError):
    """Sampling options that cannot work; one line."""


def load_model(path, backend: str = "numpy", cell: str | None = None):
    """A checkpoint (run directory or file) -> (model on ``backend``, vocab, meta).

    ``cell``: the cell the user named; a checkpoint of a module:Class cell loads only if it is that one
    (checkpoint.trusted_cell), so that opening a checkpoint never imports code it names."""
    meta, arrays = checkpoint.load(path)
    model = checkpoint.build_model(meta, arrays, get_backend(backend, meta.get("dtype", "float32")), cell)
    return model, Vocab(meta["vocab"]), meta


def sampling_bytes(model, num_samples: int, prime_length: int, length: int) -> int:
    """At least what :func:`sample` holds: per row the drawn ids and the prime (int64), the texts (str
    and the list they are joined from), the logits and the state of every layer."""
    c = model.config
    per_row = (
        8 * (length + prime_length)
        + 20 * (length + prime_length)
        + model.backend.dtype.itemsize * (4 * c.vocab_size + 2 * c.num_layers * c.hidden_size)
    )
    return num_samples * per_row


def pick(logits, rng, temperature=1.0, top_k=None, greedy=False):
    """Host logits (N, V) -> one id per row (N,), drawn as the module docstring says."""
    z = numpy.asarray(logits, dtype=numpy.float64)
    if greedy:
        return z.argmax(axis=1)
    if temperature != 1:
        z = z / temperature
    if top_k is not None and top_k < z.shape[1]:
        kth = numpy.sort(z, axis=1)[:, -top_k, None]  # (N, 1): the k-th largest logit of each row
        z = numpy.where(z >= kth, z, -numpy.inf)  # the rest can never be drawn
    w = numpy.exp(z - z.max(axis=1, keepdims=True))  # (N, V) softmax, not yet divided by its sum
    # Inverse CDF, as the tutorial's weighted_pick: the first id whose cumulative weight passes
    # u·(total weight), u uniform in [0, 1). (Scaling u by the sum spares dividing every weight by it.)
    cdf = w.cumsum(axis=1)
    u = rng.random((z.shape[0], 1)) * cdf[:, -1:]
    return numpy.minimum((cdf < u).sum(axis=1), z.shape[1] - 1)


def sample(
    model,
    vocab: Vocab,
    prime: str = "The ",
    length: int = 500,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    seed: int | None = None,
    num_samples: int = 1,
):
    """Generate ``num_samples`` texts at once (one batch row each), each ``prime`` + ``length`` characters.

    Returns a list of str. Raises SampleError for bad options or prime characters
    missing from the vocabulary (named in the message).
    """
    if not prime:
        raise SampleError("the prime text is empty: give at least one character, e.g. --prime 'The '")
    unknown = vocab.missing(prime)
    if unknown:
        raise SampleError(f"the prime has characters the vocabulary lacks: {''.join(unknown)!r}")
    if length < 0 or num_samples < 1:
        raise SampleError("--length must be 0 or more and --num-samples at least 1")
    if not temperature > 0:
        raise SampleError(
            f"--temperature must be above 0, got {temperature} (for the most likely character, use --greedy)"
        )
    if top_k is not None and top_k < 1:
        raise SampleError(f"--top-k must be at least 1, got {top_k}")
    if seed is not None and not (checks.is_int(seed) and seed >= 0):
        raise SampleError(f"--seed must be 0 or more, got {seed}")
    try:  # before allocating: --num-samples 1000000000 is one line, not a MemoryError
        checks.check_fits(
            sampling_bytes(model, num_samples, len(prime), length),
            f"--num-samples {num_samples} with --length {length} and a prime of {len(prime):,}",
        )
    except checks.TooBig as exc:
        raise SampleError(str(exc)) from None
    be, N = model.backend, num_samples
    ids = numpy.tile(vocab.encode(prime), (N, 1))  # (N, P): every row reads the same prime
    state = None
    for start in range(0, ids.shape[1], PRIME_CHUNK):
        logits, state, _ = model.forward(be.asarray(ids[:, start : start + PRIME_CHUNK]), state)
    last = logits[-1]  # (N, V): the prediction after the prime's last character
    rng = numpy.random.default_rng(seed)
    out = numpy.empty((N, length), dtype=numpy.int64)
    for t in range(length):
        out[:, t] = drawn = pick(be.to_host(last), rng, temperature, top_k, greedy)  # (N,) on the host
        if t + 1 < length:
            last, state = model.step(be.asarray(drawn), state)  # feed it back in, carry the state
    return [prime + vocab.decode(row) for row in out]


def read_prime(path) -> str:
    """The prime text of --prime-file: a regular UTF-8 file, checked as a training text is."""
    return decode(read_bytes(path), str(path))


PROG = "minirnn.sample"


def main(argv=None) -> int:
    ap = OneLineParser(
        prog="python -m minirnn.sample",
        description="Generate text from a checkpoint of python -m minirnn.train. "
        f"Every flag is described in {docs_page('flags.md')}.",
        formatter_class=KeepPathsWhole,
    )
    add_model_flags(ap)
    prime = ap.add_mutually_exclusive_group()
    prime.add_argument("--prime", default="The ", help="text to read before generating (default 'The ')")
    prime.add_argument(
        "--prime-file",
        metavar="FILE",
        help="read the prime text from this UTF-8 file instead (no length limit)",
    )
    ap.add_argument(
        "--length", type=int, default=500, help="characters to generate after the prime (default 500)"
    )
    ap.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="divides the logits: lower is more conservative, higher more surprising (default 1.0)",
    )
    ap.add_argument("--top-k", type=int, default=None, help="draw only from the k most likely characters")
    ap.add_argument("--greedy", action="store_true", help="always take the most likely character")
    ap.add_argument(
        "--seed", type=int, default=None, help="seed for the draws, 0 or more (default: different every run)"
    )
    ap.add_argument(
        "--num-samples", type=int, default=1, help="how many texts to draw, together in one batch"
    )
    try:
        cli.catch_ctrl_c()  # (before this line, a Ctrl-C already exits quietly: cli.quiet_until_main)
        args = ap.parse_args(argv)
        prime = args.prime if args.prime_file is None else read_prime(args.prime_file)
        path, note = resolve(args.checkpoint, args.newest)  # which checkpoint: pretrained/__init__.py
        model, vocab, _ = load_model(path, args.backend, args.cell)
        texts = sample(
            model,
            vocab,
            prime,
            args.length,
            args.temperature,
            args.top_k,
            args.greedy,
            args.seed,
            args.num_samples,
        )
        print(note, file=sys.stderr)  # once it worked, so that an error stays one line
        print(("\n" + "-" * 40 + "\n").join(texts), flush=True)
    except (SampleError, CheckpointError, BackendError, ConfigError, DataError) as exc:
        return cli.fail(PROG, f"error: {exc}", 2)
    except BrokenPipeError:  # python -m minirnn.sample ... | head: the reader has what it wanted
        return cli.quiet_broken_pipe()
    except (OSError, MemoryError) as exc:  # e.g. a checkpoint we may not read
        return cli.fail(PROG, f"error: {cli.describe(exc)}", 1 if isinstance(exc, MemoryError) else 2)
    except KeyboardInterrupt:  # Ctrl-C: the shell's quiet 130
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(PROG, main))
