"""The benchmark command runs (tiny sizes here: speed is measured by the command, not in tests)."""

import subprocess
import sys

import pytest

from minirnn.bench import build_parser, gemm_gflop, passthrough, time_training


def test_gemm_count_matches_the_pytorch_reference():
    # ../shared/bench/torch_reference.py prints "GEMM work ~33.39 GFLOP/step" for the tutorial config.
    assert round(gemm_gflop("lstm", 128, 50, 65, 256, 2), 2) == 33.39


def test_bench_runs_on_a_tiny_configuration():
    cmd = [
        sys.executable,
        "-m",
        "minirnn.bench",
        "--no-torch",
        "--batch-size",
        "4",
        "--seq-length",
        "5",
        "--hidden-size",
        "8",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--sample-chars",
        "20",
        "--sample-reps",
        "1",
        "--cell",
        "gru",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "training step" in proc.stdout and "sampling 20 chars" in proc.stdout
    assert '"minirnn_step_s"' in proc.stdout.splitlines()[-1]
    blas = next(line for line in proc.stdout.splitlines() if line.startswith("BLAS: "))
    assert ", kernel " in blas  # which kernel ran, as threadpoolctl reports it


def test_the_blas_line_says_when_the_environment_forced_a_kernel():
    from minirnn.bench import blas_line

    # An environment handed in, not this process's: the tests never change how OpenBLAS runs.
    assert "forced by OPENBLAS_CORETYPE=Haswell" in blas_line({"OPENBLAS_CORETYPE": "Haswell"})
    assert blas_line({}).endswith("(chosen by the library itself)")


def test_bench_runs_minirnn_in_shards_when_asked():
    cmd = [
        sys.executable,
        "-m",
        "minirnn.bench",
        "--no-torch",
        "--batch-size",
        "4",
        "--seq-length",
        "5",
        "--hidden-size",
        "8",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--sample-chars",
        "0",
        "--shards",
        "2",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "2 shard(s) of about 2 rows" in proc.stdout


def test_memory_is_measured_with_the_allocator_setting_of_the_run():
    # --memory runs each side in a fresh process; it must keep (or not) freed memory as the timed run did
    assert "--system-malloc" in passthrough(build_parser().parse_args(["--system-malloc"]))
    assert "--system-malloc" not in passthrough(build_parser().parse_args([]))


@pytest.mark.parametrize("flag", [["--batch-size", "0"], ["--threads", "0"], ["--shards", "-1"]])
def test_bench_refuses_bad_sizes_in_one_line(flag):
    proc = subprocess.run(
        [sys.executable, "-m", "minirnn.bench", *flag], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


class FakeSide:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def train_step(self, i):
        self.log.append(self.name)


def test_training_is_timed_in_blocks_each_after_an_untimed_step():
    log = []
    times = time_training([FakeSide("a", log), FakeSide("b", log)], steps=4, warmup=1)
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4}
    # warm-up a b; then blocks of 1 untimed + up to 3 timed steps, the order flipping each round
    assert "".join(log) == "ab" + "aaaa" + "bbbb" + "bb" + "aa"
