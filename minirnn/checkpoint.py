"""Checkpoints: host arrays in an ``.npz``, everything else in JSON, written so a crash cannot spoil them.

A checkpoint of step 200 in ``RUN_DIR/checkpoints/`` is two files:

    ckpt-000200.json               format version, step, configuration, vocabulary,
                                   optimizer step count, generator states, data position,
                                   and the name and SHA-256 of the arrays file
    ckpt-000200.<sha256[:12]>.npz  the arrays, by name: "param.l0.Wx", "opt.m.l0.Wx", ...

The arrays are plain NumPy arrays copied to the host, so a checkpoint written on
the GPU loads on a machine without one, and ``numpy.load(..., allow_pickle=False)``
reads them: loading a checkpoint never runs code. docs/checkpoints.md describes
every field.

Why it survives a crash: each file is written under a temporary name, flushed
to disk, then renamed over its final name (``os.replace`` is atomic), and the
JSON, which names its arrays file, is written last. A reader therefore sees
either the previous checkpoint or the whole new one, never half of one. The
arrays file is named by its content, so rewriting a step never touches the
file the current JSON points at. A kill can still leave a temporary file, or
the arrays of a checkpoint whose JSON never arrived: :func:`sweep` removes
what no checkpoint names (train.py calls it while it holds the run).

Loading checks every field (:func:`read_meta`, :func:`load`), with one line
naming the first one that is wrong, and never imports code a checkpoint
names: a cell given as module:Class is built only if the user named that
same cell (:func:`trusted_cell`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import zipfile
from pathlib import Path

import numpy

from . import checks
from .checkpoint_fields import ARRAYS_NAME as _NPZ
from .checkpoint_fields import check_arrays, check_fields

FORMAT = "minirnn-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d+)\.json$")


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or from another format; one line."""


# Tests only: called with the name of each point between the writes of save() and prune(), so that a test
# can kill the process there (tests/test_reliability.py). None in every real run.
fault_hook = None


def _fault(point: str):
    if fault_hook is not None:
        fault_hook(point)


def _write_synced(path: Path, write, point: str):
    """Create ``path`` with ``write(f)`` and wait until its bytes are on disk (not just in a cache)."""
    try:
        with open(path, "wb") as f:
            write(f)
            _fault(point)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        if exc.filename is None:  # a full disk: say which file it was writing
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a half-written temporary behind
        raise


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def list_checkpoints(ckpt_dir) -> list[tuple[int, Path]]:
    """(step, json path) of every checkpoint in ``ckpt_dir``, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save(ckpt_dir, step: int, arrays: dict, meta: dict, keep: int = 2) -> Path:
    """Write checkpoint ``step`` atomically, then delete all but the newest ``keep``. Returns the JSON path.

    arrays: name -> NumPy array (host arrays only: call ``backend.to_host`` first).
    meta: JSON-ready dict; the format, step and arrays file are added here.
    """
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        if type(a) is not numpy.ndarray:
            raise TypeError(f"checkpoint array {name} is a {type(a).__name__}, not a host numpy.ndarray")
    # 1. the arrays, under a temporary name; their hash names the final file
    tmp = ckpt_dir / f".ckpt-{step:06d}.{os.getpid()}.npz.tmp"
    _write_synced(tmp, lambda f: numpy.savez(f, **arrays), "arrays written")
    digest = _sha256(tmp)
    npz = ckpt_dir / f"ckpt-{step:06d}.{digest[:12]}.npz"
    os.replace(tmp, npz)
    _fault("arrays renamed")
    # 2. the JSON last: once it is in place, the checkpoint exists
    meta = dict(
        meta,
        format=FORMAT,
        format_version=FORMAT_VERSION,
        step=int(step),
        arrays={"file": npz.name, "sha256": digest, "names": sorted(arrays)},
    )
    path = ckpt_dir / f"ckpt-{step:06d}.json"
    old = _arrays_file(path)
    text = json.dumps(meta, indent=1, ensure_ascii=False).encode("utf-8")
    tmp = ckpt_dir / f".{path.name}.{os.getpid()}.tmp"
    _write_synced(tmp, lambda f: f.write(text), "json written")
    os.replace(tmp, path)
    _fault("json renamed")
    if old is not None and old != npz and old.exists():
        old.unlink()  # the arrays of an earlier save of this same step
    _sync_dir(ckpt_dir)
    prune(ckpt_dir, keep)
    return path


def _arrays_file(json_path: Path):
    """The arrays file an existing JSON names, or None."""
    try:
        return json_path.with_name(json.loads(json_path.read_text("utf-8"))["arrays"]["file"])
    except Exception:
        return None


def _sync_dir(d: Path):
    """Flush the directory entry itself (the renames), where the platform allows it."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def prune(ckpt_dir, keep: int):
    """Delete all but the newest ``keep`` checkpoints and the best (:func:`best`), each arrays file
    before its JSON: a kill in between leaves a JSON without arrays, which :func:`sweep` recognises,
    never arrays that nothing names."""
    best_path = best(ckpt_dir)
    for _, path in list_checkpoints(ckpt_dir)[:-keep] if keep > 0 else []:
        if path == best_path:
            continue  # the lowest validation loss so far is kept apart from the newest (char-rnn keeps all)
        npz = _arrays_file(path)
        if npz is not None:
            npz.unlink(missing_ok=True)
        _fault("pruning")
        path.unlink(missing_ok=True)


