"""What every lesson does first, written once, so that a lesson needs nothing but minirnn:

    from minirnn.lessons import figures, quick, save_figure, show_image
    QUICK = quick()

The lessons (lessons/*.py) run two ways, and this module makes both work from any folder:

* as a script, ``python lessons/01_data.py``: matplotlib draws into files (the Agg
  backend, no window), and every figure is written as a PNG whose path is printed;
* as a notebook (Jupyter through jupytext, VS Code, PyCharm, Colab): every figure is
  shown inline below its cell, and written as a PNG too.

* ``quick()`` is true when the environment has MINIRNN_QUICK=1, as the tests set it:
  a lesson then runs smaller and faster, in a few seconds, and its numbers mean little.
  In a notebook, write ``QUICK = True`` in the lesson's first cell instead.
* ``figures(name)`` is the folder a lesson writes its pictures and runs to, created:
  figures/<name>/ beside the script (for a notebook, in the folder it runs in), or
  $MINIRNN_FIGURES/<name>/.
* ``save_figure(fig, path)`` lays a figure out, writes it as a PNG, and shows it inline
  in a notebook. It returns None, so a cell that ends with it prints nothing more.
* ``show_image(path)`` shows a PNG that library code wrote (``minirnn.visualize``,
  ``minirnn.plot``) inline in a notebook; as a script it prints the path.

BLAS is limited to one thread: the lessons' matrices are small, threads cost more than
they save, and on a busy machine they can make a step 50 times slower.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from threadpoolctl import threadpool_limits

_BLAS_LIMIT = threadpool_limits(limits=1, user_api="blas")  # in force from import on, for the whole process


def in_notebook() -> bool:
    """True inside a Jupyter kernel (the IPython shell there has a kernel; a terminal IPython has none)."""
    ipython = sys.modules.get("IPython")  # not imported: certainly not a notebook
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


if not in_notebook():
    import matplotlib

    matplotlib.use("Agg")  # a script draws into files; a notebook keeps its inline backend


def quick() -> bool:
    """True when MINIRNN_QUICK=1: the lessons then run with tiny settings, in seconds."""
    return os.environ.get("MINIRNN_QUICK") == "1"


def _home() -> Path:
    """The folder beside the running script, or the working folder of a notebook or a prompt."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    return Path(script).resolve().parent if script and not in_notebook() else Path.cwd()


def figures(name: str) -> Path:
    """The folder for lesson ``name``'s pictures, created; its path is printed for the reader."""
    folder = Path(os.environ.get("MINIRNN_FIGURES") or _home() / "figures") / name
    folder.mkdir(parents=True, exist_ok=True)
    print(f"figures go to {folder}")
    return folder


def _display_png(data: bytes) -> None:
    from IPython.display import Image, display

    display(Image(data=data, format="png"))  # an image/png output, whatever matplotlib backend is set


def save_figure(fig, path) -> None:
    """Lay out ``fig`` and write it to ``path`` as a PNG; in a notebook also show it, once, here."""
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")
    import matplotlib.pyplot as plt

    if in_notebook():
        _display_png(path.read_bytes())
    plt.close(fig)  # shown (or written) once: the inline backend would otherwise show it again


def show_image(path) -> None:
    """Show a PNG that library code wrote: inline in a notebook, its path as a script."""
    if in_notebook():
        _display_png(Path(path).read_bytes())
    else:
        print(f"see {path}")
