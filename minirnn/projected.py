"""Cells built on two products, and the fast time loop they share.

Every built-in cell's step starts with two matrix products, the input part
``xa = x_t·Wx + b`` and the recurrent part ``ah = h_{t-1}·Wh`` (N, G·H) each, and the
rest is elementwise gate math. A :class:`ProjectedCell`'s own file holds only that gate
math (``gates_forward`` and ``gates_backward``); the products and their gradients are
written once, here, and so is the *fast loop*. It does the same arithmetic as the step
loop of cell.py with the products hoisted: ``x·Wx + b`` for all T steps is one GEMM
before the loop (or a row lookup, for character ids), ``h_{t-1}·Wh`` is the one GEMM
inside it, and ``dWh`` is one GEMM after the backward loop. Shapes: cell.py's legend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .backend import array_module
from .cell import Cell, State, carry, carry_backward, is_ids, onehot


class InputProjection:
    """x_t·Wx + b for every t, hoisted out of the time loop; ``proj[t]`` is (N, G·H).

    Floats x (T, N, D): one GEMM for all T·N rows, bias added once. Ids x (T, N): the
    product one-hot·Wx is a row lookup, so ``proj[t]`` gathers N rows of the (V, G·H)
    table Wx + b, and nothing of size T·N·G·H is made. Reading ``proj[t]`` changes
    nothing; treat what it returns as read-only.
    """

    def __init__(self, x, Wx, b):
        self.ids = x if is_ids(x) else None
        if self.ids is not None:
            self.table = Wx + b  # (V, G·H)
        else:
            T, N, D = x.shape
            self.xa = (x.reshape(T * N, D) @ Wx).reshape(T, N, -1)  # (T, N, G·H)
            self.xa += b  # in place: no second (T, N, G·H) array

    def __getitem__(self, t):
        if self.ids is not None:
            return self.table[self.ids[t]]  # (N, G·H), a new array
        return self.xa[t]


def input_projection_backward(x, Wx, dXA, grads) -> Any:
    """The backward of :class:`InputProjection`: adds dWx and db into ``grads``, returns dx.

    dXA is (T, N, G·H). For ids, dWx is a sum of dXA's rows grouped by id, written as
    onehot(x)ᵀ·dXA, a GEMM, about 10x faster than the scatter-add ``xp.add.at``; the ids
    themselves have no gradient (dx is None).
    """
    T, N, GH = dXA.shape
    dXA2 = dXA.reshape(T * N, GH)
    grads["b"] += dXA2.sum(axis=0)  # (G·H,)
    if is_ids(x):
        grads["Wx"] += onehot(x.reshape(T * N), Wx.shape[0], dXA.dtype).T @ dXA2  # (V, G·H)
        return None
    D = x.shape[2]
    grads["Wx"] += x.reshape(T * N, D).T @ dXA2  # (D, G·H)
    return (dXA2 @ Wx.T).reshape(T, N, D)


class ProjectedStepCache(NamedTuple):
    x: Any  # (N, D) floats or (N,) ids: the step's input
    h_prev: Any  # (N, H)
    gates: Any  # what gates_forward keeps (the cell's own NamedTuple)


class ProjectedSequenceCache(NamedTuple):
    x: Any  # (T, N, D) floats or (T, N) ids
    S: Any  # (T + 1, N, H): the states h_0 .. h_T; S[t] is what step t's recurrent GEMM read
    steps: list  # one gates_forward cache per step
    mask: Any  # (T, N) or None


class ProjectedCell(Cell):
    """A cell whose step is elementwise gate math on two products: the input part
    ``xa = x_t·Wx + b`` (N, G·H) and the recurrent part ``ah = h_{t-1}·Wh`` (N, G·H).

    A subclass implements ``gates_forward`` and ``gates_backward`` (and the parameters);
    this class supplies the step contract and the fast sequence loop from them.
    """

    takes_ids = True
    # True when gates_forward reads xa and ah only through their sum a = xa + ah (the LSTM and the
    # vanilla RNN; not the GRU, whose candidate scales h_{t-1}·Wh by r): then a step may hand it
    # the whole sum as xa, with ah = 0 (step_forward, below).
    sums_products = False

    def gates_forward(self, p: dict, xa, ah, state: State) -> tuple[State, Any]:
        """The step's gate math: xa, ah (N, G·H), state -> (the new state, the gates' cache).
        For a cell that ``sums_products``, ah may be 0 with the sum already in xa."""
        raise NotImplementedError

    def gates_backward(self, p: dict, dstate: State, cache, grads: dict):
        """dL/d(new state) -> (dxa, dah, dstate_direct).

        dxa and dah are dL/dxa and dL/dah, each as a tuple of its G gate blocks (N, H), in the
        gates' order (the same tuple when the cell only uses xa + ah): the loop writes the blocks
        where they go, so the cell never builds the (N, G·H) array. dstate_direct is the part of
        dL/d(previous state) that does not go through h_{t-1}·Wh, one entry per state, None where
        there is none. Gradients of parameters inside the gate math (the GRU's bhn) are added into
        ``grads``.
        """
        raise NotImplementedError

    # -- the step contract, from the gate math --------------------------------------------
    def step_forward(self, p, x, state):
        """x (N, D) floats or (N,) ids; returns the new state and a ProjectedStepCache.

        When p also holds ``W``, the two weights as one matrix [Wx; Wh] (D + H, G·H) in the same
        memory (CharRNN's layers do), a cell that ``sums_products`` gets xa + ah from the one
        product [x_t, h_{t-1}]·W + b. That is the same sum, and at sampling's batch of one it is
        faster: OpenBLAS spreads one product of D + H rows over its threads, but not two of H rows.
        """
        h_prev = state[0]
        if is_ids(x):
            xa, ah = p["Wx"][x] + p["b"], h_prev @ p["Wh"]  # one-hot·Wx: a row lookup
        elif self.sums_products and "W" in p:
            xh = array_module(x).concatenate([x, h_prev], axis=1)  # (N, D + H)
            xa, ah = xh @ p["W"] + p["b"], 0  # xa holds x_t·Wx + b + h_{t-1}·Wh
        else:
            xa, ah = x @ p["Wx"] + p["b"], h_prev @ p["Wh"]  # (N, G·H) each
        new, gates = self.gates_forward(p, xa, ah, state)
        return new, ProjectedStepCache(x, h_prev, gates)

    def step_backward(self, p, dstate, cache, grads):
        """dL/d(new state) -> dx (N, D), or None for ids, and dL/d(previous state); adds the
        gradients of Wx, b and Wh (and, through gates_backward, of the gate math's own)."""
        dxa_blocks, dah_blocks, direct = self.gates_backward(p, dstate, cache.gates, grads)
        xp = array_module(dxa_blocks[0])
        dxa = xp.concatenate(dxa_blocks, axis=1)  # (N, G·H), the gates side by side
        dah = dxa if dah_blocks is dxa_blocks else xp.concatenate(dah_blocks, axis=1)
        grads["Wx"] += _input_rows(cache.x, p["Wx"].shape[0], dxa.dtype).T @ dxa  # (D, G·H)
        grads["b"] += dxa.sum(axis=0)  # (G·H,)
        grads["Wh"] += cache.h_prev.T @ dah  # (H, G·H)
        dh_prev = dah @ p["Wh"].T  # (N, H): through h_{t-1}·Wh
        dprev = _previous(dh_prev, direct)
        dx = None if is_ids(cache.x) else dxa @ p["Wx"].T  # (N, D)
        return dx, dprev

    # -- the fast loop: the same arithmetic, the products hoisted -------------------------
    def forward(self, p, x, state0, mask=None):
        """x (T, N, D) floats or (T, N) ids. Returns hs (T, N, H), the final state, a cache."""
        xp = array_module(state0[0])
        T, (N, H) = x.shape[0], state0[0].shape
        xa = InputProjection(x, p["Wx"], p["b"])  # x_t·Wx + b for every t, before the loop
        S = xp.empty((T + 1, N, H), dtype=state0[0].dtype)  # S[t] = h_{t-1}: the states h_0 .. h_T
        S[0] = state0[0]
        h_new = S[1:] if mask is None else xp.empty((T, N, H), dtype=S.dtype)  # each step's new h
        state, steps = tuple(state0), []
        for t in range(T):
            new, gates = self.gates_forward(p, xa[t], S[t] @ p["Wh"], state)  # one GEMM per step
            steps.append(gates)
            h_new[t] = new[0]
            state = new if mask is None else carry(mask[t], new, state)
            if mask is not None:
                S[t + 1] = state[0]
        hs = S[1:] if mask is None else h_new * mask[:, :, None]  # past a sequence's end: zero
        return hs, (S[T],) + tuple(state[1:]), ProjectedSequenceCache(x, S, steps, mask)

    def backward(self, p, dhs, dstate_T, cache, grads):
        """BPTT. dhs (T, N, H). Returns dx (T, N, D), or None for ids, and dstate0."""
        xp = array_module(dhs)
        x, S, steps, mask = cache
        T, N, H = dhs.shape
        GH = p["Wh"].shape[1]
        dXA = xp.empty((T, N, GH), dtype=dhs.dtype)  # dL/dxa_t for every step
        dAH = None  # dL/dah_t: dXA itself when the cell only uses xa + ah
        WhT = xp.ascontiguousarray(p["Wh"].T)  # a copy: BLAS runs faster on it than on the transposed view
        dstate = tuple(dstate_T)
        for t in reversed(range(T)):
            dnew, dcarried = carry_backward(None if mask is None else mask[t], dhs[t], dstate)
            dxa, dah, direct = self.gates_backward(p, dnew, steps[t], grads)
            if dAH is None:
                dAH = dXA if dah is dxa else xp.empty_like(dXA)
            for k, block in enumerate(dxa):  # each gate's block into its columns
                dXA[t, :, k * H : (k + 1) * H] = block
            if dAH is not dXA:
                for k, block in enumerate(dah):
                    dAH[t, :, k * H : (k + 1) * H] = block
            dstate = _previous(dAH[t] @ WhT, direct)  # dL/d(state_{t-1}), (N, H) each
            if dcarried is not None:
                dstate = tuple(a + b for a, b in zip(dstate, dcarried))
        # The weights are shared by all steps: their gradient is a sum over t, computed as
        # one GEMM over all T·N rows instead of T small ones.
        grads["Wh"] += S[:-1].reshape(T * N, H).T @ dAH.reshape(T * N, -1)  # (H, G·H)
        dx = input_projection_backward(x, p["Wx"], dXA, grads)
        return dx, dstate


def _previous(dh_through_wh, direct: State) -> State:
    """dL/d(previous state): h_{t-1}'s gradient through h_{t-1}·Wh (a new array, so added to in
    place) plus the direct parts that gates_backward returned (None: no such path)."""
    if direct[0] is not None:
        dh_through_wh += direct[0]
    return (dh_through_wh,) + tuple(direct[1:])


def _input_rows(x, D: int, dtype):
    """The rows that multiplied Wx: x itself, or one-hot rows for ids."""
    return onehot(x, D, dtype) if is_ids(x) else x
