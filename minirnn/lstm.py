"""The LSTM cell (Hochreiter & Schmidhuber 1997, with a forget gate), one fused weight.

    a_t = x_t·Wx + h_{t-1}·Wh + b        (N, 4H)   gate order: i, f, o, g
    i = σ(a_i)   f = σ(a_f)   o = σ(a_o)   g = tanh(a_g)                (N, H) each
    c_t = f ⊙ c_{t-1} + i ⊙ g           (N, H)   the cell state
    h_t = o ⊙ tanh(c_t)                  (N, H)   the output and hidden state

The three sigmoid gates come first so that they are one contiguous block of
columns. The forget-gate bias starts at 1, as TensorFlow's LSTMCell does, so
that early in training the cell keeps its state and gradient flows through c.
Derivation of the backward pass: docs/derivations.md#lstm.
"""
from __future__ import annotations

import numpy

from .backend import array_module, fuse
from .cell import Cell, project_inputs, project_inputs_backward
from .init import gate_kernels
from .pointwise import sigmoid, tanh


@fuse
def lstm_pointwise(i, f, o, ag, c_prev):
    """Gates i, f, o (already σ'd), the candidate's pre-activation and c_{t-1}, (N, H) each
    -> g, c_t, tanh(c_t), h_t."""
    g = tanh(ag)
    c = f * c_prev + i * g
    tc = tanh(c)
    return g, c, tc, o * tc


@fuse
def lstm_pointwise_backward(dh, dc, i, f, o, g, c_prev, tc):
    """dL/dh_t and dL/dc_t (from later steps) -> dL/da for each gate, and dL/dc_{t-1}."""
    dc = dc + dh * o * (1 - tc * tc)  # c_t reaches the loss directly and through h_t
    dai = dc * g * i * (1 - i)  # σ' = σ(1 - σ)
    daf = dc * c_prev * f * (1 - f)
    dao = dh * tc * o * (1 - o)
    dag = dc * i * (1 - g * g)  # tanh' = 1 - tanh²
    return dai, daf, dao, dag, dc * f


def _gates(a, H):
    """The fused pre-activations (N, 4H) -> i, f, o (N, H) each, and g's pre-activation (N, H).

    The three sigmoid gates are one contiguous block of columns, so σ is one
    elementwise pass over (N, 3H) rather than three.
    """
    ifo = sigmoid(a[:, :3 * H])  # (N, 3H)
    return ifo[:, :H], ifo[:, H:2 * H], ifo[:, 2 * H:], a[:, 3 * H:]


