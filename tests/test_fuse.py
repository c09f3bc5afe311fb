"""The cells' elementwise functions fuse: they trace the way cupy.fuse traces them.

cupy.fuse calls a function with its own stand-in objects and records what is done
to them; only CuPy's ufuncs know those objects. The strict stand-in's ``fuse``
traces the same way (tests/strict_xp.py, TraceProxy), so a body that would not
compile on a GPU, and would silently run there one kernel per operation, fails
here. On a machine with CuPy the last tests check the real thing.
"""

import inspect
import warnings

import numpy
import pytest

from minirnn import CELLS, gru, lstm, pointwise, rnn
from minirnn import backend as backend_mod
from minirnn.backend import FuseFallbackWarning, array_module, fuse, get_backend

from . import strict_xp
from .conftest import CUPY, needs_cupy


def fused_functions():
    """Every function that backend.fuse wraps in the cells' files and pointwise.py, by name."""
    found = {}
    for module in (pointwise, rnn, lstm, gru):
        for name, obj in vars(module).items():
            if hasattr(obj, "compiled") and getattr(obj, "__module__", "") == module.__name__:
                found[f"{module.__name__.split('.')[-1]}.{name}"] = obj
    return found


FUSED = fused_functions()


def _arguments(fn, rng, N=3, H=4):
    """One (N, H) array per parameter of ``fn``; values in (0.05, 0.95), valid for gates and states alike."""
    return [rng.uniform(0.05, 0.95, size=(N, H)) for _ in inspect.signature(fn).parameters]


def test_every_cell_file_has_fused_functions():
    files = {name.split(".")[0] for name in FUSED}
    assert files == {"pointwise", "rnn", "lstm", "gru"}, sorted(FUSED)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_each_fused_function_traces_as_one_kernel_and_matches_numpy(name, rng):
    fn = FUSED[name]
    be = get_backend("strict", "float64")
    host = _arguments(fn, rng)
    strict_xp.KERNELS.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FuseFallbackWarning)  # a fallback is a failure here
        out = fn(*(be.asarray(a) for a in host))
    assert dict(strict_xp.KERNELS) == {f"fused {fn.__name__}": 1}  # one launch, nothing outside it
    expected = fn(*host)  # the plain NumPy function
    out, expected = (out, expected) if isinstance(out, tuple) else ((out,), (expected,))
    assert len(out) == len(expected)
    for o, e in zip(out, expected):
        numpy.testing.assert_array_equal(be.to_host(o), e)


# The elementwise kernels of one forward step on a GPU, past the two products x·Wx + b and h·Wh:
# what docs/backend.md#kernel-fusion states.
STEP_KERNELS = {
    "rnn": {"fused rnn_gates_forward": 1},  # the sum happens inside the kernel
    "lstm": {"add": 1, "fused sigmoid": 1, "fused lstm_cell_update": 1},  # a = xa + ah, σ(i, f, o), the rest
    "gru": {"fused gru_gates_forward": 1},  # the sums happen inside the kernel
}


@pytest.mark.parametrize("name", sorted(STEP_KERNELS))
def test_a_forward_step_is_one_to_three_elementwise_kernels(name, rng):
    be = get_backend("strict", "float32")
    N, H = 2, 5
    cell = CELLS[name]()
    p = {k: be.asarray(rng.normal(size=shape)) for k, shape in cell.param_shapes(3, H).items()}
    G = p["Wh"].shape[1]
    xa, ah = (be.asarray(rng.normal(size=(N, G))) for _ in range(2))
    state = tuple(be.asarray(rng.normal(size=(N, H))) for _ in cell.state_names)
    strict_xp.KERNELS.clear()
    cell.gates_forward(p, xa, ah, state)
    assert dict(strict_xp.KERNELS) == STEP_KERNELS[name]


# What each gate function would launch if it ran unfused (its plain body on device arrays, with
# sigmoid, itself fused, as one): what fusing saves, quoted in docs/backend.md#kernel-fusion.
UNFUSED_KERNELS = {
    "lstm_cell_update": 6,
    "lstm_gates_backward": 22,
    "gru_gates_forward": 11,
    "gru_gates_backward": 16,
    "rnn_gates_forward": 2,
    "rnn_gates_backward": 3,
}


@pytest.mark.parametrize("name", sorted(UNFUSED_KERNELS))
def test_unfused_the_gate_math_would_be_many_kernels(name, rng):
    fn = next(f for f in FUSED.values() if f.__name__ == name)
    be = get_backend("strict", "float32")
    args = [be.asarray(a) for a in _arguments(fn, rng)]
    strict_xp.KERNELS.clear()
    fn.__wrapped__(*args)  # the plain function, as after a fuse fallback
    assert sum(strict_xp.KERNELS.values()) == UNFUSED_KERNELS[name]


def test_a_numpy_ufunc_in_a_fused_body_does_not_trace():
    """The mistake this file guards against: numpy.tanh inside a fused function."""
    be = get_backend("strict", "float64")
    x = be.asarray(numpy.linspace(-1, 1, 5))

    def numpy_tanh(x):
        return 0.5 * numpy.tanh(x) + 0.5

    with pytest.raises(TypeError, match="numpy.tanh"):
        strict_xp.strict.fuse()(numpy_tanh)(x)
    # through backend.fuse it still gives the right numbers, unfused, and says so loudly
    wrapped = fuse(numpy_tanh)
    with pytest.warns(FuseFallbackWarning, match="FUSE FALLBACK.*numpy_tanh"):
        y = wrapped(x)
    numpy.testing.assert_allclose(be.to_host(y), 0.5 * numpy.tanh(numpy.linspace(-1, 1, 5)) + 0.5)


