"""The GRU cell (Cho et al. 2014), in the "reset after" form used by cuDNN, PyTorch and Keras:

    xa = x_t·Wx + b                      (N, 3H) = [xa_r, xa_z, xa_n]   gate order r, z, n
    ah = h_{t-1}·Wh                      (N, 3H) = [ah_r, ah_z, ah_n]
    r = σ(xa_r + ah_r)                   (N, H)  reset gate
    z = σ(xa_z + ah_z)                   (N, H)  update gate
    ĥ = ah_n + bhn                       (N, H)
    n = tanh(xa_n + r ⊙ ĥ)               (N, H)  candidate
    h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}      (N, H)

N batch, D inputs, H units. The original paper applies the reset gate *before* the
recurrent product, n = tanh(xa_n + (r ⊙ h_{t-1})·Wh_n), which needs a second, dependent
product every step. Applying it after (to h_{t-1}·Wh_n) lets all three gates share one
recurrent GEMM per step, exactly like the LSTM, and matches cuDNN, so weights trained here
mean the same thing there. Because r multiplies ĥ, the bias ``bhn`` inside the product is
not redundant with ``b`` and is a parameter of its own. This file is only the gate math:
the two products, their gradients and the time loop are ProjectedCell's (projected.py).
Derivation of the backward pass, step by step: docs/derivations.md#gru.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy

from .backend import fuse
from .init import gate_kernels
from .pointwise import sigmoid, tanh
from .projected import ProjectedCell


class GRUGates(NamedTuple):
    h_prev: Any  # (N, H) the state before the step
    r: Any  # (N, H) reset gate
    z: Any  # (N, H) update gate
    n: Any  # (N, H) candidate
    h_hat: Any  # (N, H) ĥ = ah_n + bhn, what r scales


@fuse
def gru_gates_forward(xa_r, xa_z, xa_n, ah_r, ah_z, ah_n, bhn, h_prev):
    """The (N, H) blocks of xa and ah, bhn and h_{t-1} -> r, z, n, ĥ, h_t."""
    r = sigmoid(xa_r + ah_r)  # reset gate
    z = sigmoid(xa_z + ah_z)  # update gate
    h_hat = ah_n + bhn
    n = tanh(xa_n + r * h_hat)  # candidate
    h = n + z * (h_prev - n)  # = (1 - z) ⊙ n + z ⊙ h_{t-1}
    return r, z, n, h_hat, h


@fuse
def gru_gates_backward(dh, h_prev, r, z, n, h_hat):
    """dL/dh_t -> dL/da_r, dL/da_z, dL/da_n, dL/dĥ, and the direct part of dL/dh_{t-1}."""
    dn = dh * (1 - z)  # 1. from h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
    dz = dh * (h_prev - n)
    dh_direct = dh * z
    dan = dn * (1 - n * n)  # 2. through n = tanh(xa_n + r ⊙ ĥ)
    dr = dan * h_hat
    dh_hat = dan * r
    dar = dr * r * (1 - r)  # 3. through the sigmoids
    daz = dz * z * (1 - z)
    return dar, daz, dan, dh_hat, dh_direct


class GRU(ProjectedCell):
    """GRU cell (reset gate after the recurrent product): one state, h."""

    name = "gru"
    state_names = ("h",)

    def param_shapes(self, D: int, H: int) -> dict[str, tuple[int, ...]]:
        """Wx (D, 3H), Wh (H, 3H), b (3H,): the gates r, z, n side by side; bhn (H,) inside r ⊙ ĥ."""
        return {"Wx": (D, 3 * H), "Wh": (H, 3 * H), "b": (3 * H,), "bhn": (H,)}

    def init_params(self, D: int, H: int, rng: numpy.random.Generator) -> dict[str, numpy.ndarray]:
        """Wx and Wh glorot-uniform as one (D + H, 3H) matrix (TensorFlow's), b and bhn zero."""
        Wx, Wh = gate_kernels(rng, D, H, 3)
        return {"Wx": Wx, "Wh": Wh, "b": numpy.zeros(3 * H), "bhn": numpy.zeros(H)}

    def gates_forward(self, p: dict, xa, ah, state: tuple) -> tuple[tuple, GRUGates]:
        """xa = x_t·Wx + b and ah = h_{t-1}·Wh, (N, 3H) each; state (h_{t-1},)."""
        (h_prev,) = state
        H = h_prev.shape[1]
        xa_r, xa_z, xa_n = xa[:, :H], xa[:, H : 2 * H], xa[:, 2 * H :]
        ah_r, ah_z, ah_n = ah[:, :H], ah[:, H : 2 * H], ah[:, 2 * H :]
        r, z, n, h_hat, h = gru_gates_forward(xa_r, xa_z, xa_n, ah_r, ah_z, ah_n, p["bhn"], h_prev)
        return (h,), GRUGates(h_prev, r, z, n, h_hat)

    def gates_backward(self, p: dict, dstate: tuple, cache: GRUGates, grads: dict):
        """(dh_t,) -> the gate blocks of dL/dxa and dL/dah, which differ in the n block, and (dh ⊙ z,)."""
        (dh,) = dstate
        dar, daz, dan, dh_hat, dh_direct = gru_gates_backward(dh, *cache)
        grads["bhn"] += dh_hat.sum(axis=0)  # (H,): ĥ = ah_n + bhn
        # 4. the two gradients differ only in the n block
        return (dar, daz, dan), (dar, daz, dh_hat), (dh_direct,)
