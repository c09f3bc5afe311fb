# %% [markdown]
# # Lesson 13: data parallelism by hand
#
# A training step's loss is a mean over the batch's positions. Split the batch's
# rows between workers, let each divide its part of the sum by the *whole*
# batch's count, and the workers' losses and gradients add up to the batch's.
# That is all data-parallel training is: each worker (a core, a GPU, a machine)
# computes the gradient of its rows, the gradients are summed across workers
# (an *allreduce*), and every worker takes the same optimiser step. minirnn does
# it on one CPU with threads (`minirnn/parallel.py`) and across processes with
# MPI (`minirnn/distributed.py`, `mpiexec -n 4 python -m minirnn.train`).
#
# This lesson: split a batch and add the shards' gradients; write the allreduce
# that Horovod made famous, a ring, with MPI's `Sendrecv`, and check it against
# MPI's own `Allreduce`; and train on two processes next to one.
# docs/distributed.md has the details and the figures.
#
# It needs `pip install -e '.[mpi]'` (mpi4py and MPICH, whose `mpiexec` lands next
# to your Python). Run it: `python lessons/13_data_parallel.py` (about 15 seconds), or open
# it as a notebook (Jupyter with jupytext, VS Code, PyCharm: the `# %%` lines are its cells).
# Quick mode runs it in seconds with tiny settings, whose numbers mean little:
# `MINIRNN_QUICK=1 python lessons/13_data_parallel.py`, or in a notebook `QUICK = True` in
# the first code cell.

# %%
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import minirnn
from minirnn import CharRNN, ModelConfig, data, get_backend
from minirnn.lessons import figures, quick, save_figure
from minirnn.model import named_views
from minirnn.train import TrainConfig, train

