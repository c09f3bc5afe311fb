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

import numpy

from . import checks
from .backend import Backend, get_backend
from .cell import Cell, onehot, sub_tree
from .gru import GRU
from .init import truncated_normal
from .layers import (dense_backward, dense_forward, dropout_backward, dropout_forward, dropout_mask,
                     sequence_cross_entropy, sequence_cross_entropy_backward)
from .lstm import LSTM
from .parallel import can_shard, cpu_count, run_shards, shard_count, split_rows
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
        raise ConfigError(f"unknown cell {checks.short(name)}: use rnn, lstm, gru or an import path module:Class")
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
        raise ConfigError(f"cell {name!r} cannot be built without arguments ({type(exc).__name__}: {exc})") from None


@dataclass
class ModelConfig:
    vocab_size: int  # V: number of distinct symbols
    hidden_size: int = 256  # H: units per recurrent layer
    num_layers: int = 2  # how many cells are stacked
    cell: str = "lstm"  # rnn | lstm | gru | "module:Class" for your own cell
    dropout: float = 0.0  # probability of zeroing a layer's output, in training only

    # What each field must be; train's options use the same rules under their flags' names.
    RULES = {"vocab_size": checks.integer(2), "hidden_size": checks.integer(1), "num_layers": checks.integer(1),
             "cell": checks.Rule(lambda v: v in CELLS or is_import_path(v), "rnn, lstm, gru or module:Class"),
             "dropout": checks.number(0.0, 1.0)}

    def validate(self, name=lambda field: field):
        """Raise ConfigError naming the first field that cannot work; ``name`` spells a field (e.g. as a flag).
        Imports nothing: a cell given by import path is loaded when the model is built."""
        bad = checks.first_problem(asdict(self), self.RULES)
        if bad is not None:
            field, value, rule = bad
            if field == "cell":
                raise ConfigError(f"unknown cell {checks.short(value)}: use rnn, lstm, gru or an import path "
                                  "module:Class")
            raise ConfigError(f"{name(field)} must be {rule.want}, got {checks.short(value)}")
        return self

    def to_dict(self):
        return asdict(self)

    def num_params(self) -> int:
        """Trainable parameters, counted from the shapes alone (nothing is allocated)."""
        cell, V, H = make_cell(self.cell), self.vocab_size, self.hidden_size
        first = sum(int(numpy.prod(s)) for s in cell.param_shapes(V, H).values())
        later = sum(int(numpy.prod(s)) for s in cell.param_shapes(H, H).values()) if self.num_layers > 1 else 0
        return first + (self.num_layers - 1) * later + H * V + V  # + the decoder

    def training_bytes(self, batch_size: int, seq_length: int, itemsize: int) -> int:
        """A lower bound on what training holds: parameters, gradients and Adam's two moments (4 copies),
        per layer and step the output and the widest gate block kept for the backward pass, and the logits
        with their gradient. The true peak is higher (docs/troubleshooting.md, "Running out of memory")."""
        H, V, NT = self.hidden_size, self.vocab_size, batch_size * seq_length
        gates = max((s[-1] for s in make_cell(self.cell).param_shapes(H, H).values() if len(s) == 2), default=H)
        return itemsize * (4 * self.num_params() + NT * (self.num_layers * (H + gates) + 2 * V))


def named_views(flat, shapes: dict) -> dict:
    """Split a flat buffer into named arrays of the given shapes (views, not copies)."""
    views, start = {}, 0
    for name, shape in shapes.items():
        size = int(numpy.prod(shape))
        views[name] = flat[start:start + size].reshape(shape)
        start += size
    return views


