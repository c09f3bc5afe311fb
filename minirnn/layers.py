"""The layers around the recurrent cells: dense decoder, softmax cross-entropy, dropout.

Shapes: M rows (M = T*N positions), H features in, V classes (the vocabulary).
Each forward returns what its backward needs (the cache); each backward adds
parameter gradients into ``grads`` and returns the gradient of its input.
Derivations: docs/derivations.md.
"""

from __future__ import annotations

from .backend import array_module


# -- dense layer: y = x·W + b ----------------------------------------------------------------
def dense_forward(x, W, b):
    """x (M, H), W (H, V), b (V,) -> y (M, V), cache."""
    return x @ W + b, x


def dense_backward(dy, cache, W, grads, prefix=""):
    """dy (M, V) -> dx (M, H); adds dW = xᵀ·dy and db = Σ_m dy into grads."""
    x = cache
    grads[prefix + "W"] += x.T @ dy  # (H, V)
    grads[prefix + "b"] += dy.sum(axis=0)  # (V,)
    return dy @ W.T  # (M, H)


# -- softmax and the sequence cross-entropy ------------------------------------------------------
def log_softmax(logits):
    """Row-wise log-probabilities, computed stably: z - max(z) - log Σ exp(z - max(z))."""
    xp = array_module(logits)
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits):
    xp = array_module(logits)
    return xp.exp(log_softmax(logits))


def sequence_cross_entropy(logits, targets, weights=None, count=None):
    """The tutorial's ``sequence_loss``: mean of -log p(target) over the positions kept.

    Inputs: logits (M, V); targets (M,) integer ids; weights (M,) of 0/1 (the
    mask; None keeps every position). The loss is Σ w·(-log p[y]) / Σ w.
    count replaces Σ w when these rows are one shard of a bigger batch: then
    it is the whole batch's Σ w, and the shards' losses add up to the batch's.
    Returns: the loss as a 0-d array (no host sync), and a cache.
    """
    xp = array_module(logits)
    M = logits.shape[0]
    logp = log_softmax(logits)  # (M, V)
    nll = -logp[xp.arange(M), targets]  # (M,)
    if weights is None:
        count = M if count is None else count
        loss = nll.sum() / count
    else:
        if count is None:
            count = xp.maximum(weights.sum(), 1)  # a 0-d array; an all-padding batch gives 0, not NaN
        loss = (weights * nll).sum() / count
    return loss, (logp, targets, weights, count)


def sequence_cross_entropy_backward(cache):
    """dL/dlogits = w·(softmax(logits) - onehot(y)) / Σ w, shape (M, V)."""
    logp, targets, weights, count = cache
    xp = array_module(logp)
    M = logp.shape[0]
    dlogits = xp.exp(logp)  # p
    dlogits[xp.arange(M), targets] -= 1
    if weights is not None:
        dlogits *= weights[:, None]
    dlogits /= count
    return dlogits


def accuracy(logits, targets, weights=None):
    """Fraction of kept positions where the most likely symbol is the target (a 0-d array)."""
    xp = array_module(logits)
    hit = (logits.argmax(axis=-1) == targets).astype(logits.dtype)
    if weights is None:
        return hit.mean()
    return (hit * weights).sum() / xp.maximum(weights.sum(), 1)


# -- dropout ------------------------------------------------------------------------------------------
def dropout_mask(uniform, rate: float):
    """Inverted dropout: keep each unit with probability 1 - rate and scale it by 1/(1 - rate),
    so that evaluation (no dropout) needs no rescaling. ``uniform`` is U[0, 1) of the layer's shape."""
    return (uniform >= rate).astype(uniform.dtype) / (1.0 - rate)


def dropout_forward(x, mask):
    return x * mask


def dropout_backward(dy, mask):
    return dy * mask
