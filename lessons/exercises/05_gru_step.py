# %% [markdown]
# # Exercise 5: one step of the GRU ("reset after"), forward and backward
#
# minirnn's GRU is the form cuDNN, PyTorch and Keras use: the reset gate
# multiplies the *result* of the recurrent product, so the three gates share
# one product per step. Gate order **r, z, n**:
#
# $$a^x = x_t W_x + b,\qquad a^h = h_{t-1} W_h \qquad (N, 3H) \text{ each}$$
# $$r = \sigma(a^x_r + a^h_r),\quad z = \sigma(a^x_z + a^h_z),\quad
# n = \tanh\big(a^x_n + r \odot (a^h_n + b_{hn})\big)$$
# $$h_t = (1 - z) \odot n + z \odot h_{t-1}$$
#
# You write `gru_step_forward(x, h_prev, Wx, Wh, b, bhn) -> (h, cache)` and
# `gru_step_backward(dh, cache) -> (dx, dh_prev, dWx, dWh, db, dbhn)`. The
# derivation: [docs/derivations.md#gru](../../docs/derivations.md#gru).
#
# Try each function in the cell below it, then grade: `python -m minirnn.grade 05_gru_step.py`.

# %%
import numpy as np

from minirnn.gradcheck import numerical_gradient, rel_error
from minirnn.gru import GRU

rng = np.random.default_rng(0)
N, D, H = 2, 4, 5


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# %% [markdown]
# ## Forward
#
# Keep in the cache the inputs, the weights, the gates $r, z, n$ and
# $\hat h = a^h_n + b_{hn}$, which the backward pass needs twice.


# %%
def gru_step_forward(x, h_prev, Wx, Wh, b, bhn):
    """x (N, D), h_prev (N, H), Wx (D, 3H), Wh (H, 3H), b (3H,), bhn (H,) -> h (N, H), cache."""
    ### BEGIN SOLUTION  r and z; n = tanh(ax_n + r ⊙ (ah_n + bhn)); h = (1 - z) ⊙ n + z ⊙ h_prev
    H = h_prev.shape[1]
    ax, ah = x @ Wx + b, h_prev @ Wh  # (N, 3H) each
    r = sigmoid(ax[:, :H] + ah[:, :H])
    z = sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    hn = ah[:, 2 * H :] + bhn
    n = np.tanh(ax[:, 2 * H :] + r * hn)
    h = (1 - z) * n + z * h_prev
    return h, (x, h_prev, Wx, Wh, r, z, n, hn)
    ### END SOLUTION


# %%
if __name__ == "__main__":  # against minirnn's GRU: differences of about 1e-16
    x, h_prev = rng.normal(size=(N, D)), rng.normal(size=(N, H))
    Wx, Wh = 0.5 * rng.normal(size=(D, 3 * H)), 0.5 * rng.normal(size=(H, 3 * H))
    b, bhn = 0.1 * rng.normal(size=3 * H), 0.1 * rng.normal(size=H)
    h, cache = gru_step_forward(x, h_prev, Wx, Wh, b, bhn)
    (h_lib,), _ = GRU().step_forward({"Wx": Wx, "Wh": Wh, "b": b, "bhn": bhn}, x, (h_prev,))
    print("h: relative error against minirnn", rel_error(h, h_lib))
    assert rel_error(h, h_lib) < 1e-12

# %% [markdown]
# ## Backward
#
# 1. From $h_t = (1-z) \odot n + z \odot h_{t-1}$: $dn = dh \odot (1-z)$,
#    $dz = dh \odot (h_{t-1} - n)$, and a direct part $dh \odot z$ of $dh_{t-1}$.
# 2. Through the tanh: $da_n = dn \odot (1 - n^2)$; then $dr = da_n \odot \hat h$
#    and $d\hat h = da_n \odot r$.
# 3. Through the sigmoids: $da_r = dr \odot r(1-r)$, $da_z = dz \odot z(1-z)$.
# 4. The two (N, 3H) gradients differ only in the n block:
#    $da^x = [da_r, da_z, da_n]$ and $da^h = [da_r, da_z, d\hat h]$.
# 5. $dW_x = x_t^\top da^x$, $db = \sum_n da^x$, $dW_h = h_{t-1}^\top da^h$, $db_{hn} = \sum_n d\hat h$,
#    $dx = da^x W_x^\top$, $dh_{t-1} = dh \odot z + da^h W_h^\top$.


# %%
def gru_step_backward(dh, cache):
    """dh (N, H) -> dx (N, D), dh_prev (N, H), dWx (D, 3H), dWh (H, 3H), db (3H,), dbhn (H,)."""
    ### BEGIN SOLUTION  da for r, z, n through both products; dh_prev has a direct part dh ⊙ z
    x, h_prev, Wx, Wh, r, z, n, hn = cache
    dan = dh * (1 - z) * (1 - n * n)  # through n
    daz = dh * (h_prev - n) * z * (1 - z)  # through z
    dar = dan * hn * r * (1 - r)  # through r, which scales ah_n + bhn
    dax = np.concatenate([dar, daz, dan], axis=1)  # (N, 3H)
    dah = np.concatenate([dar, daz, dan * r], axis=1)  # (N, 3H)
    return (
        dax @ Wx.T,
        dh * z + dah @ Wh.T,
        x.T @ dax,
        h_prev.T @ dah,
        dax.sum(axis=0),
        (dan * r).sum(axis=0),
    )
    ### END SOLUTION


# %% [markdown]
# Central differences through $L = \sum h_t \odot dh$: relative errors around 1e-10 or smaller.

# %%
if __name__ == "__main__":
    dh = rng.normal(size=(N, H))
    grads = gru_step_backward(dh, cache)

    def loss():
        return (gru_step_forward(x, h_prev, Wx, Wh, b, bhn)[0] * dh).sum()

    names = ("dx", "dh_prev", "dWx", "dWh", "db", "dbhn")
    for name, grad, array in zip(names, grads, (x, h_prev, Wx, Wh, b, bhn)):
        err = rel_error(grad, numerical_gradient(loss, array))
        print(f"{name:<8} relative error {err:.1e}")
        assert err < 1e-7

# %% [markdown]
# ## Grade it
#
# `python -m minirnn.grade 05_gru_step.py`: every row should end in PASS.
