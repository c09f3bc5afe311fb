"""What a hostile or unlucky user cannot break: one writer per run, kills between the writes of a
checkpoint, checkpoints that name code, checkpoints with wrong fields, and inputs that would hang or
exhaust the machine. Each refusal is one line (and at most a hint line), the right exit status,
no traceback, and nothing written."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy
import pytest

from minirnn import checkpoint, sample
from minirnn import train as train_module
from minirnn.checkpoint import CheckpointError
from minirnn.optim import Adam
from minirnn.rundir import RunBusy, RunDir
from minirnn.train import TrainConfig, resume_config, train

from .test_train import ROOT, TEXT, TINY  # the tiny text and flags the train tests use
from .test_train import tiny as _train_tiny


def tiny(tmp_path, **kw) -> TrainConfig:
    """test_train's tiny run, checkpointing every 2 of its 8 steps and never evaluating."""
    return _train_tiny(tmp_path, **dict(dict(max_steps=8, eval_every=0, checkpoint_every=2), **kw))


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")


def snapshot(root: Path) -> dict:
    """Every file under root with its size and modification time: what 'nothing changed' compares."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def assert_refused(status, err, code=2, *needles):
    lines = err.strip().splitlines()
    assert status == code, err
    assert "Traceback" not in err and 1 <= len(lines) <= 2, err
    assert len(lines) == 1 or lines[1].startswith("hint: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- one writer per run --------------------------------------------------------------------------------------
# Each racer imports everything first, then waits for the same "go" file, so both reach the lock together.
RACER = """
    import os, sys, time
    from minirnn import train
    while not os.path.exists("go"):
        time.sleep(0.001)
    sys.exit(train.main(sys.argv[1:]))
"""


def race(cwd, *argvs):
    (cwd / "go").unlink(missing_ok=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(RACER), *argv],
            cwd=cwd,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    time.sleep(1.5)  # the imports
    (cwd / "go").touch()
    return [(p.wait(timeout=120), *p.communicate()) for p in procs]


def test_two_fresh_runs_on_one_out_one_wins_and_the_other_changes_nothing(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    for attempt in range(4):
        out = f"run{attempt}"
        common = ["--data", "t.txt", *TINY, "--max-steps", "3", "--quiet", "--out", out]
        results = race(tmp_path, common + ["--seed", "1"], common + ["--seed", "2"])
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 2], results
        (winner,) = [seed for seed, (code, _, _) in zip((1, 2), results) if code == 0]
        (loser,) = [err for code, _, err in results if code == 2]
        assert_refused(2, loser, 2)
        assert "being trained by process" in loser or "already exists" in loser, loser
        # The directory is the winner's alone: its config and its checkpoint agree on the seed.
        assert json.loads((tmp_path / out / "config.json").read_text())["seed"] == winner
        assert checkpoint.load(tmp_path / out)[0]["train"]["seed"] == winner


def test_two_resumes_at_once_one_wins_and_no_metrics_row_is_lost(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    train(tiny(tmp_path, max_steps=6, checkpoint_every=3))
    for steps in (12, 18, 24):
        resume = ["--resume", "run", "--max-steps", str(steps), "--quiet"]
        results = race(tmp_path, resume, resume)
        assert sorted(code for code, _, _ in results) == [0, 2], results
        (loser,) = [err for code, _, err in results if code == 2]
        assert_refused(2, loser, 2, "being trained by process")
        rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == list(range(1, steps + 1))
        assert checkpoint.load(tmp_path / "run")[0]["step"] == steps


def test_a_held_run_is_refused_naming_its_process_and_left_as_it_is(tmp_path):
    first = train(tiny(tmp_path, max_steps=4))
    with RunDir(first.run_dir) as held:
        held.claim()
        before = snapshot(first.run_dir)
        with pytest.raises(RunBusy, match=f"being trained by process {os.getpid()}"):
            train(resume_config(first.run_dir, max_steps=8))
        with pytest.raises(RunBusy):  # the same for a new run that names it as --out while it is held
            RunDir(first.run_dir).claim()
        assert snapshot(first.run_dir) == before
    assert train(resume_config(first.run_dir, max_steps=6)).step == 6  # released: it goes on


# -- a kill between the writes of a checkpoint ---------------------------------------------------------------
KILLER = """
    import json, os, signal, sys
    from minirnn import checkpoint
    from minirnn.train import TrainConfig, train
    point, nth, config, seen = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), []

    def hook(p):
        if p == point:
            seen.append(p)
            if len(seen) == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.fault_hook = hook
    train(TrainConfig(**config))
