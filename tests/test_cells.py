"""The cells: gradient checks in float64, the fast sequence path against the plain step loop,
a naive per-gate forward against the fused one, masks, and state carried across windows."""

import numpy
import pytest

from minirnn import gradcheck
from minirnn.backend import get_backend
from minirnn.cell import Cell, onehot
from minirnn.gradcheck import numerical_gradient, rel_error
from minirnn.model import make_cell
from minirnn.projected import InputProjection

CELLS = ["rnn", "lstm", "gru"]
N, T, D, H = 2, 3, 4, 5  # tiny, but several time steps


def _setup(cell_name, be, seed=0):
    cell = make_cell(cell_name)
    rng = numpy.random.default_rng(seed)
    p = {k: be.asarray(v + rng.normal(0, 0.1, v.shape)) for k, v in cell.init_params(D, H, rng).items()}
    x = be.asarray(rng.normal(size=(T, N, D)))
    state0 = tuple(be.asarray(rng.normal(0, 0.5, (N, H))) for _ in cell.state_names)
    return cell, rng, p, x, state0


def _zeros_like(be, p):
    return {k: be.xp.zeros_like(v) for k, v in p.items()}


@pytest.mark.parametrize("cell", CELLS)
def test_sequence_gradients_match_finite_differences(cell, backend64):
    rows = gradcheck.check_cell(cell, backend64)
    assert {r.name for r in rows} >= {"Wx", "Wh", "b", "x", "h0"}
    for r in rows:
        assert r.error < 1e-7, f"{r.group} {r.name}: {r.error:.2e}"


@pytest.mark.parametrize("cell_name", CELLS)
def test_step_backward_matches_finite_differences(cell_name, rng):
    """One step on its own: every parameter, x and every state input (h_prev, c_prev)."""
    be = get_backend("numpy", "float64")
    cell, rng, p, x, state = _setup(cell_name, be)
    x1 = x[0]
    dstate = tuple(rng.normal(size=(N, H)) for _ in cell.state_names)

    def loss():
        new, _ = cell.step_forward(p, x1, state)
        return float(sum((s * d).sum() for s, d in zip(new, dstate)))

    grads = _zeros_like(be, p)
    _, cache = cell.step_forward(p, x1, state)
    dx, dprev = cell.step_backward(p, dstate, cache, grads)
    checks = [(k, p[k], grads[k]) for k in p] + [("x", x1, dx)]
    checks += [(n, s, ds) for n, s, ds in zip(cell.state_names, state, dprev)]
    for name, a, g in checks:
        err = rel_error(g, numerical_gradient(loss, a))
        assert err < 1e-7, f"{cell_name} step {name}: analytic and numeric differ, rel error {err:.2e}"


@pytest.mark.parametrize("cell_name", CELLS)
@pytest.mark.parametrize("lengths", [None, [3, 1]])
def test_fast_sequence_path_equals_step_loop(cell_name, lengths):
    """The built-in cells hoist GEMMs out of the time loop; Cell.forward/backward loop the
    step functions. Both must give the same numbers, with and without a mask."""
    be = get_backend("numpy", "float64")
    cell, rng, p, x, state0 = _setup(cell_name, be)
    mask = (
        None if lengths is None else (numpy.arange(T)[:, None] < numpy.array(lengths)[None, :]).astype(float)
    )
    dhs = rng.normal(size=(T, N, H))
    dsT = tuple(rng.normal(size=(N, H)) for _ in cell.state_names)
    results = []
    for fwd, bwd in (
        (cell.forward, cell.backward),
        (lambda *a: Cell.forward(cell, *a), lambda *a: Cell.backward(cell, *a)),
    ):
        hs, sT, cache = fwd(p, x, state0, mask)
        grads = _zeros_like(be, p)
        dx, ds0 = bwd(p, dhs, dsT, cache, grads)
        results.append((hs.copy(), sT, grads, dx, ds0))
    (hs1, sT1, g1, dx1, ds1), (hs2, sT2, g2, dx2, ds2) = results
    numpy.testing.assert_allclose(hs1, hs2, atol=1e-13)
    for a, b in zip(sT1 + ds1, sT2 + ds2):
        numpy.testing.assert_allclose(a, b, atol=1e-13)
    numpy.testing.assert_allclose(dx1, dx2, atol=1e-13)
    for k in g1:
        numpy.testing.assert_allclose(g1[k], g2[k], atol=1e-12)


