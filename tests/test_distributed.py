"""minirnn.distributed: N MPI ranks train exactly what one process trains; resume across rank counts;
failures end every rank. The tests that need MPI run ``mpiexec`` (oversubscribed on small machines)
and skip cleanly without mpi4py."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

from minirnn import distributed
from minirnn.train import TrainConfig, train

from .mpi_helper import one_step
from .test_train import DIVERGING

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).with_name("mpiexec")
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or not MPIEXEC.exists(),
    reason="mpi4py and mpiexec are not installed (pip install 'minirnn[mpi]')",
)
TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
) * 8
# float64, a small model, dropout on (its masks must not depend on the ranks), 12 rows: 3 to 12 a rank.
FLAGS = [
    "--hidden-size",
    "16",
    "--batch-size",
    "12",
    "--seq-length",
    "8",
    "--dtype",
    "float64",
    "--dropout",
    "0.2",
    "--print-every",
    "1",
    "--eval-every",
    "5",
    "--eval-batches",
    "0",
    "--checkpoint-every",
    "5",
    "--cache-dir",
    "",
]


def env(tmp_path):
    return dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        MPLBACKEND="Agg",
        XDG_CACHE_HOME=str(tmp_path / "xdg"),
        OPENBLAS_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )


def mpirun(n, *args, tmp_path, timeout=240, popen=False):
    cmd = [str(MPIEXEC), "-n", str(n), sys.executable, *args]
    if popen:
        return subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    return subprocess.run(
        cmd, cwd=tmp_path, env=env(tmp_path), capture_output=True, text=True, timeout=timeout
    )


def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return path


def one_process(tmp_path, max_steps=10, extra=()):
    """The reference: a single process's metrics, run in this process."""
    from minirnn.train import build_parser

    args = vars(
        build_parser().parse_args(
            [
                "--data",
                str(text_file(tmp_path)),
                *FLAGS,
                "--max-steps",
                str(max_steps),
                "--out",
                str(tmp_path / "single"),
                *extra,
            ]
        )
    )
    return train(TrainConfig(**dict(args, quiet=True))).history


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_curve(rows, reference, rtol=1e-10):
    assert [r["step"] for r in rows] == [r["step"] for r in reference]
    for key in ("loss", "loss_avg", "grad_norm", "val_loss", "val_acc"):
        ours = [r[key] for r in rows if key in r]
        theirs = [r[key] for r in reference if key in r]
        assert len(ours) == len(theirs) > 0, key
        numpy.testing.assert_allclose(ours, theirs, rtol=rtol, err_msg=key)


# -- how a run knows it is distributed -------------------------------------------------------------
def test_a_run_is_distributed_when_an_mpi_launcher_started_it():
    assert not distributed.launched_by_mpi({})
    assert distributed.launched_by_mpi({"PMI_SIZE": "2"})  # MPICH's mpiexec, Intel MPI
    assert distributed.launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2"})  # Open MPI's mpirun
    assert isinstance(distributed.Single(), distributed.Single) and distributed.Single().writes


