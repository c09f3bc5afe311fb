"""What every command shares: a parser whose errors are one line, never a usage block."""
from __future__ import annotations

import argparse

BACKENDS = ("numpy", "cupy")  # what --backend accepts in every command


def add_backend_flag(ap, help="numpy (default) or cupy (a GPU)", **kw):
    """--backend, the same in every command: argparse rejects another name before anything runs.

    ``ap`` is a parser or an argument group; ``kw`` passes on (train passes no default, to see what was typed)."""
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