@pytest.mark.parametrize("cell_name", CELLS)
def test_integer_ids_are_a_row_lookup_of_one_hot_inputs(cell_name):
    be = get_backend("numpy", "float64")
    cell, rng, p, _, state0 = _setup(cell_name, be)
    ids = rng.integers(0, D, size=(T, N))
    hs_ids, sT_ids, cache_ids = cell.forward(p, ids, state0)
    hs_hot, sT_hot, cache_hot = cell.forward(p, onehot(ids, D, numpy.float64), state0)
    numpy.testing.assert_allclose(hs_ids, hs_hot, atol=1e-14)
    dhs = rng.normal(size=(T, N, H))
    zero = tuple(numpy.zeros((N, H)) for _ in cell.state_names)
    g_ids, g_hot = _zeros_like(be, p), _zeros_like(be, p)
    dx_ids, _ = cell.backward(p, dhs, zero, cache_ids, g_ids)
    cell.backward(p, dhs, zero, cache_hot, g_hot)
    assert dx_ids is None  # ids have no gradient
    for k in p:
        numpy.testing.assert_allclose(g_ids[k], g_hot[k], atol=1e-13)


def _sig(a):
    return 1.0 / (1.0 + numpy.exp(-a))


def test_lstm_fused_forward_equals_naive_per_gate():
    """Four separate weight matrices, the textbook equations, no fusion."""
    be = get_backend("numpy", "float64")
    cell, rng, p, x, (h, c) = _setup("lstm", be)
    hs, (hT, cT), _ = cell.forward(p, x, (h, c))
    W = {
        g: (p["Wx"][:, k * H : (k + 1) * H], p["Wh"][:, k * H : (k + 1) * H], p["b"][k * H : (k + 1) * H])
        for k, g in enumerate("ifog")
    }
    for t in range(T):
        i = _sig(x[t] @ W["i"][0] + h @ W["i"][1] + W["i"][2])
        f = _sig(x[t] @ W["f"][0] + h @ W["f"][1] + W["f"][2])
        o = _sig(x[t] @ W["o"][0] + h @ W["o"][1] + W["o"][2])
        g = numpy.tanh(x[t] @ W["g"][0] + h @ W["g"][1] + W["g"][2])
        c = f * c + i * g
        h = o * numpy.tanh(c)
        numpy.testing.assert_allclose(hs[t], h, atol=1e-14)
    numpy.testing.assert_allclose(cT, c, atol=1e-14)


def test_gru_fused_forward_equals_naive_per_gate():
    be = get_backend("numpy", "float64")
    cell, rng, p, x, (h,) = _setup("gru", be)
    hs, _, _ = cell.forward(p, x, (h,))
    Wx, Wh, b, bhn = p["Wx"], p["Wh"], p["b"], p["bhn"]
    blk = [slice(k * H, (k + 1) * H) for k in range(3)]
    for t in range(T):
        r = _sig(x[t] @ Wx[:, blk[0]] + b[blk[0]] + h @ Wh[:, blk[0]])
        z = _sig(x[t] @ Wx[:, blk[1]] + b[blk[1]] + h @ Wh[:, blk[1]])
        n = numpy.tanh(x[t] @ Wx[:, blk[2]] + b[blk[2]] + r * (h @ Wh[:, blk[2]] + bhn))
        h = (1 - z) * n + z * h
        numpy.testing.assert_allclose(hs[t], h, atol=1e-14)


def test_rnn_is_the_tutorials_equation():
    be = get_backend("numpy", "float64")
    cell, rng, p, x, (h,) = _setup("rnn", be)
    hs, _, _ = cell.forward(p, x, (h,))
    U, W, b = p["Wx"].T, p["Wh"].T, p["b"]  # the tutorial's column-vector matrices
    for t in range(T):
        h = numpy.tanh(W @ h.T + U @ x[t].T + b[:, None]).T  # a = W·h + U·x + b, h = tanh(a)
        numpy.testing.assert_allclose(hs[t], h, atol=1e-14)


