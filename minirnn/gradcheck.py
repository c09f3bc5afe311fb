"""Gradient checks: every hand-written backward pass against central differences, in float64.

Run it in class:

    python -m minirnn.gradcheck              # every cell, the decoder, the loss, a whole model, the appendix
    python -m minirnn.gradcheck --cell lstm  # one cell (also "mypkg.cells:MyCell")

For each cell it checks the cell alone, a two-layer model, the cell in both
directions of a bidirectional layer, two of them stacked inside a
DenseDecoderCell, and the bidirectional gap filler (docs/appendix.md): a
user's own cell gets all of these.

Each row is one array: the largest relative error between the analytic and
the numerical gradient, and PASS when it is below the tolerance (1e-7). The
relative error of an array is max|a - n| / max(max|a|, max|n|): the worst
element's error measured against the size of the array's gradient, so that a
tiny entry with noisy digits does not dominate.

For a function f of an array x, the simplest central difference,
(f(x + h·e_i) - f(x - h·e_i)) / 2h, has error O(h²) from the Taylor series and
O(ε·|f|/h) from rounding, which meet near 1e-10 at best. We use the
fourth-order central stencil (see :func:`numerical_gradient`), whose
truncation error is O(h⁴): with h = 1e-4 both errors are near 1e-12.
A cell is checked through a scalar L = Σ hs ⊙ dhs + Σ s_T ⊙ ds_T with random
dhs and ds_T, so that every output and the final state carry gradient.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy

from .backend import Backend, BackendError, get_backend
from .bidirectional import Bidirectional
from .cli import OneLineParser, add_backend_flag
from .gapfill import GapFiller, make_windows
from .layers import dense_backward, dense_forward, sequence_cross_entropy, sequence_cross_entropy_backward
from .model import CharRNN, ConfigError, ModelConfig, make_cell
from .parallel import DataParallel
from .wrappers import DenseDecoderCell, StackedCell

TOLERANCE = 1e-7
STEP = 1e-4


@dataclass
class Row:
    """One checked array."""

    group: str  # what was checked, e.g. "lstm" or "decoder"
    name: str  # which array, e.g. "Wh" or "h0"
    error: float  # largest relative error
    tol: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return bool(self.error <= self.tol)


def rel_error(analytic, numeric) -> float:
    """max|a - n| / max(max|a|, max|n|), on host arrays; 0 when both are all zero."""
    a, n = numpy.asarray(analytic, dtype=numpy.float64), numpy.asarray(numeric, dtype=numpy.float64)
    scale = max(numpy.abs(a).max(initial=0.0), numpy.abs(n).max(initial=0.0))
    return 0.0 if scale == 0 else float(numpy.abs(a - n).max() / scale)


def numerical_gradient(f, x, h: float = STEP) -> numpy.ndarray:
    """Central differences of the scalar function f() with respect to every element of x.

    Uses the fourth-order central stencil
        f'(x) ≈ (f(x - 2h) - 8 f(x - h) + 8 f(x + h) - f(x + 2h)) / 12h,
    whose truncation error is O(h⁴), so h can be large enough (1e-4) that
    rounding error, O(ε·|f|/h), stays near 1e-12. x is changed in place and put
    back; f must read it. Returns a host array.
    """
    grad = numpy.zeros(x.shape)
    flat = x.reshape(-1)  # a view, so writing it changes x
    for i in range(flat.size):
        old = flat[i].copy()
        f_at = {}
        for k in (-2, -1, 1, 2):
            flat[i] = old + k * h
            f_at[k] = f()
        flat[i] = old
        # Grouped as differences of symmetric pairs: exactly 0 when f does not depend on x[i].
        grad.reshape(-1)[i] = (8 * (f_at[1] - f_at[-1]) - (f_at[2] - f_at[-2])) / (12 * h)
    return grad


def _random(be: Backend, rng, shape, scale=1.0):
    """Random data drawn with NumPy, then moved: every backend sees the same numbers."""
    return be.asarray(rng.normal(0.0, scale, size=shape))


def _random_params(layer, be: Backend, rng, D: int, H: int) -> dict:
    """The layer's initial parameters on the backend, nudged: biases leave their special starting values."""
    p = {k: be.asarray(v) for k, v in layer.init_params(D, H, rng).items()}
    for v in p.values():
        v += _random(be, rng, v.shape, 0.1)
    return p


