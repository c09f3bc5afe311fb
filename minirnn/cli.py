"""What every command shares: a parser whose errors are one line, never a usage block, and the one
line (and at most one hint line) that a failure ends in.

Exit statuses: 2 for bad input, 1 for a failure of the machine (a full disk, too little memory) or a
diverged run, 128 + the signal's number when a signal stopped it (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path

BACKENDS = ("numpy", "cupy")  # what --backend accepts in every command


def add_backend_flag(ap, help="numpy (default) or cupy (a GPU)", **kw):
    """--backend, the same in every command: argparse rejects another name before anything runs.

    ``ap`` is a parser or an argument group; ``kw`` passes on (train passes its own default, or none at
    all, to see what was typed)."""
    kw.setdefault("default", "numpy")
    ap.add_argument("--backend", choices=BACKENDS, help=help, **kw)


# -- Ctrl-C --------------------------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """A second Ctrl-C or SIGTERM: stop at once, without saving the step under way."""

    def __init__(self, signame: str):
        super().__init__(signame)
        self.signame, self.run_dir = signame, None


class SignalCatcher:
    """While active, SIGINT and SIGTERM only set ``self.caught``: the loop saves and stops at the next step.

    A second signal raises Interrupted at once, for a user who does not want to wait.
    """

    def __init__(self):
        self.caught, self.saved = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum, frame):
        if self.caught is not None:
            raise Interrupted(signal.Signals(signum).name)
        self.caught = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self.saved.items():
            signal.signal(sig, old)


def _exit_130(signum, frame):
    try:
        sys.stdout.flush()
    except (OSError, ValueError, RuntimeError):
        pass
    # no exception: there is no code of ours yet to catch one, so Python would print a traceback
    os._exit(130)


def quiet_until_main():
    """For ``python -m minirnn.<command>`` (minirnn/__init__.py calls it before the imports, about a second):
    Ctrl-C ends the process with status 130 and nothing printed. A command's main() hands Ctrl-C back
    to Python with :func:`catch_ctrl_c` once it can catch KeyboardInterrupt; a command that never does
    keeps the quiet exit."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where SIGINT is ignored
        signal.signal(signal.SIGINT, _exit_130)


def catch_ctrl_c():
    """From here on Ctrl-C raises KeyboardInterrupt again, for main() to catch."""
    if signal.getsignal(signal.SIGINT) is _exit_130:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line on stderr (and exit status 2) instead of the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog.split()[-1]}: error: {message} (see --help)\n")


def add_model_flags(ap: argparse.ArgumentParser):
    """--checkpoint, --newest, --cell and --backend, the same in every command that reads a trained
    model. Which checkpoint they name is decided in one place, minirnn.pretrained.resolve."""
    ap.add_argument(
        "--checkpoint",
        default=None,
        metavar="PATH",
        help="a run directory (its best checkpoint) or a checkpoint file (.json or .npz); "
        "default: the model shipped with minirnn",
    )
    ap.add_argument("--newest", action="store_true", help="a run directory's newest checkpoint, not its best")
    ap.add_argument(
        "--cell",
        default=None,
        metavar="MODULE:CLASS",
        help="only for a checkpoint of your own cell: name it to allow importing it (a checkpoint "
        "never imports code on its own)",
    )
    add_backend_flag(ap)


class KeepPathsWhole(argparse.HelpFormatter):
    """argparse's help, but a description is never broken inside a word or at a hyphen: a path in it stays
    one piece that a reader can copy."""

    def _fill_text(self, text, width, indent):
        return textwrap.fill(
            " ".join(text.split()),
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )


def docs_page(name: str) -> Path:
    """Where the page docs/<name> is: inside the package when installed from a wheel (setup.py copies
    docs/ there), else in the source tree around it (a checkout, an editable install, an unpacked sdist)."""
    here = Path(__file__).resolve().parent
    installed = here / "docs" / name
    return installed if installed.is_file() else here.parent / "docs" / name


def fail(prog: str, line: str, status: int, hint: str | None = None) -> int:
    """Print ``prog: line`` (and ``hint: ...``) on stderr; return ``status`` for sys.exit."""
    print(f"{prog}: {line}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return status


def describe(exc: BaseException) -> str:
    """An OSError or MemoryError as a phrase: what went wrong and, where known, with which file."""
    if isinstance(exc, MemoryError):
        return "out of memory"
    what = exc.strerror or str(exc)
    return f"{what}: {exc.filename}" if exc.filename else what


def machine_hint(exc: BaseException, command: str) -> str | None:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some space, then continue with --resume RUN_DIR (a checkpoint is whole or not there)"
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return f"{command} needs a directory it may write to"
    if isinstance(exc, MemoryError):
        return "try a smaller --batch-size, --seq-length or --hidden-size"
    return None


def run(prog: str, main) -> int:
    """``python -m minirnn.<command>``: ``main()``, with a last net under it. An exception that main() does
    not expect is a bug in minirnn, not bad input: one line (MINIRNN_DEBUG=1 shows the traceback), status 1.
    (main() called from Python, as the tests do, lets such an exception through.)"""
    try:
        return main()
    except Exception as exc:
        if os.environ.get("MINIRNN_DEBUG"):
            raise
        return fail(
            prog,
            f"internal error: {type(exc).__name__}: {exc}",
            1,
            "this is a bug in minirnn: MINIRNN_DEBUG=1 shows where; please report it with the command",
        )


def quiet_broken_pipe() -> int:
    """After stdout's reader went away (``... | head``): send the rest nowhere, exit as a closed pipe does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's own flush at exit does not fail again
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, what the shell reports for a program a closed pipe stopped
