"""Exercises 2, 4 and 5: one step of the vanilla RNN, the LSTM and the GRU, forward and backward.

The student's functions take and return plain arrays:

    rnn_step_forward(x, h_prev, Wx, Wh, b) -> (h, cache)
    rnn_step_backward(dh, cache) -> (dx, dh_prev, dWx, dWh, db)
    lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b) -> (h, c, cache)          gates i, f, o, g
    lstm_step_backward(dh, dc, cache) -> (dx, dh_prev, dc_prev, dWx, dWh, db)
    gru_step_forward(x, h_prev, Wx, Wh, b, bhn) -> (h, cache)                 gates r, z, n; reset after
    gru_step_backward(dh, cache) -> (dx, dh_prev, dWx, dWh, db, dbhn)

Each is compared with minirnn's cell (``step_forward`` / ``step_backward``) and, for
the backward, with central differences of the student's own forward. The known
mistakes are written out below as whole wrong steps (``*_variant``), so that a
wrong array can be recognised; with ``mistake=None`` each variant is the right
step (the tests check it against minirnn's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy

from . import reference
from .core import Check, central_differences, float32, loss_of, random

N, D, H = 2, 4, 5  # batch, input, hidden: all different, so a transpose shows in the shape


def sigmoid(z):
    return 1 / (1 + numpy.exp(-z))


@dataclass
class Cell:
    name: str  # "rnn", "lstm", "gru": minirnn's cell of the same name is the reference
    states: tuple  # ("h",) or ("h", "c")
    params: tuple  # the weights, in the order the student's forward takes them
    variant: object  # variant(x, states, p, dstates, mistake) -> dict of every output, by label
    hints: dict
    forward_mistakes: tuple  # the hints that are about the forward pass; the others are about the backward

    def forward_name(self):
        return f"{self.name}_step_forward"

    def backward_name(self):
        return f"{self.name}_step_backward"

    def outputs(self):
        return ("dx",) + tuple(f"d{s}_prev" for s in self.states) + tuple(f"d{k}" for k in self.params)


def rnn_variant(x, states, p, dstates, mistake=None):
    (h_prev,), (dh,) = states, dstates
    a = x @ p["Wx"] + h_prev @ p["Wh"] + p["b"]
    h = a if mistake == "no_tanh" else numpy.tanh(a)
    slope = {"tanh_slope_h": 1 - h, "tanh_slope_a": 1 - a * a, "no_tanh_slope": 1.0}.get(mistake, 1 - h * h)
    da = dh * slope
    return {
        "h": h,
        "dx": da @ p["Wx"].T,
        "dh_prev": da @ p["Wh"].T,
        "dWx": x.T @ da,
        "dWh": h_prev.T @ da,
        "db": da.sum(axis=0),
    }


def lstm_variant(x, states, p, dstates, mistake=None):
    (h_prev, c_prev), (dh, dc) = states, dstates
    a = x @ p["Wx"] + h_prev @ p["Wh"] + p["b"]
    k = H
    blocks = [a[:, j * k : (j + 1) * k] for j in range(4)]
    ai, af, ao, ag = (blocks[0], blocks[1], blocks[3], blocks[2]) if mistake == "gate_order" else blocks
    i, f, o, g = sigmoid(ai), sigmoid(af), sigmoid(ao), numpy.tanh(ag)
    c = f * c_prev + i * g
    tc = numpy.tanh(c)
    h = o * c if mistake == "h_without_tanh" else o * tc
    slope = 1 - c * c if mistake == "tanh_c_slope" else 1 - tc * tc
    dct = dc if mistake == "dc_missing_h" else dc + dh * o * slope  # directly, and through h_t
    da = numpy.concatenate(
        [dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dh * tc * o * (1 - o), dct * i * (1 - g * g)],
        axis=1,
    )
    return {
        "h": h,
        "c": c,
        "dx": da @ p["Wx"].T,
        "dh_prev": da @ p["Wh"].T,
        "dc_prev": dct if mistake == "dc_prev_no_f" else dct * f,
        "dWx": x.T @ da,
        "dWh": h_prev.T @ da,
        "db": da.sum(axis=0),
    }


def gru_variant(x, states, p, dstates, mistake=None):
    (h_prev,), (dh,) = states, dstates
    ax, ah = x @ p["Wx"] + p["b"], h_prev @ p["Wh"]
    r, z = sigmoid(ax[:, :H] + ah[:, :H]), sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    hn = ah[:, 2 * H :] + p["bhn"]
    if mistake == "reset_before":
        n = numpy.tanh(ax[:, 2 * H :] + (r * h_prev) @ p["Wh"][:, 2 * H :] + p["bhn"])
    elif mistake == "bhn_outside":
        n = numpy.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :] + p["bhn"])
    else:
        n = numpy.tanh(ax[:, 2 * H :] + r * hn)
    h = z * n + (1 - z) * h_prev if mistake == "z_swapped" else (1 - z) * n + z * h_prev
    dan = dh * (1 - z) * (1 - n * n)
    daz = dh * (h_prev - n) * z * (1 - z)
    dar = dan * hn * r * (1 - r)
    dax = numpy.concatenate([dar, daz, dan], axis=1)
    dah = numpy.concatenate([dar, daz, dan * r], axis=1)
    direct = 0 if mistake == "no_direct_path" else dh * z
    return {
        "h": h,
        "dx": dax @ p["Wx"].T,
        "dh_prev": direct + dah @ p["Wh"].T,
        "dWx": x.T @ dax,
        "dWh": h_prev.T @ dah,
        "db": dax.sum(axis=0),
        "dbhn": (dan if mistake == "dbhn_without_r" else dan * r).sum(axis=0),
    }


RNN_HINTS = {
    "no_tanh": "h_t = tanh(a_t): the nonlinearity is missing",
    "tanh_slope_h": "tanh'(a) = 1 - tanh²(a) = 1 - h², not 1 - h (docs/derivations.md#vanilla-rnn)",
    "tanh_slope_a": "tanh'(a) = 1 - tanh²(a) = 1 - h², not 1 - a²: use the output h, not the pre-activation",
    "no_tanh_slope": "the gradient goes through tanh: da = dh ⊙ (1 - h²), not dh",
}
LSTM_HINTS = {
    "gate_order": "minirnn's gate order is i, f, o, g (PyTorch's is i, f, g, o): "
    "columns 2H:3H are o and 3H:4H are g",
    "h_without_tanh": "h_t = o ⊙ tanh(c_t), not o ⊙ c_t",
    "tanh_c_slope": "through h = o ⊙ tanh(c) the slope is 1 - tanh²(c), not 1 - c²",
    "dc_missing_h": "c_t reaches the loss through h_t too: dc_t = dc + dh ⊙ o ⊙ (1 - tanh²(c_t)) "
    "(docs/derivations.md#lstm, step 1)",
    "dc_prev_no_f": "dc_{t-1} = dc_t ⊙ f: the forget gate scales what flows back along the cell state "
    "(docs/derivations.md#lstm, step 2)",
}
GRU_HINTS = {
    "reset_before": "that is the original GRU, reset before the product; minirnn's resets after: "
    "n = tanh(ax_n + r ⊙ (h_{t-1}·Wh_n + bhn)) (docs/derivations.md#gru)",
    "bhn_outside": "bhn sits inside the product with r: n = tanh(ax_n + r ⊙ (ah_n + bhn))",
    "z_swapped": "z keeps the old state: h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}",
    "no_direct_path": "h_{t-1} also reaches h_t directly, through z ⊙ h_{t-1}: dh_prev has a term dh ⊙ z",
    "dbhn_without_r": "bhn is multiplied by r, so dbhn = Σ_n da_n ⊙ r",
}

RNN = Cell("rnn", ("h",), ("Wx", "Wh", "b"), rnn_variant, RNN_HINTS, ("no_tanh",))
LSTM = Cell("lstm", ("h", "c"), ("Wx", "Wh", "b"), lstm_variant, LSTM_HINTS, ("gate_order", "h_without_tanh"))
GRU = Cell(
    "gru",
    ("h",),
    ("Wx", "Wh", "b", "bhn"),
    gru_variant,
    GRU_HINTS,
    ("reset_before", "bhn_outside", "z_swapped"),
)


def _inputs(cell: Cell, rng):
    shapes = reference.CELLS[cell.name]().param_shapes(D, H)
    p = {k: random(rng, *shapes[k], scale=0.5) for k in cell.params}
    return random(rng, N, D), tuple(random(rng, N, H) for _ in cell.states), p


def _wrong(cell: Cell, x, states, p, dstates, forward: bool):
    mistakes = [m for m in cell.hints if (m in cell.forward_mistakes) == forward]
    return {m: cell.variant(x, states, p, dstates, m) for m in mistakes}


def check_forward(cell: Cell):
    def run(s, t, rng):
        x, states, p = _inputs(cell, rng)
        zeros = tuple(numpy.zeros_like(h) for h in states)
        want, _ = reference.step(cell.name, p, x, states, zeros)
        wrong = _wrong(cell, x, states, p, zeros, forward=True)
        got = s(
            cell.forward_name(), x, *states, *(p[k] for k in cell.params), returns=cell.states + ("cache",)
        )
        for label, g, w in zip(cell.states, got, want):
            t.array(label, g, w, wrong)
        got32 = s(
            cell.forward_name(),
            *float32([x, *states, *(p[k] for k in cell.params)]),
            returns=cell.states + ("cache",),
        )
        for label, g in zip(cell.states, got32):
            t.dtype(f"{label} (float32 in)", g, numpy.float32)

    return run


def check_backward(cell: Cell):
    def run(s, t, rng):
        x, states, p = _inputs(cell, rng)
        dstates = tuple(random(rng, N, H) for _ in cell.states)
        _, (dx, dstates_prev, grads) = reference.step(cell.name, p, x, states, dstates)
        want = dict(zip(cell.outputs(), (dx, *dstates_prev, *(grads[k] for k in cell.params))))
        args = [x, *states, *(p[k] for k in cell.params)]
        fwd = cell.forward_name()
        *_, cache = s(fwd, *args, returns=cell.states + ("cache",))
        got = s(cell.backward_name(), *dstates, cache, returns=cell.outputs())

        def loss():  # Σ over the new states of state ⊙ dstate, through the student's forward
            out = s(fwd, *args, returns=cell.states + ("cache",))
            return sum(loss_of(fwd, o, d) for o, d in zip(out, dstates))

        numeric = central_differences(loss, dict(zip(cell.outputs(), args)))
        wrong = _wrong(cell, x, states, p, dstates, forward=False)
        for label, g in zip(cell.outputs(), got):
            t.array(label, g, want[label], wrong, numeric=numeric[label])
        *_, cache32 = s(fwd, *float32(args), returns=cell.states + ("cache",))
        for label, g in zip(cell.outputs(), s(cell.backward_name(), *float32(dstates), cache32)):
            t.dtype(f"{label} (float32 in)", g, numpy.float32)

    return run


def checks(cell: Cell):
    grads = " ".join(cell.outputs())
    return [
        Check(
            cell.forward_name(),
            f"{', '.join(cell.states)}: shape, dtype, values vs minirnn",
            check_forward(cell),
            cell.hints,
        ),
        Check(cell.backward_name(), f"{grads} vs central diff., minirnn", check_backward(cell), cell.hints),
    ]
