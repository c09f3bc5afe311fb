"""Exercise 7: a whole training step of a one-layer vanilla-RNN language model, on Tiny Shakespeare.

    loss_and_grads(params, x, y) -> (loss, grads)     x, y (N, T) ids; names as CharRNN's:
                                                      l0.Wx l0.Wh l0.b dec.W dec.b
    train_step(params, opt, x, y, max_norm) -> (loss, norm)   one step: gradients, clipping, Adam

The reference is minirnn's CharRNN (one layer, "rnn") with clip_by_global_norm and Adam.
"""

from __future__ import annotations

import numpy

from . import reference
from .core import Check, Crash, central_differences, random

V, H, N, T = 7, 6, 3, 5  # a tiny model, so that every parameter gets a central difference
SHAKESPEARE = dict(hidden=32, batch=16, seq=32, steps=30, lr=1e-2, max_norm=5.0)  # a few seconds at most

HINTS = {
    "no_clip": "the gradient was not clipped before the Adam step: call clip_by_global_norm first",
    "norm_after": "return the norm clip_by_global_norm returns (before clipping), not the clipped one",
}


def _params(rng):
    params = reference.model_init(V, H, seed=1)
    return {k: v + random(rng, *v.shape, scale=0.1) for k, v in params.items()}


def _batch(rng):
    return rng.integers(0, V, size=(N, T)), rng.integers(0, V, size=(N, T))


def _grads(name, grads, params):
    if not isinstance(grads, dict) or set(grads) != set(params):
        raise Crash(name, f"{name}'s gradients must be a dict with the keys of params: {', '.join(params)}")
    return grads


def check_loss_and_grads(s, t, rng):
    params, (x, y) = _params(rng), _batch(rng)
    want_loss, want = reference.model_loss_and_grads(reference.char_rnn(params, H), x, y)
    loss, grads = s("loss_and_grads", params, x, y, returns=("loss", "grads"))
    grads = _grads("loss_and_grads", grads, params)

    def mean_loss():
        return float(s("loss_and_grads", params, x, y, returns=("loss", "grads"))[0])

    numeric = central_differences(mean_loss, params)
    t.array("loss", loss, want_loss)
    for k in params:
        t.array(f"d{k}", grads[k], want[k], numeric=numeric[k])
    _, grads32 = s(
        "loss_and_grads",
        {k: v.astype(numpy.float32) for k, v in params.items()},
        x,
        y,
        returns=("loss", "grads"),
    )
    for k, g in _grads("loss_and_grads", grads32, params).items():
        t.dtype(f"d{k} (float32 in)", g, numpy.float32)


def check_train_step(s, t, rng):
    params, batches, lr = _params(rng), [_batch(rng), _batch(rng)], 1e-2
    max_norm = 0.2  # the gradient norms are about 0.45: clipping changes them
    want, want_params = reference.train_steps(params, batches, H, lr, max_norm)
    _, no_clip = reference.train_steps(params, batches, H, lr, 0.0)
    mine = {k: v.copy() for k, v in params.items()}
    opt = reference.adam(mine, lr)
    for step, ((x, y), (want_loss, want_norm)) in enumerate(zip(batches, want), start=1):
        loss, norm = s("train_step", mine, opt, x, y, max_norm, copy=False, returns=("loss", "norm"))
        t.array(f"loss, step {step}", loss, want_loss)
        t.array(f"norm, step {step}", norm, want_norm, {"norm_after": {f"norm, step {step}": max_norm}})
    for k in params:
        t.array(
            f"{k} after 2 steps",
            mine[k] - params[k],
            want_params[k] - params[k],
            {"no_clip": {f"{k} after 2 steps": no_clip[k] - params[k]}},
        )
    if t.failed:
        return None
    # Training on Tiny Shakespeare: the same losses as minirnn's, step by step.
    c = SHAKESPEARE
    vocab_size, data = reference.shakespeare_batches(c["batch"], c["seq"])
    batches = [data.next() for _ in range(c["steps"])]
    start = reference.model_init(vocab_size, c["hidden"], seed=0)
    want, _ = reference.train_steps(start, batches, c["hidden"], c["lr"], c["max_norm"])
    mine = {k: v.copy() for k, v in start.items()}
    opt = reference.adam(mine, c["lr"])
    losses = [
        float(s("train_step", mine, opt, x, y, c["max_norm"], copy=False, returns=("loss", "norm"))[0])
        for x, y in batches
    ]
    t.array("Tiny Shakespeare losses", losses, [w[0] for w in want])
    return [
        f"Tiny Shakespeare, {c['steps']} steps of {c['batch']}x{c['seq']}: loss {losses[0]:.2f} -> "
        f"{losses[-1]:.2f} (minirnn: {want[-1][0]:.2f})"
    ]


CHECKS = [
    Check(
        "loss_and_grads", "loss, every gradient vs central differences, CharRNN", check_loss_and_grads, HINTS
    ),
    Check("train_step", "2 steps vs CharRNN+clip+Adam; trains on Shakespeare", check_train_step, HINTS),
]
