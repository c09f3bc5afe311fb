"""minirnn.checkpoint: atomic saves, keep the newest K, one clear error for every damaged checkpoint,
and checkpoints written from a device backend that load on the CPU."""

import json
import os

import numpy
import pytest

from minirnn import checkpoint
from minirnn.checkpoint import CheckpointError


def arrays(seed=0):
    rng = numpy.random.default_rng(seed)
    return {"param.W": rng.standard_normal((3, 4)).astype(numpy.float32), "opt.m.W": numpy.zeros((3, 4))}


def test_save_load_round_trip(tmp_path):
    path = checkpoint.save(tmp_path, 7, arrays(), {"vocab": ["a", "b"], "note": "é"})
    meta, got = checkpoint.load(tmp_path)
    assert path.name == "ckpt-000007.json"
    assert meta["step"] == 7 and meta["format_version"] == checkpoint.FORMAT_VERSION and meta["note"] == "é"
    for name, a in arrays().items():
        assert type(got[name]) is numpy.ndarray and got[name].dtype == a.dtype
        numpy.testing.assert_array_equal(got[name], a)
    # The arrays file is a plain .npz: NumPy reads it without pickle, so loading never runs code.
    with numpy.load(tmp_path / meta["arrays"]["file"], allow_pickle=False) as f:
        assert sorted(f.files) == sorted(arrays())


def test_keeps_only_the_newest_k(tmp_path):
    for step in (10, 20, 30, 40):
        checkpoint.save(tmp_path, step, arrays(step), {}, keep=2)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [30, 40]
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert checkpoint.find(tmp_path).name == "ckpt-000040.json"


def test_saving_the_same_step_again_replaces_it(tmp_path):
    checkpoint.save(tmp_path, 5, arrays(0), {})
    checkpoint.save(tmp_path, 5, arrays(1), {})
    _, got = checkpoint.load(tmp_path)
    numpy.testing.assert_array_equal(got["param.W"], arrays(1)["param.W"])
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_find_accepts_run_dir_checkpoints_dir_and_files(tmp_path):
    path = checkpoint.save(tmp_path / "checkpoints", 3, arrays(), {})
    meta, _ = checkpoint.load(path)
    npz = path.with_name(meta["arrays"]["file"])
    for p in (tmp_path, tmp_path / "checkpoints", path, npz):
        assert checkpoint.find(p) == path


def test_a_crash_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, 1, arrays(1), {})

    def savez_then_crash(f, **kw):
        f.write(b"PK\x03\x04 half a zip")  # some bytes are out, then the machine "dies"
        raise OSError("disk unplugged")

    monkeypatch.setattr(checkpoint.numpy, "savez", savez_then_crash)
    with pytest.raises(OSError):
        checkpoint.save(tmp_path, 2, arrays(2), {})
    monkeypatch.undo()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temporary left behind
    meta, got = checkpoint.load(tmp_path)
    assert meta["step"] == 1
    numpy.testing.assert_array_equal(got["param.W"], arrays(1)["param.W"])


def test_a_crash_before_the_json_is_renamed_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, 1, arrays(1), {})
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", replace)
    with pytest.raises(OSError):
        checkpoint.save(tmp_path, 2, arrays(2), {})
    monkeypatch.undo()
    assert checkpoint.load(tmp_path)[0]["step"] == 1


@pytest.mark.parametrize(
    "damage, match",
    [
        ("truncate npz", "corrupt or truncated"),
        ("flip npz byte", "corrupt or truncated"),
        ("delete npz", "arrays file .* is missing"),
        ("truncate json", "corrupt or truncated"),
        ("other version", "format version 99"),
        ("not ours", "not a minirnn checkpoint"),
    ],
)
def test_damaged_checkpoints_give_one_clear_line(tmp_path, damage, match):
    path = checkpoint.save(tmp_path, 4, arrays(), {})
    meta = json.loads(path.read_text())
    npz = tmp_path / meta["arrays"]["file"]
    if damage == "truncate npz":
        npz.write_bytes(npz.read_bytes()[:100])
    elif damage == "flip npz byte":
        raw = bytearray(npz.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        npz.write_bytes(bytes(raw))
    elif damage == "delete npz":
        npz.unlink()
    elif damage == "truncate json":
        path.write_text(path.read_text()[:50])
    elif damage == "other version":
        path.write_text(json.dumps(dict(meta, format_version=99)))
    elif damage == "not ours":
        path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match=match) as info:
        checkpoint.load(tmp_path)
    assert "\n" not in str(info.value)


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        checkpoint.load(tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "nope")