def _leaves(tree) -> list:
    """The arrays of a state, flattened: a bidirectional layer's state is a tuple of tuples."""
    return [a for t in tree for a in _leaves(t)] if isinstance(tree, tuple) else [tree]


def _like(tree, arrays):
    """``arrays`` (a flat iterator) put back into the nesting of ``tree``."""
    return tuple(_like(t, arrays) for t in tree) if isinstance(tree, tuple) else next(arrays)


def _check_layer(layer, group: str, be: Backend, p, x, state0, state_labels, mask, rng, tol) -> list[Row]:
    """Every parameter, x and every initial-state array of a sequence layer (a cell, a wrapper
    or a Bidirectional), through L = Σ out ⊙ dout + Σ s_T ⊙ ds_T with random dout and ds_T.
    ``state_labels`` names the flattened initial-state arrays."""
    out, s_T, cache = layer.forward(p, x, state0, mask)
    dout = _random(be, rng, out.shape)
    dstate_T = _like(s_T, iter([_random(be, rng, a.shape) for a in _leaves(s_T)]))

    def loss():
        out, s_T, _ = layer.forward(p, x, state0, mask)
        total = (out * dout).sum() + sum((s * ds).sum() for s, ds in zip(_leaves(s_T), _leaves(dstate_T)))
        return be.scalar(total)

    grads = {k: be.xp.zeros_like(v) for k, v in p.items()}
    dx, dstate0 = layer.backward(p, dout, dstate_T, cache, grads)
    arrays = [(k, p[k], grads[k]) for k in p] + [("x", x, dx)]
    arrays += list(zip(state_labels, _leaves(state0), _leaves(dstate0)))
    return [
        Row(group, name, rel_error(be.to_host(g), numerical_gradient(loss, a)), tol) for name, a, g in arrays
    ]


def _lengths_mask(be: Backend, T: int, lengths):
    """(T, N) 0/1: ones for the first lengths[n] steps of sequence n."""
    return be.asarray((numpy.arange(T)[:, None] < numpy.array(lengths)[None, :]).astype(float))


def check_cell(cell_name: str, be: Backend, seed: int = 0, tol: float = TOLERANCE) -> list[Row]:
    """Every parameter and every input (x, and each initial state) of one cell over a short
    sequence with variable lengths, through the cell's sequence forward and backward."""
    cell = make_cell(cell_name)
    rng = numpy.random.default_rng(seed)
    N, T, D, H = 3, 4, 4, 5  # small, but crossing several time steps
    p = _random_params(cell, be, rng, D, H)
    x = _random(be, rng, (T, N, D))
    state0 = tuple(_random(be, rng, (N, H), 0.5) for _ in cell.state_names)
    mask = _lengths_mask(be, T, [T, T - 1, 1])
    return _check_layer(
        cell, cell.name, be, p, x, state0, [f"{s}0" for s in cell.state_names], mask, rng, tol
    )


def check_decoder(be: Backend, seed: int = 0, tol: float = TOLERANCE) -> list[Row]:
    """The dense layer y = x·W + b: W, b and x."""
    rng = numpy.random.default_rng(seed)
    M, H, V = 6, 5, 7
    W, b, x = _random(be, rng, (H, V)), _random(be, rng, (V,)), _random(be, rng, (M, H))
    dy = _random(be, rng, (M, V))

    def loss():
        return be.scalar((dense_forward(x, W, b)[0] * dy).sum())

    grads = {"W": be.xp.zeros_like(W), "b": be.xp.zeros_like(b)}
    dx = dense_backward(dy, dense_forward(x, W, b)[1], W, grads)
    return [
        Row("decoder", n, rel_error(be.to_host(g), numerical_gradient(loss, a)), tol)
        for n, a, g in (("W", W, grads["W"]), ("b", b, grads["b"]), ("x", x, dx))
    ]


def check_loss(be: Backend, seed: int = 0, tol: float = TOLERANCE) -> list[Row]:
    """The masked sequence cross-entropy with respect to the logits, with and without a mask."""
    rng = numpy.random.default_rng(seed)
    M, V = 8, 6
    logits = _random(be, rng, (M, V), 2.0)
    targets = be.asarray(rng.integers(0, V, size=M))
    rows = []
    for label, weights in (
        ("logits", None),
        ("logits (masked)", be.asarray((numpy.arange(M) < 5).astype(float))),
    ):

        def loss(weights=weights):
            return be.scalar(sequence_cross_entropy(logits, targets, weights)[0])

        analytic = sequence_cross_entropy_backward(sequence_cross_entropy(logits, targets, weights)[1])
        rows.append(
            Row("loss", label, rel_error(be.to_host(analytic), numerical_gradient(loss, logits)), tol)
        )
    return rows


