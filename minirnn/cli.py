"""What every command shares: a parser whose errors are one line, never a usage block."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

BACKENDS = ("numpy", "cupy")  # what --backend accepts in every command


def add_backend_flag(ap, help="numpy (default) or cupy (a GPU)", **kw):
    """--backend, the same in every command: argparse rejects another name before anything runs.

    ``ap`` is a parser or an argument group; ``kw`` passes on (train passes its own default, or none at
    all, to see what was typed)."""
    kw.setdefault("default", "numpy")
    ap.add_argument("--backend", choices=BACKENDS, help=help, **kw)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line on stderr (and exit status 2) instead of the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog.split()[-1]}: error: {message} (see --help)\n")


def add_model_flags(ap: argparse.ArgumentParser):
    """--checkpoint and --backend, the same in every command that reads a trained model."""
    ap.add_argument("--checkpoint", required=True, metavar="PATH",
                    help="a run directory (its newest checkpoint) or a checkpoint file (.json or .npz)")
    add_backend_flag(ap)


class KeepPathsWhole(argparse.HelpFormatter):
    """argparse's help, but a description is never broken inside a word or at a hyphen: a path in it stays
    one piece that a reader can copy."""

    def _fill_text(self, text, width, indent):
        return textwrap.fill(" ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent,
                             break_long_words=False, break_on_hyphens=False)


def docs_page(name: str) -> Path:
    """Where the page docs/<name> is: inside the package when installed from a wheel (setup.py copies
    docs/ there), else in the source tree around it (a checkout, an editable install, an unpacked sdist)."""
    here = Path(__file__).resolve().parent
    installed = here / "docs" / name
    return installed if installed.is_file() else here.parent / "docs" / name