"""


def litter(run_dir: Path) -> list:
    """What no checkpoint accounts for: temporaries, arrays that no JSON names, JSONs without arrays."""
    ckpts = run_dir / "checkpoints"
    named = {json.loads(p.read_text())["arrays"]["file"] for _, p in checkpoint.list_checkpoints(ckpts)}
    found = [p.name for p in run_dir.rglob("*") if p.name.endswith((".tmp", ".tmp.png"))]
    found += [p.name for p in ckpts.glob("*.npz") if p.name not in named]
    found += [
        p.name
        for _, p in checkpoint.list_checkpoints(ckpts)
        if not (ckpts / json.loads(p.read_text())["arrays"]["file"]).exists()
    ]
    return found


@pytest.mark.parametrize(
    "point, nth, litter_left",
    [
        ("arrays written", 2, True),  # half an arrays file under its temporary name
        ("arrays renamed", 2, True),  # the arrays of step 4 in place, its JSON never written
        ("json written", 2, True),  # the JSON's temporary
        ("json renamed", 2, False),  # step 4 complete, before the prune
        ("pruning", 1, True),  # the arrays of step 2 gone, its JSON not yet
    ],
)
def test_a_kill_between_the_writes_loses_nothing_and_the_resume_sweeps(tmp_path, point, nth, litter_left):
    cfg = tiny(tmp_path, keep=1, dropout=0.25)
    whole = train(replace(cfg, out=str(tmp_path / "whole")))
    config = json.dumps(vars(replace(cfg, out=str(tmp_path / "run"))))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLER), point, str(nth), config],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    run = tmp_path / "run"
    meta, _ = checkpoint.load(run)  # the newest checkpoint is whole: the one before, or the new one
    assert meta["step"] == (4 if point in ("json renamed", "pruning") else 2)
    assert bool(litter(run)) == litter_left, litter(run)
    rest = train(resume_config(run, max_steps=8))
    assert litter(run) == []  # the resume swept it
    assert rest.step == 8
    _, a = checkpoint.load(tmp_path / "whole")
    _, b = checkpoint.load(run)
    assert sorted(a) == sorted(b) and all(numpy.array_equal(a[k], b[k]) for k in a)  # bit-identical
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert [r["loss"] for r in rows] == [r["loss"] for r in whole.history]


def test_a_run_killed_before_its_first_checkpoint_can_be_resumed(tmp_path):
    first = train(tiny(tmp_path, max_steps=3, checkpoint_every=0))
    ckpts = first.run_dir / "checkpoints"
    for p in list(ckpts.iterdir()):  # as if killed after config.json, before any checkpoint
        p.unlink()
    (first.run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n{"step": 2, "lo')
    again = train(resume_config(first.run_dir, max_steps=3))
    assert again.step == 3 and [r["loss"] for r in again.history] == [r["loss"] for r in first.history]
    assert len((first.run_dir / "metrics.jsonl").read_text().splitlines()) == 3


# -- no code from a checkpoint -------------------------------------------------------------------------------
EVIL = "import pathlib\npathlib.Path('pwned').write_text('imported')\nclass Cell:\n    pass\n"


@pytest.fixture
def evil_run(tmp_path):
    """A run whose checkpoint and config.json name evil:Cell, with evil.py beside it (importable with -m)."""
    run = train(tiny(tmp_path, max_steps=2)).run_dir
    (tmp_path / "evil.py").write_text(EVIL)
    path = checkpoint.find(run)
    meta = json.loads(path.read_text())
    meta["model"]["cell"] = meta["train"]["cell"] = "evil:Cell"
    path.write_text(json.dumps(meta))
    return run


@pytest.mark.parametrize(
    "command",
    [
        ["minirnn.sample", "--checkpoint", "run"],
        ["minirnn.sample", "--checkpoint", "run", "--cell", "lstm"],
        ["minirnn.visualize", "--checkpoint", "run", "--text", "First"],
        ["minirnn.train", "--resume", "run", "--max-steps", "4"],
    ],
)
def test_a_checkpoint_naming_a_module_beside_it_does_not_import_it(evil_run, command):
    before = snapshot(evil_run)
    proc = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=evil_run.parent,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_refused(proc.returncode, proc.stderr, 2, "evil:Cell")
    assert ("--cell evil:Cell" in proc.stderr) != ("lstm" in command)  # says how to trust it, or what differs
    assert not (evil_run.parent / "pwned").exists()
    assert snapshot(evil_run) == before


def test_a_cell_by_import_path_loads_when_the_user_names_it(tmp_path):
    run = train(tiny(tmp_path, cell="minirnn.gru:GRU", max_steps=2)).run_dir
    with pytest.raises(CheckpointError, match="pass --cell minirnn.gru:GRU"):
        sample.load_model(run)
    with pytest.raises(CheckpointError, match="pass --cell minirnn.gru:GRU"):
        resume_config(run, max_steps=4)
    model, vocab, _ = sample.load_model(run, cell="minirnn.gru:GRU")
    assert len(sample.sample(model, vocab, "First", 5, seed=0)[0]) == 10
    assert train(resume_config(run, max_steps=4, cell="minirnn.gru:GRU")).step == 4


# -- hostile checkpoint fields -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("good")
    return train(tiny(tmp, max_steps=2, dropout=0.1)).run_dir


def set_field(meta, dotted, value):
    node, keys = meta, dotted.split(".")
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


DELETE = object()
PCG = {"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}, "has_uint32": 0, "uinteger": 0}


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("format_version", "1", "format version '1'"),
        ("step", -1, "step is -1"),
        ("step", "3", "step is '3'"),
        ("step", True, "step is True"),
        ("vocab", "abc", "vocab is 'abc'"),
        ("vocab", ["a"], "vocab is ['a']"),
        ("vocab", ["ab", "c"], "vocab is"),
        ("vocab", [1, 2], "vocab is"),
        ("model.hidden_size", "16", "model.hidden_size is '16'"),
        ("model.hidden_size", 0, "model.hidden_size is 0"),
        ("model.num_layers", 2.0, "model.num_layers is 2.0"),
        ("model.cell", 5, "model.cell is 5"),
        ("model.cell", "nosuch", "model.cell is 'nosuch'"),
        ("model.dropout", 1.5, "model.dropout is 1.5"),
        ("model.vocab_size", 3, "model.vocab_size is 3 but the vocabulary"),
        ("model.extra", 1, "model is"),
        ("model", DELETE, None),  # a checkpoint may lack the model: load is fine, sampling refuses (below)
        ("dtype", "float16", "dtype is 'float16'"),
        ("elapsed", -5, "elapsed is -5"),
        ("elapsed", float("nan"), "elapsed is nan"),
        ("metrics", [], "metrics is []"),
        ("optimizer.t", -1, "optimizer.t is -1"),
        ("optimizer.t", DELETE, "optimizer but no optimizer.t"),
        ("optimizer.lr", -1, "optimizer.lr is -1"),
        ("optimizer.name", "sgd", "optimizer.name is 'sgd'"),
        ("rng.dropout", 5, "rng.dropout is 5"),
        ("rng.dropout", {"bit_generator": "MT19937"}, "rng.dropout is"),
        ("rng.dropout", PCG, "rng.dropout is"),
        ("data.batches.pointer", 10**9, "data.batches.pointer 1000000000 is past"),
        ("data.batches.epoch", -1, "data.batches.epoch is -1"),
        ("data.batches.rng", "x", "data.batches.rng is 'x'"),
        ("train.hidden_size", "x", "train.hidden_size is 'x'"),
        ("train.seed", -1, "train.seed is -1"),
        ("train.dtype", "int8", "train.dtype is 'int8'"),
        ("arrays.file", "../../secret.npz", "arrays.file is '../../secret.npz'"),
        ("arrays.sha256", "zz", "arrays.sha256 is 'zz'"),
        ("arrays.names", "param.dec.W", "arrays.names is"),
    ],
)
def test_hostile_checkpoint_fields_are_one_line_naming_the_field(good_run, tmp_path, field, value, needle):
    run = tmp_path / "copy"
    (run / "checkpoints").mkdir(parents=True)
    for p in (good_run / "checkpoints").iterdir():
        (run / "checkpoints" / p.name).write_bytes(p.read_bytes())
    path = checkpoint.find(run)
    meta = json.loads(path.read_text())
    set_field(meta, field, value)
    path.write_text(json.dumps(meta))
    if needle is None:
        meta, arrays = checkpoint.load(run)
        with pytest.raises(CheckpointError, match="no model description"):
            checkpoint.build_model(meta, arrays)
        return
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(run)
    message = str(info.value)
    assert "\n" not in message and needle in message, message


def rewrite_arrays(run, change):
    path = checkpoint.find(run)
    meta = json.loads(path.read_text())
    npz = path.with_name(meta["arrays"]["file"])
    with numpy.load(npz) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    npz.unlink()
    checkpoint.save(
        path.parent,
        meta["step"],
        arrays,
        {k: v for k, v in meta.items() if k not in ("format", "format_version", "step", "arrays")},
    )


@pytest.mark.parametrize(
    "change, needle",
    [
        (
            lambda a: a.update({"param.dec.b": a["param.dec.b"].astype(numpy.float16)}),
            "param.dec.b has dtype float16",
        ),
        (
            lambda a: a.update({"param.dec.b": a["param.dec.b"].astype(numpy.int64)}),
            "param.dec.b has dtype int64",
        ),
        (lambda a: a["param.dec.W"].__setitem__((0, 0), numpy.nan), "param.dec.W holds NaN"),
        (lambda a: a["opt.v.dec.b"].__setitem__(0, -1.0), "opt.v.dec.b (Adam's second moment) has negative"),
        (lambda a: a.update({"opt.m.dec.b": a["opt.m.dec.b"][:1]}), "opt.m.dec.b has shape"),
        (lambda a: a.update({"code.x": numpy.zeros(1, numpy.float32)}), "code.x is neither"),
    ],
)
def test_hostile_checkpoint_arrays_are_one_line_naming_the_array(good_run, tmp_path, change, needle):
    run = tmp_path / "copy"
    (run / "checkpoints").mkdir(parents=True)
    for p in (good_run / "checkpoints").iterdir():
        (run / "checkpoints" / p.name).write_bytes(p.read_bytes())
    rewrite_arrays(run, change)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(run)
    assert "\n" not in str(info.value) and needle in str(info.value), str(info.value)


def test_model_sizes_that_disagree_with_the_arrays_allocate_nothing(good_run, tmp_path):
    path = checkpoint.find(good_run)
    meta, arrays = checkpoint.load(path)
    for field, value in (("num_layers", 1_000_000), ("hidden_size", 10_000_000)):
        wrong = dict(meta, model=dict(meta["model"], **{field: value}))
        with pytest.raises(CheckpointError, match="its arrays hold"):
            checkpoint.build_model(wrong, arrays)


# -- hostile command lines -----------------------------------------------------------------------------------
@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """A directory with a text, a FIFO, a symlink loop and a run with only config.json; cwd is it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train_module, "keep_freed_memory", lambda: False)  # leave this process's malloc alone
    Path("t.txt").write_text(TEXT)
    os.mkfifo("fifo")
    os.symlink("loop2", "loop1")
    os.symlink("loop1", "loop2")
    return tmp_path


