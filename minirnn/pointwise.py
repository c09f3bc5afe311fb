"""Elementwise nonlinearities shared by the cells.

``sigmoid`` is written with tanh: σ(x) = ½·tanh(½x) + ½. It is exact, never
overflows (``1 / (1 + exp(-x))`` warns for x < -88 in float32), and needs one
transcendental function, like the exp form.
"""
from __future__ import annotations

import numpy

from .backend import fuse


@fuse
def sigmoid(x):
    return 0.5 * numpy.tanh(0.5 * x) + 0.5


def tanh(x):
    return numpy.tanh(x)
