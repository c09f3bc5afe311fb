"""Exercise 1: the dense layer y = x·W + b and the masked softmax cross-entropy, forward and backward.

The student writes ``dense_forward(x, W, b) -> (y, cache)``, ``dense_backward(dy, cache) ->
(dx, dW, db)`` and ``softmax_cross_entropy(logits, targets, mask=None) -> (loss, dlogits)``.
"""

from __future__ import annotations

import numpy

from . import reference
from .core import Check, central_differences, float32, loss_of, random

M, H, V = 6, 4, 5  # rows, features in, features out (all different, so a transpose shows in the shape)

HINTS = {
    "count_NT": "divided by N·T, every position, instead of the kept count Σ mask: the padding must not "
    "count in the mean (docs/derivations.md#softmax-cross-entropy-with-a-mask)",
    "mask_ignored": "the padded positions (mask 0) count in your loss: weight each -log p by the mask",
    "not_divided": "the loss is a mean, so its gradient is divided by the count too: "
    "dlogits = mask·(p - onehot(y)) / Σ mask",
    "overflow": "NaN or inf for large logits: exp overflows; subtract each row's maximum before exp "
    "(docs/derivations.md#softmax-cross-entropy-with-a-mask, Stability)",
}


def _layer(rng):
    return random(rng, M, H), random(rng, H, V), random(rng, V)


def check_dense_forward(s, t, rng):
    x, W, b = _layer(rng)
    want, _ = reference.dense(x, W, b, numpy.zeros((M, V)))
    y, _ = s("dense_forward", x, W, b, returns=("y", "cache"))
    t.array("y", y, want)
    y32, _ = s("dense_forward", *float32([x, W, b]), returns=("y", "cache"))
    t.dtype("y (float32 in)", y32, numpy.float32)


def check_dense_backward(s, t, rng):
    x, W, b = _layer(rng)
    dy = random(rng, M, V)
    _, want = reference.dense(x, W, b, dy)
    _, cache = s("dense_forward", x, W, b, returns=("y", "cache"))
    got = s("dense_backward", dy, cache, returns=("dx", "dW", "db"))
    numeric = central_differences(
        lambda: loss_of("dense_forward", s("dense_forward", x, W, b)[0], dy), {"dx": x, "dW": W, "db": b}
    )
    for label, g, w in zip(("dx", "dW", "db"), got, want):
        t.array(label, g, w, numeric=numeric[label])
    _, cache32 = s("dense_forward", *float32([x, W, b]), returns=("y", "cache"))
    for label, g in zip(("dx", "dW", "db"), s("dense_backward", dy.astype(numpy.float32), cache32)):
        t.dtype(f"{label} (float32 in)", g, numpy.float32)


def _wrong_losses(logits, targets, mask):
    """The known-wrong answers, keyed by hint id: (loss, dlogits) of each."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = numpy.exp(z) / numpy.exp(z).sum(axis=1, keepdims=True)
    nll = -numpy.log(p[numpy.arange(len(targets)), targets])
    dz = p.copy()
    dz[numpy.arange(len(targets)), targets] -= 1
    w = numpy.ones(len(targets)) if mask is None else mask
    count = max(w.sum(), 1)
    return {
        "count_NT": ((w * nll).sum() / len(w), w[:, None] * dz / len(w)),
        "mask_ignored": (nll.mean(), dz / len(w)),
        "not_divided": ((w * nll).sum() / count, w[:, None] * dz),
    }


def check_softmax_cross_entropy(s, t, rng):
    logits, targets = random(rng, M, V, scale=2.0), rng.integers(0, V, size=M)
    mask = (numpy.arange(M) < 4).astype(float)  # two padded positions at the end
    for case, m in (("", None), (" (masked)", mask)):
        want_loss, want_d = reference.cross_entropy(logits, targets, m)
        wrong = {
            h: {f"loss{case}": lo, f"dlogits{case}": d}
            for h, (lo, d) in _wrong_losses(logits, targets, m).items()
        }
        loss, dlogits = s("softmax_cross_entropy", logits, targets, m, returns=("loss", "dlogits"))

        def mean_loss(m=m):
            return float(s("softmax_cross_entropy", logits, targets, m, returns=("loss", "dlogits"))[0])

        numeric = central_differences(mean_loss, {"dlogits": logits})["dlogits"]
        t.array(f"loss{case}", loss, want_loss, wrong)
        t.array(f"dlogits{case}", dlogits, want_d, wrong, numeric=numeric)
    big = 400 * logits  # exp(400·z) overflows float64 unless the row's maximum is subtracted first
    want_loss, _ = reference.cross_entropy(big, targets, mask)
    loss, dlogits = s("softmax_cross_entropy", big, targets, mask, returns=("loss", "dlogits"))
    if not (
        numpy.all(numpy.isfinite(numpy.asarray(loss, dtype=float)))
        and numpy.all(numpy.isfinite(numpy.asarray(dlogits, dtype=float)))
    ):
        t.fail("large logits (hundreds) give NaN or inf", "overflow")
    else:
        t.array("loss (large logits)", loss, want_loss)
    _, d32 = s(
        "softmax_cross_entropy",
        logits.astype(numpy.float32),
        targets,
        mask.astype(numpy.float32),
        returns=("loss", "dlogits"),
    )
    t.dtype("dlogits (float32 in)", d32, numpy.float32)


CHECKS = [
    Check("dense_forward", "y: shape, dtype, values vs minirnn", check_dense_forward, HINTS),
    Check("dense_backward", "dx dW db vs central differences and minirnn", check_dense_backward, HINTS),
    Check(
        "softmax_cross_entropy",
        "loss, dlogits (with and without a mask, big logits)",
        check_softmax_cross_entropy,
        HINTS,
    ),
]
