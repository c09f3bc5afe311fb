"""Adam, SGD and clipping by global norm, against their equations."""

import math

import numpy
import pytest

from minirnn.optim import SGD, Adam, clip_by_global_norm, global_norm


def test_adam_matches_the_paper_step_by_step():
    """Kingma & Ba's Algorithm 1 with bias-corrected m̂, v̂. TensorFlow's form (ours) folds
    the corrections into the step size; it equals the paper's with ε scaled by √(1-β2^t)."""
    rng = numpy.random.default_rng(0)
    theta = rng.normal(size=5)
    params = {"w": theta.copy()}
    opt = Adam(params, lr=0.1)
    m = v = numpy.zeros(5)
    ref = theta.copy()
    for t in range(1, 6):
        g = rng.normal(size=5)
        opt.step({"w": g})
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        eps_paper = 1e-8 / math.sqrt(1 - 0.999**t)
        ref = ref - 0.1 * m_hat / (numpy.sqrt(v_hat) + eps_paper)
        numpy.testing.assert_allclose(params["w"], ref, rtol=1e-12)
    assert opt.t == 5


def test_adam_defaults_are_tensorflows():
    opt = Adam({"w": numpy.zeros(1)})
    assert (opt.lr, opt.beta1, opt.beta2, opt.eps) == (1e-3, 0.9, 0.999, 1e-8)


def test_adam_state_round_trips():
    params = {"a": numpy.ones(3), "b": numpy.ones((2, 2))}
    opt = Adam(params)
    opt.step({"a": numpy.ones(3), "b": numpy.ones((2, 2))})
    state = {k: v.copy() for k, v in opt.state_dict().items()}
    assert set(state) == {"m.a", "m.b", "v.a", "v.b"}
    other = Adam({"a": numpy.ones(3), "b": numpy.ones((2, 2))})
    other.load_state_dict(state)
    numpy.testing.assert_array_equal(other.m["b"], opt.m["b"])


def test_sgd():
    params = {"w": numpy.array([1.0, 2.0])}
    SGD(params, lr=0.5).step({"w": numpy.array([2.0, -2.0])})
    numpy.testing.assert_array_equal(params["w"], [0.0, 3.0])


def test_clip_by_global_norm_keeps_direction_and_returns_the_norm_before():
    grads = {"a": numpy.array([3.0, 0.0]), "b": numpy.array([[0.0, 4.0]])}  # global norm 5
    norm = clip_by_global_norm(grads, 1.0)
    assert float(norm) == pytest.approx(5.0)
    assert float(global_norm(grads)) == pytest.approx(1.0)
    numpy.testing.assert_allclose(grads["a"], [0.6, 0.0])  # same direction, not clamped elementwise
    numpy.testing.assert_allclose(grads["b"], [[0.0, 0.8]])


def test_small_gradients_and_clip_zero_are_left_alone():
    grads = {"a": numpy.array([0.3, 0.4])}
    assert float(clip_by_global_norm(grads, 5.0)) == pytest.approx(0.5)
    numpy.testing.assert_array_equal(grads["a"], [0.3, 0.4])
    grads = {"a": numpy.array([30.0, 40.0])}
    assert float(clip_by_global_norm(grads, 0)) == pytest.approx(50.0)
    numpy.testing.assert_array_equal(grads["a"], [30.0, 40.0])
