"""What the commands check before they allocate or write: values, and sizes against the machine.

A *rule* says what a value must be, in words that finish the sentence
"--hidden-size must be ...": the options (options.py), the model's shape
(model.ModelConfig) and every field of a checkpoint (checkpoint.py) are
checked against rules, so each problem is one line that names its field.

Sizes: :func:`check_fits` compares an estimate of the bytes a run needs with
the memory this machine (or container) has, so a size that cannot fit is one
line before anything is allocated, not a MemoryError (or a swapping machine)
later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy


class Rule(NamedTuple):
    ok: Callable[[object], bool]  # value -> does it pass
    want: str  # what it must be: "a positive integer"


def is_int(v) -> bool:
    """A true integer (JSON's 3, not 3.0, True or "3")."""
    return isinstance(v, (int, numpy.integer)) and not isinstance(v, (bool, numpy.bool_))


def is_number(v) -> bool:
    """A finite int or float, not a bool."""
    return (is_int(v) or isinstance(v, (float, numpy.floating))) and math.isfinite(v)


def integer(low: int = 0) -> Rule:
    return Rule(
        lambda v: is_int(v) and v >= low,
        "a positive integer" if low == 1 else "0 or more" if low == 0 else f"an integer of at least {low}",
    )


def number(low: float, high: float | None = None, *, low_open=False, high_open=True, want="") -> Rule:
    """A finite number in [low, high) by default; ``low_open`` excludes ``low``."""

    def ok(v):
        return (
            is_number(v)
            and (v > low if low_open else v >= low)
            and (high is None or (v < high if high_open else v <= high))
        )

    if not want:
        want = (
            f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            if high is not None
            else f"a number {'above' if low_open else 'of at least'} {low:g}"
        )
    return Rule(ok, want)


def choice(*values) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v in values, "one of " + ", ".join(values))


def text(none_ok=False) -> Rule:
    """A non-empty string (or None where ``none_ok``): '' is never taken to mean "the default"."""
    return Rule(
        lambda v: (v is None and none_ok) or (isinstance(v, str) and v != ""),
        "a non-empty path" + (" (or left out)" if none_ok else ""),
    )


def flag_rule() -> Rule:
    return Rule(lambda v: isinstance(v, bool), "true or false")


def first_problem(values: dict, rules: dict):
    """The first (name, value, rule) whose value breaks its rule, in the rules' order, or None."""
    for name, rule in rules.items():
        value = values.get(name)
        if not rule.ok(value):
            return name, value, rule
    return None


def short(value, width: int = 40) -> str:
    """repr(value), cut to ``width`` characters: a hostile value must not flood the one line."""
    r = repr(value)
    return r if len(r) <= width else r[: width - 3] + "..."


# -- sizes ---------------------------------------------------------------------------------------------------
def machine_memory() -> int | None:
    """Bytes of memory this process may use: the physical memory, or a container's limit if lower.
    None where neither can be read (then nothing is refused)."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    try:  # cgroup v2: "max" or a number of bytes
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit.isdigit():
            total = min(total or int(limit), int(limit))
    except OSError:
        pass
    return total


def human(nbytes: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if nbytes < 1024 or unit == "EiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


class TooBig(ValueError):
    """Sizes whose arrays cannot fit in this machine's memory; one line, raised before allocating."""


def check_fits(need: int, what: str, memory: int | None = None):
    """Raise TooBig if ``need`` bytes exceed the machine's memory. ``what`` names the sizes, e.g.
    "--hidden-size 10000000 with --num-layers 2"."""
    memory = machine_memory() if memory is None else memory
    if memory is not None and need > memory:
        raise TooBig(f"{what} would need at least {human(need)} of memory; this machine has {human(memory)}")
