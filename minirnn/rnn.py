"""The vanilla (Elman) RNN cell, exactly as the tutorial writes it, in row form:

    a_t = x_t·Wx + h_{t-1}·Wh + b        (N, H)
    h_t = tanh(a_t)                      (N, H)

N batch, D inputs, H units. The output o_t = h_t·W + c is the model's decoder
(``minirnn.layers``). This file is only the gate math: the two products x_t·Wx + b and
h_{t-1}·Wh, their gradients and the time loop are ProjectedCell's (projected.py).
Derivation of the backward pass: docs/derivations.md#vanilla-rnn.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy

from .backend import fuse
from .init import gate_kernels
from .pointwise import tanh
from .projected import ProjectedCell


class RNNGates(NamedTuple):
    h: Any  # (N, H) the step's output: tanh'(a) = 1 - tanh²(a) = 1 - h² needs nothing else


@fuse
def rnn_gates_forward(xa, ah):
    """x_t·Wx + b and h_{t-1}·Wh, (N, H) each -> h_t."""
    a = xa + ah  # a_t = x_t·Wx + h_{t-1}·Wh + b
    return tanh(a)  # h_t


@fuse
def rnn_gates_backward(dh, h):
    """dL/dh_t -> dL/da_t, through h_t = tanh(a_t)."""
    return dh * (1 - h * h)


class RNN(ProjectedCell):
    """Vanilla RNN cell: one state, h."""

    name = "rnn"
    state_names = ("h",)
    sums_products = True  # h_t reads only a = xa + ah

    def param_shapes(self, D: int, H: int) -> dict[str, tuple[int, ...]]:
        """Wx (D, H), Wh (H, H), b (H,)."""
        return {"Wx": (D, H), "Wh": (H, H), "b": (H,)}

    def init_params(self, D: int, H: int, rng: numpy.random.Generator) -> dict[str, numpy.ndarray]:
        """Wx and Wh as TensorFlow initialises its fused kernel (glorot-uniform), b zero."""
        Wx, Wh = gate_kernels(rng, D, H, 1)
        return {"Wx": Wx, "Wh": Wh, "b": numpy.zeros(H)}

    def gates_forward(self, p: dict, xa, ah, state: tuple) -> tuple[tuple, RNNGates]:
        """xa = x_t·Wx + b and ah = h_{t-1}·Wh, (N, H) each (or xa their sum and ah 0, as a single step
        may give them: sums_products)."""
        h = rnn_gates_forward(xa, ah)  # (N, H): h_t = tanh(x_t·Wx + b + h_{t-1}·Wh)
        return (h,), RNNGates(h)

    def gates_backward(self, p: dict, dstate: tuple, cache: RNNGates, grads: dict):
        """(dh_t,) -> (da_t,), which is both dL/dxa and dL/dah, and (None,)."""
        (dh,) = dstate
        da = (rnn_gates_backward(dh, cache.h),)  # da_t (N, H): one gate block
        return da, da, (None,)  # h_{t-1} reaches the loss only through h_{t-1}·Wh
