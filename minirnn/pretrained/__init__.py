"""The model that ships inside the package, and which checkpoint a command uses.

This folder holds one checkpoint in minirnn's own format (checkpoint.py: a JSON and an
``.npz`` read with ``allow_pickle=False``), its parameters stored in float16 to keep
the package small, trained on Tiny Shakespeare by the command in MODEL.md beside it.
``python -m minirnn.sample``, ``visualize`` and ``evaluate`` use it when no
``--checkpoint`` is given.

:func:`resolve` is the one place that decides which checkpoint a command reads:

    no --checkpoint         the shipped model
    a run directory         its best checkpoint (lowest validation loss), or with --newest its newest
    a checkpoint file       that file
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import checkpoint

HERE = Path(__file__).resolve().parent


def shipped() -> Path:
    """The JSON path of the shipped model's checkpoint."""
    return checkpoint.find(HERE)


def resolve(
    path=None, newest: bool = False, flag: str = "--newest", default: str = "best"
) -> tuple[Path, str]:
    """The checkpoint a command should read, and one line saying which it is and how to pick the other.

    ``path``: None (the shipped model), a run directory, or a checkpoint file. Of a run directory,
    its best checkpoint, or with ``newest`` its newest. ``flag`` is the command's option that
    leaves its ``default`` choice ("best" or "newest"); the line names it. Raises
    CheckpointError (one line) when there is none.
    """
    if path is None:
        jpath = shipped()
        return jpath, (
            f"using the model shipped with minirnn ({jpath.parent.name}/{jpath.name}, "
            f"Tiny Shakespeare; see {HERE / 'MODEL.md'}); --checkpoint RUN_DIR for your own"
        )
    p = Path(path)
    if not p.is_dir():
        return checkpoint.find(p), f"using {checkpoint.find(p)}"
    latest, best = checkpoint.find(p), checkpoint.find_best(p)
    if latest == best:
        return latest, f"using {latest}, the newest checkpoint" + (
            " and the best" if _val_loss(best) is not None else " (none records a validation loss)"
        )
    hint = flag if default == ("newest" if newest else "best") else f"without {flag},"
    if newest:
        return latest, (
            f"using the newest checkpoint {latest}; {hint} the best "
            f"({best.name}, validation loss {_val_loss(best):.4f})"
        )
    return best, (
        f"using the best checkpoint {best} (validation loss {_val_loss(best):.4f}); "
        f"{hint} the newest ({latest.name})"
    )


def _val_loss(jpath: Path):
    try:
        return json.loads(jpath.read_text("utf-8")).get("val_loss")
    except (OSError, ValueError, AttributeError):
        return None
