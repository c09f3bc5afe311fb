"""Elementwise nonlinearities shared by the cells.

``sigmoid`` is written with tanh: σ(x) = ½·tanh(½x) + ½. It is exact, never
overflows (``1 / (1 + exp(-x))`` warns for x < -88 in float32), and needs one
transcendental function, like the exp form.

Both take ``tanh`` from the argument's array module rather than writing
``numpy.tanh``. On CuPy arrays the two would compute the same thing, but
inside a fused function (``backend.fuse``) ``cupy.fuse`` calls the body with
its own tracing objects, and only CuPy's ufuncs know them: ``numpy.tanh``
would make the trace fail and the function run unfused, one kernel per
operation. ``array_module`` names cupy for those objects too.
"""

from __future__ import annotations

from .backend import array_module, fuse


@fuse
def sigmoid(x):
    return 0.5 * tanh(0.5 * x) + 0.5


def tanh(x):
    return array_module(x).tanh(x)