QUICK = quick()  # MINIRNN_QUICK=1: tiny settings. In a notebook you may write QUICK = True here
FIGURES = figures("13_data_parallel")
MPIEXEC = Path(sys.executable).with_name("mpiexec")  # MPICH's, installed next to Python by the mpi extra
# The processes mpiexec starts import the same minirnn as this one, installed or not.
ENV = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join([str(Path(minirnn.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
)

# %% [markdown]
# ## The shards' gradients add up to the batch's
#
# One batch of 8 rows, in float64 so that only rounding can differ. First the
# whole batch's gradient; then rows 0..4 and 5..7 separately, each with its
# rows of the batch's dropout masks and the batch's count (8 rows · T positions)
# as the divisor, each into its own gradient buffer. Their sum should equal
# the whole batch's gradient to about 1e-16 relative (below 1e-13 for sure):
# the same numbers, added in another order.

# %%
be = get_backend("numpy", "float64")
vocab, ids = data.prepare(data.load_text()[:200_000])
N, T = 8, 25
model = CharRNN(ModelConfig(len(vocab), 32, 2, "lstm", dropout=0.2), be, seed=0)
x, y = data.Batches(ids, N, T).next()

loss, _, _ = model.loss_and_grads(x, y, dropout_seed=7)  # the whole batch
whole = model.grad_flat.copy()

drops = model.dropout_masks(7, T, N)  # the batch's masks: (T, N, H) per layer
shard_grads, shard_losses = [], []
for rows in (slice(0, 5), slice(5, 8)):
    buffer = np.zeros_like(model.grad_flat)
    part, _, _ = model.loss_and_grads(
        x[rows],
        y[rows],
        drops=[d[:, rows] for d in drops],
        count=N * T,
        grads=named_views(buffer, model.shapes),
    )
    shard_grads.append(buffer)
    shard_losses.append(float(part))
added = shard_grads[0] + shard_grads[1]
grad_err = np.abs(added - whole).max() / np.abs(whole).max()
print(
    f"loss: whole batch {float(loss):.15f}, shards {shard_losses[0]:.6f} + {shard_losses[1]:.6f} "
    f"= {sum(shard_losses):.15f}"
)
print(f"largest difference of the gradients, relative to the largest entry: {grad_err:.1e}")
assert abs(sum(shard_losses) - float(loss)) < 1e-13 and grad_err < 1e-13

# %% [markdown]
# ## A ring allreduce, by hand
#
# The sum across workers is the one thing data parallelism must communicate,
# every step: 871,745 numbers for the tutorial's model. Sending every gradient
# to one worker and back would load that worker with P - 1 vectors each way.
# A ring shares the load: cut the vector into P chunks, pass chunks to the
# right neighbour, adding as they go (reduce-scatter), then pass the finished
# chunks round once more (allgather). Here is the code each rank runs,
# `minirnn/ring_allreduce.py`:

# %%
RING = Path(importlib.util.find_spec("minirnn.ring_allreduce").origin)  # read, not imported: no MPI here
print(RING.read_text())

# %% [markdown]
# Run it on 4 ranks, with the tutorial's 871,745 numbers, and compare with
# MPI's `Allreduce` on the same vectors. You should see a largest relative
# difference around 1e-16 (the additions happen in another order) and each
# rank sending 2 · 3/4 = 1.5 times the vector.

# %%
ring_out = FIGURES / "ring.json"
subprocess.run(
    [
        str(MPIEXEC),
        "-n",
        "4",
        sys.executable,
        "-m",
        "minirnn.ring_allreduce",
        str(ring_out),
        str(100_000 if QUICK else 871_745),
    ],
    check=True,
    env=ENV,
)
ring = json.loads(ring_out.read_text())
print(
    f"{ring['ranks']} ranks, {ring['n']:,} numbers: largest relative difference from Allreduce "
    f"{ring['max_rel_diff']:.1e}; each rank sent {ring['sent']:,} numbers = "
    f"{ring['sent'] / ring['n']:.2f} x the vector"
)
assert ring["max_rel_diff"] < 1e-14 and abs(ring["sent"] / ring["n"] - 2 * 3 / 4) < 1e-4

# %% [markdown]
# ## Two processes train what one trains
#
# `mpiexec -n 2 python -m minirnn.train` gives each rank half of every batch
# (the batch a single process would draw, in the same order, with the same
# dropout masks); one `Allreduce` of the gradient per step sums the halves,
# and both ranks take the same Adam step. Rank 0 alone writes the run. In
# float64 the two curves should agree to rounding, a relative difference far
# below 1e-10 (the run prints it): not "roughly the same training" but the
# same numbers.

# %%
text = FIGURES / "text.txt"
text.write_text(data.load_text()[: 300_000 if QUICK else 1_115_394])
steps = 20 if QUICK else 200
flags = dict(
    data=str(text),
    hidden_size=32 if QUICK else 64,
    batch_size=16,
    seq_length=25,
    dropout=0.1,
    dtype="float64",
    max_steps=steps,
    print_every=1,
    eval_every=0,
    checkpoint_every=0,
    cache_dir="",
)
for run in ("one", "two"):
    shutil.rmtree(FIGURES / run, ignore_errors=True)  # a run directory is never overwritten
one = train(TrainConfig(**flags, out=str(FIGURES / "one"), quiet=True)).history
argv = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
two_ranks = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "minirnn.train", *argv]
subprocess.run([*two_ranks, f"--out={FIGURES / 'two'}", "--quiet"], check=True, env=ENV)
two = [json.loads(line) for line in (FIGURES / "two" / "metrics.jsonl").read_text().splitlines()]
loss_one, loss_two = np.array([r["loss"] for r in one]), np.array([r["loss"] for r in two])
diff = np.abs(loss_two - loss_one) / loss_one
print(
    f"{steps} steps: loss {loss_one[0]:.3f} -> {loss_one[-1]:.3f}; largest relative difference "
    f"between 1 and 2 processes {diff.max():.1e}"
)
assert diff.max() < 1e-10

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ax1.plot(loss_one, label="1 process", lw=3, alpha=0.5)
ax1.plot(loss_two, "--", label="2 MPI ranks, half the batch each")
ax1.set_xlabel("step")
ax1.set_ylabel("training loss")
ax1.set_title("The same curve")
ax1.legend()
ax2.semilogy(np.maximum(diff, 1e-17), ".")  # a step whose losses are equal to the bit is drawn at 1e-17
ax2.set_xlabel("step")
ax2.set_ylabel("|loss(2 ranks) - loss(1)| / loss(1); 1e-17: equal")
ax2.set_title("Only rounding differs (float64)")
save_figure(fig, FIGURES / "data_parallel.png")

# %% [markdown]
# ## What you should see, and what next
#
# The shards' gradients add up to the batch's to about 1e-16; the ring
# allreduce gives MPI's sums to about 1e-16 while sending 1.5 times the vector
# per rank; and two ranks draw the single process's curve, step for step, to
# rounding. Only the order of additions differs, which is why the
# comparison is made in float64. On a 2-core laptop two ranks are no faster than two threads
# (docs/distributed.md has the timings): the point of MPI is what comes after,
# more machines. There each step costs its compute divided by the ranks plus
# the ring's 2 (P - 1) / P · 3.5 MB on the network, and docs/distributed.md
# works out where that stops paying.
