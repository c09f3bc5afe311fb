"""minirnn.evaluate: every held-out character predicted once, with the state carried."""

import math

import numpy
import pytest

from minirnn.data import Vocab
from minirnn.evaluate import Evaluation, evaluate_ids, evaluate_text
from minirnn.model import CharRNN, ModelConfig
from minirnn.train import train

from .test_train import TEXT, assert_one_line_error, cli, tiny


def naive(model, ids, first, context):
    """One row from ids[first - 1 - context] on, one forward over all of it, log-softmax by hand,
    the first ``context`` predictions not scored: the definition."""
    ids = ids[first - 1 - context :]
    logits, _, _ = model.forward(numpy.asarray(ids[:-1])[None, :])  # (L-1, 1, V)
    z = logits[:, 0, :].astype(numpy.float64)
    zmax = z.max(1, keepdims=True)
    logp = z - zmax - numpy.log(numpy.exp(z - zmax).sum(1, keepdims=True))
    t = numpy.asarray(ids[1:])
    nll = -logp[numpy.arange(len(t)), t][context:]
    return nll.mean(), (z.argmax(1) == t)[context:].mean(), len(nll)


@pytest.fixture
def model_and_ids():
    vocab = Vocab.from_text(TEXT)
    model = CharRNN(ModelConfig(len(vocab), 8, 2, "lstm"), seed=3)
    return model, vocab, vocab.encode(TEXT[:700])


@pytest.mark.parametrize("burn_in", [0, 30])
def test_one_stream_is_the_definition(model_and_ids, burn_in):
    model, _, ids = model_and_ids
    got = evaluate_ids(model, ids, first=450, streams=1, burn_in=burn_in)  # 250 targets, two chunks
    loss, acc, n = naive(model, ids, 450, burn_in)
    assert got.characters == n == 250
    assert got.loss == pytest.approx(loss, rel=1e-6) and got.accuracy == acc


def test_streams_cover_every_character_once(model_and_ids):
    # 250 targets in 16 rows of 16: the last row is padded; the padding is never counted.
    model, _, ids = model_and_ids
    many = evaluate_ids(model, ids, first=450, streams=16, burn_in=30)
    assert many.characters == 250
    # The pieces differ from one stream only in the context before their first 30 characters.
    assert many.loss == pytest.approx(evaluate_ids(model, ids, 450, streams=1).loss, rel=0.02)


def test_the_held_out_part_is_trainings(model_and_ids):
    model, vocab, _ = model_and_ids
    text = TEXT[:1000]
    got = evaluate_text(model, vocab, text, val_fraction=0.1)
    assert got.characters == int(1000 * 0.1)  # the same split as data.split: all 100 held-out characters
    assert got.characters == evaluate_text(model, vocab, text, 1.0).characters - 899


def test_bits_are_nats_over_ln_2():
    e = Evaluation(loss=1.5, accuracy=0.5, characters=111_539)
    assert e.bits == pytest.approx(1.5 / math.log(2))
    assert str(e) == "validation loss 1.500 nats/char (2.164 bits), accuracy 0.500, 111,539 characters"


def test_cli_evaluates_a_run_on_its_own_text(tmp_path):
    run = train(tiny(tmp_path, max_steps=10, eval_every=5, checkpoint_every=5))
    proc = cli("minirnn.evaluate", "--checkpoint", str(run.run_dir), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("validation loss ") and last.endswith(f"{int(len(TEXT) * 0.1):,} characters")
    assert "best checkpoint" in proc.stderr or "the newest checkpoint and the best" in proc.stderr


def test_cli_refuses_text_the_model_cannot_read(tmp_path):
    run = train(tiny(tmp_path, max_steps=2))
    (tmp_path / "other.txt").write_text("ZZZ qqq\n" * 50)
    assert_one_line_error(
        cli("minirnn.evaluate", "--checkpoint", str(run.run_dir), "--data", "other.txt", cwd=tmp_path),
        "not in the vocabulary",
    )
    assert_one_line_error(
        cli("minirnn.evaluate", "--checkpoint", str(run.run_dir), "--val-fraction", "0", cwd=tmp_path),
        "--val-fraction",
    )
    assert_one_line_error(
        cli("minirnn.evaluate", "--checkpoint", str(tmp_path / "nowhere"), cwd=tmp_path), "no such checkpoint"
    )