def check_model(cell_name: str, be: Backend, seed: int = 0, tol: float = TOLERANCE) -> list[Row]:
    """A whole two-layer model: variable lengths, dropout (fixed masks) and a given initial
    state; every parameter and every layer's initial state, through the real loss."""
    rng = numpy.random.default_rng(seed)
    N, T, V, H = 3, 5, 7, 6
    model = CharRNN(ModelConfig(V, H, 2, cell_name, dropout=0.3), be, seed=seed)
    x = be.asarray(rng.integers(0, V, size=(N, T)))
    y = be.asarray(rng.integers(0, V, size=(N, T)))
    lengths = be.asarray(numpy.array([T, 3, 1]))
    state0 = [tuple(_random(be, rng, (N, H), 0.5) for _ in cell.state_names) for cell in model.cells]

    def loss():
        return be.scalar(model.loss(x, y, state0, lengths, dropout_seed=seed)[0])

    _, logits, _, (cache, lcache) = model.loss(x, y, state0, lengths, dropout_seed=seed)
    model.grad_flat.fill(0)
    dstate0 = model.backward(sequence_cross_entropy_backward(lcache).reshape(logits.shape), cache)
    group = f"model({model.cells[0].name})"
    rows = [
        Row(group, name, rel_error(be.to_host(model.grads[name]), numerical_gradient(loss, p)), tol)
        for name, p in model.params.items()
    ]
    for layer, cell in enumerate(model.cells):
        for s, s0, ds0 in zip(cell.state_names, state0[layer], dstate0[layer]):
            rows.append(
                Row(group, f"l{layer}.{s}0", rel_error(be.to_host(ds0), numerical_gradient(loss, s0)), tol)
            )
    return rows


def check_shards(cell_name: str, be: Backend, seed: int = 0, tol: float = TOLERANCE) -> list[Row]:
    """The batch split into two shards (minirnn/parallel.py, as training on two cores does):
    the shards' summed gradient must be the gradient of the whole batch's loss."""
    rng = numpy.random.default_rng(seed)
    N, T, V, H = 4, 5, 7, 6
    model = CharRNN(ModelConfig(V, H, 2, cell_name, dropout=0.3), be, seed=seed)
    x = be.asarray(rng.integers(0, V, size=(N, T)))
    y = be.asarray(rng.integers(0, V, size=(N, T)))
    lengths = be.asarray(numpy.array([T, 3, 1, 4]))

    def loss():
        return be.scalar(model.loss(x, y, None, lengths, dropout_seed=seed)[0])

    DataParallel(model).loss_and_grads(x, y, None, lengths, dropout_seed=seed, shards=2)
    grads = {k: be.to_host(g).copy() for k, g in model.grads.items()}
    return [
        Row(f"shards({model.cells[0].name})", name, rel_error(grads[name], numerical_gradient(loss, p)), tol)
        for name, p in model.params.items()
    ]


def check_bidirectional(cell_name: str, be: Backend, seed: int = 0, tol: float = TOLERANCE) -> list[Row]:
    """A bidirectional layer of the cell over a padded batch (lengths T, T-1, 2): fw.* and bw.*,
    x, and both directions' initial states (fw.h0, bw.h0, ...)."""
    rng = numpy.random.default_rng(seed)
    layer = Bidirectional(make_cell(cell_name), make_cell(cell_name))
    N, T, D, H = 3, 4, 4, 5
    p = _random_params(layer, be, rng, D, H)
    x = _random(be, rng, (T, N, D))
    state0 = tuple(tuple(_random(be, rng, (N, H), 0.5) for _ in c.state_names) for c in (layer.fw, layer.bw))
    labels = [f"{d}.{s}0" for d, c in (("fw", layer.fw), ("bw", layer.bw)) for s in c.state_names]
    mask = _lengths_mask(be, T, [T, T - 1, 2])
    return _check_layer(layer, f"bidir({layer.fw.name})", be, p, x, state0, labels, mask, rng, tol)