def sweep(ckpt_dir) -> list[Path]:
    """Remove what interrupted saves and prunes leave behind; returns what was removed.

    That is: temporary files (``.ckpt-*.tmp``), arrays files that no checkpoint's JSON names, and the JSON
    of an old checkpoint whose arrays are gone (a prune cut short). Only for a directory no one else is
    writing: train.py calls it while it holds the run's lock. A JSON that cannot be read keeps every
    arrays file of its step, so nothing that might still load is removed.
    """
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = list_checkpoints(ckpt_dir)
    named, unreadable = set(), set()
    for step, path in found:
        npz = _arrays_file(path)
        if npz is None:
            unreadable.add(step)
        else:
            named.add(npz.name)
    removed = []
    for p in ckpt_dir.iterdir():
        step = _NPZ.match(p.name)
        if (p.name.startswith(".ckpt-") and p.name.endswith(".tmp")) or (
            step and p.name not in named and int(step.group(1)) not in unreadable
        ):
            removed.append(p)
    for _, path in found[:-1]:
        npz = _arrays_file(path)
        if npz is not None and not npz.exists():
            removed.append(path)
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


def set_aside_after(ckpt_dir, step: int):
    """Move the checkpoints newer than ``step`` into ``ckpt_dir/after-<step>/``, where no listing sees them.

    A run resumed from an older checkpoint would otherwise find them newer than its own
    and prune its new ones first; moved, they are out of the way and still there.
    """
    later = [(s, p) for s, p in list_checkpoints(ckpt_dir) if s > step]
    if not later:
        return None
    aside = Path(ckpt_dir) / f"after-{step:06d}"
    aside.mkdir(exist_ok=True)
    for _, path in later:
        npz = _arrays_file(path)
        if npz is not None and npz.exists():
            os.replace(npz, aside / npz.name)
        os.replace(path, aside / path.name)  # the JSON last, as save writes it
    return aside


def best(ckpt_dir):
    """The JSON path of the checkpoint in ``ckpt_dir`` with the lowest ``val_loss``, or None if none has one.

    A tie goes to the newer one. The best is never pruned, so it is the best of every checkpoint
    the run saved.
    """
    scored = []
    for step, path in list_checkpoints(ckpt_dir):
        try:
            loss = json.loads(path.read_text("utf-8")).get("val_loss")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue  # a damaged checkpoint is never the best; load() says what is wrong with it
        if isinstance(loss, (int, float)) and math.isfinite(loss):
            scored.append((loss, -step, path))
    return min(scored)[2] if scored else None


def find_best(path) -> Path:
    """A run directory (or its checkpoints/ folder) -> its best checkpoint, else its newest.

    A checkpoint file is itself.
    """
    p = Path(path)
    if p.is_dir():
        for d in (p / "checkpoints", p):
            found = best(d)
            if found is not None:
                return found
    return find(p)


