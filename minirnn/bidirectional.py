"""A bidirectional recurrent layer: one cell reads the sequence forward, another backward.

Legend: N batch, T time, D input, H hidden units of each direction.

    hf_t = forward cell over x_1 .. x_t            (N, H)   the past, up to t
    hb_t = backward cell over x_L .. x_t           (N, H)   the future, from the end back to t
    out_t = [hf_t, hb_t]                           (N, 2H)  both, side by side

Each position sees the whole sequence, which is why a bidirectional model is
good at filling gaps (minirnn.gapfill) and why it cannot generate text left to
right: out_t depends on x_{t+1}, ..., which do not exist yet while generating
(docs/appendix.md says more). It is therefore a *layer*, with forward and
backward over whole sequences, and not a cell: it has no step.

Padding. A padded sequence of length L < T is reversed *within its length*:
the backward cell reads x_{L-1}, ..., x_0 and then the padding, so its first
step sees the last real element and not a pad. The reversal is a gather with
the index rev[t, n] = L_n - 1 - t for t < L_n (padding stays where it is);
it is its own inverse, so the same gather turns the backward cell's outputs
(and, in the backward pass, the gradients) back into the original order.
Masks must be of the "lengths" kind (ones, then zeros), as the models make them.

Parameters: the forward cell's names prefixed ``fw.``, the backward cell's ``bw.``.
"""

from __future__ import annotations

from .backend import array_module
from .cell import Cell, sub_tree


def reverse_index(mask, T: int, N: int, xp):
    """The (T, N) time index that reverses each sequence within its length.

    mask (T, N) of 0/1 with ones first, or None (every sequence has length T).
    """
    t = xp.arange(T)[:, None]  # (T, 1)
    if mask is None:
        return xp.broadcast_to(T - 1 - t, (T, N))
    lengths = mask.sum(axis=0).astype(t.dtype)[None, :]  # (1, N)
    return xp.where(t < lengths, lengths - 1 - t, t)  # (T, N)


def reverse_sequences(x, rev):
    """x (T, N, ...) -> the same sequences with time reversed by ``rev`` (T, N); ids (T, N) too."""
    xp = array_module(x)
    return x[rev, xp.arange(x.shape[1])[None, :]]


class Bidirectional:
    """A forward cell and a backward cell over the same sequence, outputs concatenated.

    Both cells follow the cell contract (any built-in or user-defined cell);
    they may be the same object, since a cell keeps no parameters itself.
    The interface mirrors a cell's whole-sequence :meth:`Cell.forward` and
    :meth:`Cell.backward`, so a model can use either in the same place.
    """

    def __init__(self, fw: Cell, bw: Cell | None = None):
        self.fw, self.bw = fw, fw if bw is None else bw
        self.name = f"bi({self.fw.name},{self.bw.name})"
        self.takes_ids = self.fw.takes_ids and self.bw.takes_ids  # ids (T, N) instead of floats

    def param_shapes(self, D, H):
        shapes = {f"fw.{k}": s for k, s in self.fw.param_shapes(D, H).items()}
        shapes.update({f"bw.{k}": s for k, s in self.bw.param_shapes(D, H).items()})
        return shapes

    def init_params(self, D, H, rng):
        params = {f"fw.{k}": v for k, v in self.fw.init_params(D, H, rng).items()}
        params.update({f"bw.{k}": v for k, v in self.bw.init_params(D, H, rng).items()})
        return params

    def zero_state(self, xp, N, H, dtype):
        """(forward cell's state tuple, backward cell's state tuple), all zeros."""
        return self.fw.zero_state(xp, N, H, dtype), self.bw.zero_state(xp, N, H, dtype)

    def forward(self, p, x, state0, mask=None):
        """Run both directions.

        Inputs: x (T, N, D) floats (or (T, N) ids if ``takes_ids``); state0 =
        (forward state tuple, backward state tuple), each the state before the
        direction's first step; mask (T, N) or None.
        Returns: outputs (T, N, 2H), zero past each sequence's end; the final
        states (forward, backward); a cache. The backward direction's final
        state is its state after reading x_0.
        """
        xp = array_module(state0[0][0])
        T, N = x.shape[:2]
        rev = reverse_index(mask, T, N, xp)  # (T, N)
        hf, sf, cf = self.fw.forward(sub_tree(p, "fw."), x, state0[0], mask)  # (T, N, H)
        hb_rev, sb, cb = self.bw.forward(sub_tree(p, "bw."), reverse_sequences(x, rev), state0[1], mask)
        hb = reverse_sequences(hb_rev, rev)  # back to the original order  (T, N, H)
        # The cache keeps the two directions' caches and the index; nothing is recomputed.
        return xp.concatenate([hf, hb], axis=2), (sf, sb), (cf, cb, rev, hf.shape[2])

    def backward(self, p, dout, dstate_T, cache, grads):
        """dout (T, N, 2H); dstate_T = (forward, backward) gradients w.r.t. the final states.

        Adds the ``fw.*`` and ``bw.*`` gradients into ``grads``.
        Returns: dx (T, N, D) (None for ids) and (dstate0 forward, dstate0 backward).
        """
        cf, cb, rev, H = cache
        dx_f, ds_f = self.fw.backward(
            sub_tree(p, "fw."), dout[:, :, :H], dstate_T[0], cf, sub_tree(grads, "fw.")
        )
        # The backward cell saw the reversed copy: reverse its output gradient the same way
        # (the gather is its own inverse), run its BPTT, and reverse dx back.
        dhb_rev = reverse_sequences(dout[:, :, H:], rev)
        dx_b_rev, ds_b = self.bw.backward(
            sub_tree(p, "bw."), dhb_rev, dstate_T[1], cb, sub_tree(grads, "bw.")
        )
        if dx_f is None:  # integer ids have no gradient
            return None, (ds_f, ds_b)
        return dx_f + reverse_sequences(dx_b_rev, rev), (ds_f, ds_b)
