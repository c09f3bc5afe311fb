"""What every field of a checkpoint must be (docs/checkpoints.md), and the checks that name the first that
is not: one rule per field of the JSON, and the arrays' names, pairing, dtype and values.

checkpoint.load runs both before it hands anything back, so that a damaged or
hostile checkpoint is one line naming its field, never a traceback later
inside the model, the optimizer or a random generator. A field that is
absent is not checked here: what needs it (sampling, resuming) says so.
"""

from __future__ import annotations

import re

import numpy

from . import checks

ARRAYS_NAME = re.compile(r"^ckpt-(\d+)\.[0-9a-f]{12}\.npz$")  # ckpt-<step>.<first 12 hex of its SHA-256>.npz


def _is_generator_state(v) -> bool:
    """A NumPy PCG64 ``bit_generator.state``, exactly as it would be set (no silent wrap-around)."""
    if not (isinstance(v, dict) and v.get("bit_generator") == "PCG64"):
        return False
    try:
        g = numpy.random.PCG64()
        g.state = v
        return g.state == v
    except Exception:
        return False


def _is_vocab(v) -> bool:
    return (
        isinstance(v, list)
        and len(v) >= 2
        and all(isinstance(c, str) and len(c) == 1 for c in v)
        and len(set(v)) == len(v)
    )


def _names(v) -> bool:
    return isinstance(v, list) and all(isinstance(n, str) for n in v)


MODEL_FIELDS = ("vocab_size", "hidden_size", "num_layers", "cell", "dropout")  # ModelConfig's
STATE = checks.Rule(_is_generator_state, "a NumPy PCG64 generator state")
# dotted path -> rule; a field that is absent is not checked here (see build_model, restore_training)
FIELDS = {
    "step": checks.integer(0),
    "arrays": checks.Rule(lambda v: isinstance(v, dict), "an object"),
    "arrays.file": checks.Rule(
        lambda v: isinstance(v, str) and ARRAYS_NAME.match(v) is not None,
        "the name of an arrays file beside it (ckpt-<step>.<hash>.npz)",
    ),
    "arrays.sha256": checks.Rule(
        lambda v: isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v) is not None, "a SHA-256 in hex"
    ),
    "arrays.names": checks.Rule(_names, "a list of array names"),
    "vocab": checks.Rule(_is_vocab, "a list of at least two distinct single characters"),
    "dtype": checks.choice("float32", "float64"),
    "backend": checks.Rule(lambda v: isinstance(v, str), "a backend name"),
    "elapsed": checks.number(0.0, want="a number of seconds"),
    "metrics": checks.Rule(lambda v: isinstance(v, dict), "an object"),
    "model": checks.Rule(
        lambda v: isinstance(v, dict) and set(v) == set(MODEL_FIELDS),
        "an object of " + ", ".join(MODEL_FIELDS),
    ),
    "optimizer": checks.Rule(lambda v: isinstance(v, dict), "an object"),
    "optimizer.name": checks.choice("adam"),
    "optimizer.t": checks.integer(0),
    "optimizer.lr": checks.number(0.0, want="0 or more (a schedule may decay it to 0)"),
    "optimizer.beta1": checks.number(0.0, 1.0),
    "optimizer.beta2": checks.number(0.0, 1.0),
    "optimizer.eps": checks.number(0.0, low_open=True, want="a positive number"),
    "rng": checks.Rule(lambda v: isinstance(v, dict), "an object"),
    "rng.dropout": STATE,
    "data": checks.Rule(lambda v: isinstance(v, dict), "an object"),
    "data.batches": checks.Rule(lambda v: isinstance(v, dict), "an object"),
    "data.batches.epoch": checks.integer(0),
    "data.batches.num_batches": checks.integer(1),
    "data.batches.pointer": checks.integer(0),
    "data.batches.rng": STATE,
}
_ABSENT = object()


def _get(meta: dict, dotted: str):
    node = meta
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return _ABSENT
        node = node[key]
    return node


def check_fields(meta: dict) -> str | None:
    """The first problem with the checkpoint's fields, as a phrase naming the field, or None."""
    from .model import ModelConfig

    for name, rule in FIELDS.items():  # a parent comes before its fields, so it is known to be an object
        value, parent = _get(meta, name), name.rpartition(".")[0]
        if value is _ABSENT:
            if parent and _get(meta, parent) is not _ABSENT:  # an object that is there must be whole
                return f"it has {parent} but no {name}"
            continue
        if not rule.ok(value):
            return f"{name} is {checks.short(value)}, not {rule.want}"
    if "model" in meta:
        bad = checks.first_problem(meta["model"], ModelConfig.RULES)
        if bad:
            return f"model.{bad[0]} is {checks.short(bad[1])}, not {bad[2].want}"
        if "vocab" in meta and meta["model"]["vocab_size"] != len(meta["vocab"]):
            return (
                f"model.vocab_size is {meta['model']['vocab_size']} but the vocabulary has "
                f"{len(meta['vocab'])} symbols"
            )
    batches = _get(meta, "data.batches")
    if batches is not _ABSENT and batches["pointer"] > batches["num_batches"]:
        return f"data.batches.pointer {batches['pointer']} is past num_batches {batches['num_batches']}"
    return None


def check_arrays(arrays: dict, dtype) -> str | None:
    """The first array of the wrong kind, dtype, pairing or value, as a phrase naming it, or None."""
    params = {k[len("param.") :] for k in arrays if k.startswith("param.")}
    for name, a in arrays.items():
        kind, _, pname = name.partition(".")
        if kind == "opt":
            moment, _, pname = pname.partition(".")
            if moment not in ("m", "v") or pname not in params:
                return f"array {name} is not a moment of a parameter (opt.m.<name>, opt.v.<name>)"
            if a.shape != arrays["param." + pname].shape:
                return f"array {name} has shape {a.shape}, its parameter {arrays['param.' + pname].shape}"
        elif kind != "param":
            return f"array {name} is neither a parameter (param.*) nor Adam's state (opt.*)"
        if a.dtype.kind != "f" or (dtype is not None and a.dtype != numpy.dtype(dtype)):
            return f"array {name} has dtype {a.dtype}, not the checkpoint's {dtype or 'floating point'}"
        if not numpy.isfinite(a).all():
            return f"array {name} holds NaN or infinite values"
        if name.startswith("opt.v.") and (a < 0).any():
            return f"array {name} (Adam's second moment) has negative values"
    return None
