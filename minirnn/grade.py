"""Grade a student's exercise, or write the student versions of the exercises.

    python -m minirnn.grade --make-student handout/     # the teacher: TODOs where the solutions were
    python -m minirnn.grade handout/02_rnn_step.py      # the student (or the teacher): one row per function
    python -m minirnn.grade handout/04_lstm_step.py --only lstm_step_backward

Each row: the function, what was checked (shapes and dtypes, the forward pass
against minirnn's own on random inputs, the backward pass against central
differences in float64 and against minirnn's), the largest relative error,
and PASS, FAIL or TODO, with a hint where the mistake is a known one. The
exit status is 0 only if every row passes (1 otherwise, 2 for bad input).
docs/teaching.md explains it all; minirnn/grading/ holds the checks.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from .cli import OneLineParser
from .grading import SOURCE, GradeError, format_rows, grade_file
from .grading.handout import HandoutError, make_student


def one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional here: without it the grade is the same, a little slower on a busy machine
        return contextlib.nullcontext()
    return threadpool_limits(1)


def main(argv=None) -> int:
    ap = OneLineParser(
        prog="python -m minirnn.grade",
        description="Grade an exercise of lessons/exercises, or write the student versions.",
    )
    ap.add_argument(
        "file", nargs="?", help="the student's exercise file to grade (it is imported: its code runs)"
    )
    ap.add_argument("--only", metavar="NAME", help="grade only this function of the file")
    ap.add_argument(
        "--make-student", metavar="DIR", help="write the student versions of the exercises into DIR"
    )
    ap.add_argument(
        "--source",
        metavar="DIR",
        default=str(SOURCE),
        help="the teacher's exercises, with solutions (default: lessons/exercises here)",
    )
    ap.add_argument("--force", action="store_true", help="with --make-student: replace files already in DIR")
    args = ap.parse_args(argv)
    if (args.file is None) == (args.make_student is None):
        ap.error("give a FILE to grade or --make-student DIR, not both")
    try:
        if args.make_student is not None:
            written = make_student(Path(args.source), Path(args.make_student), args.force)
            print(f"wrote {len(written)} files to {args.make_student}: {', '.join(p.name for p in written)}")
            return 0
        start = time.perf_counter()
        with one_blas_thread():  # tiny matrices: BLAS threads would only cost time
            name, rows = grade_file(args.file, args.only)
    except (GradeError, HandoutError, OSError) as exc:
        print(f"minirnn.grade: error: {exc}", file=sys.stderr)
        return 2
    print(f"{name} ({args.file})\n")
    print(format_rows(rows))
    counts = {s: sum(r.status == s for r in rows) for s in ("PASS", "FAIL", "TODO")}
    print(
        f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['TODO']} to do "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return 0 if counts["PASS"] == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
