"""The character-level language model: one-hot input, a stack of cells, a dense decoder.

    ids (N, T) --one-hot--> layer 0 --dropout--> layer 1 ... --dropout--> decoder --> logits (T, N, V)

Parameters and their gradients are named views into one flat buffer each
(``model.params["l0.Wx"]`` and ``model.grads["l0.Wx"]``), so the optimizer,
clipping, checkpoints and gradient checks are each one loop over the same
names, and zeroing the gradients is one fill. docs/parameters.md lists every
name, shape and meaning.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy

from . import checks
from .backend import Backend, get_backend
from .cell import Cell, onehot, sub_tree
from .gru import GRU
from .init import truncated_normal
from .layers import (
    dense_backward,
    dense_forward,
    dropout_backward,
    dropout_forward,
    dropout_mask,
    sequence_cross_entropy,
    sequence_cross_entropy_backward,
)
from .lstm import LSTM
from .rnn import RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class ConfigError(ValueError):
    """A model configuration that cannot work; the message is one line."""


# A cell given by import path: "package.module:ClassName".
IMPORT_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def is_import_path(name) -> bool:
    """Whether ``name`` names code to import (module:Class) rather than a built-in cell."""
    return isinstance(name, str) and name not in CELLS and IMPORT_PATH.match(name) is not None


def make_cell(name: str) -> Cell:
    """A cell by name ("rnn", "lstm", "gru") or by import path ("package.module:ClassName").

    An import path runs that module's code, so only a name the user typed may
    come here: a name read from a file (a checkpoint, a run's config.json) is
    checked against the command line first (checkpoint.trusted_cell).
    """
    if name in CELLS:
        return CELLS[name]()
    if not is_import_path(name):
        raise ConfigError(
            f"unknown cell {checks.short(name)}: use rnn, lstm, gru or an import path module:Class"
        )
    module_name, class_name = name.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module's own code raised
        reason = (str(exc).splitlines() or [""])[0]
        raise ConfigError(f"cannot load cell {name!r}: {type(exc).__name__}: {reason}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Cell)):  # never call what is not a cell class
        raise ConfigError(f"{name!r} is not a cell: it must name a minirnn.cell.Cell subclass")
    try:
        return cls()
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise ConfigError(f"cell {name!r} cannot be built without arguments ({reason})") from None


@dataclass
class ModelConfig:
    vocab_size: int  # V: number of distinct symbols
    hidden_size: int = 256  # H: units per recurrent layer
    num_layers: int = 2  # how many cells are stacked
    cell: str = "lstm"  # rnn | lstm | gru | "module:Class" for your own cell
    dropout: float = 0.0  # probability of zeroing a layer's output, in training only

    # What each field must be; train's options use the same rules under their flags' names.
    RULES = {
        "vocab_size": checks.integer(2),
        "hidden_size": checks.integer(1),
        "num_layers": checks.integer(1),
        "cell": checks.Rule(lambda v: v in CELLS or is_import_path(v), "rnn, lstm, gru or module:Class"),
        "dropout": checks.number(0.0, 1.0),
    }

    def validate(self, name=lambda field: field):
        """Raise ConfigError naming the first field that cannot work; ``name`` spells a field (as a flag).
        Imports nothing: a cell given by import path is loaded when the model is built."""
        bad = checks.first_problem(asdict(self), self.RULES)
        if bad is not None:
            field, value, rule = bad
            if field == "cell":
                raise ConfigError(
                    f"unknown cell {checks.short(value)}: use rnn, lstm, gru or an import path module:Class"
                )
            raise ConfigError(f"{name(field)} must be {rule.want}, got {checks.short(value)}")
        return self

    def to_dict(self):
        return asdict(self)

    def num_params(self) -> int:
        """Trainable parameters, counted from the shapes alone (nothing is allocated)."""
        cell, V, H = make_cell(self.cell), self.vocab_size, self.hidden_size
        first = sum(int(numpy.prod(s)) for s in cell.param_shapes(V, H).values())
        later = sum(int(numpy.prod(s)) for s in cell.param_shapes(H, H).values())
        return first + (self.num_layers - 1) * later + H * V + V  # + the decoder

    def training_bytes(self, batch_size: int, seq_length: int, itemsize: int) -> int:
        """A lower bound on what training holds: parameters, gradients and Adam's two moments (4 copies),
        per layer and step the output and the widest gate block kept for the backward pass, and the logits
        with their gradient. The true peak is higher (docs/troubleshooting.md, "Running out of memory")."""
        H, V, NT = self.hidden_size, self.vocab_size, batch_size * seq_length
        shapes = make_cell(self.cell).param_shapes(H, H).values()
        gates = max((s[-1] for s in shapes if len(s) == 2), default=H)  # e.g. the LSTM's 4H
        return itemsize * (4 * self.num_params() + NT * (self.num_layers * (H + gates) + 2 * V))


def named_views(flat, shapes: dict) -> dict:
    """Split a flat buffer into named arrays of the given shapes (views, not copies)."""
    views, start = {}, 0
    for name, shape in shapes.items():
        size = int(numpy.prod(shape))
        views[name] = flat[start : start + size].reshape(shape)
        start += size
    return views


def stacked_view(flat, shapes: dict, first: str, second: str):
    """[first; second], the two matrices stacked by rows, as one view into ``flat``: possible
    when ``named_views`` laid them out one after the other and their widths are equal. None
    otherwise (then there is no such view)."""
    names = list(shapes)
    if first not in shapes or second not in shapes or names.index(second) != names.index(first) + 1:
        return None
    a, b = shapes[first], shapes[second]
    if len(a) != 2 or len(b) != 2 or a[1] != b[1]:
        return None
    (rows_a, width), rows_b = a, b[0]
    start = sum(int(numpy.prod(shapes[name])) for name in names[: names.index(first)])
    return flat[start : start + (rows_a + rows_b) * width].reshape(rows_a + rows_b, width)


class ModelCache(NamedTuple):
    layers: list  # per layer: (the cell's sequence cache, its dropout mask or None)
    decoder: Any  # the dense decoder's cache
    mask: Any  # (T, N) of 0/1, or None: every position is real
    shape: tuple  # (T, N)


class CharRNN:
    """A stack of ``num_layers`` cells and a dense decoder over a vocabulary.

    The model computes the loss and gradients of the batch it is given; splitting a
    batch over CPU cores (parallel.py) or processes (distributed.py) wraps it.

    >>> m = CharRNN(ModelConfig(vocab_size=65), seed=0)
    >>> m.num_params()
    871745
    """

    def __init__(self, config: ModelConfig, backend: Backend | None = None, seed: int = 0):
        self.config = config.validate()
        self.backend = backend or get_backend()
        self.cells = [make_cell(config.cell) for _ in range(config.num_layers)]
        V, H = config.vocab_size, config.hidden_size
        self.shapes = {}
        for layer, cell in enumerate(self.cells):
            for name, shape in cell.param_shapes(V if layer == 0 else H, H).items():
                self.shapes[f"l{layer}.{name}"] = tuple(shape)
        self.shapes["dec.W"] = (H, V)
        self.shapes["dec.b"] = (V,)
        size = sum(int(numpy.prod(s)) for s in self.shapes.values())
        self.flat = self.backend.zeros(size)  # every parameter, one buffer
        self.grad_flat = self.backend.zeros(size)  # every gradient, same layout
        self.params = named_views(self.flat, self.shapes)
        self.grads = named_views(self.grad_flat, self.shapes)
        self.load_params(self.init_params(seed))
        self._layer_params = [self.layer_params(k, self.params) for k in range(len(self.cells))]
        for k, p in enumerate(self._layer_params):  # [Wx; Wh] as one matrix, for a step (projected.py)
            W = stacked_view(self.flat, self.shapes, f"l{k}.Wx", f"l{k}.Wh")
            if W is not None and "W" not in p:
                p["W"] = W

    # -- parameters ---------------------------------------------------------------------------
    def init_params(self, seed: int) -> dict:
        """Fresh host (NumPy float64) parameters. The decoder starts as the tutorial's:
        truncated normal with std 0.1, bias 0.1."""
        rng = numpy.random.default_rng(seed)
        V, H = self.config.vocab_size, self.config.hidden_size
        host = {}
        for layer, cell in enumerate(self.cells):
            for name, value in cell.init_params(V if layer == 0 else H, H, rng).items():
                host[f"l{layer}.{name}"] = value
        host["dec.W"] = truncated_normal(rng, 0.1, (H, V))
        host["dec.b"] = numpy.full(V, 0.1)
        return host

    def load_params(self, host: dict):
        """Copy named host arrays into the parameter buffer; names and shapes must match."""
        if set(host) != set(self.shapes):
            missing, extra = set(self.shapes) - set(host), set(host) - set(self.shapes)
            raise ConfigError(
                f"parameter names differ (missing {sorted(missing)}, unexpected {sorted(extra)})"
            )
        for name, value in host.items():
            if tuple(value.shape) != self.shapes[name]:
                raise ConfigError(
                    f"parameter {name} has shape {tuple(value.shape)}, expected {self.shapes[name]}"
                )
            self.params[name][...] = self.backend.asarray(value)

    def host_params(self) -> dict:
        return {name: self.backend.to_host(p).copy() for name, p in self.params.items()}

    def num_params(self) -> int:
        return int(self.flat.size)

    def layer_params(self, layer: int, tree: dict) -> dict:
        """The views of one layer, without the "l0." prefix: what the cells expect."""
        return sub_tree(tree, f"l{layer}.")

    def zero_state(self, N: int) -> list:
        """One tuple of (N, H) zero arrays per layer."""
        H, be = self.config.hidden_size, self.backend
        return [cell.zero_state(be.xp, N, H, be.dtype) for cell in self.cells]

    def dropout_masks(self, seed, T: int, N: int) -> list:
        """Per layer, the (T, N, H) inverted-dropout mask of a training step drawn from ``seed``;
        None entries: no dropout (no seed, or a rate of 0)."""
        rate, be = self.config.dropout, self.backend
        if seed is None or rate == 0:
            return [None] * len(self.cells)
        shape = (T, N, self.config.hidden_size)
        return [dropout_mask(be.uniform(seed * 1000 + k, shape), rate) for k in range(len(self.cells))]

    # -- forward and backward ---------------------------------------------------------------------
    def forward(self, x, state=None, lengths=None, dropout_seed=None, *, drops=None):
        """x (N, T) integer ids -> logits (T, N, V), final state, cache.

        state: per layer, a tuple of (N, H) arrays (zeros if None). lengths: (N,) true
        lengths for a padded batch (None: all T). Dropout is applied only in training,
        when ``dropout_seed`` is given (the seed fixes the masks) or the masks themselves
        are (``drops``, from :meth:`dropout_masks`; how a shard gets its rows of them).
        """
        be, xp = self.backend, self.backend.xp
        N, T = x.shape
        V, H = self.config.vocab_size, self.config.hidden_size
        drops = self.dropout_masks(dropout_seed, T, N) if drops is None else drops
        ids = xp.ascontiguousarray(x.T)  # (T, N): time-major, each step one block
        mask = None
        if lengths is not None:
            mask = (xp.arange(T)[:, None] < lengths[None, :]).astype(be.dtype)  # (T, N)
        state = self.zero_state(N) if state is None else state
        inp, layer_caches, final = ids, [], []
        for layer, cell in enumerate(self.cells):
            if layer == 0 and not cell.takes_ids:
                inp = onehot(ids, V, be.dtype)  # (T, N, V) for cells without a row lookup
            hs, s_final, cache = cell.forward(self._layer_params[layer], inp, state[layer], mask)
            if drops[layer] is not None:
                hs = dropout_forward(hs, drops[layer])
            layer_caches.append((cache, drops[layer]))
            final.append(s_final)
            inp = hs
        logits, dcache = dense_forward(inp.reshape(T * N, H), self.params["dec.W"], self.params["dec.b"])
        return logits.reshape(T, N, V), final, ModelCache(layer_caches, dcache, mask, (T, N))

    def backward(self, dlogits, cache: ModelCache, dstate=None, grads=None) -> list:
        """dlogits (T, N, V) -> adds every parameter's gradient into ``grads`` (default ``self.grads``).

        dstate: per layer, the gradient w.r.t. the final state (None: zeros).
        Returns the gradient w.r.t. the initial state, per layer.
        """
        T, N = cache.shape
        V, H = self.config.vocab_size, self.config.hidden_size
        grads = self.grads if grads is None else grads
        dh = dense_backward(dlogits.reshape(T * N, V), cache.decoder, self.params["dec.W"], grads, "dec.")
        dh = dh.reshape(T, N, H)
        dstate = self.zero_state(N) if dstate is None else dstate
        dstate0 = [None] * len(self.cells)
        for layer in reversed(range(len(self.cells))):
            layer_cache, drop = cache.layers[layer]
            if drop is not None:
                dh = dropout_backward(dh, drop)
            p, g = self._layer_params[layer], self.layer_params(layer, grads)
            dh, dstate0[layer] = self.cells[layer].backward(p, dh, dstate[layer], layer_cache, g)
        return dstate0

    def loss(self, x, y, state=None, lengths=None, dropout_seed=None, *, drops=None, count=None):
        """Forward and the masked mean cross-entropy. Returns loss (0-d), logits, final state, cache.

        count: the divisor of the loss (default: the positions kept in this batch); a shard of
        a bigger batch passes the whole batch's, so that the shards' losses add up.
        """
        logits, final, cache = self.forward(x, state, lengths, dropout_seed, drops=drops)
        T, N, V = logits.shape
        targets = self.backend.xp.ascontiguousarray(y.T).reshape(T * N)
        weights = None if cache.mask is None else cache.mask.reshape(T * N)
        loss, lcache = sequence_cross_entropy(logits.reshape(T * N, V), targets, weights, count)
        return loss, logits, final, (cache, lcache)

    def loss_and_grads(
        self, x, y, state=None, lengths=None, dropout_seed=None, *, drops=None, count=None, grads=None
    ):
        """One forward and backward pass over the batch: set the gradients (``self.grads``, or
        the named views ``grads``); return loss, logits (T, N, V), final state.

        ``drops``, ``count`` and ``grads`` let a caller run one shard of a bigger batch
        (parallel.py): its rows of the dropout masks, the whole batch's count, its own buffer.
        """
        if grads is None or grads is self.grads:
            grads = self.grads
            self.grad_flat.fill(0)
        else:
            for g in grads.values():
                g.fill(0)
        loss, logits, final, (cache, lcache) = self.loss(
            x, y, state, lengths, dropout_seed, drops=drops, count=count
        )
        T, N, V = logits.shape
        self.backward(sequence_cross_entropy_backward(lcache).reshape(T, N, V), cache, grads=grads)
        return loss, logits, final

    def step(self, ids, state):
        """One time step for generation: ids (N,) -> logits (N, V) and the new state.

        The state carries everything the model has read so far, so priming and sampling
        feed one character at a time without re-reading the past. Each layer runs its
        cell's ``step_forward``; a built-in cell turns the first layer's one-hot input
        into a row lookup of Wx.
        """
        inp, new_state = ids, []
        for layer, cell in enumerate(self.cells):
            if layer == 0 and not cell.takes_ids:
                inp = onehot(inp, self.config.vocab_size, self.backend.dtype)  # (N, V)
            s, _ = cell.step_forward(self._layer_params[layer], inp, state[layer])
            new_state.append(s)
            inp = s[0]  # (N, H), the layer's output
        return inp @ self.params["dec.W"] + self.params["dec.b"], new_state


def num_params(vocab_size: int, hidden_size: int = 256, num_layers: int = 2, cell: str = "lstm") -> int:
    """Trainable parameters of a configuration, counted from the shapes alone."""
    total, D = 0, vocab_size
    for _ in range(num_layers):
        total += sum(int(numpy.prod(s)) for s in make_cell(cell).param_shapes(D, hidden_size).values())
        D = hidden_size
    return total + hidden_size * vocab_size + vocab_size  # + the decoder
