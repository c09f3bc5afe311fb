"""The cell contract, and running any cell over a whole sequence with masks.

Legend for shapes in this package:
    N batch, T time, D input features, H hidden units, V vocabulary, G gates.
Arrays are batch-major per time step: one row per sequence, ``x_t`` is (N, D)
and ``h_t`` is (N, H). Sequences are time-major, ``x`` is (T, N, D), so that
each time step is one contiguous block. The tutorial writes
``a = W·h + U·x + b`` with column vectors; with rows that is
``a = x·Wx + h·Wh + b``, i.e. ``Wx = Uᵀ`` and ``Wh = Wᵀ``.

A cell is anything that follows :class:`Cell`'s contract:

* ``state_names``: the names of its state arrays, each (N, H). The first one,
  ``h``, is also the cell's output (the LSTM adds ``c``).
* ``param_shapes(D, H)`` and ``init_params(D, H, rng)``: its parameters, by name.
* ``step_forward(p, x, state) -> (state_new, cache)``: one time step.
* ``step_backward(p, dstate_new, cache, grads) -> (dx, dstate)``: the step's
  backward pass; it *adds* the parameter gradients into ``grads`` (the same
  weights are used at every step, so their gradient is the sum over steps).

From those four, :meth:`Cell.forward` and :meth:`Cell.backward` run a whole
sequence, with variable lengths, for any cell. The built-in cells override
them with faster versions that do the same arithmetic (the tests check both).

Also part of the contract, with defaults: ``name`` (a short label, used in the
gradient check's rows), ``takes_ids`` (False: the model one-hot encodes the
first layer's input for you), ``shard_rows`` (how thin a shard of a batch may
be when training splits it over the CPU cores; 0: never split) and
``zero_state`` (override it only if a state is not (N, H)). A cell keeps no parameters itself, so one object can serve
several layers, and it must be constructible with no arguments: that is how
``make_cell("mypkg.cells:MyCell")`` builds it for the model, the training
command and ``python -m minirnn.gradcheck --cell mypkg.cells:MyCell``.
docs/appendix.md writes a new cell from scratch and runs it through all of these.

Optional: ``recur(p, xa, state) -> (state_new, step_cache)``, the step given
its input part ``xa = x_t·Wx + b`` already computed, and ``activate(a, state)
-> (state_new, step_cache)``, the step given its whole pre-activation
``a = x_t·Wx + h_{t-1}·Wh + b``. The built-in cells have ``recur`` (RNN and
LSTM also ``activate``); ``CharRNN.step`` (sampling) uses them to turn a
one-hot input into a row lookup and a later layer's two products into one,
and falls back to ``step_forward`` for cells without them.
"""
from __future__ import annotations

import numpy

from .backend import array_module


def sub_tree(tree: dict, prefix: str) -> dict:
    """The entries of ``tree`` whose names start with ``prefix``, prefix removed.

    The values are the same array objects, so a cell that does ``grads["Wx"] += ...``
    on the sub-tree adds into the caller's arrays.
    """
    return {k[len(prefix):]: v for k, v in tree.items() if k.startswith(prefix)}


def onehot(ids, D: int, dtype):
    """Integer ids (...,) -> one-hot floats (..., D), for cells without a row lookup and for dWx."""
    xp = array_module(ids)
    return (ids[..., None] == xp.arange(D)).astype(dtype)


def project_inputs(x, Wx, b):
    """x_t·Wx + b for every time step, with the GEMM hoisted out of the time loop.

    x is (T, N, D) floats, or (T, N) integer ids standing for one-hot rows.
    ``xa = project_inputs(x, Wx, b)`` then ``xa[t]`` is x_t·Wx + b, (N, G*H),
    an array the caller may overwrite. Ask for each t once: for float inputs
    the bias is added in place when row block t is handed out.

    Floats: x·Wx for all T*N rows is one GEMM here, instead of T small ones in
    the loop; b is added per step, while the block is in cache. Ids: one-hot·Wx
    is a row lookup of Wx, so ``xa[t]`` gathers N rows of the (V, G*H) table
    Wx + b (b added to V rows, not to T*N), and nothing of size T*N is made.
    """
    return _ProjectedInputs(x, Wx, b)


class _ProjectedInputs:
    def __init__(self, x, Wx, b):
        self.ids = x.dtype.kind in "iu"
        if self.ids:
            self.x, self.table = x, Wx + b  # (T, N) and (V, GH)
        else:
            T, N, D = x.shape
            self.xw, self.b = (x.reshape(T * N, D) @ Wx).reshape(T, N, -1), b  # (T, N, GH)

    def __getitem__(self, t):
        if self.ids:
            return self.table[self.x[t]]  # (N, GH), a new array
        xa = self.xw[t]
        xa += self.b
        return xa