UNTRACEABLE = {
    "a NumPy function": lambda x: numpy.concatenate([x, x]),
    "an if on a value": lambda x: x if x > 0 else -x,
    "indexing": lambda x: x[0],
    "a host array": lambda x: x + numpy.ones(3),
    "a module function that is not a ufunc": lambda x: strict_xp.strict.concatenate([x, x]),
}


@pytest.mark.parametrize("what", sorted(UNTRACEABLE))
def test_the_tracer_refuses_what_cupy_fuse_cannot_trace(what):
    x = get_backend("strict", "float64").asarray(numpy.ones((2, 3)))
    with pytest.raises(TypeError):
        strict_xp.strict.fuse()(UNTRACEABLE[what])(x)


def test_array_module_names_the_device_for_tracing_objects():
    seen = []

    def probe(x):
        seen.append(array_module(x))
        return x * 2

    be = get_backend("strict", "float64")
    strict_xp.strict.fuse()(probe)(be.asarray(numpy.ones(2)))
    assert seen == [strict_xp.strict]
    assert array_module(numpy.ones(2), 1.0, None) is numpy


def test_fuse_on_numpy_is_the_plain_function(rng):
    x = rng.normal(size=(2, 3))
    numpy.testing.assert_array_equal(pointwise.sigmoid(x), 0.5 * numpy.tanh(0.5 * x) + 0.5)
    assert pointwise.sigmoid.compiled.get(numpy) is None  # nothing is compiled for NumPy


# -- CuPy's own tracer, which needs CuPy but no GPU ---------------------------------------------------
def _trace_with_cupy(cupy, fn, ndim=2):
    """Run the first step of cupy.fuse on ``fn``, as CuPy 14's _FusionHistory.get_fusion does: call it
    with _FusionVarArray objects, recording CuPy ufunc calls. Returns how many operations it recorded.
    Only compiling (NVRTC) and launching the kernel are left for a GPU."""
    from cupy._core import _fusion_thread_local, fusion

    history, local = fusion._FusionHistory(), _fusion_thread_local.thread_local
    local.history, local.is_old_fusing = history, True
    try:
        history.ndim = ndim
        args = [
            fusion._FusionVarArray(history._fresh_premap_param(numpy.dtype(numpy.float32)), ndim, False)
            for _ in inspect.signature(fn).parameters
        ]
        out = fn(*args)
        assert all(isinstance(o, fusion._FusionVarArray) for o in (out if isinstance(out, tuple) else (out,)))
        history._emit_operation_code()
        return len(history.op_list)
    finally:
        local.history, local.is_old_fusing = None, False


@pytest.fixture
def cupy_tracer(monkeypatch):
    cupy = pytest.importorskip("cupy")
    fusion = pytest.importorskip("cupy._core.fusion")
    if not hasattr(fusion, "_FusionHistory"):
        pytest.skip("this CuPy traces fused functions differently from CuPy 14")
    monkeypatch.setattr(backend_mod, "_DEVICE_MODULES", {**backend_mod._DEVICE_MODULES, "cupy": cupy})
    return cupy


@pytest.mark.parametrize("name", sorted(FUSED))
def test_cupys_own_tracer_traces_every_fused_function(name, cupy_tracer):
    assert _trace_with_cupy(cupy_tracer, FUSED[name].__wrapped__) > 0


def test_cupys_own_tracer_refuses_numpy_tanh(cupy_tracer):
    with pytest.raises(TypeError, match="tanh"):
        _trace_with_cupy(cupy_tracer, lambda x: 0.5 * numpy.tanh(0.5 * x) + 0.5)


# -- on a GPU ----------------------------------------------------------------------------------------
@needs_cupy
@pytest.mark.parametrize("name", sorted(FUSED))
def test_each_fused_function_compiles_with_cupy_fuse(name, rng):
    fn = FUSED[name]
    cupy = CUPY.xp
    host = _arguments(fn, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FuseFallbackWarning)
        out = fn(*(cupy.asarray(a, dtype=numpy.float32) for a in host))
    assert fn.compiled[cupy] is not fn.__wrapped__  # a cupy.fuse kernel, not the plain function
    expected = fn(*(a.astype(numpy.float32) for a in host))
    out, expected = (out, expected) if isinstance(out, tuple) else ((out,), (expected,))
    for o, e in zip(out, expected):
        numpy.testing.assert_allclose(cupy.asnumpy(o), e, rtol=1e-5, atol=1e-6)


@needs_cupy
def test_device_masks_repeat_per_seed_and_are_not_numpys():
    be = get_backend("cupy", "float32")
    a, b, c = (be.to_host(be.uniform(s, (64, 128))) for s in (7, 7, 8))
    numpy.testing.assert_array_equal(a, b)  # a resume on the GPU draws the masks it would have drawn
    assert not numpy.array_equal(a, c) and a.dtype == numpy.float32 and 0 <= a.min() and a.max() < 1
    host = get_backend("numpy", "float32").uniform(7, (64, 128))
    assert not numpy.array_equal(a, host)  # Philox on the GPU, PCG64 on NumPy: docs/backend.md says so
    assert abs(a.mean() - 0.5) < 0.01  # 8,192 uniform numbers: the standard error of the mean is 0.003
