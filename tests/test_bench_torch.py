"""The benchmark's PyTorch side on a GPU, checked without one: a like-for-like comparison or none."""

import os
import pathlib
import subprocess
import sys
from types import SimpleNamespace

from minirnn.bench_torch import set_tf32

ROOT = pathlib.Path(__file__).resolve().parent.parent

# A torch built without CUDA, as pip installs on a machine with no GPU (or by mistake on one with).
CPU_TORCH = """
__version__ = "2.5.1+cpu"


class cuda:
    @staticmethod
    def is_available():
        return False
"""


def test_bench_refuses_backend_cupy_with_a_torch_that_has_no_cuda(tmp_path):
    """Comparing CuPy with PyTorch on the CPU would be no comparison: one line, exit 2, before the GPU."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(CPU_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "minirnn.bench", "--backend", "cupy"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "torch 2.5.1+cpu has no CUDA" in proc.stderr and "--no-torch" in proc.stderr


def _torch_backends(new_api):
    ns = SimpleNamespace
    if new_api:  # PyTorch >= 2.9: fp32_precision settings, and mixing them with allow_tf32 is refused
        return ns(
            backends=ns(
                fp32_precision="none",
                cuda=ns(matmul=ns(fp32_precision="none")),
                cudnn=ns(rnn=ns(fp32_precision="none")),
            )
        )
    return ns(backends=ns(cuda=ns(matmul=ns(allow_tf32=True)), cudnn=ns(allow_tf32=True)))


def test_tf32_is_turned_off_and_on_with_the_flags_of_older_torch():
    torch = _torch_backends(new_api=False)
    set_tf32(torch, False)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
    set_tf32(torch, True)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)


def test_tf32_is_turned_off_with_the_precision_settings_of_torch_2_9():
    torch = _torch_backends(new_api=True)
    set_tf32(torch, False)
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert torch.backends.cudnn.rnn.fp32_precision == "ieee"
    assert not hasattr(torch.backends.cudnn, "allow_tf32")  # the old flag is not touched
    set_tf32(torch, True)
    assert torch.backends.cudnn.rnn.fp32_precision == "tf32"