class LSTM(Cell):
    """LSTM cell: two states, h (the output) and c (the cell state)."""

    name = "lstm"
    state_names = ("h", "c")
    takes_ids = True
    forget_bias = 1.0

    def param_shapes(self, D, H):
        return {"Wx": (D, 4 * H), "Wh": (H, 4 * H), "b": (4 * H,)}

    def init_params(self, D, H, rng):
        Wx, Wh = gate_kernels(rng, D, H, 4)
        b = numpy.zeros(4 * H)
        b[H:2 * H] = self.forget_bias  # the f block
        return {"Wx": Wx, "Wh": Wh, "b": b}

    # -- one step -----------------------------------------------------------------
    def recur(self, p, xa, state):
        """The recurrent part of a step, given the input part xa = x_t·Wx + b (N, 4H).

        xa is overwritten (it becomes the pre-activation a_t). Returns the new
        state and what backward needs: the gates, not the pre-activations, since
        σ' = σ(1 - σ) and tanh' = 1 - tanh² are cheap from them.
        """
        a = xa
        a += state[0] @ p["Wh"]  # (N, 4H): a_t = x_t·Wx + b + h_{t-1}·Wh
        return self.activate(a, state)

    def activate(self, a, state):
        """The rest of a step, from the whole pre-activation a_t (N, 4H): returns what recur does."""
        h_prev, c_prev = state
        i, f, o, ag = _gates(a, h_prev.shape[1])
        g, c, tc, h = lstm_pointwise(i, f, o, ag, c_prev)
        return (h, c), (i, f, o, g, c_prev, tc)

    def step_forward(self, p, x, state):
        new, gates = self.recur(p, x @ p["Wx"] + p["b"], state)
        return new, (x, state[0]) + gates

    def step_backward(self, p, dstate, cache, grads):
        dh, dc = dstate
        x, h_prev, i, f, o, g, c_prev, tc = cache
        xp = array_module(dh)
        dai, daf, dao, dag, dc_prev = lstm_pointwise_backward(dh, dc, i, f, o, g, c_prev, tc)
        da = xp.concatenate([dai, daf, dao, dag], axis=1)  # (N, 4H)
        grads["Wx"] += x.T @ da  # (D, 4H)
        grads["Wh"] += h_prev.T @ da  # (H, 4H)
        grads["b"] += da.sum(axis=0)  # (4H,)
        return da @ p["Wx"].T, (da @ p["Wh"].T, dc_prev)

    # -- a whole sequence, fast ------------------------------------------------------
    def forward(self, p, x, state0, mask=None):
        """x (T, N, D) or ids (T, N); state0 = (h0, c0). Returns hs (T, N, H), (h_T, c_T), cache.

        The cache keeps, per step, the gates and the cell state before the step
        (what the backward pass needs), and the states h_0..h_T in one (T+1, N, H)
        array so that dWh is one GEMM after the backward loop.
        """
        h0, c0 = state0
        xp = array_module(h0)
        T = x.shape[0]
        N, H = h0.shape
        xa = project_inputs(x, p["Wx"], p["b"])  # (T, N, 4H), before the loop
        S = xp.empty((T + 1, N, H), dtype=h0.dtype)  # h_0 .. h_T
        S[0] = h0
        hn = S[1:] if mask is None else xp.empty((T, N, H), dtype=h0.dtype)
        c, steps = c0, []
        for t in range(T):
            (hn[t], c_new), gates = self.recur(p, xa[t], (S[t], c))  # one GEMM per step
            steps.append(gates)
            if mask is None:
                c = c_new
            else:  # past a sequence's end, h and c stay as they were
                m = mask[t][:, None]
                S[t + 1] = m * hn[t] + (1 - m) * S[t]
                c = m * c_new + (1 - m) * c
        hs = S[1:] if mask is None else hn * mask[:, :, None]
        return hs, (S[T], c), (x, S, steps, mask)

    def backward(self, p, dhs, dstate_T, cache, grads):
        """BPTT. dhs (T, N, H); dstate_T = (dh_T, dc_T). Returns dx or None for ids, (dh0, dc0)."""
        x, S, steps, mask = cache
        xp = array_module(dhs)
        T = dhs.shape[0]
        N, H = S.shape[1:]
        dA = xp.empty((T, N, 4 * H), dtype=dhs.dtype)  # dL/da_t, gates side by side
        dh, dc = dstate_T
        WhT = xp.ascontiguousarray(p["Wh"].T)  # a copy: BLAS runs faster on it than on the transposed view
        for t in reversed(range(T)):
            if mask is None:
                dh_new, dc_new = dhs[t] + dh, dc
            else:
                m = mask[t][:, None]
                dh_new, dc_new = m * (dhs[t] + dh), m * dc
                dh_carry, dc_carry = (1 - m) * dh, (1 - m) * dc
            dai, daf, dao, dag, dc = lstm_pointwise_backward(dh_new, dc_new, *steps[t])
            dA[t, :, :H], dA[t, :, H:2 * H], dA[t, :, 2 * H:3 * H], dA[t, :, 3 * H:] = dai, daf, dao, dag
            dh = dA[t] @ WhT  # (N, H)
            if mask is not None:
                dh += dh_carry
                dc += dc_carry
        grads["Wh"] += S[:-1].reshape(T * N, H).T @ dA.reshape(T * N, 4 * H)  # (H, 4H), one GEMM
        dx = project_inputs_backward(x, p["Wx"], dA, grads)
        return dx, (dh, dc)
