"""The tutorial's appendix: your own cell, a decoder inside a cell, shared weights, bidirectional layers.

The user-defined cell below lives in this file, not in the library: everything
the library offers a cell (sequences with masks, stacking, the model, training,
the gradient check from the command line) must work for it with no other code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from minirnn import LSTM, RNN, Adam, Cell, CharRNN, ModelConfig, clip_by_global_norm, get_backend
from minirnn.backend import array_module
from minirnn.bidirectional import Bidirectional, reverse_index, reverse_sequences
from minirnn.gapfill import GapConfig, GapFiller, compare, make_windows, matched_hidden
from minirnn.gradcheck import (
    check_bidirectional,
    check_cell,
    check_model,
    check_wrapper,
    numerical_gradient,
    rel_error,
)
from minirnn.layers import sequence_cross_entropy_backward
from minirnn.pointwise import sigmoid
from minirnn.wrappers import DenseDecoderCell, StackedCell, decoded_lm_backward, decoded_lm_loss

TOL = 1e-7
HERE = Path(__file__).resolve().parent


# -- a cell the library has never seen -----------------------------------------------------------
class MinimalGatedUnit(Cell):
    """The minimal gated unit (Zhou et al. 2016, https://arxiv.org/abs/1603.09420): one gate.

    f = σ(x·Wxf + h_{t-1}·Whf + bf)              (N, H)  the forget gate
    g = tanh(x·Wxg + (f ⊙ h_{t-1})·Whg + bg)      (N, H)  the candidate
    h_t = (1 - f) ⊙ h_{t-1} + f ⊙ g              (N, H)
    """

    name = "mgu"
    state_names = ("h",)

    def param_shapes(self, D, H):
        return {"Wxf": (D, H), "Whf": (H, H), "bf": (H,), "Wxg": (D, H), "Whg": (H, H), "bg": (H,)}

    def init_params(self, D, H, rng):
        s = 1 / numpy.sqrt(D + H)
        p = {k: rng.uniform(-s, s, size=shape) for k, shape in self.param_shapes(D, H).items()}
        p["bf"][:], p["bg"][:] = 1.0, 0.0  # start by mostly updating, as a GRU does
        return p

    def step_forward(self, p, x, state):
        (h_prev,) = state
        xp = array_module(x)
        f = sigmoid(x @ p["Wxf"] + h_prev @ p["Whf"] + p["bf"])  # (N, H)
        fh = f * h_prev  # (N, H)
        g = xp.tanh(x @ p["Wxg"] + fh @ p["Whg"] + p["bg"])  # (N, H)
        h = (1 - f) * h_prev + f * g  # (N, H)
        return (h,), (x, h_prev, f, fh, g)

    def step_backward(self, p, dstate, cache, grads):
        (dh,) = dstate
        x, h_prev, f, fh, g = cache
        dag = dh * f * (1 - g * g)  # through g = tanh(a_g)
        grads["Wxg"] += x.T @ dag
        grads["Whg"] += fh.T @ dag
        grads["bg"] += dag.sum(axis=0)
        dfh = dag @ p["Whg"].T  # (N, H)
        df = dh * (g - h_prev) + dfh * h_prev  # f enters h_t directly and through f ⊙ h_{t-1}
        daf = df * f * (1 - f)
        grads["Wxf"] += x.T @ daf
        grads["Whf"] += h_prev.T @ daf
        grads["bf"] += daf.sum(axis=0)
        dx = dag @ p["Wxg"].T + daf @ p["Wxf"].T
        dh_prev = dh * (1 - f) + dfh * f + daf @ p["Whf"].T
        return dx, (dh_prev,)


MGU = f"{__name__}:MinimalGatedUnit"  # the import path under which pytest loaded this file


@pytest.fixture
def be64():
    return get_backend("numpy", "float64")


def assert_rows(rows):
    bad = [f"{r.group} {r.name}: {r.error:.2e}" for r in rows if not r.passed]
    assert not bad, "gradient check failed: " + "; ".join(bad)
    assert all(r.tol == TOL for r in rows)


# -- the cell contract: a user's cell gets everything --------------------------------------------
def test_user_cell_gradients(backend64):
    """On NumPy, on the strict CuPy stand-in (no host/device mixing) and on CuPy where a GPU answers."""
    assert_rows(check_cell(MGU, backend64))  # the cell alone, masked, every input
    assert_rows(check_model(MGU, backend64))  # stacked two deep in CharRNN, dropout, lengths
    assert_rows(check_bidirectional(MGU, backend64))
    assert_rows(check_wrapper(MGU, backend64))


def test_user_cell_padding_does_not_leak():
    """A padded batch gives each sequence the outputs it gets alone; zeros and a frozen state after."""
    cell, rng = MinimalGatedUnit(), numpy.random.default_rng(1)
    T, N, D, H = 5, 3, 4, 6
    p = cell.init_params(D, H, rng)
    x, h0 = rng.normal(size=(T, N, D)), rng.normal(size=(N, H))
    lengths = [5, 2, 3]
    mask = (numpy.arange(T)[:, None] < numpy.array(lengths)).astype(float)
    hs, (hT,), _ = cell.forward(p, x, (h0,), mask)
    for n, L in enumerate(lengths):
        alone, (h_alone,), _ = cell.forward(p, x[:L, n : n + 1], (h0[n : n + 1],))
        numpy.testing.assert_allclose(hs[:L, n], alone[:, 0], rtol=0, atol=1e-14)
        assert (hs[L:, n] == 0).all()
        numpy.testing.assert_allclose(hT[n], h_alone[0], rtol=0, atol=1e-14)


def test_user_cell_trains_through_the_public_api():
    """Two MGU layers in CharRNN, Adam and clipping: the loss on a small text falls."""
    text = "the quick brown fox jumps over the lazy dog. " * 8
    vocab = sorted(set(text))
    ids = numpy.array([vocab.index(c) for c in text])
    model = CharRNN(ModelConfig(len(vocab), hidden_size=32, num_layers=2, cell=MGU), seed=0)
    opt = Adam(model.params, lr=1e-2)
    rng = numpy.random.default_rng(0)
    losses = []
    for _ in range(40):
        s = rng.integers(0, len(ids) - 17, size=8)
        x = ids[s[:, None] + numpy.arange(16)]
        y = ids[s[:, None] + numpy.arange(1, 17)]
        loss, _, _ = model.loss_and_grads(x, y)
        clip_by_global_norm(model.grads, 5.0)
        opt.step(model.grads)
        losses.append(float(loss))
    assert numpy.mean(losses[-5:]) < 0.6 * numpy.mean(losses[:5]), losses


def test_gradcheck_command_takes_a_user_cell():
    """python -m minirnn.gradcheck --cell test_appendix:MinimalGatedUnit, as a user would type it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent)]))
    out = subprocess.run(
        [sys.executable, "-m", "minirnn.gradcheck", "--cell", "test_appendix:MinimalGatedUnit"],
        cwd=HERE.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for group in ("mgu ", "model(mgu)", "bidir(mgu)", "wrapper(mgu)", "gapfill(mgu)"):
        assert group in out.stdout
    assert " 0 failed" in out.stdout


def test_training_command_takes_a_user_cell(tmp_path):
    """python -m minirnn.train --cell test_appendix:MinimalGatedUnit, then sampling from its checkpoint."""
    (tmp_path / "t.txt").write_text("the quick brown fox jumps over the lazy dog. " * 40)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent)]), MPLBACKEND="Agg")
    run = [
        sys.executable,
        "-m",
        "minirnn.train",
        "--data",
        str(tmp_path / "t.txt"),
        "--cell",
        "test_appendix:MinimalGatedUnit",
        "--hidden-size",
        "16",
        "--batch-size",
        "4",
        "--seq-length",
        "8",
        "--max-steps",
        "4",
        "--eval-every",
        "0",
        "--out",
        str(tmp_path / "run"),
        "--cache-dir",
        "",
        "--quiet",
    ]
    out = subprocess.run(run, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    sample = [
        sys.executable,
        "-m",
        "minirnn.sample",
        "--checkpoint",
        str(tmp_path / "run"),
        "--prime",
        "the ",
        "--length",
        "20",
        "--seed",
        "0",
    ]
    out = subprocess.run(sample, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "pass --cell test_appendix:MinimalGatedUnit" in out.stderr  # never unasked
    sample += ["--cell", "test_appendix:MinimalGatedUnit"]
    out = subprocess.run(sample, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


# -- the decoder inside the cell -----------------------------------------------------------------
def test_decoded_cell_equals_model_with_separate_decoder(be64):
    """DenseDecoderCell(StackedCell([LSTM, LSTM]), V) on CharRNN's very weights: same loss, gradients."""
    rng = numpy.random.default_rng(2)
    N, T, V, H = 3, 6, 7, 5
    model = CharRNN(ModelConfig(V, H, 2, "lstm"), be64, seed=3)
    cell = DenseDecoderCell(StackedCell([LSTM(), LSTM()]), V)
    assert set(cell.param_shapes(V, H)) == set(model.shapes)  # the same names: one dict serves both
    p = model.params
    x, y = rng.integers(0, V, size=(N, T)), rng.integers(0, V, size=(N, T))
    lengths = numpy.array([T, 4, 1])
    state0 = [tuple(rng.normal(size=(N, H)) for _ in range(2)) for _ in range(2)]  # per layer (h, c)

    loss_m, _, final_m, (cache, lcache) = model.loss(x, y, state0, lengths)
    model.grad_flat.fill(0)
    dstate0_m = model.backward(sequence_cross_entropy_backward(lcache).reshape(T, N, V), cache)

    # the wrapper's state: y, then the stack's states from the top layer down
    s0 = (numpy.zeros((N, V)),) + state0[1] + state0[0]
    loss_c, _, final_c, ccache = decoded_lm_loss(cell, p, x, y, V, s0, lengths)
    grads = {k: numpy.zeros_like(v) for k, v in p.items()}
    dstate0_c = decoded_lm_backward(cell, p, ccache, grads)

    assert abs(float(loss_c) - float(loss_m)) < 1e-12
    for k in p:
        assert rel_error(grads[k], model.grads[k]) < 1e-12, k
    for a, b in zip(dstate0_c[1:], dstate0_m[1] + dstate0_m[0]):
        assert rel_error(a, b) < 1e-12
    assert (dstate0_c[0] == 0).all()  # the carried output y0 is never read
    for a, b in zip(final_c[1:], final_m[1] + final_m[0]):
        assert rel_error(a, b) < 1e-12


def test_decoded_cell_model_trains():
    """The tutorial's rnn_lstm_neat, trained: the decoded cell's logits are all the model there is."""
    text = "the quick brown fox jumps over the lazy dog. " * 8
    vocab = sorted(set(text))
    ids = numpy.array([vocab.index(c) for c in text])
    V, H = len(vocab), 32
    cell = DenseDecoderCell(StackedCell([LSTM(), LSTM()]), V)
    p = cell.init_params(V, H, numpy.random.default_rng(0))
    grads = {k: numpy.zeros_like(v) for k, v in p.items()}
    opt, rng, losses = Adam(p, lr=1e-2), numpy.random.default_rng(0), []
    for _ in range(40):
        s = rng.integers(0, len(ids) - 17, size=8)
        loss, _, _, cache = decoded_lm_loss(
            cell, p, ids[s[:, None] + numpy.arange(16)], ids[s[:, None] + numpy.arange(1, 17)], V
        )
        for g in grads.values():
            g.fill(0)
        decoded_lm_backward(cell, p, cache, grads)
        clip_by_global_norm(grads, 5.0)
        opt.step(grads)
        losses.append(float(loss))
    assert numpy.mean(losses[-5:]) < 0.8 * numpy.mean(losses[:5]), losses


# -- weight sharing: the gradient of a shared weight is the sum over the steps --------------------
def test_shared_weight_gradient_is_the_sum_of_per_step_gradients():
    """Untie the weights (a copy p_t for each step), and dL/dW = Σ_t dL/dW_t."""
    cell, rng = RNN(), numpy.random.default_rng(4)
    T, N, D, H = 4, 2, 3, 5
    p = cell.init_params(D, H, rng)
    x, h0, dhs = rng.normal(size=(T, N, D)), rng.normal(size=(N, H)), rng.normal(size=(T, N, H))

    # shared: the library's sequence backward, one grads dict for all steps
    _, _, cache = cell.forward(p, x, (h0,))
    shared = {k: numpy.zeros_like(v) for k, v in p.items()}
    cell.backward(p, dhs, (numpy.zeros((N, H)),), cache, shared)

    # untied: step by step, each step with its own copy of the weights and its own grads dict
    p_t = [{k: v.copy() for k, v in p.items()} for _ in range(T)]

    def loss_untied():
        h, total = h0, 0.0
        for t in range(T):
            (h,), _ = cell.step_forward(p_t[t], x[t], (h,))
            total += (h * dhs[t]).sum()
        return total

    h, caches = h0, []
    for t in range(T):
        (h,), c = cell.step_forward(p_t[t], x[t], (h,))
        caches.append(c)
    g_t = [{k: numpy.zeros_like(v) for k, v in p.items()} for _ in range(T)]
    dh = numpy.zeros((N, H))
    for t in reversed(range(T)):
        _, (dh,) = cell.step_backward(p_t[t], (dh + dhs[t],), caches[t], g_t[t])

    for k in p:
        numpy.testing.assert_allclose(sum(g[k] for g in g_t), shared[k], rtol=1e-12, atol=1e-14)
    # each per-step gradient is a true partial derivative: check two of them numerically
    for t in (0, T - 1):
        assert rel_error(g_t[t]["Wh"], numerical_gradient(loss_untied, p_t[t]["Wh"])) < TOL
    assert not numpy.allclose(g_t[0]["Wh"], g_t[T - 1]["Wh"])  # the steps do contribute differently


# -- the bidirectional layer ------------------------------------------------------------------
def test_bidirectional_and_wrapper_gradients(backend64):
    """The built-in LSTM's fast sequence passes in both directions, and inside the wrappers.
    (python -m minirnn.gradcheck, run by test_gradcheck.py, checks every built-in cell.)"""
    assert_rows(check_bidirectional("lstm", backend64, seed=1))
    assert_rows(check_wrapper("lstm", backend64, seed=1))


def test_reverse_index_reverses_within_each_length():
    mask = (numpy.arange(5)[:, None] < numpy.array([5, 3, 1])).astype(float)
    rev = reverse_index(mask, 5, 3, numpy)
    assert rev[:, 0].tolist() == [4, 3, 2, 1, 0]
    assert rev[:, 1].tolist() == [2, 1, 0, 3, 4]  # padding stays in place
    assert rev[:, 2].tolist() == [0, 1, 2, 3, 4]
    x = numpy.random.default_rng(0).normal(size=(5, 3, 2))
    numpy.testing.assert_array_equal(reverse_sequences(reverse_sequences(x, rev), rev), x)  # its own inverse


def test_bidirectional_respects_lengths():
    """Padding changes nothing at the real positions; the backward cell starts at the last real element."""
    rng = numpy.random.default_rng(5)
    layer = Bidirectional(LSTM(), MinimalGatedUnit())
    T, N, D, H = 6, 3, 4, 5
    p = layer.init_params(D, H, rng)
    x = rng.normal(size=(T, N, D))
    lengths = [6, 4, 1]
    mask = (numpy.arange(T)[:, None] < numpy.array(lengths)).astype(float)
    s0 = layer.zero_state(numpy, N, H, float)
    out, _, _ = layer.forward(p, x, s0, mask)
    assert out.shape == (T, N, 2 * H)
    for n, L in enumerate(lengths):
        alone, _, _ = layer.forward(p, x[:L, n : n + 1], layer.zero_state(numpy, 1, H, float))
        numpy.testing.assert_allclose(out[:L, n], alone[:, 0], rtol=0, atol=1e-14)
        assert (out[L:, n] == 0).all()
        # the backward half at the last real position has read x_{L-1} only
        (hb,), _ = layer.bw.step_forward(
            {k[3:]: v for k, v in p.items() if k.startswith("bw.")},
            x[L - 1, n : n + 1],
            (numpy.zeros((1, H)),),
        )
        numpy.testing.assert_allclose(out[L - 1, n, H:], hb[0], rtol=0, atol=1e-14)


def test_bidirectional_ids_equal_onehot_floats():
    rng = numpy.random.default_rng(6)
    layer = Bidirectional(LSTM())
    T, N, V, H = 5, 2, 7, 4
    p = layer.init_params(V, H, rng)
    ids = rng.integers(0, V, size=(T, N))
    mask = (numpy.arange(T)[:, None] < numpy.array([5, 3])).astype(float)
    s0 = layer.zero_state(numpy, N, H, float)
    a, _, _ = layer.forward(p, ids, s0, mask)
    b, _, _ = layer.forward(p, numpy.eye(V)[ids], s0, mask)
    numpy.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


# -- gap filling --------------------------------------------------------------------------------
def test_gap_windows():
    ids = numpy.arange(20)
    x, y, w = make_windows(ids, numpy.array([0, 5]), 8, 2, 99)
    assert x[1].tolist() == [5, 6, 7, 99, 99, 10, 11, 12]
    assert y[1].tolist() == list(range(5, 13))
    assert w[1].tolist() == [0, 0, 0, 1, 1, 0, 0, 0]


@pytest.mark.parametrize("bidirectional", [True, False])
def test_gapfill_model_gradients(be64, bidirectional):
    """The whole gap filler, loss on the gap only, against finite differences."""
    rng = numpy.random.default_rng(7)
    model = GapFiller(6, 4, bidirectional, "gru", be64, seed=1)
    x, y, w = make_windows(rng.integers(0, 6, size=50), numpy.array([0, 9, 30]), 7, 3, 6)
    model.loss_and_grads(x, y, w)
    grads = {k: g.copy() for k, g in model.grads.items()}

    def loss():
        return float(model.loss_and_grads(x, y, w))

    for k, p in model.params.items():
        assert rel_error(grads[k], numerical_gradient(loss, p)) < TOL, k


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_gapfill_compare_smoke(backend):
    text = "to be, or not to be, that is the question: whether 'tis nobler in the mind to suffer " * 20
    cfg = GapConfig(window=12, gap=2, hidden=8, steps=20, batch=8, eval_windows=50, val_fraction=0.2)
    res = compare(text, cfg, get_backend(backend, "float32"), log=None)
    names = [m["name"] for m in res["models"]]
    assert names == ["bidirectional", "forward-only"]
    p_bi, p_fw = (m["params"] for m in res["models"])
    assert abs(p_bi - p_fw) / p_bi < 0.05  # about the same size
    assert matched_hidden(res["vocab"], 8) == res["models"][1]["hidden"]
    for m in res["models"]:
        assert 0.0 <= m["accuracy"] <= 1.0 and numpy.isfinite(m["loss"])


def test_gapfill_command(tmp_path, capsys):
    from minirnn.gapfill import main

    (tmp_path / "t.txt").write_text("now is the winter of our discontent made glorious summer " * 20)
    assert (
        main(
            [
                "--data",
                str(tmp_path / "t.txt"),
                "--steps",
                "3",
                "--batch",
                "4",
                "--hidden",
                "6",
                "--window",
                "10",
                "--gap",
                "2",
                "--eval-windows",
                "20",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "bidirectional" in out and "forward-only" in out and "commonest char" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--gap", "0"],
        ["--data", "/no/such/file.txt"],
        ["--cell", "transformer"],
        ["--steps", "0"],
        ["--backend", "tpu"],
        ["--bogus"],
    ],
)
def test_gapfill_bad_input_is_one_line(args):
    proc = subprocess.run(
        [sys.executable, "-m", "minirnn.gapfill", *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
