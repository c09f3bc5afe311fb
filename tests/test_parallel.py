"""Shards of a batch, one per core (minirnn/parallel.py): the same numbers as one pass over the batch.

A batch split into shards must give the loss, logits, final state and gradient
of the whole batch: each shard divides by the whole batch's count, and the
dropout masks are drawn for the whole batch, then split.
"""

import json

import numpy
import pytest

from minirnn import parallel
from minirnn.backend import get_backend
from minirnn.model import CharRNN, ModelConfig

from .conftest import train_tiny


def test_split_rows_covers_every_row_once():
    for rows in (1, 7, 64, 129):
        for shards in (1, 2, 3):
            parts = parallel.split_rows(rows, shards)
            assert len(parts) == shards
            assert sorted(sum((list(range(rows))[p] for p in parts), [])) == list(range(rows))
            sizes = [p.stop - p.start for p in parts]
            assert max(sizes) - min(sizes) <= 1


def test_shard_count_keeps_shards_thick_enough():
    assert parallel.shard_count(128, 2) == 2
    assert parallel.shard_count(128, 8) == 4  # 32 rows each at least
    assert parallel.shard_count(40, 2) == 1
    assert parallel.shard_count(128, 1) == 1
    assert parallel.shard_count(128, 2, min_rows=0) == 1  # never split


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("shards", [2, 3])
def test_shards_give_the_batch_gradient(cell, shards):
    be = get_backend("numpy", "float64")
    model = CharRNN(ModelConfig(11, 8, 2, cell, dropout=0.25), be, seed=3)
    dp = parallel.DataParallel(model)
    rng = numpy.random.default_rng(0)
    N, T = 7, 9
    x, y = rng.integers(0, 11, (N, T)), rng.integers(0, 11, (N, T))
    lengths = numpy.array([9, 3, 0, 9, 5, 1, 9])  # with a padded row of length 0
    state = [tuple(rng.standard_normal((N, 8)) for _ in c.state_names) for c in model.cells]

    loss1, logits1, final1 = model.loss_and_grads(x, y, state, lengths, dropout_seed=5)  # the whole batch
    grads1 = model.grad_flat.copy()
    loss2, logits2, final2 = dp.loss_and_grads(x, y, state, lengths, dropout_seed=5, shards=shards)

    assert float(loss2) == pytest.approx(float(loss1), rel=1e-14)
    numpy.testing.assert_allclose(logits2, logits1, rtol=0, atol=1e-14)
    for layer1, layer2 in zip(final1, final2):
        for s1, s2 in zip(layer1, layer2):
            numpy.testing.assert_allclose(s2, s1, rtol=0, atol=1e-14)
    scale = numpy.abs(grads1).max()
    assert numpy.abs(model.grad_flat - grads1).max() <= 1e-13 * scale
    # and the named views still point into the model's buffer
    assert model.grads["l0.Wx"].base is model.grad_flat


def test_shards_without_lengths_or_state():
    be = get_backend("numpy", "float64")
    model = CharRNN(ModelConfig(5, 6, 1, "lstm"), be, seed=0)
    x = numpy.random.default_rng(1).integers(0, 5, (6, 4))
    loss1, _, _ = model.loss_and_grads(x, x)
    grads1 = model.grad_flat.copy()
    loss2, _, _ = parallel.DataParallel(model).loss_and_grads(x, x, shards=2)
    assert float(loss2) == pytest.approx(float(loss1), rel=1e-14)
    numpy.testing.assert_allclose(model.grad_flat, grads1, rtol=1e-12, atol=1e-15)


def test_default_shards_follow_the_threads_and_the_batch():
    be = get_backend("numpy", "float32")
    if not parallel.can_shard():
        pytest.skip("threadpoolctl is not installed")
    for cell in ("lstm", "gru", "rnn"):  # every cell splits: the choice is the seam's, not the cell's
        assert parallel.DataParallel(CharRNN(ModelConfig(10, 8, 1, cell), be), threads=2).shards(128) == 2
    model = CharRNN(ModelConfig(10, 8, 1, "lstm"), be)
    assert parallel.DataParallel(model, threads=2).shards(40) == 1  # 32 rows at least
    assert parallel.DataParallel(model, threads=1).shards(128) == 1
    assert parallel.DataParallel(model, threads=2, min_rows=0).shards(128) == 1  # never split


def test_the_model_itself_never_splits_a_batch(monkeypatch):
    """Sharding is a wrapper around the model: CharRNN.loss_and_grads runs the batch it is given."""
    monkeypatch.setattr(parallel, "run_shards", lambda *a: pytest.fail("the model split its batch"))
    model = CharRNN(ModelConfig(10, 8, 1, "lstm"), get_backend("numpy", "float32"))
    x = numpy.random.default_rng(1).integers(0, 10, (128, 3))
    model.loss_and_grads(x, x)


def test_on_the_gpu_one_stream_does_the_whole_batch():
    model = CharRNN(ModelConfig(10, 8, 1, "lstm"), get_backend("strict", "float64"))
    dp = parallel.DataParallel(model, threads=4)
    assert dp.threads == 1 and dp.shards(128) == 1


def test_blas_runs_one_thread_inside_the_shards_and_is_restored_after():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():  # per BLAS library (an OpenMP runtime, torch's say, may be listed too)
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    if not before:
        pytest.skip("threadpoolctl finds no BLAS to limit")
    assert parallel.run_shards(lambda k: blas_threads()[0], 2) == [1, 1]
    assert blas_threads() == before


def test_choosing_shards_leaves_blas_threads_alone():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not parallel.can_shard():
        pytest.skip("threadpoolctl is not installed")
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()]
    dp = parallel.DataParallel(
        CharRNN(ModelConfig(5, 6, 1, "lstm"), get_backend("numpy", "float32")), threads=2
    )
    x = numpy.random.default_rng(1).integers(0, 5, (64, 3))
    dp.shards(64)
    dp.loss_and_grads(x, x)  # the default: 2 shards
    assert [lib["num_threads"] for lib in threadpoolctl.threadpool_info()] == before


def test_training_with_shards_matches_one_thread(tmp_path, monkeypatch):
    if not parallel.can_shard():
        pytest.skip("threadpoolctl is not installed")
    calls = []
    real = parallel.run_shards
    monkeypatch.setattr(
        "minirnn.parallel.run_shards", lambda fn, count: calls.append(count) or real(fn, count)
    )
    runs = {}
    for threads in (1, 2):
        (tmp_path / str(threads)).mkdir()
        run, _ = train_tiny(
            tmp_path / str(threads), batch_size=64, seq_length=4, max_steps=6, print_every=1, threads=threads
        )
        runs[threads] = [
            json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
        ]
    assert calls and set(calls) == {2}  # only the 2-thread run split its batches, in two
    numpy.testing.assert_allclose(runs[2], runs[1], rtol=1e-5)
