"""A ring allreduce by hand, with MPI's Sendrecv: ``mpiexec -n 4 python -m minirnn.ring_allreduce OUT``.

Lesson 13 shows this file and runs it; minirnn's training uses MPI's own Allreduce (distributed.py).

Every rank holds a vector; afterwards every rank holds the sum of all of them. The vector
is cut into P chunks (P ranks) and the ranks stand in a ring, each sending to its right
neighbour and receiving from its left:

* reduce-scatter, P - 1 steps: in step s rank r sends chunk (r - s) mod P and adds what it
  receives into chunk (r - s - 1) mod P. After P - 1 steps rank r holds chunk (r + 1) mod P
  summed over every rank.
* allgather, P - 1 steps: in step s rank r sends its finished chunk (r + 1 - s) mod P and
  stores what it receives as chunk (r - s) mod P.

Each rank sends 2 (P - 1) chunks of n / P numbers: 2 (P - 1) / P · n in all, less than
twice the vector, however many ranks there are. That is why rings scale (docs/distributed.md).
Run, it checks the ring against MPI's Allreduce on a random vector per rank, and rank 0 writes
the ranks, the length, the numbers sent and the largest relative difference as JSON to OUT.
"""

import json
import sys

import numpy
from mpi4py import MPI


def ring_allreduce(comm, x):
    """Sum ``x`` (1-d) over the ranks of ``comm``, in place; return the numbers this rank sent."""
    P, r = comm.Get_size(), comm.Get_rank()
    right, left = (r + 1) % P, (r - 1) % P
    edges = [len(x) * k // P for k in range(P + 1)]
    chunk = [x[edges[k] : edges[k + 1]] for k in range(P)]  # views: writing into them writes into x
    inbox = numpy.empty(edges[1] - edges[0] + 1, x.dtype)  # the largest chunk
    sent = 0
    for s in range(P - 1):  # reduce-scatter
        out, into = chunk[(r - s) % P], chunk[(r - s - 1) % P]
        comm.Sendrecv(out, dest=right, recvbuf=inbox[: len(into)], source=left)
        into += inbox[: len(into)]
        sent += len(out)
    for s in range(P - 1):  # allgather
        out, into = chunk[(r + 1 - s) % P], chunk[(r - s) % P]
        comm.Sendrecv(out, dest=right, recvbuf=into, source=left)
        sent += len(out)
    return sent


if __name__ == "__main__":
    comm, n = MPI.COMM_WORLD, int(sys.argv[2]) if len(sys.argv) > 2 else 871_745
    mine = numpy.random.default_rng(comm.Get_rank()).standard_normal(n)  # every rank a different vector
    by_hand, by_mpi = mine.copy(), mine.copy()
    sent = ring_allreduce(comm, by_hand)
    comm.Allreduce(MPI.IN_PLACE, by_mpi, op=MPI.SUM)
    worst = numpy.array([numpy.abs(by_hand - by_mpi).max() / numpy.abs(by_mpi).max()])
    comm.Allreduce(MPI.IN_PLACE, worst, op=MPI.MAX)
    if comm.Get_rank() == 0:
        with open(sys.argv[1], "w") as f:
            json.dump({"ranks": comm.Get_size(), "n": n, "sent": sent, "max_rel_diff": float(worst[0])}, f)
