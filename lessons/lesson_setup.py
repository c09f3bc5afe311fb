"""What every lesson does before anything else, written once.

    from lesson_setup import QUICK, figures, save_figure   # first: it must run before numpy is imported

* One BLAS thread. The lessons' matrices are small: BLAS threads cost more
  than they save, and on a busy machine they can make a step 50 times slower.
* matplotlib draws into files (the Agg backend): no window is needed.
* minirnn is importable even from a checkout without ``pip install -e .``
  (the package next door is put on the path).
* ``QUICK`` is true when MINIRNN_QUICK=1, as the tests set it: every lesson
  then runs smaller and faster, in a few seconds.
* ``figures(name)`` is the folder a lesson writes its pictures to:
  lessons/figures/<name>/, or $MINIRNN_FIGURES/<name>/. It is created and printed.
* ``save_figure(fig, path)`` lays a figure out, writes it as a PNG and says where.
"""
import os
import sys
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
try:
    import minirnn  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: use the package next door
    sys.path.insert(0, str(HERE.parent))

QUICK = os.environ.get("MINIRNN_QUICK") == "1"


def figures(name: str) -> Path:
    """The folder for this lesson's pictures, created; its path is printed for the reader."""
    folder = Path(os.environ.get("MINIRNN_FIGURES", HERE / "figures")) / name
    folder.mkdir(parents=True, exist_ok=True)
    print(f"figures go to {folder}")
    return folder


def save_figure(fig, path: Path) -> Path:
    """Lay out ``fig``, write it to ``path`` (a PNG in the lesson's figures folder) and print where."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")
    return path