def find(path) -> Path:
    """A run directory, its checkpoints/ folder, or a checkpoint file -> that checkpoint's JSON path.

    A directory means its newest checkpoint.
    """
    p = Path(path)
    if p.is_file():
        if p.suffix == ".json":
            return p
        if p.suffix == ".npz":  # ckpt-000200.<hash>.npz -> ckpt-000200.json
            return p.with_name(p.name.split(".")[0] + ".json")
        raise CheckpointError(f"{p} is not a checkpoint (.json or .npz)")
    if not p.is_dir():
        raise CheckpointError(f"no such checkpoint or run directory: {p}")
    for d in (p / "checkpoints", p):
        found = list_checkpoints(d)
        if found:
            return found[-1][1]
    raise CheckpointError(f"no checkpoint in {p}")


def read_meta(path) -> tuple[dict, Path]:
    """A checkpoint's JSON, every field checked, without its arrays. Returns (meta, the JSON's path)."""
    jpath = find(path)
    try:
        meta = json.loads(jpath.read_text("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {jpath} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {jpath} is corrupt or truncated ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{jpath} is not a minirnn checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {jpath} has format version {checks.short(meta.get('format_version'))}; "
            f"this minirnn reads version {FORMAT_VERSION}"
        )
    missing = [key for key in ("step", "arrays") if key not in meta]
    if missing:
        raise CheckpointError(f"checkpoint {jpath} is corrupt: it has no {', '.join(missing)}")
    problem = check_fields(meta)
    if problem:
        raise CheckpointError(f"checkpoint {jpath} is damaged: {problem}")
    if "train" in meta:
        from .options import from_dict

        from_dict(meta["train"], f"checkpoint {jpath}")
    return meta, jpath


def load(path):
    """Read and check a checkpoint. Returns (meta dict, arrays dict of NumPy arrays).

    ``path``: anything :func:`find` accepts. Raises CheckpointError with one line
    when the checkpoint is corrupt, truncated, incomplete, of another format version,
    or when any field (docs/checkpoints.md) or array has the wrong type, value or dtype.
    Imports nothing and runs no code from the checkpoint.
    """
    meta, jpath = read_meta(path)
    info = meta["arrays"]
    npz = jpath.with_name(info["file"])
    if not npz.is_file():
        raise CheckpointError(f"checkpoint {jpath} is incomplete: its arrays file {npz.name} is missing")
    if _sha256(npz) != info["sha256"]:
        raise CheckpointError(
            f"checkpoint {jpath} is corrupt or truncated: {npz.name} does not match its SHA-256"
        )
    try:
        with zipfile.ZipFile(npz) as z:  # the sizes inside, before anything is unpacked
            unpacked = sum(i.file_size for i in z.infolist())
        checks.check_fits(unpacked, f"checkpoint arrays {npz.name}")
        with numpy.load(npz, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
    except checks.TooBig as exc:
        raise CheckpointError(str(exc)) from None
    except Exception as exc:
        raise CheckpointError(f"checkpoint arrays {npz} cannot be read ({type(exc).__name__})") from None
    if sorted(arrays) != sorted(info["names"]):
        raise CheckpointError(f"checkpoint {jpath} is corrupt: its arrays are not the ones it lists")
    # The arrays are in the checkpoint's dtype, or in its "storage" dtype where one is named (the
    # shipped model keeps float16 on disk and computes in float32: minirnn/pretrained/).
    storage = meta.get("storage", meta.get("dtype"))
    if storage not in (None, "float16", "float32", "float64"):
        raise CheckpointError(f"checkpoint {jpath} is damaged: storage is {storage!r}, not a float dtype")
    problem = check_arrays(arrays, storage)
    if problem:
        raise CheckpointError(f"checkpoint {jpath} is damaged: {problem}")
    return meta, arrays


# -- from a checkpoint back to a model -----------------------------------------------------------------------
def trusted_cell(stored: str, asked: str | None) -> str:
    """The cell to build for a checkpoint whose model has cell ``stored``, when the user asked for ``asked``.

    A built-in cell is a name; a cell given by import path (module:Class) is code, imported only when the
    user named that same cell (--cell): with ``python -m`` the working directory is importable, so a module
    shipped next to a checkpoint would otherwise run when it is opened.
    """
    from .model import is_import_path

    if asked is not None and asked != stored:
        raise CheckpointError(f"the checkpoint's cell is {stored!r}, not --cell {asked!r}")
    if is_import_path(stored) and asked != stored:
        raise CheckpointError(
            f"the checkpoint's cell {stored!r} is code, which loading a checkpoint never "
            f"imports on its own: if you trust it, pass --cell {stored}"
        )
    return stored


def build_model(meta: dict, arrays: dict, backend=None, cell: str | None = None):
    """The CharRNN a checkpoint describes, with its parameters loaded on ``backend`` (default: NumPy).

    ``cell``: the cell the user asked for (needed, and must match, when the checkpoint's is module:Class).
    """
    from .backend import get_backend
    from .model import CharRNN, ConfigError, ModelConfig

    if "model" not in meta or "vocab" not in meta:
        raise CheckpointError(
            "the checkpoint has no model description or vocabulary: it cannot be sampled from"
        )
    config = ModelConfig(**meta["model"])  # every field checked on load
    trusted_cell(config.cell, cell)
    stored = sum(a.size for k, a in arrays.items() if k.startswith("param."))
    if stored != config.num_params():  # before allocating what the JSON claims
        raise CheckpointError(
            f"the checkpoint's model ({config.num_layers} layers of {config.hidden_size}) has "
            f"{config.num_params():,} parameters, its arrays hold {stored:,}"
        )
    backend = backend or get_backend("numpy", meta.get("dtype", "float32"))
    model = CharRNN(config, backend)
    try:
        model.load_params({k[len("param.") :]: a for k, a in arrays.items() if k.startswith("param.")})
    except ConfigError as exc:
        raise CheckpointError(f"the checkpoint's arrays do not fit its model: {exc}") from None
    return model


# -- what a training run saves, and how it comes back --------------------------------------------------------
def training_arrays(model, opt) -> dict:
    """The parameters and Adam's moments as host arrays: "param.<name>", "opt.m.<name>", "opt.v.<name>"."""
    be = model.backend
    host = {f"param.{k}": v for k, v in model.host_params().items()}
    host.update({f"opt.{k}": be.to_host(a).copy() for k, a in opt.state_dict().items()})
    return host


def training_meta(opt, batches, dropout_rng) -> dict:
    """The numbers beside the arrays that make a resume exact: Adam's step count and settings,
    the dropout generator, and where the batches are (epoch, position, shuffling generator)."""
    return {
        "optimizer": {
            "name": "adam",
            "t": opt.t,
            "lr": opt.lr,
            "beta1": opt.beta1,
            "beta2": opt.beta2,
            "eps": opt.eps,
        },
        "rng": {"dropout": dropout_rng.bit_generator.state},
        "data": {"batches": batches.state_dict()},
    }


def restore_training(meta, arrays, model, opt, batches, dropout_rng):
    """Put a checkpoint back into a freshly built model, optimizer, batch source and generator.
    Its fields were checked on load; here only that the training state is there and fits."""
    from .model import ConfigError

    missing = [key for key in ("train", "optimizer", "rng", "data") if key not in meta]
    if missing:
        raise CheckpointError(
            f"the checkpoint has no {', '.join(missing)}: it can be sampled from, not resumed"
        )
    be = model.backend
    try:
        model.load_params({k[len("param.") :]: a for k, a in arrays.items() if k.startswith("param.")})
        opt.load_state_dict(
            {k[len("opt.") :]: be.asarray(a) for k, a in arrays.items() if k.startswith("opt.")}
        )
    except ConfigError as exc:
        raise CheckpointError(f"the checkpoint's arrays do not fit its model: {exc}") from None
    except KeyError as exc:
        raise CheckpointError(
            f"the checkpoint has no array opt.{exc.args[0]}: it can be sampled from, not resumed"
        ) from None
    opt.t = meta["optimizer"]["t"]
    batches.load_state_dict(meta["data"]["batches"])
    dropout_rng.bit_generator.state = meta["rng"]["dropout"]
