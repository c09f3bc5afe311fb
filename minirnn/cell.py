"""The cell contract, and the two time loops that run a cell over a whole sequence.

Shapes in this package:
    N batch, T time, D input features, H hidden units, V vocabulary, G gates.
Arrays are batch-major per time step: one row per sequence, so ``x_t`` is (N, D)
and ``h_t`` is (N, H). Sequences are time-major, ``x`` is (T, N, D), so that each
time step is one contiguous block. The tutorial writes ``a = W·h + U·x + b`` with
column vectors; with rows that is ``a = x·Wx + h·Wh + b``, i.e. ``Wx = Uᵀ`` and ``Wh = Wᵀ``.

A cell is anything that follows :class:`Cell`'s contract: its state names, its
parameters' shapes and initial values, and one time step forward and backward.
:meth:`Cell.forward` and :meth:`Cell.backward` then run it over a sequence with
masks: the *step loop*, which works for any cell. docs/appendix.md writes a new
cell from scratch this way.

The built-in cells are :class:`ProjectedCell` s: every step starts with two matrix
products, the input part ``xa = x_t·Wx + b`` and the recurrent part
``ah = h_{t-1}·Wh``, and the rest is elementwise gate math. A ProjectedCell's file
holds only that gate math (``gates_forward`` and ``gates_backward``); the products
and their gradients are written once, here, and so is the *fast loop*, which does
the same arithmetic as the step loop with the products hoisted: ``x·Wx + b`` for all
T steps is one GEMM before the loop, ``h_{t-1}·Wh`` the one GEMM inside it, and
``dWh`` one GEMM after the backward loop. The tests pin both loops to agree.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy

from .backend import array_module

State = tuple  # a cell's state: one (N, H) array per name in ``state_names``


def sub_tree(tree: dict, prefix: str) -> dict:
    """The entries of ``tree`` whose names start with ``prefix``, prefix removed.

    The values are the same array objects, so a cell that does ``grads["Wx"] += ...``
    on the sub-tree adds into the caller's arrays.
    """
    return {k[len(prefix) :]: v for k, v in tree.items() if k.startswith(prefix)}


def onehot(ids, D: int, dtype):
    """Integer ids (...,) -> one-hot floats (..., D), for cells without a row lookup and for dWx."""
    xp = array_module(ids)
    return (ids[..., None] == xp.arange(D)).astype(dtype)


def is_ids(x) -> bool:
    """True for integer ids standing for one-hot rows, False for float inputs."""
    return x.dtype.kind in "iu"


class Cell:
    """Base class and contract of a recurrent cell.

    A subclass sets ``state_names`` and implements ``param_shapes``, ``init_params``,
    ``step_forward`` and ``step_backward``; sequences, masks, stacking, training and
    gradient checks then come for free. A cell keeps no parameters itself (they come
    in as the dict ``p``), so one object serves several layers, and it must be
    constructible with no arguments (``make_cell("mypkg.cells:MyCell")`` builds it so).
    """

    name = "cell"  # a short label, used in the gradient check's rows
    state_names: tuple[str, ...] = ("h",)  # the first, h, is also the cell's output
    # True if the cell also takes (T, N) integer ids for one-hot inputs (as a row lookup);
    # otherwise the model one-hot encodes the first layer's input for it.
    takes_ids = False

    # -- the contract ----------------------------------------------------------------------
    def param_shapes(self, D: int, H: int) -> dict[str, tuple[int, ...]]:
        """The parameters of a layer with D inputs and H units, by name."""
        raise NotImplementedError

    def init_params(self, D: int, H: int, rng: numpy.random.Generator) -> dict[str, numpy.ndarray]:
        """Initial values, as float64 NumPy arrays of the shapes ``param_shapes`` gives."""
        raise NotImplementedError

    def step_forward(self, p: dict, x, state: State) -> tuple[State, Any]:
        """One time step: x (N, D), state (each (N, H)) -> (the new state, a cache for backward)."""
        raise NotImplementedError

    def step_backward(self, p: dict, dstate: State, cache, grads: dict) -> tuple[Any, State]:
        """The step's backward: dL/d(new state) -> (dx (N, D), dL/d(previous state)).

        It *adds* the parameter gradients into ``grads``: the same weights are used at
        every step, so their gradient is the sum over steps.
        """
        raise NotImplementedError

    def zero_state(self, xp, N: int, H: int, dtype) -> State:
        """The all-zero initial state; override it only if a state is not (N, H)."""
        return tuple(xp.zeros((N, H), dtype=dtype) for _ in self.state_names)

    # -- the step loop: a whole sequence, for any cell -------------------------------------
    def forward(self, p: dict, x, state0: State, mask=None):
        """Run the cell over a sequence.

        Inputs: x (T, N, D) floats; state0; mask (T, N) of 0/1, or None for "every
        position is real". Past a sequence's end (mask 0) its state is carried unchanged
        and its output is zero.
        Returns: hs, the outputs (T, N, H); the final state; a cache for backward.
        """
        xp = array_module(x)
        hs = xp.zeros((x.shape[0],) + state0[0].shape, dtype=state0[0].dtype)
        state, caches = tuple(state0), []
        for t in range(x.shape[0]):
            new, cache = self.step_forward(p, x[t], state)
            if mask is not None:
                new = carry(mask[t], new, state)
            hs[t] = new[0] if mask is None else mask[t][:, None] * new[0]
            state = new
            caches.append(cache)
        return hs, state, StepLoopCache(x, mask, caches)

    def backward(self, p: dict, dhs, dstate_T: State, cache, grads: dict):
        """Backpropagation through time: walk the steps in reverse, carrying dstate.

        Inputs: dhs (T, N, H), the gradient w.r.t. the outputs; dstate_T, the gradient
        w.r.t. the final state (zeros if unused); the cache from :meth:`forward`.
        Adds parameter gradients into ``grads``. Returns dx (T, N, D) and dstate0.
        """
        x, mask, caches = cache
        dx = array_module(dhs).zeros_like(x)
        dstate = tuple(dstate_T)
        for t in reversed(range(len(caches))):
            dnew, dcarried = carry_backward(None if mask is None else mask[t], dhs[t], dstate)
            dx[t], dprev = self.step_backward(p, dnew, caches[t], grads)
            dstate = dprev if dcarried is None else tuple(a + b for a, b in zip(dprev, dcarried))
        return dx, dstate

    def __repr__(self):
        return f"{type(self).__name__}()"


class StepLoopCache(NamedTuple):
    x: Any  # (T, N, D) the inputs
    mask: Any  # (T, N) or None
    steps: list  # one step_forward cache per time step


# -- masks: past a sequence's end its state is carried unchanged ---------------------------
def carry(m, new: State, old: State) -> State:
    """state_t = m ⊙ new + (1 - m) ⊙ state_{t-1}, with m (N,) this step's mask."""
    m = m[:, None]
    return tuple(m * s_new + (1 - m) * s_old for s_new, s_old in zip(new, old))