class CharRNN:
    """A stack of ``num_layers`` cells and a dense decoder over a vocabulary.

    >>> m = CharRNN(ModelConfig(vocab_size=65), seed=0)
    >>> m.num_params()
    871745
    """

    def __init__(self, config: ModelConfig, backend: Backend | None = None, seed: int = 0,
                 threads: int | None = None):
        self.config = config.validate()
        self.backend = backend or get_backend()
        # CPU threads for a training step: the batch is split into one shard per thread (parallel.py).
        # On a GPU one stream does the whole batch. None: one per core.
        self.threads = (threads or cpu_count()) if self.backend.name == "numpy" else 1
        self._shard_grads = []  # extra gradient buffers, one per shard after the first
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
        self._layer_grads = [self.layer_params(k, self.grads) for k in range(len(self.cells))]
        self._stacked = [self.stacked_weights(k) for k in range(len(self.cells))]

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
            raise ConfigError(f"parameter names differ (missing {sorted(missing)}, unexpected {sorted(extra)})")
        for name, value in host.items():
            if tuple(value.shape) != self.shapes[name]:
                raise ConfigError(f"parameter {name} has shape {tuple(value.shape)}, expected {self.shapes[name]}")
            self.params[name][...] = self.backend.asarray(value)

    def host_params(self) -> dict:
        return {name: self.backend.to_host(p).copy() for name, p in self.params.items()}

    def num_params(self) -> int:
        return int(self.flat.size)

    def layer_params(self, layer: int, tree: dict) -> dict:
        """The views of one layer, without the "l0." prefix: what the cells expect."""
        return sub_tree(tree, f"l{layer}.")

    def stacked_weights(self, layer: int):
        """[Wx; Wh] of a layer as one (D + H, G·H) view of the buffer, or None.

        Wx and Wh lie one after the other in the buffer, so stacked they are one
        matrix, and x·Wx + h·Wh = [x, h]·[Wx; Wh] is one matrix product instead
        of two: what sampling's one-row steps want (see :meth:`step`).
        """
        names = list(self.shapes)
        wx, wh = f"l{layer}.Wx", f"l{layer}.Wh"
        if wx not in self.shapes or wh not in self.shapes or names.index(wh) != names.index(wx) + 1:
            return None
        (D, G), (H, G2) = self.shapes[wx], self.shapes[wh]
        if G != G2:
            return None
        start = sum(int(numpy.prod(self.shapes[n])) for n in names[:names.index(wx)])
        return self.flat[start:start + (D + H) * G].reshape(D + H, G)

    def zero_state(self, N: int):
        """One tuple of (N, H) zero arrays per layer."""
        H, be = self.config.hidden_size, self.backend
        return [cell.zero_state(be.xp, N, H, be.dtype) for cell in self.cells]

    # -- forward and backward ---------------------------------------------------------------------
    def forward(self, x, state=None, lengths=None, dropout_seed=None):
        """x (N, T) integer ids -> logits (T, N, V), final state, cache.

        state: per layer, a tuple of (N, H) arrays (zeros if None). lengths: (N,)
        true lengths for a padded batch (None: all T). dropout is applied only
        when ``dropout_seed`` is given (training); the seed fixes the masks.
        """
        N, T = x.shape
        return self._forward(x, state, lengths, self.dropout_masks(dropout_seed, T, N))

    def dropout_masks(self, seed, T: int, N: int) -> list:
        """Per layer, the (T, N, H) inverted-dropout mask of a training step; None entries: no dropout."""
        rate, be = self.config.dropout, self.backend
        if seed is None or rate == 0:
            return [None] * len(self.cells)
        shape = (T, N, self.config.hidden_size)
        return [dropout_mask(be.uniform(seed * 1000 + layer, shape), rate) for layer in range(len(self.cells))]

    def _forward(self, x, state, lengths, drops):
        be, xp = self.backend, self.backend.xp
        N, T = x.shape
        V, H = self.config.vocab_size, self.config.hidden_size
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
            drop = drops[layer]
            if drop is not None:
                hs = dropout_forward(hs, drop)
            layer_caches.append((cache, drop))
            final.append(s_final)
            inp = hs
        logits, dcache = dense_forward(inp.reshape(T * N, H), self.params["dec.W"], self.params["dec.b"])
        return logits.reshape(T, N, V), final, (layer_caches, dcache, mask, (T, N))

    def backward(self, dlogits, cache, dstate=None, grads=None):
        """dlogits (T, N, V) -> adds every parameter's gradient into ``grads`` (default ``self.grads``).

        dstate: per layer, the gradient w.r.t. the final state (None: zeros).
        Returns the gradient w.r.t. the initial state, per layer.
        """
        layer_caches, dcache, mask, (T, N) = cache
        V, H = self.config.vocab_size, self.config.hidden_size
        if grads is None or grads is self.grads:
            grads, layer_grads = self.grads, self._layer_grads
        else:
            layer_grads = [self.layer_params(k, grads) for k in range(len(self.cells))]
        dh = dense_backward(dlogits.reshape(T * N, V), dcache, self.params["dec.W"], grads, "dec.")
        dh = dh.reshape(T, N, H)
        if dstate is None:
            dstate = self.zero_state(N)
        dstate0 = [None] * len(self.cells)
        for layer in reversed(range(len(self.cells))):
            cache, drop = layer_caches[layer]
            if drop is not None:
                dh = dropout_backward(dh, drop)
            cell = self.cells[layer]
            dh, dstate0[layer] = cell.backward(self._layer_params[layer], dh, dstate[layer], cache,
                                               layer_grads[layer])
        return dstate0

    def step(self, ids, state):
        """One time step for generation: ids (N,) -> logits (N, V) and the new state.

        The state carries everything the model has read so far, so priming and
        sampling feed one character at a time without re-reading the past. This
        is the hot loop of sampling, so it skips the sequence machinery. For the
        built-in cells: the first layer's input part x·Wx + b is a row lookup,
        and the cell's ``recur`` adds h·Wh; a later layer's whole pre-activation
        is one product [x, h]·[Wx; Wh] + b, handed to the cell's ``activate``
        (GRU needs h·Wh on its own, so it takes ``recur``). Other cells take
        ``step_forward``.
        """
        xp = self.backend.xp
        inp, new_state = ids, []
        for layer, cell in enumerate(self.cells):
            p, first, W = self._layer_params[layer], layer == 0, self._stacked[layer]
            if first and cell.takes_ids and hasattr(cell, "recur"):
                s, _ = cell.recur(p, p["Wx"][inp] + p["b"], state[layer])  # one-hot·Wx: a row lookup
            elif not first and W is not None and hasattr(cell, "activate"):
                s, _ = cell.activate(xp.concatenate([inp, state[layer][0]], axis=1) @ W + p["b"], state[layer])
            elif hasattr(cell, "recur"):
                s, _ = cell.recur(p, inp @ p["Wx"] + p["b"], state[layer])
            else:
                x = onehot(inp, self.config.vocab_size, self.backend.dtype) if first else inp
                s, _ = cell.step_forward(p, x, state[layer])
            new_state.append(s)
            inp = s[0]  # (N, H), the layer's output
        return inp @ self.params["dec.W"] + self.params["dec.b"], new_state

    def loss(self, x, y, state=None, lengths=None, dropout_seed=None):
        """Forward and the masked mean cross-entropy. Returns loss (0-d), logits, final state, cache."""
        N, T = x.shape
        return self._loss(x, y, state, lengths, self.dropout_masks(dropout_seed, T, N))

    def _loss(self, x, y, state, lengths, drops, count=None):
        logits, final, cache = self._forward(x, state, lengths, drops)
        T, N, V = logits.shape
        mask = cache[2]
        targets = self.backend.xp.ascontiguousarray(y.T).reshape(T * N)
        loss, lcache = sequence_cross_entropy(logits.reshape(T * N, V), targets,
                                              None if mask is None else mask.reshape(T * N), count)
        return loss, logits, final, (cache, lcache)

    def loss_and_grads(self, x, y, state=None, lengths=None, dropout_seed=None, shards=None):
        """One forward and backward pass: set ``self.grads``; return loss, logits (T, N, V), final state.

        On the CPU the batch's rows are split into ``shards`` that run at once,
        one per core (parallel.py); by default one per thread, each of at least
        the cell's ``shard_rows`` rows. The result is the same as one pass over
        the whole batch, up to the order of floating-point additions.
        """
        N, T = x.shape
        drops = self.dropout_masks(dropout_seed, T, N)  # drawn for the whole batch, then split
        if shards is None:
            shards = self.default_shards(N)
        if shards <= 1:
            self.grad_flat.fill(0)
            return self._loss_and_grads(x, y, state, lengths, drops, None, self.grads)
        xp = self.backend.xp
        # Each shard divides its loss by the whole batch's count, so that losses and gradients add up.
        count = T * N if lengths is None else xp.maximum(xp.minimum(lengths, T).sum(), 1)
        while len(self._shard_grads) < shards - 1:
            self._shard_grads.append(self.backend.zeros(self.flat.size))
        buffers = [self.grad_flat] + self._shard_grads[:shards - 1]
        rows = split_rows(N, shards)

        def shard(k):
            r = rows[k]
            buffers[k].fill(0)
            state_k = None if state is None else [tuple(s[r] for s in layer) for layer in state]
            return self._loss_and_grads(x[r], y[r], state_k, None if lengths is None else lengths[r],
                                        [None if d is None else d[:, r] for d in drops], count,
                                        self.grads if k == 0 else named_views(buffers[k], self.shapes))

        parts = run_shards(shard, shards)  # [(loss, logits, final state), ...], one per shard
        for extra in buffers[1:]:
            self.grad_flat += extra
        loss = parts[0][0]
        for part in parts[1:]:
            loss = loss + part[0]
        logits = xp.concatenate([part[1] for part in parts], axis=1)  # (T, N, V)
        final = [tuple(xp.concatenate(s, axis=0) for s in zip(*layer)) for layer in zip(*(p[2] for p in parts))]
        return loss, logits, final

    def default_shards(self, N: int) -> int:
        """How many shards loss_and_grads splits a batch of N rows into, unless told (parallel.py)."""
        if self.threads <= 1 or not can_shard():
            return 1
        return shard_count(N, self.threads, min(cell.shard_rows for cell in self.cells))

    def _loss_and_grads(self, x, y, state, lengths, drops, count, grads):
        loss, logits, final, (cache, lcache) = self._loss(x, y, state, lengths, drops, count)
        T, N, V = logits.shape
        self.backward(sequence_cross_entropy_backward(lcache).reshape(T, N, V), cache, grads=grads)
        return loss, logits, final


def num_params(vocab_size: int, hidden_size: int = 256, num_layers: int = 2, cell: str = "lstm") -> int:
    """Trainable parameters of a configuration, counted from the shapes alone."""
    total, D = 0, vocab_size
    for _ in range(num_layers):
        total += sum(int(numpy.prod(s)) for s in make_cell(cell).param_shapes(D, hidden_size).values())
        D = hidden_size
    return total + hidden_size * vocab_size + vocab_size  # + the decoder
