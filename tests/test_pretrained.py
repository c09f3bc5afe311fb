"""The model shipped inside the package, and which checkpoint each command reads (pretrained.resolve)."""

import configparser
import fnmatch
import json

import numpy
import pytest

from minirnn import checkpoint
from minirnn.data import Vocab, load_text
from minirnn.evaluate import evaluate_text
from minirnn.pretrained import HERE, resolve, shipped
from minirnn.pretrained.make import FLOAT16_TOLERANCE, make
from minirnn.train import train

from .test_train import ROOT, TEXT, assert_one_line_error, cli, tiny


@pytest.fixture(scope="module")
def shipped_model():
    meta, arrays = checkpoint.load(shipped())
    return meta, arrays, checkpoint.build_model(meta, arrays)


def test_the_shipped_model_has_the_loss_it_documents(shipped_model):
    meta, _, model = shipped_model
    got = evaluate_text(model, Vocab(meta["vocab"]), load_text(None), meta["train"]["val_fraction"])
    assert got.characters == 111_539  # the whole held-out 10% of Tiny Shakespeare
    assert abs(got.loss - meta["val_loss"]) < 1e-3, (got.loss, meta["val_loss"])
    assert f"validation loss {meta['val_loss']:.3f} nats/char" in (HERE / "MODEL.md").read_text()


def test_float16_storage_moved_the_loss_by_less_than_0_002(shipped_model):
    meta, arrays, _ = shipped_model
    e = meta["evaluation"]
    assert abs(e["float16"]["loss"] - e["float32"]["loss"]) < FLOAT16_TOLERANCE == 0.002
    assert {a.dtype for a in arrays.values()} == {numpy.dtype(numpy.float16)}


def test_the_shipped_files_are_small_and_pickle_free():
    files = [p for p in HERE.iterdir() if p.suffix in (".json", ".npz")]
    assert sum(p.stat().st_size for p in files) < 5_000_000
    npz = [p for p in files if p.suffix == ".npz"]
    assert len(npz) == 1
    with numpy.load(npz[0], allow_pickle=False) as f:  # would raise on an object array
        assert all(f[name].dtype.kind == "f" for name in f.files)


def test_setup_cfg_ships_the_model():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "minirnn.pretrained" in cfg["options"]["packages"].replace(",", " ").split()
    patterns = cfg["options.package_data"]["minirnn.pretrained"].replace(",", " ").split()
    for p in HERE.iterdir():
        if p.suffix in (".json", ".npz", ".md"):
            assert any(fnmatch.fnmatch(p.name, pat) for pat in patterns), p.name


def test_make_keeps_float16_within_tolerance(tmp_path):
    run = train(tiny(tmp_path, max_steps=20, eval_every=10, checkpoint_every=10))
    m = make(run.run_dir, tmp_path / "ship")
    # Recomputed here, not read back: the float16 copy against the run's float32 checkpoint.
    meta, arrays = checkpoint.load(checkpoint.find_best(run.run_dir))
    full = evaluate_text(checkpoint.build_model(meta, arrays), Vocab(meta["vocab"]), TEXT, 0.1)
    smeta, sarrays = checkpoint.load(tmp_path / "ship")
    half = evaluate_text(checkpoint.build_model(smeta, sarrays), Vocab(smeta["vocab"]), TEXT, 0.1)
    assert abs(half.loss - full.loss) < FLOAT16_TOLERANCE
    assert half.loss == pytest.approx(m["val_loss"], abs=1e-9)
    md = (tmp_path / "ship" / "MODEL.md").read_text()
    assert m["command"] in md and "--max-steps 20" in m["command"]


def test_sample_without_a_checkpoint_uses_the_shipped_model_and_says_so(tmp_path):
    proc = cli("minirnn.sample", "--length", "40", "--seed", "0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "shipped with minirnn" in proc.stderr and len(proc.stdout.strip()) >= 40


def test_visualize_without_a_checkpoint_writes_here(tmp_path):
    proc = cli("minirnn.visualize", "--text", "ROMEO:\nWhat light", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "shipped with minirnn" in proc.stderr and (tmp_path / "visualize.html").is_file()
    assert not (HERE / "visualize.html").exists()


def test_the_shipped_model_cannot_be_resumed(tmp_path):
    assert_one_line_error(
        cli("minirnn.train", "--resume", str(HERE), "--max-steps", "99999", cwd=tmp_path), "not resumed"
    )


# -- which checkpoint: the best by default for reading, the newest for resuming --------------------------
def test_resolve_picks_the_best_and_names_the_other(tmp_path):
    run = train(tiny(tmp_path, max_steps=6, eval_every=2, checkpoint_every=2, keep=1, lr=0.05))
    best, newest = checkpoint.find_best(run.run_dir), checkpoint.find(run.run_dir)
    path, note = resolve(run.run_dir)
    assert path == best
    if best != newest:
        assert "best checkpoint" in note and "--newest the newest" in note
        assert resolve(run.run_dir, newest=True)[0] == newest
    file_path, note = resolve(newest)
    assert file_path == newest and note == f"using {newest}"
    assert resolve(None)[0] == shipped()


def test_resume_from_best_sets_the_newer_checkpoints_aside(tmp_path):
    run = train(tiny(tmp_path, max_steps=6, eval_every=0, checkpoint_every=1, keep=10, quiet=False))
    d = run.run_dir / "checkpoints"
    marked = d / "ckpt-000002.json"  # marked the best by hand, as if its evaluation had been lowest
    for _, p in checkpoint.list_checkpoints(d):
        meta = json.loads(p.read_text())
        p.write_text(json.dumps(dict(meta, val_loss=0.0 if p == marked else 9.0)))
    proc = cli("minirnn.train", "--resume", str(run.run_dir), "--from-best", "--max-steps", "8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"resuming from the best checkpoint {marked}")
    steps = [s for s, _ in checkpoint.list_checkpoints(d)]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]  # 3 to 8 are the resumed run's
    assert (d / "after-000002" / "ckpt-000006.json").is_file()  # set aside, not deleted
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows) and rows[-1]["step"] == 8


def test_resume_says_which_checkpoint_and_from_best_needs_resume(tmp_path):
    run = train(tiny(tmp_path, max_steps=4, eval_every=2, checkpoint_every=2, quiet=False))
    proc = cli("minirnn.train", "--resume", str(run.run_dir), "--max-steps", "5", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("resuming from "), proc.stderr
    (tmp_path / "t.txt").write_text(TEXT)
    assert_one_line_error(cli("minirnn.train", "--data", "t.txt", "--from-best", cwd=tmp_path), "--resume")


def test_the_readme_opens_with_what_sample_prints(tmp_path):
    """The sample at the top of README.md is the shipped model's, from the command printed above it."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$ python -m minirnn.sample"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i] == "```")
    proc = cli("minirnn.sample", *lines[start].split()[4:], cwd=tmp_path)  # the flags after the module
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n").splitlines() == lines[start + 1 : end]
