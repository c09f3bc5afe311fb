"""A strict stand-in for CuPy, so the device code path runs (and is policed) without a GPU.

Its arrays wrap NumPy arrays but refuse what CuPy refuses, and a little more:

* implicit conversion to NumPy (``numpy.asarray(d)``, ``numpy.tanh`` of a mix)
  raises, as with CuPy; the only way out is ``strict.asnumpy`` (counted);
* mixing a host array with a device array in one operation raises;
* ``float(d)``, ``int(d)``, ``bool(d)`` and ``d.item()`` raise: on a GPU each
  is a hidden host synchronisation, and minirnn makes those only through
  ``Backend.to_host`` / ``Backend.scalar``, at the edges;
* reductions return 0-d arrays, never Python or NumPy scalars (CuPy does too);
* ``fuse`` traces the function as ``cupy.fuse`` does: with stand-in objects
  (:class:`TraceProxy`) that support arithmetic and this module's ufuncs and
  refuse NumPy's ufuncs, NumPy functions, indexing and branching, so a fused
  body that would not trace on CuPy fails here too;
* ``random`` offers CuPy's ``Generator(Philox4x3210(seed, size=...))`` and refuses
  ``default_rng``, whose XORWOW states are slow to set up on a GPU.

``KERNELS`` counts what would be a kernel launch on a GPU: each ufunc applied to
device arrays (``matmul`` included), and each call of a fused function.
``register()`` makes the module available as ``get_backend("strict")``.
"""

from __future__ import annotations

import collections
import numbers
import threading

import numpy
from numpy.lib.mixins import NDArrayOperatorsMixin

TRANSFERS = {"to_host": 0, "to_device": 0}
KERNELS: collections.Counter = collections.Counter()
GENERATORS: list = []  # (seed, size) of every Philox4x3210 made


class HostDeviceError(TypeError):
    pass


def _unwrap(obj):
    """StrictArray -> its NumPy array; refuse host arrays (anything else passes through)."""
    if isinstance(obj, StrictArray):
        return obj._a
    if isinstance(obj, numpy.ndarray):
        raise HostDeviceError(f"a host numpy array of shape {obj.shape} was mixed with device arrays")
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o) for o in obj)
    return obj


