"""The grader's machinery: calling a student's function safely, comparing arrays, rows and hints.

A check (one per student function, in the exercise modules) calls the
student's code through :class:`Student`, which turns ``NotImplementedError``
into :class:`Todo` and any other exception into :class:`Crash` (one line: the
exception's last line and where in the student's file it was raised). It
compares what came back with :class:`Tally`, which keeps the largest relative
error and, for a wrong array, looks for the known mistake it matches.

Relative error, as minirnn.gradcheck defines it: max|a - b| / max(max|a|, max|b|).
Every comparison passes below 1e-7, the project's gradient-check tolerance.
"""

from __future__ import annotations

import contextlib
import io
import signal
import textwrap
import threading
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from .reference import numerical_gradient, rel_error

TOL = 1e-7  # every comparison: forward against minirnn, backward against central differences and minirnn
MATCH = 1e-6  # a wrong array this close to a known-wrong variant gets that variant's hint
LIMIT = 30.0  # seconds a check may run; the slowest takes about one

# Mistakes any array can show; an exercise adds its own (see the HINTS of each exercise module).
HINTS = {
    "double": "exactly twice the right answer: a term counted twice?",
    "half": "exactly half the right answer: a factor of 2 missing?",
    "sign": "the right size with the wrong sign",
    "transposed": "the transpose of the right answer: check the order of the matrix product "
    "(dW = xᵀ·dy is (in, out); docs/derivations.md#conventions)",
    "float64": "float32 came in and float64 came out: np.zeros(shape) makes float64; "
    "use np.zeros_like(x) or dtype=x.dtype",
    "own_forward": "agrees with central differences of your own forward, not with minirnn: "
    "the forward is what is wrong; fix it first",
    "forward_only": "agrees with minirnn, not with central differences of your own forward: this backward "
    "is right and your forward is wrong; fix the forward and this row passes",
}


class Todo(Exception):
    """The student's function raised NotImplementedError: not written yet."""

    def __init__(self, function: str, message: str):
        super().__init__(message)
        self.function = function


class Crash(Exception):
    """The student's function is missing, raised, or returned the wrong kind of thing (one line)."""

    def __init__(self, function: str, message: str):
        super().__init__(message)
        self.function = function


class TimeLimit(Exception):
    """A check ran past its time limit (an endless loop in the student's code?)."""


@dataclass
class Row:
    """One graded function."""

    name: str  # the student's function
    checked: str  # what was checked, in a few words
    error: float | None  # largest relative error over every comparison; None when nothing was compared
    status: str  # PASS, FAIL or TODO
    notes: list = field(default_factory=list)  # hints, the exception's last line, what was measured
    hints: list = field(default_factory=list)  # the ids of the hints given (the tests read them)


def _copy(a):
    if isinstance(a, numpy.ndarray):
        return a.copy()
    if isinstance(a, dict):
        return {k: _copy(v) for k, v in a.items()}
    return a


class Student:
    """The student's module, called so that nothing it does can stop the grader."""

    def __init__(self, module, path: Path):
        self.module, self.path = module, Path(path)

    def __call__(self, name, *args, copy=True, returns=None):
        """``name(*args)``, on copies of the array arguments unless ``copy=False``; with
        ``returns=("dx", "dW")`` the result must be a tuple of that many values."""
        fn = getattr(self.module, name, None)
        if not callable(fn):
            raise Crash(name, f"{name} is not defined in {self.path.name}")
        if copy:
            args = tuple(_copy(a) for a in args)
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                warnings.catch_warnings(),
                numpy.errstate(all="ignore"),
            ):
                warnings.simplefilter("ignore")
                out = fn(*args)
        except NotImplementedError as exc:  # a TODO: of this function, or of one it calls
            frames = self.frames(exc)
            raise Todo(frames[-1].name if frames else name, str(exc) or "NotImplementedError") from None
        except TimeLimit as exc:
            raise TimeLimit(f"{name} {exc}{self.where(exc)}") from None
        except (Exception, SystemExit) as exc:  # the student's bug, reported as one line
            raise Crash(name, self.last_line(exc)) from None
        if returns is not None and (not isinstance(out, (tuple, list)) or len(out) != len(returns)):
            got = f"a tuple of {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
            raise Crash(name, f"{name} returned {got}; expected a tuple ({', '.join(returns)})")
        return out

    def last_line(self, exc: BaseException) -> str:
        """``ValueError: ... (line 42)``: the exception's last line, and the line of the student's file."""
        return traceback.format_exception_only(type(exc), exc)[-1].strip().splitlines()[0] + self.where(exc)

    def where(self, exc: BaseException) -> str:
        """`` (line 42)``: the last line of the student's file in the exception's traceback, if any."""
        frames = self.frames(exc)
        return f" (line {frames[-1].lineno})" if frames else ""

    def frames(self, exc: BaseException) -> list:
        """The frames of the exception's traceback that are in the student's file, outermost first."""
        return [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == self.path]


