"""The vanilla RNN cell, exactly as the tutorial writes it (in row form):

    a_t = x_t·Wx + h_{t-1}·Wh + b        (N, H)
    h_t = tanh(a_t)                      (N, H)

The output o_t = h_t·W + c is the model's decoder (``minirnn.layers``).
Derivation of the backward pass: docs/derivations.md#vanilla-rnn.
"""
from __future__ import annotations

import numpy

from .backend import array_module, fuse
from .cell import Cell, project_inputs, project_inputs_backward
from .init import gate_kernels
from .pointwise import tanh


@fuse
def rnn_pointwise(a):
    return tanh(a)


@fuse
def rnn_pointwise_backward(dh, h):
    # d tanh(a) / da = 1 - tanh(a)² = 1 - h²
    return dh * (1 - h * h)


class RNN(Cell):
    """Vanilla (Elman) RNN cell: one state, h."""

    name = "rnn"
    state_names = ("h",)
    takes_ids = True

    def param_shapes(self, D, H):
        return {"Wx": (D, H), "Wh": (H, H), "b": (H,)}

    def init_params(self, D, H, rng):
        Wx, Wh = gate_kernels(rng, D, H, 1)
        return {"Wx": Wx, "Wh": Wh, "b": numpy.zeros(H)}

    # -- one step -------------------------------------------------------------------
    def recur(self, p, xa, state):
        """The recurrent part of a step, given the input part xa = x_t·Wx + b (N, H).
        xa is overwritten. Returns the new state and the step's cache (its output h)."""
        a = xa
        a += state[0] @ p["Wh"]  # (N, H): a_t = x_t·Wx + b + h_{t-1}·Wh
        return self.activate(a, state)

    def activate(self, a, state):
        """The rest of a step, from the whole pre-activation a_t (N, H): returns what recur does."""
        h = rnn_pointwise(a)  # (N, H)
        return (h,), (h,)

    def step_forward(self, p, x, state):
        new, (h,) = self.recur(p, x @ p["Wx"] + p["b"], state)
        return new, (x, state[0], h)  # the cache keeps the step's inputs and output

    def step_backward(self, p, dstate, cache, grads):
        (dh,) = dstate
        x, h_prev, h = cache
        da = rnn_pointwise_backward(dh, h)  # (N, H)
        grads["Wx"] += x.T @ da  # (D, H)
        grads["Wh"] += h_prev.T @ da  # (H, H)
        grads["b"] += da.sum(axis=0)  # (H,)
        return da @ p["Wx"].T, (da @ p["Wh"].T,)  # dx (N, D), dh_prev (N, H)

    # -- a whole sequence, fast: the same arithmetic with the GEMMs hoisted ---
    def forward(self, p, x, state0, mask=None):
        """x (T, N, D) or ids (T, N); state0 = (h0,). Returns hs (T, N, H), (h_T,), cache.

        x·Wx + b for all steps is one GEMM before the loop (or a row lookup for
        ids); only h_{t-1}·Wh stays inside it.
        """
        (h0,) = state0
        xp = array_module(h0)
        T = x.shape[0]
        N, H = h0.shape
        xa = project_inputs(x, p["Wx"], p["b"])  # (T, N, H)
        S = xp.empty((T + 1, N, H), dtype=h0.dtype)  # states h_0 .. h_T
        S[0] = h0
        hn = S[1:] if mask is None else xp.empty((T, N, H), dtype=h0.dtype)  # new h of each step
        for t in range(T):
            (hn[t],), _ = self.recur(p, xa[t], (S[t],))  # one GEMM per step
            if mask is not None:  # past a sequence's end its state stays as it was
                m = mask[t][:, None]
                S[t + 1] = m * hn[t] + (1 - m) * S[t]
        hs = S[1:] if mask is None else hn * mask[:, :, None]
        return hs, (S[T],), (x, S, hn, mask)

    def backward(self, p, dhs, dstate_T, cache, grads):
        """BPTT. dhs (T, N, H); dstate_T = (dh_T,). Returns dx (T, N, D) or None for ids, (dh0,)."""
        x, S, hn, mask = cache
        xp = array_module(dhs)
        T = dhs.shape[0]
        N, H = S.shape[1:]
        dA = xp.empty((T, N, H), dtype=dhs.dtype)  # dL/da_t for every step
        dh = dstate_T[0]
        WhT = xp.ascontiguousarray(p["Wh"].T)  # a copy: BLAS runs faster on it than on the transposed view
        for t in reversed(range(T)):
            if mask is None:
                dh_new = dhs[t] + dh
            else:
                m = mask[t][:, None]
                dh_new, dh_carry = m * (dhs[t] + dh), (1 - m) * dh
            dA[t] = rnn_pointwise_backward(dh_new, hn[t])
            dh = dA[t] @ WhT  # (N, H)
            if mask is not None:
                dh += dh_carry
        # The weights are shared by all steps: their gradient is a sum over t,
        # computed as one GEMM over all T*N rows instead of T small ones.
        grads["Wh"] += S[:-1].reshape(T * N, H).T @ dA.reshape(T * N, H)  # (H, H)
        dx = project_inputs_backward(x, p["Wx"], dA, grads)
        return dx, (dh,)