@pytest.mark.parametrize("cell_name", CELLS)
def test_masked_positions_keep_state_output_zero_and_pass_no_gradient(cell_name):
    be = get_backend("numpy", "float64")
    cell, rng, p, x, state0 = _setup(cell_name, be)
    lengths = numpy.array([3, 1])
    mask = (numpy.arange(T)[:, None] < lengths[None, :]).astype(float)
    hs, sT, cache = cell.forward(p, x, state0, mask)
    # sequence 1 stops after one step: its final state is its state after step 0
    hs_short, sT_short, _ = cell.forward(p, x[:1, 1:], tuple(s[1:] for s in state0))
    for a, b in zip(sT, sT_short):
        numpy.testing.assert_allclose(a[1], b[0], atol=1e-14)
    assert numpy.all(hs[1:, 1] == 0)
    # changing the padding changes nothing, and the padding gets no gradient
    x2 = x.copy()
    x2[1:, 1] = 100.0
    hs2, sT2, _ = cell.forward(p, x2, state0, mask)
    numpy.testing.assert_allclose(hs2, hs, atol=0)
    grads = _zeros_like(be, p)
    dx, _ = cell.backward(
        p, rng.normal(size=hs.shape), tuple(rng.normal(size=(N, H)) for _ in sT), cache, grads
    )
    assert numpy.all(dx[1:, 1] == 0)


@pytest.mark.parametrize("cell_name", CELLS)
def test_state_carried_across_windows_equals_one_long_run(cell_name):
    """Truncated BPTT and sampling rely on this: final state in, same numbers out."""
    be = get_backend("numpy", "float64")
    cell, rng, p, x, state0 = _setup(cell_name, be)
    hs, sT, _ = cell.forward(p, x, state0)
    hs_a, s_mid, _ = cell.forward(p, x[:2], state0)
    hs_b, s_end, _ = cell.forward(p, x[2:], s_mid)
    numpy.testing.assert_allclose(numpy.concatenate([hs_a, hs_b]), hs, atol=1e-14)
    for a, b in zip(s_end, sT):
        numpy.testing.assert_allclose(a, b, atol=1e-14)


def test_lstm_forget_bias_starts_at_one():
    p = make_cell("lstm").init_params(3, 4, numpy.random.default_rng(0))
    numpy.testing.assert_array_equal(p["b"], [0] * 4 + [1] * 4 + [0] * 8)  # gate order i, f, o, g


class _BrokenLSTM(type(make_cell("lstm"))):
    """An LSTM whose backward forgets the forget gate's contribution to dc_prev."""

    takes_ids = False  # it runs through the generic Cell.forward, which needs dense inputs

    def step_backward(self, p, dstate, cache, grads):
        dx, (dh_prev, dc_prev) = super().step_backward(p, dstate, cache, grads)
        return dx, (dh_prev, 0.9 * dc_prev)

    def backward(self, p, dhs, dstate_T, cache, grads):
        return Cell.backward(self, p, dhs, dstate_T, cache, grads)

    def forward(self, p, x, state0, mask=None):
        return Cell.forward(self, p, x, state0, mask)


def test_checker_catches_a_wrong_backward(monkeypatch):
    import minirnn.model as model_mod

    monkeypatch.setitem(model_mod.CELLS, "broken", _BrokenLSTM)
    rows = gradcheck.check_cell("broken", get_backend("numpy", "float64"))
    failed = {r.name for r in rows if not r.passed}
    assert {"c0", "Wx", "Wh"} <= failed
    assert gradcheck.main(["--cell", "broken"]) == 1


@pytest.mark.parametrize("cell_name", ["lstm", "gru"])
def test_matches_pytorch(cell_name):
    """An optional cross-check against PyTorch's own LSTM/GRU (skipped where torch is absent)."""
    torch = pytest.importorskip("torch")
    be = get_backend("numpy", "float64")
    cell, rng, p, x, state0 = _setup(cell_name, be)
    G = 4 if cell_name == "lstm" else 3
    net = (torch.nn.LSTM if cell_name == "lstm" else torch.nn.GRU)(D, H).double()
    # PyTorch's gate order is i, f, g, o (LSTM) and r, z, n (GRU); ours is i, f, o, g and r, z, n.
    order = [0, 1, 3, 2] if cell_name == "lstm" else [0, 1, 2]

    def blocks(a):
        return numpy.concatenate([a[..., k * H : (k + 1) * H] for k in order], axis=-1)

    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.tensor(blocks(p["Wx"]).T))
        net.weight_hh_l0.copy_(torch.tensor(blocks(p["Wh"]).T))
        net.bias_ih_l0.copy_(torch.tensor(blocks(p["b"])))
        b_hh = numpy.zeros(G * H)
        if cell_name == "gru":
            b_hh[2 * H :] = p["bhn"]
        net.bias_hh_l0.copy_(torch.tensor(b_hh))
    xt = torch.tensor(x, requires_grad=True)
    s0 = [torch.tensor(s[None], requires_grad=True) for s in state0]
    out, _ = net(xt, tuple(s0) if cell_name == "lstm" else s0[0])
    dhs = rng.normal(size=(T, N, H))
    (out * torch.tensor(dhs)).sum().backward()
    hs, _, cache = cell.forward(p, x, state0)
    numpy.testing.assert_allclose(hs, out.detach().numpy(), atol=1e-12)
    grads = _zeros_like(be, p)
    dx, ds0 = cell.backward(p, dhs, tuple(numpy.zeros((N, H)) for _ in state0), cache, grads)
    numpy.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12)
    numpy.testing.assert_allclose(blocks(grads["Wh"]).T, net.weight_hh_l0.grad.numpy(), atol=1e-12)
    numpy.testing.assert_allclose(ds0[0], s0[0].grad.numpy()[0], atol=1e-12)


