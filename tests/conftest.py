"""Shared fixtures. Random data is drawn with NumPy on the host, then moved, so every
backend sees the same numbers (CuPy's numpy_cupy_allclose does the same)."""

import os

import numpy
import pytest

from minirnn.backend import BackendError, get_backend
from minirnn.train import TrainConfig, train

from . import strict_xp

strict_xp.register()


def _cupy_or_why_not():
    """(the CuPy float64 backend, None) where CuPy imports and the GPU passes minirnn's health check,
    else (None, the one-line reason)."""
    try:
        return get_backend("cupy", "float64"), None
    except BackendError as exc:
        return None, str(exc)


CUPY, NO_CUPY = _cupy_or_why_not()


def pytest_configure(config):
    # Where a GPU is expected (.ci/gpu sets MINIRNN_EXPECT_GPU), CuPy tests skipping would let a broken
    # GPU pass for a working one: stop instead.
    if NO_CUPY and os.environ.get("MINIRNN_EXPECT_GPU"):
        pytest.exit(f"MINIRNN_EXPECT_GPU is set, but {NO_CUPY}", returncode=1)


needs_cupy = pytest.mark.skipif(CUPY is None, reason="CuPy with a working GPU is not available")

BACKENDS = ["numpy", "strict", pytest.param("cupy", marks=needs_cupy)]


@pytest.fixture(params=BACKENDS)
def backend64(request):
    """A float64 backend: numpy, the strict CuPy stand-in, and CuPy where a GPU answers."""
    return get_backend(request.param, "float64")


@pytest.fixture
def rng():
    return numpy.random.default_rng(0)


TINY_TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 10


def train_tiny(tmp, **options):
    """Train a tiny model on TINY_TEXT written into ``tmp``; return (run directory, text file).

    ``options`` override the TrainConfig fields (sizes, steps, ...)."""
    data = tmp / "text.txt"
    data.write_text(TINY_TEXT)
    config = dict(
        data=str(data),
        hidden_size=16,
        batch_size=4,
        seq_length=8,
        max_steps=30,
        print_every=10,
        eval_every=0,
        cache_dir="",
        quiet=True,
        out=str(tmp / "run"),
    )
    train(TrainConfig(**{**config, **options}))
    return tmp / "run", data
