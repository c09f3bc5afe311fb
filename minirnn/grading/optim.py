"""Exercise 6: clipping by global norm and one Adam update, as minirnn.optim computes them.

clip_by_global_norm(grads, max_norm) -> norm      scales every array of the dict in place
adam_update(p, g, m, v, t, lr, beta1, beta2, eps)  updates p, m and v in place; t counts from 1
"""

from __future__ import annotations

import math

import numpy

from . import reference
from .core import Check, random

HINTS = {
    "clamp": "that clamps each element to [-max_norm, max_norm] (char-rnn's clip): a different algorithm, "
    "which turns the gradient; scale every array by max_norm / max(norm, max_norm) "
    "(docs/optim.md#clipping-by-global-norm)",
    "per_array": "each array was scaled by its own norm; the norm is global: sqrt of the sum of g² over "
    "every array together",
    "norm_after": "return the norm before clipping (training logs it), not after",
    "scaled_up": "a gradient shorter than max_norm is left as it is: only scale down",
    "not_in_place": "the arrays did not change: scale them in place (g *= scale), the caller keeps its dict",
    "p_not_in_place": "p did not change: update it in place (p -= ...); p = p - ... makes a new array",
    "no_bias_correction": "the bias correction is missing: lr_t = lr·sqrt(1 - β2^t) / (1 - β1^t) "
    "(docs/optim.md#adam)",
    "paper_eps": "that is the paper's ε placement, m̂ / (sqrt(v̂) + ε); minirnn (like TensorFlow) folds "
    "the corrections into the step size: lr_t · m / (sqrt(v) + ε)",
    "state_not_kept": "m and v must be updated in place (m *= β1; m += (1 - β1)·g): m = β1·m + ... makes "
    "a new array that the next step never sees",
}


def _grads(rng, scale):
    return {"Wx": random(rng, 3, 4, scale=scale), "b": random(rng, 4, scale=scale)}


def check_clip(s, t, rng):
    max_norm = 1.0
    for case, scale in (("", 2.0), (" (below max_norm)", 0.1)):
        grads = _grads(rng, scale)
        want = {k: g.copy() for k, g in grads.items()}
        want_norm = reference.clip(want, max_norm)
        wrong = {
            "clamp": {k + case: numpy.clip(g, -max_norm, max_norm) for k, g in grads.items()},
            "per_array": {
                k + case: g * max_norm / max(numpy.sqrt((g * g).sum()), max_norm) for k, g in grads.items()
            },
            "scaled_up": {k + case: g * max_norm / want_norm for k, g in grads.items()},
            "not_in_place": {k + case: g for k, g in grads.items()},
            "norm_after": {"norm" + case: min(want_norm, max_norm)},
        }
        got = {k: g.copy() for k, g in grads.items()}
        norm = s("clip_by_global_norm", got, max_norm, copy=False)
        t.array("norm" + case, norm, want_norm, wrong)
        for k in grads:
            t.array(k + case, got[k], want[k], wrong)


def _adam_variant(p, gs, lr, b1, b2, eps, mistake):
    """The parameter's update at each step, with one of the known mistakes."""
    m, v, updates = numpy.zeros_like(p), numpy.zeros_like(p), []
    for t, g in enumerate(gs, start=1):
        if mistake == "state_not_kept":
            m, v = numpy.zeros_like(p), numpy.zeros_like(p)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if mistake == "no_bias_correction":
            step = lr * m / (numpy.sqrt(v) + eps)
        elif mistake == "paper_eps":
            step = lr * (m / (1 - b1**t)) / (numpy.sqrt(v / (1 - b2**t)) + eps)
        else:
            step = lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (numpy.sqrt(v) + eps)
        updates.append(-step)
    return updates


def check_adam(s, t, rng):
    lr, b1, b2, eps, steps = 1e-2, 0.9, 0.999, 1e-8, 3
    p0 = random(rng, 3, 4)
    gs = [random(rng, 3, 4, scale=1e-2) for _ in range(steps)]  # small, so that ε's placement shows
    ref = {"w": p0.copy()}
    opt = reference.adam(ref, lr, (b1, b2), eps)
    labels = [f"update {k}" for k in range(1, steps + 1)]
    wrong = {
        h: dict(zip(labels, _adam_variant(p0, gs, lr, b1, b2, eps, h)))
        for h in ("no_bias_correction", "paper_eps", "state_not_kept")
    }
    wrong["p_not_in_place"] = {label: numpy.zeros_like(p0) for label in labels}
    p, m, v = p0.copy(), numpy.zeros_like(p0), numpy.zeros_like(p0)
    for k, (label, g) in enumerate(zip(labels, gs), start=1):
        before, ref_before = p.copy(), ref["w"].copy()
        opt.step({"w": g})
        s("adam_update", p, g.copy(), m, v, k, lr, b1, b2, eps, copy=False)
        t.array(label, p - before, ref["w"] - ref_before, wrong)


CHECKS = [
    Check("clip_by_global_norm", "norm and arrays, above and below max_norm, vs minirnn", check_clip, HINTS),
    Check("adam_update", "three updates vs minirnn.optim.Adam", check_adam, HINTS),
]