@pytest.mark.parametrize("ids", [False, True])
def test_reading_the_input_projection_changes_nothing(ids):
    """proj[t] is a pure lookup: a student may evaluate it twice in a notebook."""
    rng = numpy.random.default_rng(0)
    Wx, b = rng.normal(size=(D, 3 * H)), rng.normal(size=3 * H)
    x = rng.integers(0, D, (T, N)) if ids else rng.normal(size=(T, N, D))
    proj = InputProjection(x, Wx, b)
    first = proj[1].copy()
    for _ in range(3):
        numpy.testing.assert_array_equal(proj[1], first)
    x1 = onehot(x[1], D, numpy.float64) if ids else x[1]
    numpy.testing.assert_allclose(first, x1 @ Wx + b, atol=1e-14)


def test_caches_name_what_they_keep():
    """A lesson reads the gates of a step by name, e.g. the forget gate of an LSTM step."""
    be = get_backend("numpy", "float64")
    cell, rng, p, x, state0 = _setup("lstm", be)
    _, cache = cell.step_forward(p, x[0], state0)
    a = x[0] @ p["Wx"] + state0[0] @ p["Wh"] + p["b"]
    numpy.testing.assert_allclose(cache.gates.f, 1 / (1 + numpy.exp(-a[:, H : 2 * H])), atol=1e-14)
    assert cache.gates.c_prev is state0[1] and cache.h_prev is state0[0]
    _, _, seq_cache = cell.forward(p, x, state0)
    assert len(seq_cache.steps) == T and seq_cache.steps[0].f.shape == (N, H)


def test_a_cell_with_only_the_step_contract_runs_through_the_step_loop():
    """A user's cell that implements step_forward/step_backward alone gets sequences for free."""

    class Plain(Cell):
        name = "plain"

        def param_shapes(self, D, H):
            return {"W": (D, H)}

        def init_params(self, D, H, rng):
            return {"W": rng.normal(size=(D, H))}

        def step_forward(self, p, x, state):
            h = numpy.tanh(x @ p["W"]) + 0.5 * state[0]
            return (h,), (x, h - 0.5 * state[0])

        def step_backward(self, p, dstate, cache, grads):
            x, th = cache
            da = dstate[0] * (1 - th * th)
            grads["W"] += x.T @ da
            return da @ p["W"].T, (0.5 * dstate[0],)

    cell, rng = Plain(), numpy.random.default_rng(0)
    p = cell.init_params(D, H, rng)
    x, h0 = rng.normal(size=(T, N, D)), rng.normal(size=(N, H))
    mask = (numpy.arange(T)[:, None] < numpy.array([3, 1])[None, :]).astype(float)
    dhs = rng.normal(size=(T, N, H))

    def loss():
        return float((cell.forward(p, x, (h0,), mask)[0] * dhs).sum())

    hs, _, cache = cell.forward(p, x, (h0,), mask)
    grads = {"W": numpy.zeros((D, H))}
    dx, (dh0,) = cell.backward(p, dhs, (numpy.zeros((N, H)),), cache, grads)
    for name, a, g in (("W", p["W"], grads["W"]), ("x", x, dx), ("h0", h0, dh0)):
        err = rel_error(g, numerical_gradient(loss, a))
        assert err < 1e-7, f"plain cell {name}: rel error {err:.2e}"
