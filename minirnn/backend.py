"""The array backend: the one module that knows whether arrays live on the CPU or the GPU.

Every other module works with an *array module* ``xp`` (``numpy`` or ``cupy``),
which it gets either from a :class:`Backend` (when it creates arrays) or from
:func:`array_module` (when it is handed arrays). Nothing outside this file
imports cupy, and nothing here imports it until somebody asks for it, so the
library runs wherever NumPy does.

The backend also owns the precision: float32 for training (fast, and what GPUs
like) and float64 for gradient checks (finite differences need the digits).

Host <-> device copies happen only through :meth:`Backend.asarray` (host to
device) and :meth:`Backend.to_host` (device to host). Keeping them explicit is
what lets the training loop run a whole sequence without a host
synchronisation: on CuPy, ``float(x)``, ``x.item()`` or ``if x > 0`` on a
device array each wait for the GPU to finish.
"""
from __future__ import annotations

import functools
import importlib
import warnings

import numpy

DTYPES = {"float32": numpy.float32, "float64": numpy.float64}

# Array modules other than numpy that may be used as a "device" module. CuPy is
# the real one; the tests register a strict stand-in that behaves like CuPy
# (no implicit conversion to NumPy, no mixing of host and device arrays).
_DEVICE_MODULES: dict[str, object] = {}
_DEVICE_ARRAY_TYPES: list[tuple[type, object]] = []


class BackendError(RuntimeError):
    """A backend cannot be used here; the message is one line that says why and what to do."""


def register_array_module(name: str, xp, array_type: type) -> None:
    """Make ``get_backend(name)`` use ``xp``, whose arrays are of ``array_type``.

    ``xp`` must offer the NumPy functions minirnn uses plus CuPy's
    ``asnumpy``. This is how the tests run the device code path without a GPU.
    """
    _DEVICE_MODULES[name] = xp
    _DEVICE_ARRAY_TYPES.append((array_type, xp))


def _import_cupy():
    """Import cupy and check that a GPU answers, or raise a one-line BackendError."""
    if "cupy" in _DEVICE_MODULES:
        return _DEVICE_MODULES["cupy"]
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        raise BackendError(
            "CuPy is not installed: install the extra that matches your CUDA version, "
            "e.g. pip install 'minirnn[cuda12]' (cupy-cuda12x) or 'minirnn[cuda13]' (cupy-cuda13x)"
        ) from None
    except Exception as exc:  # a broken CUDA install can fail at import time
        raise BackendError(f"CuPy failed to import ({type(exc).__name__}: {exc}); "
                           "check the CUDA toolkit and driver") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            raise RuntimeError("no CUDA device")
        cupy.zeros(1).sum().item()  # touch the device: fails here, not mid-training
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BackendError(f"CuPy is installed but no GPU answers ({msg}); "
                           "check nvidia-smi, or use --backend numpy") from None
    register_array_module("cupy", cupy, cupy.ndarray)
    return cupy


def use_device(name: str, index: int) -> None:
    """Make GPU ``index`` (modulo the GPUs there are) the current one, before backend ``name`` allocates.

    Each MPI rank on a machine calls this with its local rank (distributed.py), so that the ranks
    spread over the GPUs instead of crowding onto GPU 0. A no-op for other backends and where
    CuPy cannot start: :func:`get_backend` then says why, in one line.
    """
    if name != "cupy" or "cupy" in _DEVICE_MODULES:
        return
    try:
        cupy = importlib.import_module("cupy")
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return
    if count > 0:
        cupy.cuda.Device(index % count).use()


def array_module(*arrays):
    """The array module (numpy, cupy, ...) that the given arrays belong to.

    Functions that are handed arrays call this instead of importing cupy
    (chainer's ``get_array_module``). Mixed host/device arguments are a bug:
    the device module wins, and the device module then refuses the host array.
    """
    for a in arrays:
        for array_type, xp in _DEVICE_ARRAY_TYPES:
            if isinstance(a, array_type):
                return xp
    return numpy


