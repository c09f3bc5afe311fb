"""The cell contract, and the step loop that runs any cell over a whole sequence.

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

The built-in cells are ProjectedCells (projected.py): cells whose step is gate math
on two matrix products, which run over a sequence in a faster loop of their own that
does the same arithmetic. The tests pin both loops to agree.
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
