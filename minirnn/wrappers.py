"""Cells made of cells: a stack of cells (the tutorial's MultiRNNCell) and a cell
with its decoder inside (the tutorial's DenseDecoderCell, from its appendix).

Legend: N batch, T time, D input, H hidden, V output size (the vocabulary).

Both follow the cell contract of :mod:`minirnn.cell`, so :meth:`Cell.forward`
and :meth:`Cell.backward` run them over a masked sequence with no extra code:

    cell = DenseDecoderCell(StackedCell([LSTM(), LSTM()]), V)
    logits, final, cache = cell.forward(p, onehot_x, cell.zero_state(xp, N, H, dtype), mask)

In the contract a cell's output is its first state. A decoded cell's output
(N, V) is not part of what the next step reads, so the wrapper carries it as an
extra first state ``y`` that its step ignores: the gradient that flows into
the previous ``y`` is always zero. (TensorFlow's RNNCell returns the output and
the state separately; here the output rides along with the state.)

Parameter names: the inner cell's names, plus ``dec.W`` (H, V) and ``dec.b``
(V,); a stack prefixes each layer's names with ``l0.``, ``l1.``, ... So
``DenseDecoderCell(StackedCell([LSTM(), LSTM()]), V)`` has exactly the names of
a two-layer :class:`~minirnn.model.CharRNN`, and the two models can share one
parameter dict (tests/test_appendix.py checks they give the same loss and
gradients).
"""

from __future__ import annotations

import numpy

from .backend import array_module
from .cell import Cell, onehot, sub_tree
from .init import truncated_normal
from .layers import sequence_cross_entropy, sequence_cross_entropy_backward


class StackedCell(Cell):
    """Several cells on top of each other, as one cell (the tutorial's MultiRNNCell).

    Layer 0 reads the input x (N, D); layer i reads layer i-1's output (N, H).
    The stack's states are every layer's states, listed from the top layer
    down, so that the first one is the top layer's h: the stack's output.
    """

    def __init__(self, cells):
        self.cells = list(cells)
        L = len(self.cells)
        self.name = "+".join(c.name for c in self.cells)
        self.state_names = tuple(f"l{i}.{s}" for i in reversed(range(L)) for s in self.cells[i].state_names)
        # where layer i's states sit in the flat state tuple
        self._slices, start = [None] * L, 0
        for i in reversed(range(L)):
            n = len(self.cells[i].state_names)
            self._slices[i] = slice(start, start + n)
            start += n

    def param_shapes(self, D, H):
        shapes = {}
        for i, cell in enumerate(self.cells):
            for k, s in cell.param_shapes(D if i == 0 else H, H).items():
                shapes[f"l{i}.{k}"] = s
        return shapes

    def init_params(self, D, H, rng):
        params = {}
        for i, cell in enumerate(self.cells):  # layer 0 first: the same draws as CharRNN
            for k, v in cell.init_params(D if i == 0 else H, H, rng).items():
                params[f"l{i}.{k}"] = v
        return params

    def step_forward(self, p, x, state):
        inp, new, caches = x, [None] * len(self.state_names), []
        for i, cell in enumerate(self.cells):
            s_new, cache = cell.step_forward(sub_tree(p, f"l{i}."), inp, state[self._slices[i]])
            new[self._slices[i]] = s_new
            caches.append(cache)
            inp = s_new[0]  # the next layer reads this layer's output  (N, H)
        return tuple(new), caches

    def step_backward(self, p, dstate, cache, grads):
        dprev = [None] * len(self.state_names)
        dx = None  # the gradient flowing down from the layer above, into this layer's output
        for i in reversed(range(len(self.cells))):
            ds = list(dstate[self._slices[i]])
            if dx is not None:
                ds[0] = ds[0] + dx  # h_t of layer i is read by layer i+1 and carried to step t+1
            dx, ds_prev = self.cells[i].step_backward(
                sub_tree(p, f"l{i}."), tuple(ds), cache[i], sub_tree(grads, f"l{i}.")
            )
            dprev[self._slices[i]] = ds_prev
        return dx, tuple(dprev)