def check_wrapper(cell_name: str, be: Backend, seed: int = 0, tol: float = TOLERANCE) -> list[Row]:
    """DenseDecoderCell(StackedCell([cell, cell]), V) run by the generic Cell.forward/backward over
    a padded batch: every layer's parameters, dec.W, dec.b, x and the initial states, including
    the carried output y0, which no step reads (its gradient must be exactly zero)."""
    rng = numpy.random.default_rng(seed)
    cell = DenseDecoderCell(StackedCell([make_cell(cell_name), make_cell(cell_name)]), 6)
    N, T, D, H = 3, 4, 4, 5
    p = _random_params(cell, be, rng, D, H)
    x = _random(be, rng, (T, N, D))
    state0 = tuple(_random(be, rng, s.shape, 0.5) for s in cell.zero_state(numpy, N, H, float))
    labels = [f"{s}0" for s in cell.state_names]
    mask = _lengths_mask(be, T, [T, T - 1, 1])
    return _check_layer(cell, f"wrapper({cell.cell.cells[0].name})", be, p, x, state0, labels, mask, rng, tol)


def check_gapfill(cell_name: str, be: Backend, seed: int = 0, tol: float = TOLERANCE) -> list[Row]:
    """The bidirectional gap filler of minirnn.gapfill: every parameter, through its loss on the gap."""
    rng = numpy.random.default_rng(seed)
    V, H, W, gap = 4, 3, 6, 2  # small: the whole model is checked, one parameter at a time
    model = GapFiller(V, H, True, cell_name, be, seed=seed)
    text = rng.integers(0, V, size=40)
    x, y, w = (be.asarray(a) for a in make_windows(text, numpy.array([0, 9, 30]), W, gap, V))
    model.loss_and_grads(x, y, w)
    grads = {k: be.to_host(g).copy() for k, g in model.grads.items()}

    def loss():
        return be.scalar(model.loss_and_grads(x, y, w))

    return [
        Row(f"gapfill({model.layer.fw.name})", k, rel_error(grads[k], numerical_gradient(loss, p)), tol)
        for k, p in model.params.items()
    ]


PARTS = ("cell", "decoder", "loss", "model", "shards", "bidirectional", "wrapper", "gapfill")  # in this order


def run(cells, be: Backend, seed: int = 0, tol: float = TOLERANCE, parts=PARTS):
    """All requested checks, as rows: the per-cell checks for each cell, then the decoder and the loss."""
    per_cell = {
        "cell": check_cell,
        "model": check_model,
        "shards": check_shards,
        "bidirectional": check_bidirectional,
        "wrapper": check_wrapper,
        "gapfill": check_gapfill,
    }
    rows = []
    for part in parts:
        if part in per_cell:
            for c in cells:
                rows += per_cell[part](c, be, seed, tol)
        elif part == "decoder":
            rows += check_decoder(be, seed, tol)
        elif part == "loss":
            rows += check_loss(be, seed, tol)
    return rows


def format_table(rows) -> str:
    lines = [f"{'check':<14} {'array':<18} {'max rel error':>14}  result", "-" * 56]
    for r in rows:
        lines.append(f"{r.group:<14} {r.name:<18} {r.error:>14.2e}  {'PASS' if r.passed else 'FAIL'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = OneLineParser(
        prog="python -m minirnn.gradcheck",
        description="Check every backward pass against central differences in float64.",
    )
    ap.add_argument(
        "--cell", default="all", help="rnn, lstm, gru, all (default), or your own cell as module:Class"
    )
    ap.add_argument(
        "--tol", type=float, default=TOLERANCE, help="largest relative error that passes (default 1e-7)"
    )
    ap.add_argument("--seed", type=int, default=0, help="random seed for the test data")
    add_backend_flag(ap)
    args = ap.parse_args(argv)
    cells = ["rnn", "lstm", "gru"] if args.cell == "all" else [args.cell]
    try:
        be = get_backend(args.backend, "float64")
        for c in cells:
            make_cell(c)
        start = time.perf_counter()
        rows = run(cells, be, args.seed, args.tol)
    except (BackendError, ConfigError) as exc:
        print(f"minirnn.gradcheck: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    failed = [r for r in rows if not r.passed]
    print(
        f"\n{len(rows) - len(failed)} passed, {len(failed)} failed "
        f"(tolerance {args.tol:g}, float64, {time.perf_counter() - start:.1f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
