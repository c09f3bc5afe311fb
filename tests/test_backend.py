"""The backend seam: one module knows about CuPy, and its absence is a clear one-line error."""

import os
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
            if (
                words[:2] == ["import", "cupy"]
                or words[:2] == ["from", "cupy"]
                or 'import_module("cupy' in line
            ):
                offenders.append(f"{path.name}: {line.strip()}")
    assert offenders == []


def test_library_runs_with_cupy_absent():
    # sys.modules["cupy"] = None makes "import cupy" fail, as on a machine without it.
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import numpy, minirnn\n"
        "from minirnn.model import CharRNN, ModelConfig\n"
        "m = CharRNN(ModelConfig(5, 4, 1, 'lstm'))\n"
        "x = numpy.zeros((2, 3), dtype=numpy.int64)\n"
        "loss, _, _ = m.loss_and_grads(x, x)\n"
        "print(float(loss))\n"
        "try:\n"
        "    minirnn.get_backend('cupy')\n"
        "except minirnn.BackendError as e:\n"
        "    print('ERR', e)\n"
    )
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


# A "cupy" package that stands in for a broken CUDA machine: it imports, and the part named by
# FAKE_CUPY_FAIL fails as CuPy does when that library is missing. The rest is the strict stand-in.
FAKE_CUPY = """
import os
from tests.strict_xp import StrictArray as ndarray, strict

FAIL = os.environ.get("FAKE_CUPY_FAIL", "")


class _Runtime:
    @staticmethod
    def getDeviceCount():
        if FAIL == "device":
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return 1


class _Stream:
    def synchronize(self):
        pass


class cuda:
    runtime = _Runtime
    get_current_stream = staticmethod(_Stream)


def matmul(a, b):
    if FAIL == "cublas":
        raise ImportError("libcublas.so.12: cannot open shared object file: No such file or directory")
    return strict.matmul(a, b)


def tanh(x):
    if FAIL == "nvrtc":
        raise RuntimeError("CuPy failed to load libnvrtc.so.12: OSError: libnvrtc.so.12: cannot open "
                           "shared object file: No such file or directory")
    return strict.tanh(x)


def __getattr__(name):
    return getattr(strict, name)
"""

MISSING = {
    "device": "no GPU answers",
    "cublas": "matrix multiply (cuBLAS) fails",
    "nvrtc": "compiling an elementwise kernel (NVRTC) fails",
}


@pytest.fixture
def fake_cupy(tmp_path):
    """A directory holding the fake cupy; returns the environment that puts it first on the path."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text(FAKE_CUPY)
    root = PACKAGE.parent
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}


@pytest.mark.parametrize("fail", sorted(MISSING))
def test_health_check_names_what_is_missing_in_one_line(fail, fake_cupy, monkeypatch):
    monkeypatch.setenv("FAKE_CUPY_FAIL", fail)
    monkeypatch.syspath_prepend(fake_cupy["PYTHONPATH"].split(os.pathsep)[0])
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    monkeypatch.delitem(backend_mod._DEVICE_MODULES, "cupy", raising=False)
    with pytest.raises(BackendError) as err:
        get_backend("cupy")
    msg = str(err.value)
    assert "\n" not in msg and MISSING[fail] in msg
    if fail != "device":
        assert "cupy-cuda12x[ctk]" in msg  # what to install
    sys.modules.pop("cupy", None)


def test_health_check_passes_where_everything_answers(fake_cupy, monkeypatch):
    monkeypatch.setenv("FAKE_CUPY_FAIL", "")
    monkeypatch.syspath_prepend(fake_cupy["PYTHONPATH"].split(os.pathsep)[0])
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    monkeypatch.setattr(backend_mod, "_DEVICE_MODULES", dict(backend_mod._DEVICE_MODULES))
    monkeypatch.setattr(backend_mod, "_DEVICE_ARRAY_TYPES", list(backend_mod._DEVICE_ARRAY_TYPES))
    monkeypatch.delitem(backend_mod._DEVICE_MODULES, "cupy", raising=False)
    assert get_backend("cupy").name == "cupy"
    sys.modules.pop("cupy", None)


@pytest.mark.parametrize(
    "command",
    [["minirnn.gradcheck", "--backend", "cupy"], ["minirnn.train", "--backend", "cupy", "--max-steps", "1"]],
)
@pytest.mark.parametrize("fail", ["device", "nvrtc"])
def test_commands_report_a_broken_gpu_in_one_line(command, fail, fake_cupy, tmp_path):
    """What a student sees on a machine whose CUDA is incomplete: one line, exit 2, nothing written."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", *command] + (["--out", str(out)] if "minirnn.train" in command else [])
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
        env={**fake_cupy, "FAKE_CUPY_FAIL": fail},
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert MISSING[fail] in proc.stderr
    assert not out.exists()


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
    for (loss, norm), (ref_loss, ref_norm) in zip(losses, ref_losses):
        assert be.scalar(loss) == pytest.approx(float(ref_loss), rel=1e-12)
        assert be.scalar(norm) == pytest.approx(float(ref_norm), rel=1e-12)
    for name in model.params:
        numpy.testing.assert_allclose(
            be.to_host(model.params[name]), ref_model.params[name], rtol=1e-10, atol=1e-12
        )


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

    monkeypatch.setattr(
        backend_mod, "_DEVICE_ARRAY_TYPES", [(Arr, FussyModule())] + backend_mod._DEVICE_ARRAY_TYPES
    )

    @fuse
    def double(a):
        return 2 * a

    x = Arr(numpy.arange(3.0))
    with pytest.warns(backend_mod.FuseFallbackWarning, match="FUSE FALLBACK.*unfused"):
        y = double(x)
    numpy.testing.assert_array_equal(y._a, [0.0, 2.0, 4.0])
    numpy.testing.assert_array_equal(double(x)._a, [0.0, 2.0, 4.0])  # no second warning needed


def test_device_dropout_masks_use_a_counter_based_generator():
    """On the device a mask comes from Philox (cheap to set up per mask), never from default_rng (XORWOW,
    ~270k slow curand_init calls on an H200); the same seed gives the same mask, so resumes are exact."""
    be = get_backend("strict", "float32")
    del strict_xp.GENERATORS[:]
    a, b = be.to_host(be.uniform(5, (3, 4))), be.to_host(be.uniform(5, (3, 4)))
    assert strict_xp.GENERATORS == [(5, 256), (5, 256)]  # 12 numbers: one block of 256 states
    numpy.testing.assert_array_equal(a, b)
    assert a.dtype == numpy.float32
    with pytest.raises(TypeError, match="XORWOW"):
        strict_xp.strict.random.default_rng(0)


@pytest.mark.parametrize(
    "n, states", [(1, 256), (256, 256), (257, 512), (64 * 50 * 256, backend_mod.PHILOX_STATES)]
)
def test_philox_states_are_whole_blocks_and_capped(n, states):
    # a fixed cap, not CuPy's default (which grows with the GPU), so a seed means one mask on any GPU
    assert backend_mod.philox_states(n) == states


def test_a_resume_on_another_backend_says_the_masks_change(tmp_path, capsys):
    from minirnn.train import resume_config, train

    from .conftest import train_tiny

    run, _ = train_tiny(tmp_path, dropout=0.2, max_steps=4, checkpoint_every=4)
    capsys.readouterr()
    train(resume_config(run, backend="strict", max_steps=6, quiet=False))
    assert "resumes on strict" in capsys.readouterr().err
    train(resume_config(run, backend="strict", max_steps=8, quiet=False))  # strict to strict: nothing to say
    assert "note:" not in capsys.readouterr().err