class DenseDecoderCell(Cell):
    """Wraps a cell and decodes its output with a dense layer, inside the cell.

        (h_t, ...) = cell(x_t, (h_{t-1}, ...))     the wrapped cell's step
        y_t = h_t·W + b                            (N, V)   the decoded output

    The dense layer is applied to each time step on its own, so moving it into
    the cell changes nothing in the arithmetic: the model built from this cell
    gives the same logits, loss and gradients as the cell followed by a
    separate decoder on the same weights. W and b are shared by every step, and
    like the cell's own weights they receive the sum of the per-step gradients.
    """

    def __init__(self, cell: Cell, output_dim: int):
        if not isinstance(cell, Cell):
            raise TypeError(f"DenseDecoderCell wraps a minirnn.cell.Cell, got {type(cell).__name__}")
        self.cell, self.output_dim = cell, output_dim
        self.name = f"{cell.name}+dec"
        self.state_names = ("y",) + tuple(cell.state_names)  # y: the decoded output (N, V)

    def param_shapes(self, D, H):
        shapes = dict(self.cell.param_shapes(D, H))
        assert "dec.W" not in shapes and "dec.b" not in shapes, "the wrapped cell already uses dec.*"
        shapes["dec.W"] = (H, self.output_dim)
        shapes["dec.b"] = (self.output_dim,)
        return shapes

    def init_params(self, D, H, rng):
        """The wrapped cell's parameters, then the decoder as the tutorial's: std 0.1, bias 0.1."""
        params = dict(self.cell.init_params(D, H, rng))
        params["dec.W"] = truncated_normal(rng, 0.1, (H, self.output_dim))
        params["dec.b"] = numpy.full(self.output_dim, 0.1)
        return params

    def step_forward(self, p, x, state):
        # state[0] is the previous output y_{t-1}: not read, only carried.
        inner, cache = self.cell.step_forward(p, x, state[1:])  # the wrapped cell ignores dec.*
        h = inner[0]  # (N, H)
        y = h @ p["dec.W"] + p["dec.b"]  # (N, V)
        return (y,) + tuple(inner), (cache, h)  # keep h for dW = hᵀ·dy

    def step_backward(self, p, dstate, cache, grads):
        dy, dinner = dstate[0], list(dstate[1:])
        inner_cache, h = cache
        xp = array_module(dy)
        grads["dec.W"] += h.T @ dy  # (H, V)
        grads["dec.b"] += dy.sum(axis=0)  # (V,)
        dinner[0] = dinner[0] + dy @ p["dec.W"].T  # h_t reaches the loss through y_t, too  (N, H)
        dx, dinner_prev = self.cell.step_backward(p, tuple(dinner), inner_cache, grads)
        return dx, (xp.zeros_like(dy),) + tuple(dinner_prev)  # y_{t-1} was never read

    def zero_state(self, xp, N, H, dtype):
        return (xp.zeros((N, self.output_dim), dtype=dtype),) + tuple(self.cell.zero_state(xp, N, H, dtype))


# -- a language model built from a decoded cell: no separate decoder ---------------------------
def decoded_lm_loss(cell: DenseDecoderCell, p: dict, x, y, vocab_size: int, state0=None, lengths=None):
    """The character model of the tutorial's ``rnn_lstm_neat``: one-hot -> decoded cell -> loss.

    Inputs: x, y (N, T) integer ids; vocab_size, the one-hot width of the input;
    state0 (the cell's state tuple; zeros if None); lengths (N,) or None.
    Returns: the masked mean cross-entropy (0-d), logits (T, N, V), final state, cache.
    """
    xp = array_module(p["dec.W"])
    N, T = x.shape
    H, V = p["dec.W"].shape
    dtype = p["dec.W"].dtype
    inp = onehot(xp.ascontiguousarray(x.T), vocab_size, dtype)  # (T, N, vocab_size)
    mask = None if lengths is None else (xp.arange(T)[:, None] < lengths[None, :]).astype(dtype)  # (T, N)
    state0 = cell.zero_state(xp, N, H, dtype) if state0 is None else state0
    logits, final, ccache = cell.forward(p, inp, state0, mask)  # the outputs are the logits  (T, N, V)
    targets = xp.ascontiguousarray(y.T).reshape(T * N)
    loss, lcache = sequence_cross_entropy(
        logits.reshape(T * N, V), targets, None if mask is None else mask.reshape(T * N)
    )
    return loss, logits, final, (ccache, lcache, (T, N, V))


def decoded_lm_backward(cell: DenseDecoderCell, p: dict, cache, grads: dict):
    """Adds every parameter's gradient into ``grads``; returns the gradient w.r.t. state0."""
    ccache, lcache, (T, N, V) = cache
    dlogits = sequence_cross_entropy_backward(lcache).reshape(T, N, V)
    xp = array_module(dlogits)
    H = p["dec.W"].shape[0]
    dstate_T = cell.zero_state(xp, N, H, dlogits.dtype)  # the loss does not read the final state
    _, dstate0 = cell.backward(p, dlogits, dstate_T, ccache, grads)
    return dstate0
