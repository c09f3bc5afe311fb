"""Student versions of the exercises: the teacher's solutions cut out, the prose kept.

One source, as nbgrader does it: in the teacher's file every solution sits
between two marker lines,

    ### BEGIN SOLUTION  what to write, in a few words
    ... the teacher's code ...
    ### END SOLUTION

and the student's version has, in their place, one line at the same indentation:

    raise NotImplementedError("TODO: what to write, in a few words")

The words after ``BEGIN SOLUTION`` become the TODO's message (a default one
when there are none), so that a student who runs the file sees what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION\b[\s:—-]*(.*?)\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
DEFAULT_TODO = "write this part (the text above says what it computes)"


class HandoutError(ValueError):
    """A source that cannot be turned into a handout, or a place it cannot go; one line."""


def exercise_files(folder: Path) -> list[Path]:
    """The exercises of a folder, in teaching order: NN_name.py."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.py"))


def student_version(text: str, name: str = "the file") -> str:
    """The text with every solution region replaced by a ``raise NotImplementedError("TODO: ...")``."""
    out, region = [], None  # region: (line number, indentation, message) of the open BEGIN
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if region:
                raise HandoutError(
                    f"{name}:{number}: BEGIN SOLUTION inside the region opened at line {region[0]}"
                )
            region = (number, begin.group(1), begin.group(2) or DEFAULT_TODO)
        elif end:
            if not region:
                raise HandoutError(f"{name}:{number}: END SOLUTION without a BEGIN SOLUTION")
            _, indent, message = region
            if not indent:
                raise HandoutError(f"{name}:{region[0]}: a solution region must be inside a function")
            out.append(f'{indent}raise NotImplementedError("TODO: {message}")\n')
            region = None
        elif not region:
            out.append(line)
    if region:
        raise HandoutError(f"{name}:{region[0]}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "".join(out)


def make_student(source: Path, target: Path, force: bool = False) -> list[Path]:
    """Write the student versions of every exercise in ``source`` (and its README.md) into ``target``.

    Nothing is written unless every file converts, and no file of ``target`` is
    replaced unless ``force``. Returns the paths written.
    """
    source, target = Path(source), Path(target)
    files = exercise_files(source)
    if not files:
        raise HandoutError(
            f"no exercises (NN_name.py) in {source}: pass --source DIR, "
            "the lessons/exercises folder of a minirnn checkout"
        )
    if target.exists() and not target.is_dir():
        raise HandoutError(f"{target} is a file, not a folder")
    if target.resolve() == source.resolve():
        raise HandoutError("the handout would overwrite the solutions: choose another folder")
    texts = {target / f.name: student_version(f.read_text(encoding="utf-8"), f.name) for f in files}
    if (source / "README.md").is_file():
        texts[target / "README.md"] = (source / "README.md").read_text(encoding="utf-8")
    existing = [p.name for p in texts if p.exists()]
    if existing and not force:
        raise HandoutError(f"{target} already has {', '.join(existing)}; pass --force to replace them")
    target.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        path.write_text(text, encoding="utf-8")
    return list(texts)