TRAIN_CASES = [
    (["--seed", "-1"], "--seed must be 0 or more"),
    (["--cell", "os:system"], "is not a cell"),
    (["--cell", "builtins:print"], "is not a cell"),
    (["--cell", "minirnn.model:CharRNN"], "is not a cell"),
    (["--cell", ":"], "unknown cell"),
    (["--cell", "../x:Y"], "unknown cell"),
    (["--cell", "nosuchmodule:Cell"], "cannot load cell"),
    (["--hidden-size", "10000000"], "would need at least"),
    (["--num-layers", "1000000"], "would need at least"),
    (["--data", "fifo"], "FIFO"),
    (["--data", "/dev/zero"], "character device"),
    (["--data", "loop1"], "symbolic links"),
    (["--data", ""], "--data must be a non-empty path"),
    (["--data", "."], "is a directory"),
    (["--out", ""], "--out must be a non-empty path"),
    (["--resume", ""], "--resume needs a run directory"),
    (["--resume", "nowhere"], "no such checkpoint or run directory"),
    (["--resume", "t.txt"], "is not a checkpoint"),
    (["--lr", "inf"], "--lr must be a positive number"),
    (["--dropout", "nan"], "--dropout must be in [0, 1)"),
    (["--threads", "-1"], "--threads must be 0 or more"),
    (["--resume", ".", "--out", "x"], "drop --out"),
]