class Backend:
    """An array module plus a float dtype, and the only doors between host and device.

    >>> be = get_backend("numpy", "float64")
    >>> be.zeros((2, 3)).dtype
    dtype('float64')
    """

    def __init__(self, name: str, xp, dtype):
        self.name = name
        self.xp = xp
        self.dtype = numpy.dtype(dtype)

    def __repr__(self):
        return f"Backend({self.name!r}, {self.dtype.name})"

    @property
    def on_device(self) -> bool:
        return self.xp is not numpy

    # -- the two doors ---------------------------------------------------------
    def asarray(self, a, dtype=None):
        """Host (or device) data -> an array of this backend. Floats become ``self.dtype``."""
        a = numpy.asarray(a) if not isinstance(a, numpy.ndarray) and array_module(a) is numpy else a
        if dtype is None:
            dtype = self.dtype if a.dtype.kind == "f" else a.dtype
        return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a) -> numpy.ndarray:
        """A device array -> a NumPy array (a copy on the GPU; this waits for the GPU)."""
        if self.xp is numpy:
            return numpy.asarray(a)
        return self.xp.asnumpy(a)

    def synchronize(self):
        """Wait for the device to finish queued work (for timing). A no-op on NumPy."""
        if self.on_device and hasattr(self.xp, "cuda"):
            self.xp.cuda.get_current_stream().synchronize()

    def scalar(self, a) -> float:
        """A 0-d array -> a Python float. On the GPU this is a host sync: use it at the edges only."""
        return float(self.to_host(a))

    # -- creation --------------------------------------------------------------
    def zeros(self, shape, dtype=None):
        return self.xp.zeros(shape, dtype=dtype or self.dtype)

    def empty(self, shape, dtype=None):
        return self.xp.empty(shape, dtype=dtype or self.dtype)

    def uniform(self, seed: int, shape):
        """Uniform [0, 1) numbers of this dtype drawn on the backend from ``seed``.

        Drawing on the device avoids copying a dropout mask to the GPU each step;
        the caller derives ``seed`` from its host generator, so runs stay
        reproducible and resumable.
        """
        rng = self.xp.random.default_rng(seed)
        return rng.random(shape, dtype=self.dtype)


def fuse(fn):
    """Fuse an elementwise function into one GPU kernel when it is called with CuPy arrays.

    ``cupy.fuse`` compiles ``fn`` on first use with CuPy arrays; with NumPy
    arrays (or the tests' stand-in) the plain function runs. So the math of a
    cell is written once, as ordinary NumPy expressions, for both backends.
    The decision is made at call time because cupy is imported lazily.
    """
    fused = {}

    @functools.wraps(fn)
    def call(*args):
        if not _DEVICE_ARRAY_TYPES:  # no device module loaded: NumPy (sampling calls this ~20 times a character)
            return fn(*args)
        xp = array_module(*args)
        if xp is numpy or not hasattr(xp, "fuse"):
            return fn(*args)
        if xp not in fused:
            fused[xp] = xp.fuse(kernel_name=fn.__name__)(fn)
        if fused[xp] is fn:
            return fn(*args)
        try:
            return fused[xp](*args)
        except Exception as exc:  # a CuPy version that cannot fuse this: run it unfused, say so once
            warnings.warn(f"cupy.fuse could not compile {fn.__name__} ({type(exc).__name__}); running it unfused")
            fused[xp] = fn
            return fn(*args)

    return call


def get_backend(name: str = "numpy", dtype: str = "float32") -> Backend:
    """The backend called ``name`` ("numpy", "cupy", or a registered stand-in) with ``dtype``."""
    if dtype not in DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if name == "numpy":
        return Backend("numpy", numpy, DTYPES[dtype])
    if name == "cupy":
        return Backend("cupy", _import_cupy(), DTYPES[dtype])
    if name in _DEVICE_MODULES:
        return Backend(name, _DEVICE_MODULES[name], DTYPES[dtype])
    raise BackendError(f"unknown backend {name!r}: choose numpy or cupy")