class Tally:
    """The comparisons of one check: the largest error, and a note and a hint for each one that failed."""

    def __init__(self, hints: dict):
        self.hints = {**HINTS, **hints}
        self.error, self.failed, self.notes, self.hint_ids = 0.0, False, [], []

    def fail(self, note: str, hint: str | None = None):
        self.failed = True
        if hint is not None and hint not in self.hint_ids:
            self.hint_ids.append(hint)
            note += f"\nhint: {self.hints[hint]}"
        self.notes.append(note)

    def _matches(self, got, want, wrong: dict):
        """The id of the first known-wrong variant ``got`` equals (and the right answer does not)."""
        candidates = dict(wrong)
        candidates.update({"double": 2 * want, "half": want / 2, "sign": -want})
        if want.ndim == 2:
            candidates["transposed"] = want.T
        for hint, variant in candidates.items():
            variant = numpy.asarray(variant, dtype=float)
            if (
                variant.shape == got.shape
                and numpy.all(numpy.isfinite(variant))
                and rel_error(got, variant) <= MATCH
                and rel_error(variant, want) > MATCH
            ):
                return hint
        return None

    def array(self, label: str, got, want, wrong: dict | None = None, numeric=None) -> bool:
        """Compare ``got`` with minirnn's ``want`` (and, for a gradient, with the central differences
        ``numeric`` of the student's own forward). ``wrong`` maps hint ids to known-wrong answers."""
        want = numpy.asarray(want, dtype=float)
        if got is None:
            self.error = float("inf")
            self.fail(f"{label} is None: did you forget to return it?")
            return False
        try:
            got = numpy.asarray(got, dtype=float)
        except (TypeError, ValueError):
            self.error = float("inf")
            self.fail(f"{label} is a {type(got).__name__}, not an array")
            return False
        wrong = {h: v[label] for h, v in (wrong or {}).items() if label in v}
        if got.shape != want.shape:
            self.error = float("inf")
            hint = "transposed" if got.shape == want.shape[::-1] else None
            self.fail(f"{label} has shape {got.shape}, expected {want.shape}", hint)
            return False
        if not numpy.all(numpy.isfinite(got)):
            self.error = float("inf")
            self.fail(f"{label} has NaN or inf in it", self._matches(got, want, wrong))
            return False
        err = rel_error(got, want)
        num_err = 0.0 if numeric is None else rel_error(got, numeric)
        self.error = max(self.error, err, num_err)
        if max(err, num_err) <= TOL:
            return True
        hint = self._matches(got, want, wrong)
        if numeric is None:
            self.fail(f"{label}: relative error {err:.1e} against minirnn", hint)
        elif num_err <= TOL:
            self.fail(f"{label}: relative error {err:.1e} against minirnn", hint or "own_forward")
        else:
            self.fail(
                f"{label}: relative error {num_err:.1e} against central differences, {err:.1e} "
                "against minirnn",
                hint or ("forward_only" if err <= TOL else None),
            )
        return False

    def dtype(self, label: str, got, dtype) -> bool:
        """A float32 run must give float32 arrays."""
        got_dtype = getattr(got, "dtype", None)
        if got_dtype == dtype:
            return True
        hint = "float64" if got_dtype == numpy.float64 and dtype == numpy.float32 else None
        self.fail(f"{label} is {got_dtype or type(got).__name__}, expected {numpy.dtype(dtype)}", hint)
        return False


