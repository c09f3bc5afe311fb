"""The backend seam: one module knows about CuPy, and its absence is a clear one-line error."""
import pathlib
import subprocess
import sys

import numpy
import pytest

import minirnn
from minirnn import backend as backend_mod
from minirnn.backend import BackendError, get_backend
from minirnn.model import CharRNN, ModelConfig
from minirnn.optim import Adam, clip_by_global_norm

from . import strict_xp

PACKAGE = pathlib.Path(minirnn.__file__).parent


def test_no_module_but_the_backend_imports_cupy():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "backend.py":
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            words = line.strip().split()
            if words[:2] == ["import", "cupy"] or words[:2] == ["from", "cupy"] or "import_module(\"cupy" in line:
                offenders.append(f"{path.name}: {line.strip()}")
    assert offenders == []


def test_library_runs_with_cupy_absent():
    # sys.modules["cupy"] = None makes "import cupy" fail, as on a machine without it.
    code = ("import sys; sys.modules['cupy'] = None\n"
            "import numpy, minirnn\n"
            "from minirnn.model import CharRNN, ModelConfig\n"
            "m = CharRNN(ModelConfig(5, 4, 1, 'lstm'))\n"
            "x = numpy.zeros((2, 3), dtype=numpy.int64)\n"
            "loss, _, _ = m.loss_and_grads(x, x)\n"
            "print(float(loss))\n"
            "try:\n"
            "    minirnn.get_backend('cupy')\n"
            "except minirnn.BackendError as e:\n"
            "    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert abs(float(lines[0]) - numpy.log(5)) < 0.5
    assert lines[1].startswith("ERR CuPy is not installed") and "pip install" in lines[1]


def test_missing_cupy_is_one_line_error(monkeypatch):
    real_import = backend_mod.importlib.import_module

    def fake_import(name, *a, **k):
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(backend_mod.importlib, "import_module", fake_import)
    monkeypatch.delitem(backend_mod._DEVICE_MODULES, "cupy", raising=False)
    with pytest.raises(BackendError) as err:
        get_backend("cupy")
    assert "\n" not in str(err.value) and "cupy-cuda12x" in str(err.value)


def test_cupy_without_gpu_is_one_line_error(monkeypatch):
    class FakeRuntime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected\nmore detail")

    class FakeCupy:
        class cuda:
            runtime = FakeRuntime

    monkeypatch.setattr(backend_mod.importlib, "import_module", lambda name: FakeCupy)
    monkeypatch.delitem(backend_mod._DEVICE_MODULES, "cupy", raising=False)
    with pytest.raises(BackendError) as err:
        get_backend("cupy")
    msg = str(err.value)
    assert "\n" not in msg and "no GPU answers" in msg and "cudaErrorNoDevice" in msg


def test_cli_reports_missing_gpu_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "minirnn.gradcheck", "--backend", "cupy"],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        pytest.skip("a GPU is available here")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_unknown_backend_and_dtype():
    with pytest.raises(BackendError):
        get_backend("tpu")
    with pytest.raises(BackendError):
        get_backend("numpy", "float16")


def test_strict_stand_in_refuses_what_cupy_refuses():
    be = get_backend("strict", "float64")
    d = be.asarray(numpy.ones(3))
    with pytest.raises(TypeError):
        numpy.asarray(d) + 1  # implicit conversion
    with pytest.raises(TypeError):
        d + numpy.ones(3)  # host and device mixed
    with pytest.raises(TypeError):
        float(d.sum())  # a hidden host sync
    assert be.scalar(d.sum()) == 3.0  # the explicit door works


def _train_step(be, seed=0):
    rng = numpy.random.default_rng(seed)
    model = CharRNN(ModelConfig(11, 8, 2, "lstm", dropout=0.2), be, seed=seed)
    opt = Adam(model.params)
    x = be.asarray(rng.integers(0, 11, size=(3, 6)))
    y = be.asarray(rng.integers(0, 11, size=(3, 6)))
    lengths = be.asarray(numpy.array([6, 4, 2]))
    losses = []
    for step in range(3):
        loss, _, _ = model.loss_and_grads(x, y, lengths=lengths, dropout_seed=step)
        norm = clip_by_global_norm(model.grads, 1.0)
        opt.step(model.grads)
        losses.append((loss, norm))
    return model, losses


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_training_steps_run_on_the_strict_device_without_host_syncs(cell):
    """Three training steps on the stand-in: no implicit conversion, no mixing, no hidden
    sync, and not one device-to-host copy until we ask for the numbers."""
    be = get_backend("strict", "float64")
    before = strict_xp.TRANSFERS["to_host"]
    model, losses = _train_step(be)
    assert strict_xp.TRANSFERS["to_host"] == before
    ref_model, ref_losses = _train_step(get_backend("numpy", "float64"))
    for (l, n), (rl, rn) in zip(losses, ref_losses):
        assert be.scalar(l) == pytest.approx(float(rl), rel=1e-12)
        assert be.scalar(n) == pytest.approx(float(rn), rel=1e-12)
    for name in model.params:
        numpy.testing.assert_allclose(be.to_host(model.params[name]), ref_model.params[name], rtol=1e-10, atol=1e-12)


def test_generation_step_on_the_strict_device():
    be = get_backend("strict", "float32")
    model = CharRNN(ModelConfig(7, 5, 2, "gru"), be)
    state = model.zero_state(2)
    ids = be.asarray(numpy.array([1, 2]))
    for _ in range(3):
        logits, state = model.step(ids, state)
        ids = logits.argmax(axis=-1)
    assert be.to_host(logits).shape == (2, 7)


def test_fuse_falls_back_to_the_plain_function_once(monkeypatch):
    """Where a CuPy version cannot fuse a function, it still runs, unfused, with a warning."""
    from minirnn.backend import fuse

    class Arr(strict_xp.StrictArray):
        pass

    class FussyModule(strict_xp.StrictModule):
        @staticmethod
        def fuse(kernel_name=None):
            def compile_(fn):
                def broken(*args):
                    raise NotImplementedError("cannot fuse")
                return broken
            return compile_

    monkeypatch.setattr(backend_mod, "_DEVICE_ARRAY_TYPES", [(Arr, FussyModule())] + backend_mod._DEVICE_ARRAY_TYPES)

    @fuse
    def double(a):
        return 2 * a

    x = Arr(numpy.arange(3.0))
    with pytest.warns(UserWarning, match="unfused"):
        y = double(x)
    numpy.testing.assert_array_equal(y._a, [0.0, 2.0, 4.0])
    numpy.testing.assert_array_equal(double(x)._a, [0.0, 2.0, 4.0])  # no second warning needed
