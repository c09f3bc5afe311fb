"""Optimisers and gradient clipping, written out equation by equation.

Each works on the model's named parameters and gradients (two dicts with the
same keys) and keeps its own state as named arrays, so a checkpoint can save
and restore it (:meth:`state_dict` / :meth:`load_state_dict`).
"""

from __future__ import annotations

import math

from .backend import array_module


def global_norm(grads: dict):
    """sqrt(Σ over every gradient array of Σ g²), as a 0-d array (no host sync).

    Written as elementwise square and sum rather than a dot product: a dot
    product of this length wakes every BLAS thread, and OpenBLAS's threads then
    spin for a while, competing with the next step's shards (parallel.py).
    """
    xp = array_module(*grads.values())
    total = sum((g * g).sum() for g in grads.values())
    return xp.sqrt(total)


def clip_by_global_norm(grads: dict, max_norm: float):
    """Scale every gradient by max_norm / max(norm, max_norm), in place; return the norm before.

    As tf.clip_by_global_norm: the direction of the whole gradient is kept and
    only its length is capped. char-rnn and min-char-rnn instead clamp each
    element to [-5, 5] (np.clip), which is a different algorithm: it changes the
    direction. ``max_norm <= 0`` turns clipping off (the norm is still returned).
    """
    norm = global_norm(grads)
    if max_norm > 0:
        xp = array_module(norm)
        scale = max_norm / xp.maximum(norm, max_norm)  # 1 when the norm is already small enough
        for g in grads.values():
            g *= scale.astype(g.dtype)
    return norm


class SGD:
    """Plain gradient descent: θ ← θ - lr·g."""

    def __init__(self, params: dict, lr: float = 1e-2):
        self.params, self.lr, self.t = params, lr, 0

    def step(self, grads: dict):
        self.t += 1
        for name, p in self.params.items():
            p -= self.lr * grads[name]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict):
        pass


class Adam:
    """Adam (Kingma & Ba 2014, https://arxiv.org/abs/1412.6980), as tf.train.AdamOptimizer computes it.

    Defaults are TensorFlow's: lr 1e-3, β1 0.9, β2 0.999, ε 1e-8. Like
    TensorFlow, the bias corrections are folded into the step size and ε is
    added to √v without correction (the paper's "ε-hat" form, end of its section 2).

    ``weight_decay`` λ > 0 makes it AdamW (Loshchilov & Hutter 2019,
    https://arxiv.org/abs/1711.05101): the decay is decoupled from the gradient,
    θ ← θ - lr·λ·θ, applied before the Adam step and never seen by m or v (as
    torch.optim.AdamW). Only the weight matrices decay (``decays``, default: the
    names whose arrays have 2 or more dimensions), not the biases, as nanoGPT.
    ``lr`` is read at every step, so a schedule (schedule.py) may set it in between.
    """

    def __init__(
        self,
        params: dict,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decays=None,
    ):
        self.params, self.lr, self.beta1, self.beta2, self.eps = params, lr, beta1, beta2, eps
        self.weight_decay = weight_decay
        self.decays = set(decays) if decays is not None else {k for k, p in params.items() if p.ndim >= 2}
        xp = array_module(*params.values())
        self.m = {name: xp.zeros_like(p) for name, p in params.items()}  # 1st moment, per parameter
        self.v = {name: xp.zeros_like(p) for name, p in params.items()}  # 2nd moment
        self.t = 0  # steps taken

    def step(self, grads: dict):
        self.t += 1
        b1, b2, t = self.beta1, self.beta2, self.t
        lr_t = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t)  # bias corrections, as a step size
        for name, p in self.params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            if self.weight_decay and name in self.decays:
                p *= 1 - self.lr * self.weight_decay  # θ ← θ - lr·λ·θ (decoupled: not part of g)
            m *= b1
            m += (1 - b1) * g  # m ← β1·m + (1 - β1)·g
            v *= b2
            v += (1 - b2) * (g * g)  # v ← β2·v + (1 - β2)·g²
            p -= lr_t * m / (array_module(v).sqrt(v) + self.eps)  # θ ← θ - lr_t·m / (√v + ε)

    def state_dict(self) -> dict:
        """Named arrays (device) and the step count: what a checkpoint needs to resume exactly."""
        state = {f"m.{k}": a for k, a in self.m.items()}
        state.update({f"v.{k}": a for k, a in self.v.items()})
        return state

    def load_state_dict(self, state: dict):
        for name in self.params:
            self.m[name][...] = state[f"m.{name}"]
            self.v[name][...] = state[f"v.{name}"]


OPTIMIZERS = {"adam": Adam, "sgd": SGD}