def test_asking_for_mpi_without_mpi4py_is_one_line_naming_the_extra(tmp_path):
    # mpi4py made unimportable, and the environment of a launcher: the run asks for MPI it cannot have
    code = "import sys; sys.modules['mpi4py'] = None\nimport minirnn.train as t; sys.exit(t.main())"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--data", str(text_file(tmp_path)), *FLAGS],
        cwd=tmp_path,
        env=dict(env(tmp_path), PMI_SIZE="2", PMI_RANK="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "minirnn[mpi]" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


# -- the same global batch -------------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_first_step_gradient_of_n_ranks_is_one_process_gradient(tmp_path, ranks):
    model, x, y, seed = one_step("numpy")
    loss, _, _ = model.loss_and_grads(x, y, dropout_seed=seed)
    proc = mpirun(
        ranks,
        str(ROOT / "tests" / "mpi_helper.py"),
        "grads",
        str(tmp_path / "g.npz"),
        "numpy",
        tmp_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    with numpy.load(tmp_path / "g.npz") as got:
        assert got["same"]  # every rank holds the same summed gradient, to the bit
        numpy.testing.assert_allclose(got["loss"], loss, rtol=1e-13)
        err = numpy.abs(got["grad"] - model.grad_flat).max() / numpy.abs(model.grad_flat).max()
        assert err < 1e-12, err


@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_n_ranks_train_the_losses_of_one_process(tmp_path, ranks):
    reference = one_process(tmp_path)
    proc = mpirun(
        ranks,
        "-m",
        "minirnn.train",
        "--data",
        "text.txt",
        *FLAGS,
        "--max-steps",
        "10",
        "--out",
        "mpi",
        tmp_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert_same_curve(metrics(tmp_path / "mpi"), reference)
    # Rank 0 alone speaks and writes: one line per step, one run directory, its checkpoints.
    assert proc.stdout.count("step     10/10") == 1 and proc.stdout.count("run ") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mpi",
        "single",
        "text.txt",
        "xdg",
    ]  # xdg: matplotlib's
    assert len(list((tmp_path / "mpi" / "checkpoints").glob("*.json"))) == 2


@needs_mpi
def test_threads_still_shard_each_ranks_rows(tmp_path):
    """128 rows on 2 ranks, each split again into 2 thread shards of 32 rows: the same losses."""
    extra = ["--batch-size", "128", "--threads", "2", "--eval-every", "0"]
    reference = one_process(tmp_path, max_steps=4, extra=extra)
    proc = mpirun(
        2,
        "-m",
        "minirnn.train",
        "--data",
        "text.txt",
        *FLAGS,
        *extra,
        "--max-steps",
        "4",
        "--out",
        "mpi",
        tmp_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    ours, theirs = [r["loss"] for r in metrics(tmp_path / "mpi")], [r["loss"] for r in reference]
    numpy.testing.assert_allclose(ours, theirs, rtol=1e-10)


@needs_mpi
def test_on_a_device_each_step_copies_the_gradient_once_each_way(tmp_path):
    """The strict CuPy stand-in counts host-device copies: beyond the batch's x and y (the two a
    single process makes too), one device-to-host and one host-to-device copy of the flat gradient."""
    model, x, y, seed = one_step("numpy")
    model.loss_and_grads(x, y, dropout_seed=seed)
    proc = mpirun(
        2,
        str(ROOT / "tests" / "mpi_helper.py"),
        "grads",
        str(tmp_path / "g.npz"),
        "strict",
        tmp_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    with numpy.load(tmp_path / "g.npz") as got:
        assert (int(got["to_host"]), int(got["to_device"])) == (1, 2 + 1)
        numpy.testing.assert_allclose(
            got["grad"], model.grad_flat, rtol=0, atol=1e-12 * abs(model.grad_flat).max()
        )


# -- resume across rank counts ---------------------------------------------------------------------
@needs_mpi
def test_resume_does_not_depend_on_the_number_of_ranks(tmp_path):
    reference = one_process(tmp_path, max_steps=15)
    steps = [(4, 5), (2, 10), (1, 15)]  # 4 ranks to step 5, then 2 ranks to step 10, then 1
    for ranks, until in steps:
        how = ["--out", "mpi"] if until == 5 else ["--resume", "mpi"]
        proc = mpirun(
            ranks,
            "-m",
            "minirnn.train",
            *(["--data", "text.txt", *FLAGS] if until == 5 else []),
            "--max-steps",
            str(until),
            *how,
            tmp_path=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
    assert_same_curve(metrics(tmp_path / "mpi"), reference)


# -- failures --------------------------------------------------------------------------------------
def ranks_of(proc) -> list[int]:
    """The pids of the python ranks under an mpiexec process (its grandchildren)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [proc.pid]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            todo.append(child)
            if "python" in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                found.append(child)
    return sorted(found)


def wait_for(predicate, seconds=120):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def alive(pid):
    """Whether a process runs: its /proc entry is there and it is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # the state follows the name, which may hold spaces


def long_run(tmp_path, *extra):
    text_file(tmp_path)
    return mpirun(
        2,
        "-m",
        "minirnn.train",
        "--data",
        "text.txt",
        *FLAGS,
        "--dropout",
        "0",
        "--max-steps",
        "100000",
        *extra,
        tmp_path=tmp_path,
        popen=True,
    )


@needs_mpi
def test_a_killed_rank_ends_the_job_and_the_run_resumes(tmp_path):
    proc = long_run(tmp_path, "--out", "mpi", "--checkpoint-every", "3")
    ckpts = tmp_path / "mpi" / "checkpoints"
    try:
        assert wait_for(lambda: ckpts.is_dir() and any(ckpts.glob("*.json"))), proc.stderr
        ranks = ranks_of(proc)
        assert len(ranks) == 2
        os.kill(ranks[1], signal.SIGKILL)
        start = time.monotonic()
        proc.wait(timeout=30)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0 and took < 10, (proc.returncode, took)
    # No rank left behind: the survivor is killed by the launcher, and may take a moment to go.
    assert wait_for(lambda: not any(alive(pid) for pid in ranks), seconds=10), [alive(p) for p in ranks]
    newest = max(int(p.stem.split("-")[1]) for p in ckpts.glob("*.json"))
    again = mpirun(
        2, "-m", "minirnn.train", "--resume", "mpi", "--max-steps", str(newest + 3), tmp_path=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert f"resumed at step {newest}" in again.stdout


@needs_mpi
def test_bad_input_on_one_rank_stops_every_rank_with_its_one_line(tmp_path):
    text_file(tmp_path)
    proc = mpirun(
        2,
        str(ROOT / "tests" / "mpi_helper.py"),
        "main",
        str(tmp_path / "missing.txt"),
        "--data",
        "DATA",
        *FLAGS,
        "--max-steps",
        "5",
        "--out",
        "mpi",
        tmp_path=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"minirnn.train: error: no such file: {tmp_path / 'missing.txt'}"
    ]
    assert not (tmp_path / "mpi").exists()  # refusing writes nothing


@needs_mpi
def test_bad_input_on_every_rank_is_still_one_line(tmp_path):
    proc = mpirun(3, "-m", "minirnn.train", "--data", "nothing.txt", *FLAGS, tmp_path=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no such file" in proc.stderr, proc.stderr


@needs_mpi
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_mpiexec_saves_once_and_exits_as_one_process_does(tmp_path, sig, code):
    proc = long_run(tmp_path, "--out", "mpi", "--checkpoint-every", "0")
    metrics = tmp_path / "mpi" / "metrics.jsonl"
    try:
        assert wait_for(lambda: metrics.is_file() and metrics.stat().st_size > 0), proc.stderr
        proc.send_signal(sig)  # to mpiexec, which passes it to every rank
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, err
    assert out.count(f"{sig.name}: saved step") == 1, out
    steps = [int(p.stem.split("-")[1]) for p in (tmp_path / "mpi" / "checkpoints").glob("*.json")]
    assert len(steps) == 1 and f"{sig.name}: saved step {steps[0]} " in out


@needs_mpi
def test_divergence_stops_every_rank_with_one_line(tmp_path):
    # As in test_train: a learning rate of 1e38 with clipping off overflows float32 within a few steps.
    text_file(tmp_path)
    flags = ["--hidden-size", "16", "--batch-size", "4", "--seq-length", "8", "--cache-dir", ""]
    proc = mpirun(
        2,
        "-m",
        "minirnn.train",
        "--data",
        "text.txt",
        *flags,
        *DIVERGING,
        tmp_path=tmp_path,
        timeout=120,
    )
    if proc.returncode == 0:
        pytest.skip("this platform's float32 did not overflow")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "training stopped" in line and "last good checkpoint is" in line


@needs_mpi
def test_fewer_rows_than_ranks_is_one_line(tmp_path):
    text_file(tmp_path)
    proc = mpirun(
        3,
        "-m",
        "minirnn.train",
        "--data",
        "text.txt",
        *FLAGS,
        "--batch-size",
        "2",
        tmp_path=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(
        "minirnn.train: error: --batch-size 2 is smaller than the 3 ranks: each rank needs"
    )


@needs_mpi
def test_a_launcher_of_another_mpi_is_one_line(tmp_path):
    """Open MPI's mpirun with MPICH's mpi4py: each process would be a world of one, training alone."""
    proc = subprocess.run(
        [sys.executable, "-m", "minirnn.train", "--data", str(text_file(tmp_path)), *FLAGS],
        cwd=tmp_path,
        env=dict(env(tmp_path), OMPI_COMM_WORLD_SIZE="2"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "started 2 processes but MPI sees a world of 1" in proc.stderr
    assert not (tmp_path / "runs").exists()


@needs_mpi
def test_a_rank_failing_alone_mid_run_ends_the_job(tmp_path):
    """Rank 0's disk fills while it writes a checkpoint: rank 1 must not wait for it for ever."""
    text_file(tmp_path)
    start = time.monotonic()
    proc = mpirun(
        2,
        str(ROOT / "tests" / "mpi_helper.py"),
        "full-disk",
        "--data",
        "text.txt",
        *FLAGS,
        "--max-steps",
        "100000",
        "--checkpoint-every",
        "3",
        "--out",
        "mpi",
        tmp_path=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert (
        "minirnn.train: rank 0: OSError: [Errno 28] No space left on device; stopping every rank"
        in proc.stderr
    )
    assert time.monotonic() - start < 60