@pytest.mark.parametrize("argv, needle", TRAIN_CASES, ids=[" ".join(a) for a, _ in TRAIN_CASES])
def test_hostile_train_flags_are_one_line_exit_2_and_write_nothing(hostile, capsys, argv, needle):
    before = snapshot(hostile)
    status = train_module.main(["--data", "t.txt", *TINY, "--max-steps", "1", *argv])
    err = capsys.readouterr().err
    assert_refused(status, err, 2, needle)
    assert snapshot(hostile) == before and not Path("runs").exists()


SAMPLE_CASES = [
    (["--seed", "-1"], "--seed must be 0 or more"),
    (["--num-samples", "1000000000"], "would need at least"),
    (["--length", "10000000000000"], "would need at least"),
    (["--prime-file", "fifo"], "FIFO"),
    (["--prime-file", "/dev/zero"], "character device"),
    (["--prime-file", ""], "the file name is empty"),
    (["--prime-file", "loop1"], "symbolic links"),
    (["--prime", "x", "--prime-file", "t.txt"], "not allowed with argument"),
    (["--checkpoint", ""], "no checkpoint"),
]


@pytest.mark.parametrize("argv, needle", SAMPLE_CASES, ids=[" ".join(a) for a, _ in SAMPLE_CASES])
def test_hostile_sample_flags_are_one_line_exit_2(hostile, good_run, capsys, argv, needle):
    before = snapshot(hostile)
    try:
        status = sample.main(
            ["--checkpoint", str(good_run), *(["--prime", "F"] if "--prime-file" not in argv else []), *argv]
        )
    except SystemExit as exc:  # argparse's own errors exit from inside
        status = exc.code
    assert_refused(status, capsys.readouterr().err, 2, needle)
    assert snapshot(hostile) == before


