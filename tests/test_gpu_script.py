""".ci/gpu, run without a GPU: a stub python stands in for every command it runs.

The stub logs its arguments and fails, prints a fuse fallback warning, or hangs when its
arguments contain the text given in FAKE_FAIL, FAKE_FALLBACK or FAKE_HANG. So these tests
check the script itself: which commands each part runs, that any failure makes the exit
status non-zero, and that the summary names what failed.
"""

import os
import pathlib
import shutil
import subprocess

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / ".ci" / "gpu"

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
has() { [ -n "$1" ] && case "$ARGS" in *"$1"*) return 0 ;; esac; return 1; }
ARGS="$*"
if has "${FAKE_HANG:-}"; then sleep 30; fi
if has "${FAKE_FALLBACK:-}"; then
    echo "lstm.py:90: FuseFallbackWarning: FUSE FALLBACK: cupy.fuse could not compile lstm_cell_update"
fi
if has "${FAKE_FAIL:-}"; then echo "stub: failing"; exit 1; fi
echo "stub: ok"
"""

pytestmark = pytest.mark.skipif(
    not SCRIPT.exists() or shutil.which("bash") is None or shutil.which("timeout") is None,
    reason=".ci/gpu needs bash and timeout (and is not in the sdist)",
)


def run_gpu(tmp_path, *parts, **fake):
    """Run .ci/gpu PARTS with the stub; returns (exit status, summary text, the commands the stub saw)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stubs = [("python", FAKE_PYTHON), ("nvidia-smi", "#!/bin/sh\necho 'stub GPU'\n")]
    if fake.pop("mpiexec", None):  # MPICH's mpiexec next to python, as the mpi extra installs it
        stubs.append(("mpiexec", FAKE_PYTHON))
    for name, body in stubs:
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "commands.txt"
    log.write_text("")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": str(bin_dir / "python"),
        "OUT": str(tmp_path / "out"),
        "FAKE_LOG": str(log),
        "GPU_CHECK_TIMEOUT": fake.pop("timeout", "60"),
    }
    env.update({f"FAKE_{k.upper()}": v for k, v in fake.items()})
    proc = subprocess.run(
        ["bash", str(SCRIPT), *parts], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    summary = tmp_path / "out" / "summary.txt"
    return proc, summary.read_text() if summary.exists() else "", log.read_text().splitlines()


def test_by_default_every_part_runs_and_all_passing_exits_0(tmp_path):
    proc, summary, commands = run_gpu(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 11 checks passed" in summary and "FAIL" not in summary
    ran = "\n".join(commands)
    for expected in [
        "-m pytest",
        "tests/test_fuse.py",
        "-m minirnn.gradcheck --backend cupy",
        "--cell lstm",
        "--cell gru",
        "--cell rnn",
        "-m minirnn.train --backend cupy",
        "--resume",
        "-m minirnn.sample",
    ]:
        assert expected in ran, expected
    assert all("--torch-tf32" in c for c in commands if "minirnn.bench" in c)
    assert "skipped: mpi" in summary  # no mpiexec next to the stub python


def test_a_failing_check_makes_the_exit_status_non_zero_and_is_named(tmp_path):
    proc, summary, commands = run_gpu(tmp_path, fail="minirnn.gradcheck")
    assert proc.returncode == 1
    assert "FAILED: gradcheck (1 of 11 checks" in summary
    assert any("minirnn.bench" in c for c in commands)  # the checks after it still ran


def test_a_fuse_fallback_fails_the_run_and_stands_out(tmp_path):
    proc, summary, _ = run_gpu(tmp_path, "train", fallback="minirnn.train")
    assert proc.returncode == 1
    assert "!!! FUSE FALLBACK" in summary and "lstm_cell_update" in summary
    assert "FAILED: fuse_fallback" in summary


def test_one_part_runs_alone(tmp_path):
    proc, summary, commands = run_gpu(tmp_path, "gradcheck")
    assert proc.returncode == 0
    assert commands == ["-m minirnn.gradcheck --backend cupy"]
    assert "all 1 checks passed" in summary


def test_a_check_that_hangs_is_stopped_and_reported(tmp_path):
    proc, summary, _ = run_gpu(tmp_path, "gradcheck", hang="gradcheck", timeout="1")
    assert proc.returncode == 1 and "timed out after 1 s" in summary


def test_an_unknown_part_is_refused_in_one_line_before_anything_runs(tmp_path):
    proc, summary, commands = run_gpu(tmp_path, "tests", "benchmark")
    assert proc.returncode == 2 and commands == [] and summary == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "benchmark" in proc.stderr


def test_the_mpi_part_runs_two_ranks_on_the_gpu_where_mpiexec_is_next_to_python(tmp_path):
    proc, summary, commands = run_gpu(tmp_path, "mpi", mpiexec="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 2 checks passed" in summary and "skipped" not in summary
    assert any(c.startswith("-n 2 ") and "-m minirnn.train --backend cupy" in c for c in commands), commands