def carry_backward(m, dh_out, dstate: State):
    """The backward of :func:`carry` and of output_t = m ⊙ h_new, for one step.

    dh_out (N, H) is dL/d(output_t), dstate dL/d(state_t). Returns dL/d(new state) and
    the part of dL/d(state_{t-1}) that skipped the step (None without a mask).
    """
    if m is None:
        return (dstate[0] + dh_out,) + tuple(dstate[1:]), None
    m = m[:, None]
    dnew = (m * (dstate[0] + dh_out),) + tuple(m * ds for ds in dstate[1:])
    return dnew, tuple((1 - m) * ds for ds in dstate)


# -- cells built on two products: xa = x_t·Wx + b and ah = h_{t-1}·Wh -------------------------
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
            self.xa = (x.reshape(T * N, D) @ Wx + b).reshape(T, N, -1)  # (T, N, G·H)

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
    hs: Any  # (T + 1, N, H): h_0 .. h_T, the states the recurrent GEMM read
    steps: list  # one gates_forward cache per step
    mask: Any  # (T, N) or None


class ProjectedCell(Cell):
    """A cell whose step is elementwise gate math on two products: the input part
    ``xa = x_t·Wx + b`` (N, G·H) and the recurrent part ``ah = h_{t-1}·Wh`` (N, G·H).

    A subclass implements ``gates_forward`` and ``gates_backward`` (and the parameters);
    this class supplies the step contract and the fast sequence loop from them.
    """

    takes_ids = True

    def gates_forward(self, p: dict, xa, ah, state: State) -> tuple[State, Any]:
        """The step's gate math: xa, ah (N, G·H), state -> (the new state, the gates' cache)."""
        raise NotImplementedError

    def gates_backward(self, p: dict, dstate: State, cache, grads: dict):
        """dL/d(new state) -> (dxa, dah, dstate_direct).

        dxa and dah (N, G·H) are dL/dxa and dL/dah (the same array when the cell only
        uses xa + ah). dstate_direct is the part of dL/d(previous state) that does not
        go through h_{t-1}·Wh, one entry per state, None where there is none. Gradients
        of parameters inside the gate math (the GRU's bhn) are added into ``grads``.
        """
        raise NotImplementedError

    # -- the step contract, from the gate math --------------------------------------------
    def step_forward(self, p, x, state):
        """x (N, D) floats or (N,) ids; returns the new state and a ProjectedStepCache."""
        xa = p["Wx"][x] + p["b"] if is_ids(x) else x @ p["Wx"] + p["b"]  # (N, G·H)
        ah = state[0] @ p["Wh"]  # (N, G·H)
        new, gates = self.gates_forward(p, xa, ah, state)
        return new, ProjectedStepCache(x, state[0], gates)

    def step_backward(self, p, dstate, cache, grads):
        dxa, dah, direct = self.gates_backward(p, dstate, cache.gates, grads)
        grads["Wx"] += _input_rows(cache.x, p["Wx"].shape[0], dxa.dtype).T @ dxa  # (D, G·H)
        grads["b"] += dxa.sum(axis=0)  # (G·H,)
        grads["Wh"] += cache.h_prev.T @ dah  # (H, G·H)
        dh_prev = dah @ p["Wh"].T  # (N, H): through h_{t-1}·Wh
        dprev = _add_direct((dh_prev,) + (None,) * (len(direct) - 1), direct)
        dx = None if is_ids(cache.x) else dxa @ p["Wx"].T  # (N, D)
        return dx, dprev

    # -- the fast loop: the same arithmetic, the products hoisted -------------------------
    def forward(self, p, x, state0, mask=None):
        """x (T, N, D) floats or (T, N) ids. Returns hs (T, N, H), the final state, a cache."""
        xp = array_module(state0[0])
        T, (N, H) = x.shape[0], state0[0].shape
        xa = InputProjection(x, p["Wx"], p["b"])  # x_t·Wx + b for every t, before the loop
        hs = xp.empty((T + 1, N, H), dtype=state0[0].dtype)  # h_0 .. h_T
        hs[0] = state0[0]
        out = hs[1:] if mask is None else xp.empty((T, N, H), dtype=hs.dtype)  # each step's new h
        state, steps = tuple(state0), []
        for t in range(T):
            new, gates = self.gates_forward(p, xa[t], hs[t] @ p["Wh"], state)  # one GEMM per step
            steps.append(gates)
            out[t] = new[0]
            state = new if mask is None else carry(mask[t], new, state)
            if mask is not None:
                hs[t + 1] = state[0]
        outputs = hs[1:] if mask is None else out * mask[:, :, None]
        return outputs, (hs[T],) + tuple(state[1:]), ProjectedSequenceCache(x, hs, steps, mask)

    def backward(self, p, dhs, dstate_T, cache, grads):
        """BPTT. dhs (T, N, H). Returns dx (T, N, D), or None for ids, and dstate0."""
        xp = array_module(dhs)
        x, hs, steps, mask = cache
        T, N, H = dhs.shape
        dXA = dAH = None  # dL/dxa_t and dL/dah_t for every step, (T, N, G·H)
        WhT = xp.ascontiguousarray(p["Wh"].T)  # a copy: BLAS runs faster on it than on the transposed view
        dstate = tuple(dstate_T)
        for t in reversed(range(T)):
            dnew, dcarried = carry_backward(None if mask is None else mask[t], dhs[t], dstate)
            dxa, dah, direct = self.gates_backward(p, dnew, steps[t], grads)
            if dXA is None:
                dXA = xp.empty((T,) + dxa.shape, dtype=dxa.dtype)
                dAH = dXA if dah is dxa else xp.empty_like(dXA)
            dXA[t] = dxa
            if dAH is not dXA:
                dAH[t] = dah
            dstate = _add_direct((dah @ WhT,) + (None,) * (len(direct) - 1), direct)  # (N, H) each
            if dcarried is not None:
                dstate = tuple(a + b for a, b in zip(dstate, dcarried))
        # The weights are shared by all steps: their gradient is a sum over t, computed as
        # one GEMM over all T·N rows instead of T small ones.
        grads["Wh"] += hs[:-1].reshape(T * N, H).T @ dAH.reshape(T * N, -1)  # (H, G·H)
        dx = input_projection_backward(x, p["Wx"], dXA, grads)
        return dx, dstate


def _add_direct(through_wh: tuple, direct: tuple) -> State:
    """Sum two per-state gradient tuples whose entries may be None (no path)."""
    out = []
    for a, b in zip(through_wh, direct):
        out.append(b if a is None else a if b is None else a + b)
    return tuple(out)


def _input_rows(x, D: int, dtype):
    """The rows that multiplied Wx: x itself, or one-hot rows for ids."""
    return onehot(x, D, dtype) if is_ids(x) else x
