"""The GRU cell (Cho et al. 2014), in the "reset after" form used by cuDNN, PyTorch and Keras.

    ax = x_t·Wx + b                      (N, 3H)   gate order: r, z, n
    ah = h_{t-1}·Wh                      (N, 3H)
    r = σ(ax_r + ah_r)                   reset gate
    z = σ(ax_z + ah_z)                   update gate
    n = tanh(ax_n + r ⊙ (ah_n + bhn))    candidate
    h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

The original paper applies the reset gate *before* the recurrent matmul,
n = tanh(ax_n + (r ⊙ h_{t-1})·Wh_n), which needs a second, dependent matmul
every step. Applying it after (to h_{t-1}·Wh_n) lets all three gates share one
recurrent GEMM per step, exactly like the LSTM, and matches cuDNN, so weights
trained here mean the same thing there. Because r multiplies ah_n, the bias
``bhn`` inside the product is not redundant with ``b`` and is a parameter of
its own. docs/derivations.md#gru derives the backward pass.
"""
from __future__ import annotations

import numpy

from .backend import array_module, fuse
from .cell import Cell, project_inputs, project_inputs_backward
from .init import gate_kernels
from .pointwise import sigmoid, tanh


@fuse
def gru_pointwise(axr, axz, axn, ahr, ahz, ahn, bhn, h_prev):
    """Pre-activations (N, H) each -> r, z, n, ah_n + bhn, h_t."""
    r = sigmoid(axr + ahr)
    z = sigmoid(axz + ahz)
    hn = ahn + bhn
    n = tanh(axn + r * hn)
    return r, z, n, hn, n + z * (h_prev - n)


@fuse
def gru_pointwise_backward(dh, r, z, n, hn, h_prev):
    """dL/dh_t -> dL/d(ax_r), dL/d(ax_z), dL/d(ax_n), dL/d(ah_n), and the direct part of dL/dh_{t-1}."""
    dan = dh * (1 - z) * (1 - n * n)  # through n
    daz = dh * (h_prev - n) * z * (1 - z)  # through z
    dar = dan * hn * r * (1 - r)  # through r, which scales ah_n + bhn
    return dar, daz, dan, dan * r, dh * z


def _blocks(a, H):
    return a[:, :H], a[:, H:2 * H], a[:, 2 * H:]


class GRU(Cell):
    """GRU cell (reset gate after the recurrent matmul): one state, h."""

    name = "gru"
    state_names = ("h",)
    takes_ids = True

    def param_shapes(self, D, H):
        return {"Wx": (D, 3 * H), "Wh": (H, 3 * H), "b": (3 * H,), "bhn": (H,)}

    def init_params(self, D, H, rng):
        Wx, Wh = gate_kernels(rng, D, H, 3)
        return {"Wx": Wx, "Wh": Wh, "b": numpy.zeros(3 * H), "bhn": numpy.zeros(H)}

    # -- one step ----------------------------------------------------------------------
    def recur(self, p, ax, state):
        """The recurrent part of a step, given the input part ax = x_t·Wx + b (N, 3H).
        Returns the new state and what backward needs: r, z, n and ah_n + bhn."""
        (h_prev,) = state
        ah = h_prev @ p["Wh"]  # (N, 3H)
        H = h_prev.shape[1]
        r, z, n, hn, h = gru_pointwise(*_blocks(ax, H), *_blocks(ah, H), p["bhn"], h_prev)
        return (h,), (r, z, n, hn)

    def step_forward(self, p, x, state):
        new, gates = self.recur(p, x @ p["Wx"] + p["b"], state)
        return new, (x, state[0]) + gates

    def step_backward(self, p, dstate, cache, grads):
        (dh,) = dstate
        x, h_prev, r, z, n, hn = cache
        xp = array_module(dh)
        dar, daz, dan, dahn, dh_direct = gru_pointwise_backward(dh, r, z, n, hn, h_prev)
        dax = xp.concatenate([dar, daz, dan], axis=1)  # (N, 3H)
        dah = xp.concatenate([dar, daz, dahn], axis=1)  # (N, 3H)
        grads["Wx"] += x.T @ dax
        grads["b"] += dax.sum(axis=0)
        grads["Wh"] += h_prev.T @ dah
        grads["bhn"] += dahn.sum(axis=0)
        return dax @ p["Wx"].T, (dh_direct + dah @ p["Wh"].T,)

    # -- a whole sequence, fast ---------------------------------------------------------
    def forward(self, p, x, state0, mask=None):
        """x (T, N, D) or ids (T, N); state0 = (h0,). Returns hs (T, N, H), (h_T,), cache."""
        (h0,) = state0
        xp = array_module(h0)
        T = x.shape[0]
        N, H = h0.shape
        xa = project_inputs(x, p["Wx"], p["b"])  # (T, N, 3H)
        S = xp.empty((T + 1, N, H), dtype=h0.dtype)
        S[0] = h0
        hn_out = S[1:] if mask is None else xp.empty((T, N, H), dtype=h0.dtype)
        steps = []
        for t in range(T):
            (hn_out[t],), gates = self.recur(p, xa[t], (S[t],))  # one GEMM per step
            steps.append(gates)
            if mask is not None:
                m = mask[t][:, None]
                S[t + 1] = m * hn_out[t] + (1 - m) * S[t]
        hs = S[1:] if mask is None else hn_out * mask[:, :, None]
        return hs, (S[T],), (x, S, steps, mask)

    def backward(self, p, dhs, dstate_T, cache, grads):
        """BPTT. dhs (T, N, H); dstate_T = (dh_T,). Returns dx or None for ids, (dh0,)."""
        x, S, steps, mask = cache
        xp = array_module(dhs)
        T = dhs.shape[0]
        N, H = S.shape[1:]
        dAx = xp.empty((T, N, 3 * H), dtype=dhs.dtype)  # dL/d(ax_t)
        dAh = xp.empty((T, N, 3 * H), dtype=dhs.dtype)  # dL/d(ah_t): same r, z blocks, n differs
        (dh,) = dstate_T
        WhT = xp.ascontiguousarray(p["Wh"].T)  # a copy: BLAS runs faster on it than on the transposed view
        for t in reversed(range(T)):
            if mask is None:
                dh_new = dhs[t] + dh
            else:
                m = mask[t][:, None]
                dh_new, dh_carry = m * (dhs[t] + dh), (1 - m) * dh
            r, z, n, hn = steps[t]
            dar, daz, dan, dahn, dh_direct = gru_pointwise_backward(dh_new, r, z, n, hn, S[t])
            dAx[t, :, :H], dAx[t, :, H:2 * H], dAx[t, :, 2 * H:] = dar, daz, dan
            dAh[t, :, :2 * H] = dAx[t, :, :2 * H]
            dAh[t, :, 2 * H:] = dahn
            dh = dAh[t] @ WhT
            dh += dh_direct
            if mask is not None:
                dh += dh_carry
        dAh2 = dAh.reshape(T * N, 3 * H)
        grads["Wh"] += S[:-1].reshape(T * N, H).T @ dAh2  # (H, 3H)
        grads["bhn"] += dAh2[:, 2 * H:].sum(axis=0)  # (H,)
        dx = project_inputs_backward(x, p["Wx"], dAx, grads)
        return dx, (dh,)
