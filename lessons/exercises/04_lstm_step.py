# %% [markdown]
# # Exercise 4: one step of the LSTM, forward and backward
#
# The LSTM keeps two states: the output $h$ and the cell state $c$. Its four
# gates share one fused weight, side by side in minirnn's order **i, f, o, g**:
#
# $$a_t = x_t W_x + h_{t-1} W_h + b \ \ (N, 4H) = [a_i, a_f, a_o, a_g]$$
# $$i = \sigma(a_i),\quad f = \sigma(a_f),\quad o = \sigma(a_o),\quad g = \tanh(a_g)$$
# $$c_t = f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t)$$
#
# You write `lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b) -> (h, c, cache)`
# and `lstm_step_backward(dh, dc, cache) -> (dx, dh_prev, dc_prev, dWx, dWh, db)`.
# The derivation, step by step, is [docs/derivations.md#lstm](../../docs/derivations.md#lstm);
# lesson 4 (lessons/04_lstm_cell.py) builds the gates by hand and shows why
# the cell state carries gradient so well.
#
# Try each function in the cell below it, then grade: `python -m minirnn.grade 04_lstm_step.py`.

# %%
import numpy as np

from minirnn.gradcheck import numerical_gradient, rel_error
from minirnn.lstm import LSTM

rng = np.random.default_rng(0)
N, D, H = 2, 4, 5


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# %% [markdown]
# ## Forward
#
# Slice $a_t$ into its four (N, H) blocks in the order i, f, o, g. Keep in
# the cache the inputs, the weights, the four gates, $c_{t-1}$ and
# $\tanh(c_t)$: the derivatives need nothing else ($\sigma' = \sigma(1-\sigma)$
# and $\tanh' = 1 - \tanh^2$ come from the gates themselves).


# %%
def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    """x (N, D), h_prev and c_prev (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,) -> h, c (N, H), cache."""
    ### BEGIN SOLUTION  the gates i, f, o, g from a = x·Wx + h_prev·Wh + b, then c and h
    H = h_prev.shape[1]
    a = x @ Wx + h_prev @ Wh + b  # (N, 4H)
    i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H]), sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H :])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    return h, c, (x, h_prev, c_prev, Wx, Wh, i, f, o, g, tc)
    ### END SOLUTION


# %%
if __name__ == "__main__":  # against minirnn's LSTM: differences of about 1e-16
    x, h_prev, c_prev = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    Wx, Wh = 0.5 * rng.normal(size=(D, 4 * H)), 0.5 * rng.normal(size=(H, 4 * H))
    b = 0.1 * rng.normal(size=4 * H)
    h, c, cache = lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)
    (h_lib, c_lib), _ = LSTM().step_forward({"Wx": Wx, "Wh": Wh, "b": b}, x, (h_prev, c_prev))
    print("h:", rel_error(h, h_lib), " c:", rel_error(c, c_lib))
    assert rel_error(h, h_lib) < 1e-12 and rel_error(c, c_lib) < 1e-12

# %% [markdown]
# ## Backward
#
# The step receives `dh` $= \partial L/\partial h_t$ and `dc` $= \partial L/\partial c_t$.
#
# 1. $c_t$ reaches the loss directly and through $h_t$: $dc_t = dc + dh \odot o \odot (1 - \tanh^2 c_t)$.
# 2. Through the products: $do = dh \odot \tanh c_t$, $di = dc_t \odot g$, $dg = dc_t \odot i$,
#    $df = dc_t \odot c_{t-1}$, and $dc_{t-1} = dc_t \odot f$.
# 3. Through the nonlinearities: $da_i = di \odot i(1-i)$, $da_f = df \odot f(1-f)$,
#    $da_o = do \odot o(1-o)$, $da_g = dg \odot (1 - g^2)$.
# 4. $da = [da_i, da_f, da_o, da_g]$ (N, 4H), and then the matrix products as in exercise 2.


# %%
def lstm_step_backward(dh, dc, cache):
    """dh, dc (N, H) -> dx (N, D), dh_prev, dc_prev (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,)."""
    ### BEGIN SOLUTION  dc_t (both paths), the four gates' da, then dc_prev = dc_t ⊙ f and the products
    x, h_prev, c_prev, Wx, Wh, i, f, o, g, tc = cache
    dct = dc + dh * o * (1 - tc * tc)  # c_t reaches the loss directly and through h_t
    da = np.concatenate(
        [dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dh * tc * o * (1 - o), dct * i * (1 - g * g)],
        axis=1,
    )  # (N, 4H), gates i, f, o, g
    return da @ Wx.T, da @ Wh.T, dct * f, x.T @ da, h_prev.T @ da, da.sum(axis=0)
    ### END SOLUTION


# %% [markdown]
# Central differences through $L = \sum h_t \odot dh + \sum c_t \odot dc$:
# relative errors around 1e-10 or smaller.

# %%
if __name__ == "__main__":
    dh, dc = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    grads = lstm_step_backward(dh, dc, cache)

    def loss():
        h, c, _ = lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)
        return (h * dh).sum() + (c * dc).sum()

    names = ("dx", "dh_prev", "dc_prev", "dWx", "dWh", "db")
    for name, grad, array in zip(names, grads, (x, h_prev, c_prev, Wx, Wh, b)):
        err = rel_error(grad, numerical_gradient(loss, array))
        print(f"{name:<8} relative error {err:.1e}")
        assert err < 1e-7

# %% [markdown]
# ## Grade it
#
# `python -m minirnn.grade 04_lstm_step.py`: every row should end in PASS.
