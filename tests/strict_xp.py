"""A strict stand-in for CuPy, so the device code path runs (and is policed) without a GPU.

Its arrays wrap NumPy arrays but refuse what CuPy refuses, and a little more:

* implicit conversion to NumPy (``numpy.asarray(d)``, ``numpy.tanh`` of a mix)
  raises, as with CuPy; the only way out is ``strict.asnumpy`` (counted);
* mixing a host array with a device array in one operation raises;
* ``float(d)``, ``int(d)``, ``bool(d)`` and ``d.item()`` raise: on a GPU each
  is a hidden host synchronisation, and minirnn makes those only through
  ``Backend.to_host`` / ``Backend.scalar``, at the edges;
* reductions return 0-d arrays, never Python or NumPy scalars (CuPy does too).

``register()`` makes it available as ``get_backend("strict")``.
"""
from __future__ import annotations

import numbers

import numpy
from numpy.lib.mixins import NDArrayOperatorsMixin

TRANSFERS = {"to_host": 0, "to_device": 0}


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
            return lambda *args, **kwargs: _wrap(attr(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))
        return _wrap(attr) if isinstance(attr, numpy.ndarray) else attr


class _Generator:
    def __init__(self, seed):
        self._g = numpy.random.default_rng(seed)

    def random(self, size=None, dtype=numpy.float64):
        return StrictArray(self._g.random(size, dtype=dtype))


class _Random:
    @staticmethod
    def default_rng(seed=None):
        return _Generator(seed)


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
        # Stands in for cupy.fuse: the plain function, so the fused code path is taken.
        return lambda fn: fn

    def __getattr__(self, name):
        attr = getattr(numpy, name)
        if isinstance(attr, (type, numbers.Number)) or not callable(attr):
            return attr  # dtypes, constants
        return lambda *args, **kwargs: _wrap(attr(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))


strict = StrictModule()


def register():
    from minirnn.backend import register_array_module

    register_array_module("strict", strict, StrictArray)
