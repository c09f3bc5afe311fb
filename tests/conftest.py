"""Shared fixtures. Random data is drawn with NumPy on the host, then moved, so every
backend sees the same numbers (CuPy's numpy_cupy_allclose does the same)."""
import numpy
import pytest

from minirnn.backend import BackendError, get_backend

from . import strict_xp

strict_xp.register()


def _cupy_or_none():
    try:
        return get_backend("cupy", "float64")
    except BackendError:
        return None


CUPY = _cupy_or_none()
needs_cupy = pytest.mark.skipif(CUPY is None, reason="CuPy with a working GPU is not available")

BACKENDS = ["numpy", "strict", pytest.param("cupy", marks=needs_cupy)]


@pytest.fixture(params=BACKENDS)
def backend64(request):
    """A float64 backend: numpy, the strict CuPy stand-in, and CuPy where a GPU answers."""
    return get_backend(request.param, "float64")


@pytest.fixture
def rng():
    return numpy.random.default_rng(0)