def _wrap(obj):
    """NumPy results -> StrictArray; NumPy scalars from reductions -> 0-d StrictArray (like CuPy)."""
    if isinstance(obj, numpy.ndarray):
        return StrictArray(obj)
    if isinstance(obj, numpy.generic):
        return StrictArray(numpy.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


class StrictArray(NDArrayOperatorsMixin):
    """A "device" array. Arithmetic and NumPy functions work; leaving the device does not."""

    __slots__ = ("_a",)

    def __init__(self, a: numpy.ndarray):
        self._a = a

    # -- numpy protocols --------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise HostDeviceError("implicit conversion of a device array to NumPy; use asnumpy()")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(isinstance(i, TraceProxy) for i in inputs):
            return NotImplemented  # a device array captured inside a fused function: TraceProxy refuses it
        KERNELS[ufunc.__name__] += 1
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        return _wrap(func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    # -- hidden host syncs -------------------------------------------------------------
    def _sync(self, *_):
        raise HostDeviceError("implicit host synchronisation (float/int/bool/item) on a device array")

    __float__ = __int__ = __bool__ = __index__ = __complex__ = _sync

    def item(self, *args):
        self._sync()

    def tolist(self):
        self._sync()

    # -- indexing and attributes -----------------------------------------------------------
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key)] = _unwrap(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __repr__(self):
        return f"StrictArray(shape={self._a.shape}, dtype={self._a.dtype})"

    @property
    def T(self):
        return StrictArray(self._a.T)

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__ & co: those would leak the host buffer
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: _wrap(
                attr(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
            )
        return _wrap(attr) if isinstance(attr, numpy.ndarray) else attr


# -- fuse: a tracer like cupy.fuse's -------------------------------------------------------------
_tracing = threading.local()
_FUSE_ARGUMENT_TYPES = (StrictArray, numpy.generic, int, float, complex, bool, type(None))


class TraceProxy:
    """What a fused function is called with while it is traced, as CuPy's ``_FusionVarArray``.

    It holds the value (computed eagerly, as NumPy), supports arithmetic and
    comparisons, and ``dtype``/``ndim``/``shape``; the strict module's ufuncs
    accept it. Like CuPy's tracing objects it has no way into NumPy: a NumPy
    ufunc or function, an indexing, ``float()`` or ``if`` on it raises.
    """

    __slots__ = ("_a",)

    def __init__(self, a: numpy.ndarray):
        self._a = a

    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    shape = property(lambda self: self._a.shape)

    def __repr__(self):
        return f"TraceProxy(shape={self._a.shape}, dtype={self._a.dtype})"

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise TypeError(
            f"numpy.{ufunc.__name__} was applied inside a fused function; cupy.fuse's tracer "
            "redirects only CuPy's own ufuncs: take the ufunc from the argument's array module"
        )

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a NumPy function was applied inside a fused function; cupy.fuse cannot trace it")

    def _branch(self, *_):
        raise TypeError("a fused function cannot turn a traced value into a Python value (float, bool, if)")

    __float__ = __int__ = __bool__ = __index__ = __complex__ = _branch


def _trace_ufunc(ufunc, *args, **kwargs):
    """Apply ``ufunc`` while tracing: arguments are TraceProxy or scalars, never arrays."""
    if kwargs:
        raise TypeError(f"{ufunc.__name__}({', '.join(kwargs)}=...) in a fused function is not traced here")
    values = []
    for a in args:
        if isinstance(a, TraceProxy):
            values.append(a._a)
        elif isinstance(a, (numbers.Number, numpy.generic)):
            values.append(a)
        else:
            raise TypeError(f"a {type(a).__name__} that is not an argument was used inside a fused function")
    result = ufunc(*values)
    if isinstance(result, tuple):
        return tuple(TraceProxy(r) for r in result)
    return TraceProxy(numpy.asarray(result))


def _operator(ufunc, reflected=False):
    if reflected:
        return lambda self, other: _trace_ufunc(ufunc, other, self)
    return lambda self, *other: _trace_ufunc(ufunc, self, *other)


for _name, _ufunc in [
    ("add", numpy.add),
    ("sub", numpy.subtract),
    ("mul", numpy.multiply),
    ("truediv", numpy.true_divide),
    ("floordiv", numpy.floor_divide),
    ("mod", numpy.remainder),
    ("pow", numpy.power),
    ("and", numpy.bitwise_and),
    ("or", numpy.bitwise_or),
    ("xor", numpy.bitwise_xor),
]:
    setattr(TraceProxy, f"__{_name}__", _operator(_ufunc))
    setattr(TraceProxy, f"__r{_name}__", _operator(_ufunc, reflected=True))
for _name, _ufunc in [
    ("lt", numpy.less),
    ("le", numpy.less_equal),
    ("gt", numpy.greater),
    ("ge", numpy.greater_equal),
    ("eq", numpy.equal),
    ("ne", numpy.not_equal),
    ("neg", numpy.negative),
    ("pos", numpy.positive),
    ("abs", numpy.absolute),
    ("invert", numpy.invert),
]:
    setattr(TraceProxy, f"__{_name}__", _operator(_ufunc))
TraceProxy.__hash__ = None


class _Fused:
    """``strict.fuse(kernel_name=...)(fn)``: traces ``fn`` on every call with device arrays; one "kernel"."""

    def __init__(self, fn, name):
        self.fn, self.name = fn, name

    def __call__(self, *args):
        if getattr(_tracing, "on", False):  # called from a fused function being traced: part of its kernel
            return self.fn(*args)
        if not any(isinstance(a, StrictArray) for a in args):
            return self.fn(*args)  # no device array: as cupy.fuse, the plain function
        for a in args:
            if not isinstance(a, _FUSE_ARGUMENT_TYPES):
                raise TypeError(f"Invalid argument type for {self.name!r}: {type(a).__name__}")
        _tracing.on = True
        try:
            out = self.fn(*(TraceProxy(a._a) if isinstance(a, StrictArray) else a for a in args))
        finally:
            _tracing.on = False
        KERNELS[f"fused {self.name}"] += 1
        inputs = {id(a._a) for a in args if isinstance(a, StrictArray)}
        return _untrace(out, inputs)


def _untrace(out, inputs):
    if isinstance(out, tuple):
        return tuple(_untrace(o, inputs) for o in out)
    if not isinstance(out, TraceProxy):
        raise TypeError(f"a fused function returned a {type(out).__name__}, not a traced array")
    return StrictArray(out._a.copy() if id(out._a) in inputs else out._a)  # new arrays, as on CuPy


# -- random: CuPy's Generator API -------------------------------------------------------------------------
class Philox4x3210:
    """Stands in for cupy.random.Philox4x3210. It draws NumPy's PCG64 numbers for the seed, so that the
    strict backend's masks, and so its training, match NumPy's exactly; on a GPU they differ."""

    def __init__(self, seed=None, *, size=-1):
        if size > 0 and size % 256:  # CuPy's kernel would write past the states (backend.philox_states)
            raise ValueError(f"Philox4x3210(size={size}): not a whole number of 256-thread blocks")
        GENERATORS.append((seed, size))
        self._g = numpy.random.default_rng(seed)


class Generator:
    def __init__(self, bit_generator):
        self._bits = bit_generator

    def random(self, size=None, dtype=numpy.float64, out=None):
        return StrictArray(self._bits._g.random(size, dtype=dtype))


class _Random:
    Generator = Generator
    Philox4x3210 = Philox4x3210

    @staticmethod
    def default_rng(seed=None):
        raise TypeError(
            "default_rng on the device builds an XORWOW generator, whose ~270k states are slow "
            "to set up (curand_init); use Generator(Philox4x3210(seed))"
        )


class StrictModule:
    """The array module of StrictArray: NumPy's functions, with host arrays refused."""

    ndarray = StrictArray
    random = _Random()

    @staticmethod
    def asarray(a, dtype=None):
        if isinstance(a, StrictArray):
            return a if dtype is None else StrictArray(a._a.astype(dtype, copy=False))
        TRANSFERS["to_device"] += 1
        return StrictArray(numpy.array(a, dtype=dtype))

    @staticmethod
    def asnumpy(a):
        TRANSFERS["to_host"] += 1
        return a._a.copy() if isinstance(a, StrictArray) else numpy.asarray(a)

    @staticmethod
    def fuse(kernel_name=None):
        return lambda fn: _Fused(fn, kernel_name or fn.__name__)

    @staticmethod
    def get_array_module(*args):
        # As cupy.get_array_module, which knows its tracing objects too
        return strict if any(isinstance(a, (StrictArray, TraceProxy)) for a in args) else numpy

    def __getattr__(self, name):
        attr = getattr(numpy, name)
        if isinstance(attr, (type, numbers.Number)) or not callable(attr):
            return attr  # dtypes, constants
        if isinstance(attr, numpy.ufunc):
            return _ufunc(attr)
        return lambda *args, **kwargs: _wrap(
            attr(*_refuse_traced(name, args), **{k: _unwrap(v) for k, v in kwargs.items()})
        )


def _ufunc(ufunc):
    """strict.tanh & co: traced inside a fused function; else applied to device arrays (one kernel)."""

    def call(*args, **kwargs):
        if any(isinstance(a, TraceProxy) for a in args):
            return _trace_ufunc(ufunc, *args, **kwargs)
        if any(isinstance(a, StrictArray) for a in args):
            return ufunc(*args, **kwargs)  # through StrictArray.__array_ufunc__, which counts it
        return _wrap(ufunc(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    call.__name__ = ufunc.__name__
    return call


def _refuse_traced(name, args):
    if any(isinstance(a, TraceProxy) for a in args):
        raise TypeError(f"{name} inside a fused function: cupy.fuse traces ufuncs, not other functions")
    return _unwrap(args)


strict = StrictModule()


def register():
    from minirnn.backend import register_array_module

    register_array_module("strict", strict, StrictArray)