def project_inputs_backward(x, Wx, dA, grads, prefix=""):
    """The backward of :func:`project_inputs`; adds dWx and db into ``grads``, returns dx.

    dA is (T, N, G*H). For ids, dWx is a sum of dA's rows grouped by id: we
    write it as onehot(x)ᵀ · dA, a GEMM, which is about 10x faster than the
    scatter-add ``xp.add.at``. The ids have no gradient (dx is None).
    """
    T, N, GH = dA.shape
    dA2 = dA.reshape(T * N, GH)
    grads[prefix + "b"] += dA2.sum(axis=0)
    if x.dtype.kind in "iu":
        D = Wx.shape[0]
        grads[prefix + "Wx"] += onehot(x.reshape(T * N), D, dA.dtype).T @ dA2  # (D, GH)
        return None
    D = x.shape[2]
    grads[prefix + "Wx"] += x.reshape(T * N, D).T @ dA2  # (D, GH)
    return (dA2 @ Wx.T).reshape(T, N, D)


class Cell:
    """Base class and contract of a recurrent cell (see the module docstring).

    Subclasses set ``state_names`` and implement ``param_shapes``,
    ``init_params``, ``step_forward`` and ``step_backward``. Everything else
    (sequences, masks, stacking, training, gradient checks) comes for free.
    """

    name = "cell"
    state_names: tuple[str, ...] = ("h",)
    # True if forward() also takes (T, N) integer ids for one-hot inputs (the
    # built-in cells do, as a row lookup); otherwise the model one-hot encodes.
    takes_ids = False
    # On the CPU a batch is split into shards of at least this many rows, one
    # per core (parallel.py); 0: never split. Below about 32 rows a GEMM no
    # longer runs at full speed on one core.
    shard_rows = 32

    # -- the contract ------------------------------------------------------------
    def param_shapes(self, D: int, H: int) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def init_params(self, D: int, H: int, rng: numpy.random.Generator) -> dict[str, numpy.ndarray]:
        raise NotImplementedError

    def step_forward(self, p, x, state):
        raise NotImplementedError

    def step_backward(self, p, dstate, cache, grads):
        raise NotImplementedError

    # -- a whole sequence, for any cell ----------------------------------------
    def forward(self, p, x, state0, mask=None):
        """Run the cell over a sequence.

        Inputs: x (T, N, D) floats; state0, a tuple of (N, H) arrays; mask, (T, N) of 0/1 or None for
        "every position is real". Past a sequence's end (mask 0) its state is
        carried unchanged and its output is zero.
        Returns: hs, the outputs (T, N, H); the final state; a cache for backward.
        """
        xp = array_module(x)
        T = x.shape[0]
        hs = xp.zeros((T,) + state0[0].shape, dtype=state0[0].dtype)
        state, caches = tuple(state0), []
        for t in range(T):
            new, cache = self.step_forward(p, x[t], state)
            if mask is not None:
                m = mask[t][:, None]  # (N, 1)
                new = tuple(m * s_new + (1 - m) * s_old for s_new, s_old in zip(new, state))
                hs[t] = m * new[0]
            else:
                hs[t] = new[0]
            state = new
            caches.append(cache)
        return hs, state, (x, mask, caches)

    def backward(self, p, dhs, dstate_T, cache, grads):
        """Backpropagation through time: walk the steps in reverse, carrying dstate.

        Inputs: dhs (T, N, H), the gradient of the loss w.r.t. the outputs;
        dstate_T, the gradient w.r.t. the final state (zeros if unused); the
        cache from :meth:`forward`. Adds parameter gradients into ``grads``.
        Returns: dx (T, N, D) and dstate0.
        """
        x, mask, caches = cache
        xp = array_module(dhs)
        dx = xp.zeros_like(x)
        dstate = tuple(dstate_T)
        for t in reversed(range(len(caches))):
            if mask is not None:
                m = mask[t][:, None]
                # state_t = m * new + (1 - m) * state_{t-1}, output_t = m * new_h
                dnew = tuple(m * ds for ds in dstate)
                dnew = (dnew[0] + m * dhs[t],) + dnew[1:]
                dcarry = tuple((1 - m) * ds for ds in dstate)
            else:
                dnew = (dstate[0] + dhs[t],) + tuple(dstate[1:])
                dcarry = None
            dx[t], dprev = self.step_backward(p, dnew, caches[t], grads)
            dstate = dprev if dcarry is None else tuple(a + b for a, b in zip(dprev, dcarry))
        return dx, dstate

    # -- helpers -----------------------------------------------------------------
    def zero_state(self, xp, N: int, H: int, dtype):
        """The all-zero initial state, one (N, H) array per name in ``state_names``."""
        return tuple(xp.zeros((N, H), dtype=dtype) for _ in self.state_names)

    def __repr__(self):
        return f"{type(self).__name__}()"
