"""Parameter initialisers, drawn on the host in float64 from a seeded generator.

They return NumPy arrays; the model casts and moves them to its backend once.
"""

from __future__ import annotations

import numpy


def glorot_uniform(rng: numpy.random.Generator, fan_in: int, fan_out: int, shape) -> numpy.ndarray:
    """U(-r, r) with r = sqrt(6 / (fan_in + fan_out)): TensorFlow's default kernel initialiser."""
    r = numpy.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=shape)


def truncated_normal(rng: numpy.random.Generator, std: float, shape) -> numpy.ndarray:
    """N(0, std²) with draws beyond two standard deviations drawn again (tf.truncated_normal)."""
    out = rng.normal(0.0, std, size=shape)
    bad = numpy.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = numpy.abs(out) > 2 * std
    return out


def gate_kernels(rng: numpy.random.Generator, D: int, H: int, G: int):
    """Wx (D, G*H) and Wh (H, G*H), initialised as TensorFlow initialises its fused
    cell kernel: one glorot-uniform matrix of shape (D + H, G*H), split by rows."""
    W = glorot_uniform(rng, D + H, G * H, (D + H, G * H))
    return W[:D].copy(), W[D:].copy()