def central_differences(loss, arrays: dict) -> dict:
    """Central differences (minirnn.gradcheck's fourth-order stencil) of the scalar ``loss()``
    with respect to every array in ``arrays``; loss() must read the arrays, which are changed
    in place and put back."""
    return {k: numerical_gradient(loss, a) for k, a in arrays.items()}


def random(rng, *shape, scale=1.0):
    return rng.normal(0.0, scale, size=shape)


def float32(arrays):
    """The same arrays in float32 (for the dtype checks); other values pass through."""
    return [
        a.astype(numpy.float32)
        if isinstance(a, numpy.ndarray) and a.dtype.kind == "f"
        else {k: v.astype(numpy.float32) for k, v in a.items()}
        if isinstance(a, dict)
        else a
        for a in arrays
    ]


def loss_of(name: str, out, dout) -> float:
    """Σ out ⊙ dout, the scalar a gradient check differentiates; a Crash if the shapes differ."""
    out = numpy.asarray(out, dtype=float)
    if out.shape != dout.shape:
        raise Crash(name, f"{name} returned shape {out.shape}, expected {dout.shape}")
    return float((out * dout).sum())


@dataclass
class Check:
    """How one student function is graded."""

    name: str  # the function the student writes
    checked: str  # what is checked, for the table
    run: object  # run(student, tally, rng) -> notes to add (figures measured), or None
    hints: dict = field(default_factory=dict)  # this exercise's hint ids -> text


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise TimeLimit after ``seconds``, where signals allow it (the main thread on Unix); else no limit."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeLimit(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def grade(check: Check, student: Student, seed: int = 0, seconds: float = LIMIT) -> Row:
    """Run one check; whatever the student's code does, the result is a row."""
    tally = Tally(check.hints)
    try:
        with time_limit(seconds), numpy.errstate(all="ignore"):
            extra = check.run(student, tally, numpy.random.default_rng(seed)) or []
    except Todo as todo:
        note = str(todo) if todo.function == check.name else f"needs {todo.function} first (still a TODO)"
        return Row(check.name, check.checked, None, "TODO", [note])
    except Crash as crash:
        note = str(crash) if crash.function == check.name else f"in {crash.function}: {crash}"
        return Row(
            check.name, check.checked, tally.error or None, "FAIL", tally.notes + [note], tally.hint_ids
        )
    except TimeLimit as exc:
        return Row(check.name, check.checked, None, "FAIL", tally.notes + [f"{exc}: an endless loop?"])
    return Row(
        check.name,
        check.checked,
        tally.error,
        "FAIL" if tally.failed else "PASS",
        tally.notes + list(extra),
        tally.hint_ids,
    )


def format_rows(rows) -> str:
    """The table: one line per function, its notes (hints, errors, figures) indented below it."""
    wn = max([len("function")] + [len(r.name) for r in rows])
    wc = max([len("checked")] + [len(r.checked) for r in rows])
    lines = [f"{'function':<{wn}}  {'checked':<{wc}}  {'max rel err':>11}  result", "-" * (wn + wc + 25)]
    for r in rows:
        err = "-" if r.error is None else f"{r.error:.1e}"
        lines.append(f"{r.name:<{wn}}  {r.checked:<{wc}}  {err:>11}  {r.status}")
        for note in r.notes:
            lines += [
                textwrap.fill(
                    line,
                    100,
                    initial_indent="    ",
                    subsequent_indent="          ",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
                for line in note.splitlines()
            ]
    return "\n".join(lines)
