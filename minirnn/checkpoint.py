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
file the current JSON points at.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy

FORMAT = "minirnn-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d+)\.json$")


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or from another format; one line."""


def _write_synced(path: Path, write):
    """Create ``path`` with ``write(f)`` and wait until its bytes are on disk (not just in a cache)."""
    try:
        with open(path, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
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
    _write_synced(tmp, lambda f: numpy.savez(f, **arrays))
    digest = _sha256(tmp)
    npz = ckpt_dir / f"ckpt-{step:06d}.{digest[:12]}.npz"
    os.replace(tmp, npz)
    # 2. the JSON last: once it is in place, the checkpoint exists
    meta = dict(meta, format=FORMAT, format_version=FORMAT_VERSION, step=int(step),
                arrays={"file": npz.name, "sha256": digest, "names": sorted(arrays)})
    path = ckpt_dir / f"ckpt-{step:06d}.json"
    old = _arrays_file(path)
    text = json.dumps(meta, indent=1, ensure_ascii=False).encode("utf-8")
    tmp = ckpt_dir / f".{path.name}.{os.getpid()}.tmp"
    _write_synced(tmp, lambda f: f.write(text))
    os.replace(tmp, path)
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
    """Delete all but the newest ``keep`` checkpoints: the JSON first, so none is left half there."""
    for _, path in list_checkpoints(ckpt_dir)[:-keep] if keep > 0 else []:
        npz = _arrays_file(path)
        path.unlink()
        if npz is not None and npz.exists():
            npz.unlink()


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


def load(path):
    """Read and check a checkpoint. Returns (meta dict, arrays dict of NumPy arrays).

    ``path``: anything :func:`find` accepts. Raises CheckpointError with one line
    when the checkpoint is corrupt, truncated, incomplete or of another format version.
    """
    jpath = find(path)
    try:
        meta = json.loads(jpath.read_text("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {jpath} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {jpath} is corrupt or truncated ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{jpath} is not a minirnn checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {jpath} has format version {meta.get('format_version')!r}; "
                              f"this minirnn reads version {FORMAT_VERSION}")
    missing = [key for key in ("step", "arrays") if key not in meta]
    if missing:
        raise CheckpointError(f"checkpoint {jpath} is corrupt: it has no {', '.join(missing)}")
    try:
        info = meta["arrays"]
        npz = jpath.with_name(Path(info["file"]).name)
        expected, names = info["sha256"], info["names"]
    except (KeyError, TypeError):
        raise CheckpointError(f"checkpoint {jpath} is corrupt: it does not name its arrays file") from None
    if not npz.is_file():
        raise CheckpointError(f"checkpoint {jpath} is incomplete: its arrays file {npz.name} is missing")
    if _sha256(npz) != expected:
        raise CheckpointError(f"checkpoint {jpath} is corrupt or truncated: {npz.name} does not match its SHA-256")
    try:
        with numpy.load(npz, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
    except Exception as exc:
        raise CheckpointError(f"checkpoint arrays {npz} cannot be read ({type(exc).__name__})") from None
    if sorted(arrays) != sorted(names):
        raise CheckpointError(f"checkpoint {jpath} is corrupt: its arrays are not the ones it lists")
    return meta, arrays


def build_model(meta: dict, arrays: dict, backend=None):
    """The CharRNN a checkpoint describes, with its parameters loaded on ``backend`` (default: NumPy)."""
    from .backend import get_backend
    from .model import CharRNN, ModelConfig

    backend = backend or get_backend("numpy", meta.get("dtype", "float32"))
    try:
        config = ModelConfig(**meta["model"])
    except (KeyError, TypeError):
        raise CheckpointError(f"the checkpoint has no model description this minirnn knows: "
                              f"{meta.get('model')}") from None
    model = CharRNN(config, backend)  # ConfigError (one line) if, say, its custom cell cannot be imported
    model.load_params({k[len("param."):]: a for k, a in arrays.items() if k.startswith("param.")})
    return model


# -- what a training run saves, and how it comes back -----------------------------------------------------------
def training_arrays(model, opt) -> dict:
    """The parameters and Adam's moments as host arrays: "param.<name>", "opt.m.<name>", "opt.v.<name>"."""
    be = model.backend
    host = {f"param.{k}": v for k, v in model.host_params().items()}
    host.update({f"opt.{k}": be.to_host(a).copy() for k, a in opt.state_dict().items()})
    return host


def training_meta(opt, batches, dropout_rng) -> dict:
    """The numbers beside the arrays that make a resume exact: Adam's step count and settings,
    the dropout generator, and where the batches are (epoch, position, shuffling generator)."""
    return {"optimizer": {"name": "adam", "t": opt.t, "lr": opt.lr, "beta1": opt.beta1, "beta2": opt.beta2,
                          "eps": opt.eps},
            "rng": {"dropout": dropout_rng.bit_generator.state},
            "data": {"batches": batches.state_dict()}}


def restore_training(meta, arrays, model, opt, batches, dropout_rng):
    """Put a checkpoint back into a freshly built model, optimizer, batch source and generator."""
    be = model.backend
    model.load_params({k[len("param."):]: a for k, a in arrays.items() if k.startswith("param.")})
    try:
        opt.load_state_dict({k[len("opt."):]: be.asarray(a) for k, a in arrays.items() if k.startswith("opt.")})
        opt.t = int(meta["optimizer"]["t"])
        batches.load_state_dict(meta["data"]["batches"])
        dropout_rng.bit_generator.state = meta["rng"]["dropout"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint lacks part of the training state ({exc}); "
                              "it can be sampled from, not resumed") from None