def test_a_long_prime_comes_from_a_file(good_run, tmp_path, capsys):
    (tmp_path / "prime.txt").write_text(TEXT * 40)  # 10,000+ characters; the command line caps one at 128 KiB
    assert (
        sample.main(
            [
                "--checkpoint",
                str(good_run),
                "--prime-file",
                str(tmp_path / "prime.txt"),
                "--length",
                "5",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith(TEXT * 40)


def test_sample_into_a_closed_pipe_and_ctrl_c_are_quiet(good_run):
    cmd = [
        sys.executable,
        "-m",
        "minirnn.sample",
        "--checkpoint",
        str(good_run),
        "--prime",
        "F",
        "--num-samples",
        "4",
        "--seed",
        "0",
        "--length",
    ]
    # 80,000 characters: more than a pipe holds, so the write meets the closed end
    head = subprocess.run(
        " ".join(cmd) + " 20000 | head -c 10",
        shell=True,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    # stderr holds only the line that says which checkpoint was read (pretrained.resolve)
    assert len(head.stdout) == 10 and head.stderr.startswith("using ") and head.stderr.count("\n") == 1, (
        head.stderr
    )
    proc = subprocess.Popen(
        cmd + ["200000"], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    time.sleep(2.0)  # past the imports: drawing 200,000 characters takes longer than this
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "", err


def test_quiet_still_says_how_to_continue_after_a_signal(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "minirnn.train",
            "--data",
            "t.txt",
            *TINY,
            "--quiet",
            "--max-steps",
            "1000000",
            "--checkpoint-every",
            "0",
            "--out",
            "run",
        ],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / "run" / "config.json").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err == "", err
    assert "SIGTERM: saved step" in out and "--resume run" in out


def test_a_second_signal_stops_at_once_and_names_the_newest_checkpoint(tmp_path, monkeypatch, capsys):
    """Two Ctrl-Cs inside step 5: the first asks for a save after the step, the second stops at once."""
    real, calls = Adam.step, []

    def impatient(self, grads):
        calls.append(1)
        if len(calls) == 5:  # the update of step 5
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, grads)

    monkeypatch.setattr(Adam, "step", impatient)
    monkeypatch.setattr(train_module, "keep_freed_memory", lambda: False)
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    argv = [
        "--data",
        str(text),
        *TINY,
        "--max-steps",
        "20",
        "--checkpoint-every",
        "3",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
    ]
    assert train_module.main(argv) == 130
    line, hint = capsys.readouterr().err.strip().splitlines()
    assert "SIGINT: stopped at once" in line and "newest checkpoint is" in line and "ckpt-000003.json" in line
    assert hint == f"hint: continue with python -m minirnn.train --resume {tmp_path / 'run'}"
