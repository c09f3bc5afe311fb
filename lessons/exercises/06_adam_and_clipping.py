# %% [markdown]
# # Exercise 6: clipping by global norm, and Adam
#
# Two small functions that every training step calls after the backward pass:
#
# * `clip_by_global_norm(grads, max_norm) -> norm`: treat every gradient
#   array of the dict as one long vector $g$; if its length $\lVert g \rVert$
#   is above `max_norm`, scale every array, in place, by
#   $\text{max\_norm} / \lVert g\rVert$. Return $\lVert g\rVert$ as it was before.
# * `adam_update(p, g, m, v, t, lr, beta1, beta2, eps)`: one Adam step for
#   one parameter array `p` with gradient `g`, updating `p` and the running
#   averages `m` and `v` in place; `t` is the step number, starting at 1.
#
# Adam as minirnn (and TensorFlow) writes it, with the bias corrections
# folded into the step size:
#
# $$m \leftarrow \beta_1 m + (1-\beta_1) g,\qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\qquad
# p \leftarrow p - \mathrm{lr}\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m}{\sqrt v + \epsilon}$$
#
# The reasons for both are in [docs/optim.md](../../docs/optim.md#adam); lesson 6
# (lessons/06_training.py) shows what goes wrong without clipping.
# Try each function in the cell below it, then grade: `python -m minirnn.grade 06_adam_and_clipping.py`.

# %%
import numpy as np

from minirnn import optim
from minirnn.gradcheck import rel_error

rng = np.random.default_rng(0)

# %% [markdown]
# ## Clipping by global norm
#
# "In place" means the caller's arrays change: `g *= scale` does that,
# `g = g * scale` only makes a new array. Below the limit, leave the
# gradient as it is (scale by 1, never up).


# %%
def clip_by_global_norm(grads, max_norm):
    """grads: a dict of arrays, scaled in place so that their global norm is at most max_norm.
    Returns the global norm before clipping."""
    ### BEGIN SOLUTION  norm = sqrt(Σ g² over every array); scale each by max_norm / max(norm, max_norm)
    norm = np.sqrt(sum((g * g).sum() for g in grads.values()))
    scale = max_norm / max(norm, max_norm)  # 1 when the gradient is already short enough
    for g in grads.values():
        g *= scale
    return norm
    ### END SOLUTION


# %%
if __name__ == "__main__":  # against minirnn.optim: the same norm and the same arrays
    grads = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    lib = {k: g.copy() for k, g in grads.items()}
    norm, lib_norm = clip_by_global_norm(grads, 1.0), optim.clip_by_global_norm(lib, 1.0)
    after = np.sqrt(sum((g * g).sum() for g in grads.values()))
    print(f"norm {norm:.6f}, minirnn {float(lib_norm):.6f}; after clipping {after:.6f}")
    assert all(rel_error(grads[k], lib[k]) < 1e-12 for k in grads)

# %% [markdown]
# ## One Adam step
#
# `m` and `v` start at zero and must keep their values between steps, so
# update them in place too (`m *= beta1; m += (1 - beta1) * g`).


# %%
def adam_update(p, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step for the array p (in place), with gradient g; m and v (like p) are updated in place."""
    ### BEGIN SOLUTION  update m and v in place, then p -= lr·sqrt(1 - β2^t) / (1 - β1^t) · m / (sqrt(v) + ε)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    p -= lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + eps)
    ### END SOLUTION


# %%
if __name__ == "__main__":  # three steps against minirnn.optim.Adam: differences of about 1e-16
    p = rng.normal(size=(3, 4))
    lib = {"p": p.copy()}
    opt = optim.Adam(lib, lr=1e-2)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, 4):
        g = rng.normal(size=p.shape)
        adam_update(p, g, m, v, t, lr=1e-2)
        opt.step({"p": g})
        print(f"step {t}: largest difference from minirnn {np.abs(p - lib['p']).max():.1e}")
        assert np.abs(p - lib["p"]).max() < 1e-12

# %% [markdown]
# ## Grade it
#
# `python -m minirnn.grade 06_adam_and_clipping.py`: every row should end in PASS.
