"""Run by tests/test_distributed.py under ``mpiexec -n N python tests/mpi_helper.py MODE OUT ...``.

grads OUT BACKEND: one step of a tiny float64 model on the world; rank 0 saves the summed gradient and
    loss to OUT (.npz), after checking that every rank holds the same gradient to the bit, and (BACKEND
    strict) how many host-device copies the step made.
main OUT ARGS...: ``minirnn.train.main(ARGS)``, except that rank 1 trains on OUT, a file that is not there.
full-disk DATA ARGS...: ``minirnn.train.main(ARGS)``, with rank 0's checkpoints failing as on a full disk.
"""

import sys
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minirnn import distributed  # noqa: E402
from minirnn.backend import get_backend  # noqa: E402
from minirnn.data import Batches, prepare  # noqa: E402
from minirnn.model import CharRNN, ModelConfig  # noqa: E402
from minirnn.parallel import DataParallel  # noqa: E402

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 10


def one_step(backend_name, N=12, T=8, dropout=0.25):
    """Model, batch and dropout seed exactly as a one-process step would have them."""
    vocab, ids = prepare(TEXT)
    model = CharRNN(
        ModelConfig(len(vocab), 16, 2, "lstm", dropout), get_backend(backend_name, "float64"), seed=3
    )
    x, y = Batches(ids, N, T, seed=[0, 1]).next()
    return model, x, y, 12345


def grads(out, backend_name):
    from mpi4py import MPI

    if backend_name == "strict":
        from tests import strict_xp

        strict_xp.register()
    world = distributed.world()
    model, x, y, seed = one_step(backend_name)
    be = model.backend
    if backend_name == "strict":
        from tests.strict_xp import TRANSFERS

        before = dict(TRANSFERS)
    loss, _, _ = world.loss_and_grads(DataParallel(model), x, y, seed)
    copies = {k: TRANSFERS[k] - before[k] for k in before} if backend_name == "strict" else {}
    (total,) = world.sum(be.scalar(loss))
    flat = numpy.ascontiguousarray(be.to_host(model.grad_flat))
    digest = numpy.frombuffer(__import__("hashlib").sha256(flat.tobytes()).digest(), numpy.uint8).copy()
    every = numpy.empty((world.size, 32), numpy.uint8)
    world.comm.Allgather(digest, every)
    if world.rank == 0:
        same = bool((every == every[0]).all())
        numpy.savez(
            out,
            grad=flat,
            loss=total,
            same=same,
            to_host=copies.get("to_host", -1),
            to_device=copies.get("to_device", -1),
        )
    MPI.COMM_WORLD.Barrier()


def main_with_bad_rank(missing, argv):
    from minirnn import train

    if distributed.world().rank == 1:
        argv = [a if a != "DATA" else missing for a in argv]
    else:
        argv = [a if a != "DATA" else str(Path(missing).with_name("text.txt")) for a in argv]
    sys.exit(train.main(argv))


def main_with_a_full_disk_on_rank_0(argv):
    from minirnn import checkpoint, train

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if distributed.world().rank == 0:
        checkpoint.save = full
    sys.exit(train.main(argv))


if __name__ == "__main__":
    mode, out, *rest = sys.argv[1:]
    if mode == "grads":
        grads(out, rest[0])
    elif mode == "full-disk":
        main_with_a_full_disk_on_rank_0([out, *rest])
    else:
        main_with_bad_rank(out, rest)