def test_refuses_device_arrays(tmp_path):
    class NotHost(numpy.ndarray):
        pass

    with pytest.raises(TypeError, match="not a host numpy.ndarray"):
        checkpoint.save(tmp_path, 1, {"x": numpy.zeros(3).view(NotHost)}, {})


# -- a checkpoint written on a "GPU" samples and resumes on the CPU ------------------------------------------
# "strict" is the tests' CuPy stand-in (tests/strict_xp.py): its arrays are not numpy.ndarray and refuse
# implicit conversion, so a device array that reached checkpoint.save without backend.to_host would fail.
def test_checkpoint_from_a_device_run_loads_samples_and_resumes_on_numpy(tmp_path):
    from minirnn.sample import load_model, sample
    from minirnn.train import TrainConfig, resume_config, train

    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 30)
    cfg = TrainConfig(
        data=str(text),
        hidden_size=8,
        batch_size=2,
        seq_length=6,
        max_steps=6,
        print_every=3,
        eval_every=3,
        checkpoint_every=3,
        out=str(tmp_path / "run"),
        cache_dir="",
        quiet=True,
        backend="strict",
    )
    result = train(cfg)
    assert isinstance(result.history, list) and result.step == 6
    meta, arrs = checkpoint.load(result.run_dir)
    assert meta["backend"] == "strict"
    assert all(type(a) is numpy.ndarray for a in arrs.values())
    model, vocab, _ = load_model(result.run_dir, "numpy")
    assert model.backend.name == "numpy" and type(model.flat) is numpy.ndarray
    assert len(sample(model, vocab, "the ", 20, seed=0)[0]) == 24
    resumed = train(resume_config(result.run_dir, max_steps=9, backend="numpy"))
    assert resumed.step == 9


# -- what a kill can leave, and the sweep that removes it -------------------------------------------------
def test_prune_deletes_the_arrays_before_the_json(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, 1, arrays(1), {}, keep=1)

    def killed(point):
        if point == "pruning":
            raise SystemExit("killed")  # stands in for kill -9 between the two unlinks

    monkeypatch.setattr(checkpoint, "fault_hook", killed)
    with pytest.raises(SystemExit):
        checkpoint.save(tmp_path, 2, arrays(2), {}, keep=1)
    monkeypatch.undo()
    # Step 1's JSON is left without arrays (never arrays without a JSON); the newest is whole.
    assert sorted(p.name.split(".")[0] for p in tmp_path.glob("*.npz")) == ["ckpt-000002"]
    assert checkpoint.load(tmp_path)[0]["step"] == 2
    assert [p.name for p in checkpoint.sweep(tmp_path)] == ["ckpt-000001.json"]
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [2]


def test_sweep_removes_temporaries_and_unnamed_arrays_only(tmp_path):
    checkpoint.save(tmp_path, 1, arrays(1), {})
    keep = sorted(p.name for p in tmp_path.iterdir())
    (tmp_path / ".ckpt-000002.123.npz.tmp").write_bytes(b"half")
    (tmp_path / ".ckpt-000002.json.123.tmp").write_bytes(b"{")
    (tmp_path / "ckpt-000002.0123456789ab.npz").write_bytes(b"arrays whose JSON never came")
    (tmp_path / "notes.txt").write_text("not ours")
    removed = checkpoint.sweep(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep + ["notes.txt"])
    assert checkpoint.load(tmp_path)[0]["step"] == 1


def test_a_full_disk_names_the_file_it_was_writing(tmp_path, monkeypatch):
    import errno

    def full(f, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")  # what write() raises: no file name

    monkeypatch.setattr(checkpoint.numpy, "savez", full)
    with pytest.raises(OSError) as info:
        checkpoint.save(tmp_path, 3, arrays(), {})
    assert info.value.filename.endswith(".npz.tmp") and not list(tmp_path.iterdir())
