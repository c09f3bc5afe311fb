"""minirnn: recurrent neural networks written by hand in NumPy (and CuPy), to learn from.

Start with docs/index.md. The pieces:

    minirnn.backend    NumPy or CuPy, float32 or float64: the one place that knows
    minirnn.cell       the cell contract; running any cell over a sequence with masks
    minirnn.rnn / lstm / gru   the cells, forward and backward
    minirnn.layers     dense decoder, softmax cross-entropy, dropout
    minirnn.model      the character-level language model
    minirnn.optim      Adam, SGD, clipping by global norm
    minirnn.wrappers / bidirectional / gapfill   the tutorial's appendix
    minirnn.data / train / sample / checkpoint   the char-rnn workflow
    minirnn.gradcheck  finite-difference checks (python -m minirnn.gradcheck)
"""

import sys as _sys

if _sys.argv[:1] == ["-m"]:  # python -m minirnn.<command>: a Ctrl-C while it starts up exits quietly (cli.py)
    from .cli import quiet_until_main as _quiet_until_main

    _quiet_until_main()

from .backend import Backend, BackendError, get_backend
from .bidirectional import Bidirectional
from .cell import Cell
from .gru import GRU
from .lstm import LSTM
from .model import CELLS, CharRNN, ModelConfig, make_cell, num_params
from .optim import SGD, Adam, clip_by_global_norm, global_norm
from .rnn import RNN
from .wrappers import DenseDecoderCell, StackedCell

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "Backend",
    "BackendError",
    "Bidirectional",
    "CELLS",
    "Cell",
    "CharRNN",
    "DenseDecoderCell",
    "GRU",
    "LSTM",
    "ModelConfig",
    "RNN",
    "SGD",
    "StackedCell",
    "clip_by_global_norm",
    "get_backend",
    "global_norm",
    "make_cell",
    "num_params",
]
