"""The LSTM cell (Hochreiter & Schmidhuber 1997, with a forget gate), in row form:

    a_t = x_t·Wx + h_{t-1}·Wh + b        (N, 4H) = [a_i, a_f, a_o, a_g]
    i = σ(a_i)   f = σ(a_f)   o = σ(a_o)   g = tanh(a_g)                (N, H) each
    c_t = f ⊙ c_{t-1} + i ⊙ g           (N, H)   the cell state
    h_t = o ⊙ tanh(c_t)                  (N, H)   the output and hidden state

N batch, D inputs, H units. The four gates' weights sit side by side in one Wx (D, 4H)
and one Wh (H, 4H). The forget-gate bias starts at 1, as TensorFlow's LSTMCell does,
so that early in training the cell keeps its state and gradient flows through c.
This file is only the gate math: the two products x_t·Wx + b and h_{t-1}·Wh, their
gradients and the time loop are ProjectedCell's (projected.py).
Derivation of the backward pass, step by step: docs/derivations.md#lstm.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy

from .backend import fuse
from .init import gate_kernels
from .pointwise import sigmoid, tanh
from .projected import ProjectedCell


class LSTMGates(NamedTuple):
    """What one step keeps for its backward: the gates, not the pre-activations, since
    σ' = σ(1 - σ) and tanh' = 1 - tanh² are cheapest from the gates themselves."""

    i: Any  # (N, H) input gate
    f: Any  # (N, H) forget gate
    o: Any  # (N, H) output gate
    g: Any  # (N, H) candidate
    c_prev: Any  # (N, H) the cell state before the step
    tanh_c: Any  # (N, H) tanh(c_t)


@fuse
def lstm_cell_update(i, f, o, ag, c_prev):
    """The gates i, f, o (already σ'd), the candidate's pre-activation and c_{t-1}, (N, H) each
    -> g, c_t, tanh(c_t), h_t."""
    g = tanh(ag)  # candidate
    c = f * c_prev + i * g  # the cell state
    tanh_c = tanh(c)
    h = o * tanh_c  # the output
    return g, c, tanh_c, h


@fuse
def lstm_gates_backward(dh, dc, i, f, o, g, c_prev, tanh_c):
    """dL/dh_t and dL/dc_t (from later steps) -> dL/da of each gate, and dL/dc_{t-1}."""
    dc = dc + dh * o * (1 - tanh_c * tanh_c)  # 1. c_t reaches the loss directly and through h_t
    do = dh * tanh_c  # 2. through h_t = o ⊙ tanh(c_t) and c_t = f ⊙ c_{t-1} + i ⊙ g
    di = dc * g
    dg = dc * i
    df = dc * c_prev
    dc_prev = dc * f
    dai = di * i * (1 - i)  # 3. through the nonlinearities: σ' = σ(1 - σ)
    daf = df * f * (1 - f)
    dao = do * o * (1 - o)
    dag = dg * (1 - g * g)  # tanh' = 1 - tanh²
    return dai, daf, dao, dag, dc_prev


class LSTM(ProjectedCell):
    """LSTM cell: two states, h (the output) and c (the cell state)."""

    name = "lstm"
    state_names = ("h", "c")
    sums_products = True  # the gates read only a = xa + ah
    forget_bias = 1.0

    def param_shapes(self, D: int, H: int) -> dict[str, tuple[int, ...]]:
        """Wx (D, 4H), Wh (H, 4H), b (4H,): the gates i, f, o, g side by side."""
        return {"Wx": (D, 4 * H), "Wh": (H, 4 * H), "b": (4 * H,)}

    def init_params(self, D: int, H: int, rng: numpy.random.Generator) -> dict[str, numpy.ndarray]:
        """Wx and Wh glorot-uniform as one (D + H, 4H) matrix (TensorFlow's), b zero but the f block."""
        Wx, Wh = gate_kernels(rng, D, H, 4)
        b = numpy.zeros(4 * H)
        b[H : 2 * H] = self.forget_bias  # the f block
        return {"Wx": Wx, "Wh": Wh, "b": b}

    def gates_forward(self, p: dict, xa, ah, state: tuple) -> tuple[tuple, LSTMGates]:
        """xa = x_t·Wx + b and ah = h_{t-1}·Wh, (N, 4H) each (or xa their sum and ah 0, as a single
        step may give them: sums_products); state (h_{t-1}, c_{t-1})."""
        _, c_prev = state
        H = c_prev.shape[1]
        a = xa + ah  # (N, 4H): a_t = x_t·Wx + h_{t-1}·Wh + b
        # i, f, o = σ(a_i), σ(a_f), σ(a_o): the three sigmoid gates are one contiguous block of
        # columns, so σ is one elementwise pass over (N, 3H) (one kernel on a GPU) rather than three.
        ifo = sigmoid(a[:, : 3 * H])  # (N, 3H)
        i, f, o = ifo[:, :H], ifo[:, H : 2 * H], ifo[:, 2 * H :]
        g, c, tanh_c, h = lstm_cell_update(i, f, o, a[:, 3 * H :], c_prev)
        return (h, c), LSTMGates(i, f, o, g, c_prev, tanh_c)

    def gates_backward(self, p: dict, dstate: tuple, cache: LSTMGates, grads: dict):
        """(dh_t, dc_t) -> da, the gate blocks of dL/da_t, which is both dL/dxa and dL/dah, and
        (None, dc_{t-1})."""
        dh, dc = dstate
        dai, daf, dao, dag, dc_prev = lstm_gates_backward(dh, dc, *cache)
        da = (dai, daf, dao, dag)  # 4. da_t = [da_i, da_f, da_o, da_g]
        return da, da, (None, dc_prev)  # h_{t-1} reaches the loss only through h_{t-1}·Wh
