"""Adam with decoupled weight decay (AdamW), against Loshchilov & Hutter's update written out."""

import math

import numpy

from minirnn.optim import Adam


def test_adamw_matches_the_decoupled_formula_step_by_step():
    """θ ← θ·(1 - lr·λ), then Adam's step from m and v, which never see the decay (torch.optim.AdamW).
    The rate changes between steps, as a schedule changes it; the bias b is not decayed."""
    rng = numpy.random.default_rng(0)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=4)
    params = {"W": W.copy(), "b": b.copy()}
    opt = Adam(params, lr=0.1, weight_decay=0.5)
    assert opt.decays == {"W"}  # matrices only
    ref = {"W": W.copy(), "b": b.copy()}
    m = {k: numpy.zeros_like(a) for k, a in ref.items()}
    v = {k: numpy.zeros_like(a) for k, a in ref.items()}
    for t, lr in enumerate([0.1, 0.05, 0.02, 0.01], start=1):
        grads = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
        opt.lr = lr
        opt.step(grads)
        for k, g in grads.items():
            if k == "W":
                ref[k] = ref[k] - lr * 0.5 * ref[k]  # the decoupled decay, on θ itself
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            lr_t = lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            ref[k] = ref[k] - lr_t * m[k] / (numpy.sqrt(v[k]) + 1e-8)
            numpy.testing.assert_allclose(params[k], ref[k], rtol=1e-12, atol=0)


def test_without_gradient_the_decay_shrinks_weights_geometrically():
    params = {"W": numpy.ones((2, 2))}
    opt = Adam(params, lr=0.1, weight_decay=0.2)
    for _ in range(3):
        opt.step({"W": numpy.zeros((2, 2))})  # m = v = 0: only the decay moves θ
    numpy.testing.assert_allclose(params["W"], (1 - 0.1 * 0.2) ** 3)


def test_zero_weight_decay_is_plain_adam():
    rng = numpy.random.default_rng(1)
    a = {"W": rng.normal(size=(2, 3))}
    b = {"W": a["W"].copy()}
    g = {"W": rng.normal(size=(2, 3))}
    Adam(a, weight_decay=0.0).step(g)
    Adam(b).step(g)
    assert numpy.array_equal(a["W"], b["W"])


def test_weight_decay_reaches_the_training_loop(tmp_path):
    from minirnn import checkpoint
    from minirnn.train import train

    from .test_train import tiny

    plain = train(tiny(tmp_path, max_steps=3, out=str(tmp_path / "plain")))
    decayed = train(tiny(tmp_path, weight_decay=10.0, max_steps=3))
    _, a = checkpoint.load(plain.run_dir)
    _, b = checkpoint.load(decayed.run_dir)
    # (1 - lr·λ) = 0.99 per step on the matrices; the biases follow Adam alone.
    assert numpy.abs(b["param.l0.Wh"]).sum() < numpy.abs(a["param.l0.Wh"]).sum()
    assert all(math.isfinite(r["loss"]) for r in decayed.history if "loss" in r)
