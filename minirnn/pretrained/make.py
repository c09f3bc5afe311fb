"""Make the shipped model from a run: ``python -m minirnn.pretrained.make RUN_DIR``.

Takes the run's best checkpoint, keeps only what sampling needs (the parameters, the
model's shape, the vocabulary, the training configuration for the record), stores the
parameters in float16 (half the bytes; they are read back into float32), evaluates both
on the run's held-out text with minirnn.evaluate, refuses if float16 moved the loss by
0.002 or more, and writes the checkpoint and MODEL.md (the command, the losses) into
``--out`` (default: this folder, replacing the model there).
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import numpy

from .. import checkpoint
from ..backend import get_backend
from ..data import Vocab, load_text
from ..evaluate import evaluate_text
from ..train import TrainConfig
from . import HERE

FLOAT16_TOLERANCE = 0.002  # nats/char the float16 copy may move the held-out loss by


def command(train: dict, **replace) -> str:
    """The train command of a stored configuration: the flags that differ from the defaults."""
    d = TrainConfig()
    parts = ["python -m minirnn.train"]
    for f in fields(TrainConfig):
        if f.name in ("out", "resume", "quiet", "from_best", "cache_dir"):
            continue
        value = replace.get(f.name, train.get(f.name, getattr(d, f.name)))
        if value != getattr(d, f.name):
            flag = "--" + f.name.replace("_", "-")
            parts.append(
                flag
                if value is True
                else f"{flag} {value:g}"
                if isinstance(value, float)
                else f"{flag} {value}"
            )
    return " ".join(parts)


def make(run_dir, out=HERE, note: str = "") -> dict:
    """Write the shipped checkpoint and MODEL.md from ``run_dir``'s best checkpoint; return its meta."""
    src = checkpoint.find_best(run_dir)
    meta, arrays = checkpoint.load(src)
    vocab, train = Vocab(meta["vocab"]), meta["train"]
    text = load_text(train.get("data"))
    be = get_backend("numpy", "float32")
    full = evaluate_text(checkpoint.build_model(meta, arrays, be), vocab, text, train["val_fraction"])
    half = {k: a.astype(numpy.float16) for k, a in arrays.items() if k.startswith("param.")}
    small = evaluate_text(checkpoint.build_model(meta, half, be), vocab, text, train["val_fraction"])
    if abs(small.loss - full.loss) >= FLOAT16_TOLERANCE:
        raise SystemExit(f"float16 moves the loss by {small.loss - full.loss:+.4f}: ship float32 instead")
    out = Path(out)
    for _, old in checkpoint.list_checkpoints(out):  # one model in the folder
        old_npz = checkpoint._arrays_file(old)
        old.unlink()
        if old_npz is not None and old_npz.exists():
            old_npz.unlink()
    shipped = {
        "model": meta["model"],
        "vocab": meta["vocab"],
        "dtype": "float32",
        "storage": "float16",
        "train": train,
        "val_loss": small.loss,
        "source": f"{src} (step {meta['step']})",
        "elapsed": meta.get("elapsed"),
        "command": command(train),
        "reproduce": command(train, max_steps=meta["step"], max_minutes=0.0),
        "evaluation": {
            "float16": {
                "loss": small.loss,
                "bits": small.bits,
                "accuracy": small.accuracy,
                "characters": small.characters,
            },
            "float32": {"loss": full.loss, "bits": full.bits, "accuracy": full.accuracy},
            "training_val_loss": meta.get("val_loss"),
        },
    }
    path = checkpoint.save(out, meta["step"], half, shipped, keep=1)
    (out / "MODEL.md").write_text(model_md(shipped, path, note), encoding="utf-8")
    return shipped


def model_md(m: dict, path: Path, note: str) -> str:
    e, cfg = m["evaluation"], m["model"]
    minutes = f"{m['elapsed'] / 60:.1f}" if m.get("elapsed") else "?"
    return f"""# The shipped model

`{path.name}` (and its arrays file): the {cfg["cell"].upper()} of {cfg["num_layers"]} layers of \
{cfg["hidden_size"]} units over {len(m["vocab"])} symbols, trained on Tiny Shakespeare's first 90% \
(run `{m["source"].split(" (")[0].split("/checkpoints/")[0]}`, its best checkpoint, \
step {m["source"].split("(step ")[-1][:-1]}, after {minutes} minutes of training). Parameters stored \
in float16, read into float32.

Trained with

    {m["command"]}

The same checkpoint, step for step, without the time limit (the schedule depends only on the step):

    {m["reproduce"]}

On the held-out last 10% (`python -m minirnn.evaluate`, every character, state carried):

| stored as | loss (nats/char) | bits/char | accuracy |
|---|---|---|---|
| float32 (the run's checkpoint) | {e["float32"]["loss"]:.4f} | {e["float32"]["bits"]:.4f} | \
{e["float32"]["accuracy"]:.4f} |
| float16 (shipped) | {e["float16"]["loss"]:.4f} | {e["float16"]["bits"]:.4f} | \
{e["float16"]["accuracy"]:.4f} |

validation loss {e["float16"]["loss"]:.3f} nats/char over {e["float16"]["characters"]:,} characters \
(tests/test_pretrained.py checks it to 1e-3).{_training_loss(m)}
{note}"""


def _training_loss(m: dict) -> str:
    loss = m["evaluation"]["training_val_loss"]
    return (
        ""
        if loss is None
        else (
            f" The run's own validation loss at that step, over zero-state windows of "
            f"{m['train']['seq_length']} characters, was {loss:.4f}."
        )
    )


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m minirnn.pretrained.make", description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--note", default="", help="a paragraph appended to MODEL.md")
    args = ap.parse_args(argv)
    m = make(args.run_dir, args.out, args.note)
    print(
        f"shipped {m['source']}: validation loss {m['val_loss']:.4f} (float32 "
        f"{m['evaluation']['float32']['loss']:.4f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
