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


# What to install: CuPy's [ctk] extra brings the CUDA libraries (cuBLAS, NVRTC, ...) as wheels, so only the
# NVIDIA driver has to be on the machine; nvidia-smi's "CUDA Version" is the newest major the driver runs.
INSTALL_HINT = (
    "pip install 'minirnn[cuda12]' (cupy-cuda12x[ctk]) or 'minirnn[cuda13]' (cupy-cuda13x[ctk]), "
    "whichever CUDA major nvidia-smi shows"
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _health_check(cupy) -> None:
    """Run each kind of GPU work that training uses once, so that a missing piece fails here, in one
    line, rather than as a traceback at the first step. Raises BackendError."""

    def device():
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
        cupy.zeros(4, dtype="float32").sum()

    def ones(shape):
        return cupy.ones(shape, dtype="float32")

    checks = [
        ("no GPU answers", "check nvidia-smi, or use --backend numpy", device),
        # the matrix products go to cuBLAS, a library of its own (libcublas)
        ("the matrix multiply (cuBLAS) fails", INSTALL_HINT, lambda: cupy.matmul(ones((4, 4)), ones((4, 4)))),
        # CuPy compiles every elementwise kernel (tanh, the cells' fused functions) at first use, with NVRTC
        ("compiling an elementwise kernel (NVRTC) fails", INSTALL_HINT, lambda: cupy.tanh(ones(4))),
        (
            "the device random generator fails",
            INSTALL_HINT,
            lambda: cupy.random.Generator(cupy.random.Philox4x3210(0, size=256)).random(4, dtype="float32"),
        ),
    ]
    for what, hint, check in checks:
        try:
            check()
            cupy.cuda.get_current_stream().synchronize()  # the errors of queued kernels surface here
        except Exception as exc:  # whatever CUDA raises becomes the one line
            raise BackendError(f"CuPy is installed but {what} ({_first_line(exc)}); {hint}") from None


def _import_cupy():
    """Import cupy and check that the GPU runs what training needs, or raise a one-line BackendError."""
    if "cupy" in _DEVICE_MODULES:
        return _DEVICE_MODULES["cupy"]
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        raise BackendError(f"CuPy is not installed: {INSTALL_HINT}") from None
    except Exception as exc:  # a broken CUDA install can fail at import time
        raise BackendError(f"CuPy failed to import ({_first_line(exc)}); {INSTALL_HINT}") from None
    _health_check(cupy)
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


_HOST_TYPES = (numpy.ndarray, numpy.generic, int, float, complex, bool, type(None))


def _device_module(arrays):
    """The device module whose arrays are among ``arrays``, or None."""
    for a in arrays:
        for array_type, xp in _DEVICE_ARRAY_TYPES:
            if isinstance(a, array_type):
                return xp
    return None


def array_module(*arrays):
    """The array module (numpy, cupy, ...) that the given arrays belong to.

    Functions that are handed arrays call this instead of importing cupy
    (chainer's ``get_array_module``). Mixed host/device arguments are a bug:
    the device module wins, and the device module then refuses the host array.

    While ``cupy.fuse`` traces a function, its arguments are CuPy's stand-in
    objects, not arrays; ``cupy.get_array_module`` knows them, so it is asked
    about anything that is neither a host value nor a device array. That is
    what lets ``xp.tanh(x)`` inside a fused function trace as a CuPy ufunc.
    """
    if not _DEVICE_MODULES:  # no device module loaded: everything is NumPy (the cells ask ~20 times a char)
        return numpy
    xp = _device_module(arrays)
    if xp is not None:
        return xp
    for a in arrays:
        if isinstance(a, _HOST_TYPES):
            continue
        for xp in _DEVICE_MODULES.values():
            ask = getattr(xp, "get_array_module", None)
            if ask is not None and ask(a) is xp:
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
        reproducible and resumable. NumPy draws with PCG64. On the device the
        generator is cuRAND's Philox4x32-10: counter-based, so setting one up for
        each mask costs one light kernel, where CuPy's default (XORWOW) runs a
        slow ``curand_init`` for each of ~270k states. The two backends' masks
        differ: docs/backend.md#4-random-numbers.
        """
        if self.xp is numpy:
            return numpy.random.default_rng(seed).random(shape, dtype=self.dtype)
        bits = self.xp.random.Philox4x3210(seed, size=philox_states(int(numpy.prod(shape))))
        return self.xp.random.Generator(bits).random(shape, dtype=self.dtype)


PHILOX_STATES = 1 << 18  # the most Philox states a mask is drawn with: 64 bytes each, 16 MiB


def philox_states(n: int) -> int:
    """How many generator states draw ``n`` numbers on the device: ``n`` rounded up to a whole
    number of 256, at most PHILOX_STATES.

    CuPy's sampling kernel runs whole blocks of 256 threads, and every thread reads
    and writes back its own state even when it draws nothing: a count that is not a
    multiple of 256 would let the last block write past the states' memory. The
    count is fixed by ``n`` alone (CuPy's default grows with the GPU's number of
    multiprocessors), so a seed gives the same mask on any GPU.
    """
    return min(PHILOX_STATES, max(1, -(-n // 256)) * 256)


class FuseFallbackWarning(UserWarning):
    """cupy.fuse could not compile a function, which then runs unfused (right, but slow)."""


def fuse(fn):
    """Fuse an elementwise function into one GPU kernel when it is called with CuPy arrays.

    ``cupy.fuse`` compiles ``fn`` on first use with CuPy arrays; with NumPy
    arrays the plain function runs. So the math of a cell is written once, for
    both backends. The body must be traceable: arithmetic, and ufuncs taken from
    the argument's array module (``minirnn.pointwise.tanh``), never ``numpy.tanh``,
    which CuPy's tracer does not redirect. Called while another fused function is
    being traced (arguments that are not device arrays), ``fn`` runs as it is and
    becomes part of that kernel. The decision is made at call time because cupy is
    imported lazily.
    """
    fused = {}

    @functools.wraps(fn)
    def call(*args):
        if not _DEVICE_ARRAY_TYPES:  # no device module loaded: NumPy (sampling calls this ~20 times a char)
            return fn(*args)
        xp = _device_module(args)
        if xp is None or not hasattr(xp, "fuse"):  # NumPy, or inside a trace
            return fn(*args)
        if xp not in fused:
            fused[xp] = xp.fuse(kernel_name=fn.__name__)(fn)
        if fused[xp] is fn:
            return fn(*args)
        try:
            return fused[xp](*args)
        except Exception as exc:  # a CuPy that cannot fuse this: run it unfused, say so once
            warnings.warn(
                f"FUSE FALLBACK: cupy.fuse could not compile {fn.__name__} ({_first_line(exc)}); "
                "running it unfused, one kernel per operation",
                FuseFallbackWarning,
                stacklevel=2,
            )
            fused[xp] = fn
            return fn(*args)

    call.compiled = fused  # per device module, what runs: the compiled kernel, or fn after a fallback
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
