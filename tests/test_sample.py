"""minirnn.sample: generation from a checkpoint alone, priming that carries the state, temperature,
top-k, greedy, seeds, batches of samples, and one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from minirnn.sample import SampleError, load_model, pick, sample

from .conftest import TINY_TEXT, train_tiny

ROOT = Path(__file__).resolve().parents[1]
TEXT = TINY_TEXT


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny model trained for a few steps; the text is deleted afterwards: sampling must not need it."""
    run, data = train_tiny(tmp_path_factory.mktemp("sample"))
    data.unlink()
    return run


def cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "minirnn.sample", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_samples_from_a_run_directory_without_the_data(run_dir):
    proc = cli("--checkpoint", str(run_dir), "--length", "40", "--seed", "1", cwd=run_dir.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("The ") and len(proc.stdout.rstrip("\n")) >= 30


def test_same_seed_same_text_and_batches_of_samples(run_dir):
    model, vocab, _ = load_model(run_dir)
    a = sample(model, vocab, "To ", 60, seed=3, num_samples=4)
    b = sample(model, vocab, "To ", 60, seed=3, num_samples=4)
    assert a == b and len(a) == 4 and all(len(t) == 63 and t.startswith("To ") for t in a)
    assert len(set(a)) > 1  # the rows of the batch are drawn independently
    assert sample(model, vocab, "To ", 60, seed=4) != a[:1]


def test_greedy_top1_and_a_cold_temperature_agree(run_dir):
    model, vocab, _ = load_model(run_dir)
    greedy = sample(model, vocab, "the ", 50, greedy=True, num_samples=2)
    assert greedy[0] == greedy[1]
    assert sample(model, vocab, "the ", 50, top_k=1, seed=0) == greedy[:1]
    assert sample(model, vocab, "the ", 50, temperature=1e-4, seed=0) == greedy[:1]


def test_pick_respects_top_k_and_temperature():
    rng = numpy.random.default_rng(0)
    logits = numpy.tile(numpy.arange(10.0), (2000, 1))  # id 9 is the most likely
    drawn = pick(logits, rng, top_k=3)
    assert set(drawn.tolist()) == {7, 8, 9}
    assert (pick(logits, rng, greedy=True) == 9).all()
    cold = (pick(logits, rng, temperature=0.5) == 9).mean()
    hot = (pick(logits, rng, temperature=2.0) == 9).mean()
    assert cold > 0.8 > hot  # lower temperature: more conservative


def test_priming_carries_the_state_even_past_seq_length(run_dir):
    """Priming in one go (chunks of 256) must leave the same state as feeding one character at a time."""
    model, vocab, _ = load_model(run_dir)
    prime = (TEXT * 3)[:600]  # far longer than seq_length (8) and than one priming chunk
    be = model.backend
    state = model.zero_state(1)
    for i in vocab.encode(prime):
        logits, state = model.step(be.asarray(numpy.array([i])), state)
    expected = pick(be.to_host(logits), numpy.random.default_rng(0), greedy=True)
    got = sample(model, vocab, prime, 1, greedy=True)[0]
    assert got[len(prime) :] == vocab.chars[int(expected[0])]
    # And the prime matters: a different prime, a different continuation (for this model and seed).
    after_prime = sample(model, vocab, prime, 30, seed=0)[0][len(prime) :]
    after_t = sample(model, vocab, "T", 30, seed=0)[0][1:]
    assert after_prime != after_t


def test_unknown_prime_characters_are_named(run_dir):
    model, vocab, _ = load_model(run_dir)
    with pytest.raises(SampleError, match="'ZQ'"):
        sample(model, vocab, "To Zoo Q", 10)
    proc = cli("--checkpoint", str(run_dir), "--prime", "Zebra!", cwd=run_dir.parent)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and "'Z!'" in proc.stderr


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--temperature", "0"], "--temperature"),
        (["--top-k", "0"], "--top-k"),
        (["--prime", ""], "prime text is empty"),
        (["--num-samples", "0"], "--num-samples"),
    ],
)
def test_bad_sampling_flags_exit_2(run_dir, flags, needle):
    proc = cli("--checkpoint", str(run_dir), *flags, cwd=run_dir.parent)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and needle in proc.stderr


def test_help_explains_temperature(tmp_path):
    proc = cli("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "lower is more conservative" in " ".join(proc.stdout.split())


def test_missing_or_corrupt_checkpoint_exits_2(run_dir, tmp_path):
    proc = cli("--checkpoint", str(tmp_path / "nothing"), cwd=tmp_path)
    assert proc.returncode == 2 and "no such checkpoint" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "ckpt-000001.json"
    bad.write_text("{ half a json")
    proc = cli("--checkpoint", str(bad), cwd=tmp_path)
    assert proc.returncode == 2 and "corrupt or truncated" in proc.stderr and "Traceback" not in proc.stderr
