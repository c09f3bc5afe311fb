"""Every call the grader makes into minirnn itself, in one place.

The grader compares a student's function with minirnn's own implementation
of the same thing. Those calls are all here, each turned into plain outputs
(arrays, tuples, dicts of arrays), so that a change to minirnn's interfaces is
fixed in this file alone. Only minirnn's public API is used: the cell contract
(``step_forward`` / ``step_backward``, and a cell's sequence ``forward`` /
``backward``), ``minirnn.layers``, ``minirnn.optim``, ``CharRNN`` and
``minirnn.data``. Caches are passed through untouched, never looked into.
"""

from __future__ import annotations

import numpy

from .. import data
from ..backend import get_backend
from ..gradcheck import numerical_gradient, rel_error  # noqa: F401 (re-exported for the checks)
from ..gru import GRU
from ..layers import dense_backward, dense_forward, sequence_cross_entropy, sequence_cross_entropy_backward
from ..lstm import LSTM
from ..model import CharRNN, ModelConfig
from ..optim import Adam, clip_by_global_norm
from ..rnn import RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
FLOAT64 = get_backend("numpy", "float64")


def dense(x, W, b, dy):
    """y = x·W + b, and the gradients (dx, dW, db) of L = Σ y ⊙ dy."""
    y, cache = dense_forward(x, W, b)
    grads = {"W": numpy.zeros_like(W), "b": numpy.zeros_like(b)}
    dx = dense_backward(dy, cache, W, grads)
    return y, (dx, grads["W"], grads["b"])


def cross_entropy(logits, targets, mask=None):
    """The masked mean cross-entropy (a float) and its gradient with respect to the logits."""
    loss, cache = sequence_cross_entropy(logits, targets, mask)
    return float(loss), sequence_cross_entropy_backward(cache)


def step_forward(cell, p, x, state):
    """One step of a cell ("rnn", "lstm", "gru"): the new state (a tuple) and the opaque cache."""
    return CELLS[cell]().step_forward(p, x, tuple(state))


def step_backward(cell, p, dstate, cache):
    """The step's backward: dx, the state gradients (a tuple) and the parameter gradients (a dict)."""
    grads = {k: numpy.zeros_like(v) for k, v in p.items()}
    dx, dstate_prev = CELLS[cell]().step_backward(p, tuple(dstate), cache, grads)
    return dx, tuple(dstate_prev), grads


def step(cell, p, x, state, dstate):
    """A step forward and back: new state, then (dx, dstate_prev, grads) for L = Σ state_new ⊙ dstate."""
    new, cache = step_forward(cell, p, x, state)
    return tuple(new), step_backward(cell, p, dstate, cache)


def rnn_sequence(p, x, h0, mask, dhs, dh_T):
    """The vanilla RNN over a sequence with a mask (minirnn's BPTT):
    hs (T, N, H), h_T, and (dx, dh0, grads) for L = Σ hs ⊙ dhs + Σ h_T ⊙ dh_T."""
    cell = RNN()
    hs, (h_T,), cache = cell.forward(p, x, (h0,), mask)
    grads = {k: numpy.zeros_like(v) for k, v in p.items()}
    dx, (dh0,) = cell.backward(p, dhs, (dh_T,), cache, grads)
    return hs, h_T, (dx, dh0, grads)


def clip(grads: dict, max_norm: float) -> float:
    """minirnn's clipping, in place on ``grads``; the norm before, as a float."""
    return float(clip_by_global_norm(grads, max_norm))


def adam(params: dict, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """minirnn's Adam over ``params`` (changed in place by each ``.step(grads)``)."""
    return Adam(params, lr, betas[0], betas[1], eps)


def char_rnn(params: dict, hidden_size: int):
    """A one-layer vanilla-RNN CharRNN in float64 holding copies of ``params`` (minirnn's names)."""
    V = params["dec.b"].shape[0]
    model = CharRNN(ModelConfig(V, hidden_size, 1, "rnn"), FLOAT64, seed=0)
    model.load_params(params)
    return model


def model_loss_and_grads(model, x, y):
    """The model's mean cross-entropy over a batch of ids (N, T), and copies of its gradients."""
    loss, _, _ = model.loss_and_grads(x, y)
    return float(loss), {k: numpy.array(g) for k, g in model.grads.items()}


def model_params(model) -> dict:
    return {k: numpy.array(v) for k, v in model.params.items()}


def model_init(V: int, H: int, seed: int) -> dict:
    """Fresh parameters of a one-layer vanilla-RNN CharRNN, as minirnn initialises them."""
    return CharRNN(ModelConfig(V, H, 1, "rnn"), FLOAT64, seed=seed).host_params()


def shakespeare_batches(batch_size: int, seq_length: int, seed: int = 0):
    """The bundled Tiny Shakespeare: its vocabulary size and training batches (x, y) of (N, T) ids."""
    vocab, ids = data.prepare(data.load_text())
    train, _ = data.split(ids)
    return len(vocab), data.Batches(train, batch_size, seq_length, seed)


def train_steps(params: dict, batches, hidden_size: int, lr: float, max_norm: float):
    """minirnn's training step over ``batches``: CharRNN.loss_and_grads, clip_by_global_norm, Adam.
    Returns [(loss, norm before clipping), ...] and the parameters after the last step."""
    model = char_rnn(params, hidden_size)
    opt = Adam(model.params, lr)
    out = []
    for x, y in batches:
        loss, _, _ = model.loss_and_grads(x, y)
        norm = clip_by_global_norm(model.grads, max_norm)
        opt.step(model.grads)
        out.append((float(loss), float(norm)))
    return out, model_params(model)
