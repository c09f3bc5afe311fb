"""Grading the exercises of lessons/exercises/: ``python -m minirnn.grade`` (docs/teaching.md).

reference.py   every call into minirnn's own implementation (the right answers)
core.py        calling a student's function safely; comparing; rows and hints
handout.py     student versions: solution regions become TODOs
dense.py cells.py bptt.py optim.py training.py   the checks of each exercise, and its known mistakes
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

from . import bptt, cells, dense, optim, training
from .core import Check, Row, Student, format_rows, grade  # noqa: F401

# Each exercise file of lessons/exercises, by name, and the checks of its functions, in teaching order.
EXERCISES: dict[str, list[Check]] = {
    "01_dense_and_loss": dense.CHECKS,
    "02_rnn_step": cells.checks(cells.RNN),
    "03_bptt": bptt.CHECKS,
    "04_lstm_step": cells.checks(cells.LSTM),
    "05_gru_step": cells.checks(cells.GRU),
    "06_adam_and_clipping": optim.CHECKS,
    "07_training_step": training.CHECKS,
}
SOURCE = Path(__file__).resolve().parents[2] / "lessons" / "exercises"  # the teacher's files, in a checkout


class GradeError(ValueError):
    """A file that cannot be graded (missing, not an exercise, a bad --only); the message is one line."""


def load(path: Path):
    """Import the student's file (the user named it, so running its code is what was asked for).
    Returns (module, None), or (None, the exception's last line) if the import failed."""
    name = f"minirnn_student_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as for any import (a dataclass in the file looks its module up there)
    sys.path.insert(0, str(path.parent))  # as `python FILE` would: the student may import a file next to it
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        return None, Student(module, path).last_line(exc)
    finally:
        sys.path.remove(str(path.parent))
    return module, None


def exercise_of(path: Path, module) -> str:
    """Which exercise a file is: by its name if it kept it, else by the functions it defines."""
    if path.stem in EXERCISES:
        return path.stem
    counts = {
        name: sum(callable(getattr(module, c.name, None)) for c in checks)
        for name, checks in EXERCISES.items()
    }
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        names = ", ".join(c.name for checks in EXERCISES.values() for c in checks)
        raise GradeError(f"{path.name} defines none of the exercises' functions ({names})")
    return best


def grade_file(path, only: str | None = None, seed: int = 0) -> tuple[str, list[Row]]:
    """Grade a student's file: its exercise's name and one row per function (or just ``only``)."""
    path = Path(path)
    if not path.is_file():
        raise GradeError(f"no such file: {path}" if not path.exists() else f"{path} is not a file")
    if path.suffix != ".py":
        raise GradeError(f"{path.name} is not a Python file (.py)")
    module, error = load(path.resolve())
    if module is None:
        return path.stem, [Row("(the whole file)", f"importing {path.name}", None, "FAIL", [error])]
    name = exercise_of(path, module)
    checks = EXERCISES[name]
    if only is not None:
        checks = [c for c in checks if c.name == only]
        if not checks:
            raise GradeError(
                f"--only {only}: {name} has no such function "
                f"(it has {', '.join(c.name for c in EXERCISES[name])})"
            )
    student = Student(module, path.resolve())
    return name, [grade(c, student, seed) for c in checks]
