"""The language model: parameter counts, named parameters, dropout, and overfitting one batch."""

import numpy
import pytest

from minirnn import gradcheck
from minirnn.backend import get_backend
from minirnn.model import CharRNN, ConfigError, ModelConfig, num_params
from minirnn.optim import Adam, clip_by_global_norm


def test_parameter_counts_match_the_tutorial():
    # The tutorial's model printed 873,026 with its 66-symbol vocabulary.
    assert num_params(66, 256, 2, "lstm") == 873_026
    assert CharRNN(ModelConfig(66)).num_params() == 873_026
    # Tiny Shakespeare as bundled has 65 symbols.
    assert num_params(65, 256, 2, "lstm") == 871_745
    assert CharRNN(ModelConfig(65)).num_params() == 871_745


def test_params_and_grads_share_names_and_live_in_one_buffer():
    m = CharRNN(ModelConfig(10, 6, 2, "gru"))
    assert (
        list(m.params)
        == list(m.grads)
        == ["l0.Wx", "l0.Wh", "l0.b", "l0.bhn", "l1.Wx", "l1.Wh", "l1.b", "l1.bhn", "dec.W", "dec.b"]
    )
    assert m.params["l0.Wx"].shape == (10, 18) and m.params["dec.W"].shape == (6, 10)
    for name in m.params:  # views, not copies
        assert m.params[name].base is m.flat and m.grads[name].base is m.grad_flat
    assert sum(p.size for p in m.params.values()) == m.flat.size


def test_decoder_starts_as_in_the_tutorial():
    m = CharRNN(ModelConfig(65, 256, 2), get_backend("numpy", "float64"), seed=1)
    W = m.params["dec.W"]
    assert numpy.abs(W).max() <= 0.2  # truncated at two standard deviations
    assert W.std() == pytest.approx(0.088, abs=0.005)  # std of N(0, 0.1²) truncated at ±2σ
    numpy.testing.assert_array_equal(m.params["dec.b"], 0.1)


def test_initial_loss_is_near_log_vocab():
    m = CharRNN(ModelConfig(30, 16, 2))
    x = numpy.random.default_rng(0).integers(0, 30, size=(8, 20))
    loss, _, _, _ = m.loss(x, x)
    assert float(loss) == pytest.approx(numpy.log(30), abs=0.3)


def test_dropout_is_deterministic_under_a_seed_and_off_at_evaluation():
    m = CharRNN(ModelConfig(12, 8, 2, "lstm", dropout=0.5), get_backend("numpy", "float64"))
    x = numpy.random.default_rng(0).integers(0, 12, size=(4, 7))
    a = m.forward(x, dropout_seed=3)[0]
    b = m.forward(x, dropout_seed=3)[0]
    c = m.forward(x, dropout_seed=4)[0]
    numpy.testing.assert_array_equal(a, b)
    assert not numpy.allclose(a, c)
    e1, e2 = m.forward(x)[0], m.forward(x)[0]
    numpy.testing.assert_array_equal(e1, e2)
    assert not numpy.allclose(a, e1)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_whole_model_gradients_with_lengths_and_dropout(cell):
    for r in gradcheck.check_model(cell, get_backend("numpy", "float64")):
        assert r.error < 1e-7, f"{r.group} {r.name}: {r.error:.2e}"


def test_padding_does_not_change_the_loss():
    """A padded batch with lengths gives the same loss as the unpadded sequences."""
    m = CharRNN(ModelConfig(9, 7, 2, "lstm"), get_backend("numpy", "float64"))
    rng = numpy.random.default_rng(0)
    x, y = rng.integers(0, 9, size=(1, 4)), rng.integers(0, 9, size=(1, 4))
    short = float(m.loss(x, y)[0])
    xp_, yp = numpy.concatenate([x, [[1, 2, 3]]], axis=1), numpy.concatenate([y, [[4, 5, 6]]], axis=1)
    padded = float(m.loss(xp_, yp, lengths=numpy.array([4]))[0])
    assert padded == pytest.approx(short, rel=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_overfits_one_small_batch(cell):
    """The classic sanity check (CS231n, llm.c): a model that can't memorise 4 short lines is broken."""
    rng = numpy.random.default_rng(0)
    m = CharRNN(ModelConfig(8, 32, 1, cell), seed=0)
    x = rng.integers(0, 8, size=(4, 12))
    y = rng.integers(0, 8, size=(4, 12))  # random targets: only memorisation helps
    opt = Adam(m.params, lr=1e-2)
    for _ in range(300):
        loss, _, _ = m.loss_and_grads(x, y)
        clip_by_global_norm(m.grads, 5.0)
        opt.step(m.grads)
    assert float(loss) < 0.05


def test_bad_configs_are_refused_with_one_line():
    for bad in (
        ModelConfig(1),
        ModelConfig(5, 0),
        ModelConfig(5, dropout=1.0),
        ModelConfig(5, cell="transformer"),
        ModelConfig(5, cell="no.such.module:Cell"),
    ):
        with pytest.raises(ConfigError) as err:
            CharRNN(bad)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_step_by_step_generation_equals_the_sequence_forward(cell):
    """model.step (the sampling path) carries state exactly as a forward over the whole text."""
    m = CharRNN(ModelConfig(9, 6, 2, cell), get_backend("numpy", "float64"))
    x = numpy.random.default_rng(0).integers(0, 9, size=(3, 5))
    logits, final, _ = m.forward(x)
    state = m.zero_state(3)
    for t in range(5):
        step_logits, state = m.step(x[:, t], state)
        numpy.testing.assert_allclose(step_logits, logits[t], atol=1e-13)
    for a, b in zip(sum(map(tuple, state), ()), sum(map(tuple, final), ())):
        numpy.testing.assert_allclose(a, b, atol=1e-13)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_layers_two_weights_are_also_one_matrix_in_the_same_memory(cell):
    """Each layer's parameters hold W = [Wx; Wh], a view of the buffer (so it follows every update),
    and a step that adds its two products takes them as one: the same numbers either way."""
    m = CharRNN(ModelConfig(9, 6, 2, cell), get_backend("numpy", "float64"))
    for p in m._layer_params:
        numpy.testing.assert_array_equal(p["W"], numpy.concatenate([p["Wx"], p["Wh"]]))
        assert numpy.shares_memory(p["W"], m.flat)
    m.flat += 0.5  # an update, as Adam makes it: in place
    p = m._layer_params[1]
    numpy.testing.assert_array_equal(p["W"], numpy.concatenate([p["Wx"], p["Wh"]]))
    rng = numpy.random.default_rng(1)
    x, state = rng.standard_normal((3, 6)), tuple(rng.standard_normal((3, 6)) for _ in m.cells[1].state_names)
    one, _ = m.cells[1].step_forward(p, x, state)
    two, _ = m.cells[1].step_forward({k: v for k, v in p.items() if k != "W"}, x, state)
    assert m.cells[1].sums_products == (cell != "gru")
    for a, b in zip(one, two):
        numpy.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
