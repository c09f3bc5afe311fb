"""Exercise 3: backpropagation through time over a padded batch, with minirnn's RNN step.

The student writes, with ``CELL.step_forward`` / ``CELL.step_backward`` of minirnn's RNN:

    rnn_forward(x, h0, p, mask=None) -> (hs, h_T, cache)       x (T, N, D), mask (T, N) of 0/1
    rnn_backward(dhs, dh_T, cache) -> (dx, dh0, grads)         grads: {"Wx", "Wh", "b"}

Past a sequence's end (mask 0) its state is carried unchanged and its output is
zero (docs/bptt.md#masks-sequences-of-different-lengths-in-one-batch), as in
minirnn's ``Cell.forward``, which is the reference.
"""

from __future__ import annotations

import numpy

from . import reference
from .core import Check, Crash, central_differences, float32, loss_of, random

T, N, D, H = 4, 3, 2, 5
LENGTHS = (4, 2, 1)  # one full sequence, one that ends halfway, one of a single step
OUTPUTS = ("dx", "dh0", "dWx", "dWh", "db")

HINTS = {
    "output_not_zeroed": "past a sequence's end (mask 0) its output is zero: hs[t] = m ⊙ h_new",
    "state_not_held": "past a sequence's end its state is carried unchanged: h = m ⊙ h_new + (1 - m) ⊙ h",
    "mask_leak": "gradient gets through past a sequence's end: at a padded step the step's backward gets "
    "m ⊙ (dhs[t] + dh), which is zero "
    "(docs/bptt.md#masks-sequences-of-different-lengths-in-one-batch)",
    "carry_dropped": "at a padded step the state was carried unchanged, so its gradient must be carried "
    "back unchanged too: dh = dh_prev + (1 - m) ⊙ dh",
    "dh_T_ignored": "the final state reaches the loss too: start the backward walk from dh = dh_T, not zeros",
}


def variant(p, x, h0, mask, dhs, dh_T, mistake=None):
    """BPTT written out with minirnn's RNN step, with one of the known mistakes (None: right)."""
    ones = numpy.ones((T, N))
    m_fwd = ones if mask is None else mask
    h, hs, caches = h0, [], []
    for t in range(T):
        (h_new,), cache = reference.step_forward("rnn", p, x[t], (h,))
        m = m_fwd[t][:, None]
        hs.append(h_new if mistake == "output_not_zeroed" else m * h_new)
        h = h_new if mistake == "state_not_held" else m * h_new + (1 - m) * h
        caches.append(cache)
    out = {"hs": numpy.stack(hs), "h_T": h}
    m_bwd = ones if mistake == "mask_leak" else m_fwd
    dh = numpy.zeros_like(h0) if mistake == "dh_T_ignored" else dh_T
    dx, grads = numpy.zeros_like(x), {k: numpy.zeros_like(v) for k, v in p.items()}
    for t in reversed(range(T)):
        m = m_bwd[t][:, None]
        dx[t], (dh_prev,), g = reference.step_backward("rnn", p, (m * (dhs[t] + dh),), caches[t])
        for k in grads:
            grads[k] += g[k]
        dh = dh_prev if mistake == "carry_dropped" else dh_prev + (1 - m) * dh
    out.update(dx=dx, dh0=dh, **{f"d{k}": g for k, g in grads.items()})
    return out


def _inputs(rng):
    shapes = reference.CELLS["rnn"]().param_shapes(D, H)
    p = {k: random(rng, *s, scale=0.5) for k, s in shapes.items()}
    mask = (numpy.arange(T)[:, None] < numpy.array(LENGTHS)[None, :]).astype(float)
    return p, random(rng, T, N, D), random(rng, N, H), mask


def check_forward(s, t, rng):
    p, x, h0, mask = _inputs(rng)
    for case, m in (("", None), (" (masked)", mask)):
        hs, h_T, _ = reference.rnn_sequence(p, x, h0, m, numpy.zeros((T, N, H)), numpy.zeros((N, H)))
        wrong = {}
        for k in ("output_not_zeroed", "state_not_held"):
            v = variant(p, x, h0, m, numpy.zeros((T, N, H)), numpy.zeros((N, H)), k)
            wrong[k] = {f"hs{case}": v["hs"], f"h_T{case}": v["h_T"]}
        got = s("rnn_forward", x, h0, p, m, returns=("hs", "h_T", "cache"))
        t.array(f"hs{case}", got[0], hs, wrong)
        t.array(f"h_T{case}", got[1], h_T, wrong)
    got32 = s("rnn_forward", *float32([x, h0, p, mask]), returns=("hs", "h_T", "cache"))
    t.dtype("hs (float32 in)", got32[0], numpy.float32)


def _grads_of(got):
    dx, dh0, grads = got
    if not isinstance(grads, dict) or not {"Wx", "Wh", "b"} <= set(grads):
        raise Crash("rnn_backward", "rnn_backward's third result must be a dict with Wx, Wh and b")
    return dict(zip(OUTPUTS, (dx, dh0, grads["Wx"], grads["Wh"], grads["b"])))


def check_backward(s, t, rng):
    p, x, h0, mask = _inputs(rng)
    dhs, dh_T = random(rng, T, N, H), random(rng, N, H)
    for case, m in (("", None), (" (masked)", mask)):
        _, _, (dx, dh0, grads) = reference.rnn_sequence(p, x, h0, m, dhs, dh_T)
        want = dict(zip(OUTPUTS, (dx, dh0, grads["Wx"], grads["Wh"], grads["b"])))
        *_, cache = s("rnn_forward", x, h0, p, m, returns=("hs", "h_T", "cache"))
        got = _grads_of(s("rnn_backward", dhs, dh_T, cache, returns=("dx", "dh0", "grads")))

        def loss(m=m):
            hs, h_T, _ = s("rnn_forward", x, h0, p, m, returns=("hs", "h_T", "cache"))
            return loss_of("rnn_forward", hs, dhs) + loss_of("rnn_forward", h_T, dh_T)

        numeric = central_differences(loss, {"dx": x, "dh0": h0, **{f"d{k}": v for k, v in p.items()}})
        wrong = {
            k: {f"{o}{case}": v for o, v in variant(p, x, h0, m, dhs, dh_T, k).items()}
            for k in ("mask_leak", "carry_dropped", "dh_T_ignored")
        }
        for label in OUTPUTS:
            t.array(f"{label}{case}", got[label], want[label], wrong, numeric=numeric[label])
    *_, cache32 = s("rnn_forward", *float32([x, h0, p, mask]), returns=("hs", "h_T", "cache"))
    got32 = _grads_of(s("rnn_backward", *float32([dhs, dh_T]), cache32, returns=("dx", "dh0", "grads")))
    for label in OUTPUTS:
        t.dtype(f"{label} (float32 in)", got32[label], numpy.float32)


CHECKS = [
    Check("rnn_forward", "hs, h_T (with and without a mask) vs minirnn", check_forward, HINTS),
    Check("rnn_backward", "dx dh0 dWx dWh db, masked, vs central diff., minirnn", check_backward, HINTS),
]
