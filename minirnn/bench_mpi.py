"""Step time of MPI ranks against threads, on this machine, in one run: ``python -m minirnn.bench_mpi``.

    python -m minirnn.bench_mpi                  # the tutorial's model, 3 rounds of 20 timed steps
    python -m minirnn.bench_mpi --rounds 5 --json
    python -m minirnn.bench_mpi --model          # one process at 128/P rows, and a ring: P = 2..64 machines
    python -m minirnn.bench_mpi --prepare big.txt [--code OLD_CHECKOUT]   # time and peak memory of preparing

Each round times, one after the other (so that a busy machine slows them alike):
one process on one thread, one process with 2 thread shards (parallel.py), and
2 MPI ranks with one thread each (distributed.py); each does the full training
step (forward, backward, the Allreduce, clipping, Adam) on the same batches,
with one BLAS thread per shard (as parallel.py runs its shards).
The 2-rank figure also says how long its Allreduce and the stop agreement took.
docs/distributed.md reports the figures. Needs the mpi extra.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy

# (name, ranks, shard threads per rank); BLAS runs one thread per shard throughout.
CONFIGS = [
    ("1 process, 1 thread", 1, 1),
    ("1 process, 2 threads", 1, 2),
    ("2 MPI ranks, 1 thread each", 2, 1),
]


def worker(args):
    """Run under mpiexec (or alone): time ``args.steps`` training steps after 3 warm-up steps; rank 0
    prints one JSON line."""
    from . import distributed
    from .backend import get_backend
    from .data import Batches, prepare_file, split
    from .model import CharRNN, ModelConfig
    from .optim import Adam, clip_by_global_norm
    from .parallel import DataParallel

    world = distributed.world()
    distributed.limit_blas_threads(1)  # one BLAS thread per shard, as DataParallel's shards run
    vocab, ids = prepare_file(None, None)
    train_ids, _ = split(ids)
    model = CharRNN(ModelConfig(len(vocab), args.hidden_size, 2, "lstm"), get_backend("numpy", "float32"), 0)
    dp, opt = DataParallel(model, args.threads), Adam(model.params)
    batches = Batches(train_ids, args.batch_size, 50, seed=[0, 1])
    comm_seconds, times, cpu = 0.0, [], []
    allreduce = getattr(world, "allreduce", None)
    if allreduce is not None:  # time the communication on its own as well

        def timed(flat, be):
            nonlocal comm_seconds
            t = time.perf_counter()
            allreduce(flat, be)
            comm_seconds += time.perf_counter() - t

        world.allreduce = timed
    for step in range(3 + args.steps):
        if step == 3:
            comm_seconds = 0.0
        t, t_cpu = time.perf_counter(), time.process_time()
        x, y = batches.next()
        world.loss_and_grads(dp, x, y, None)
        clip_by_global_norm(model.grads, 5.0)
        opt.step(model.grads)
        c = time.perf_counter()
        world.agree_stop(None)
        if step >= 3:
            comm_seconds += time.perf_counter() - c
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - t_cpu)
    if world.rank == 0:
        print(
            json.dumps(
                {
                    "step_ms": 1000 * float(numpy.median(times)),
                    "cpu_ms": 1000
                    * float(numpy.median(cpu)),  # this process's CPU time: what load does not inflate
                    "comm_ms": 1000 * comm_seconds / args.steps,
                    "params": model.num_params(),
                }
            ),
            flush=True,
        )


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m minirnn.bench_mpi", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="times each configuration is timed (default 3)")
    ap.add_argument(
        "--steps", type=int, default=20, help="timed steps per configuration and round (default 20)"
    )
    ap.add_argument("--hidden-size", type=int, default=256, help="H (default 256, the tutorial's)")
    ap.add_argument("--batch-size", type=int, default=128, help="N (default 128)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument(
        "--model",
        action="store_true",
        help="instead: time one process at 128/P rows and model P = 2..64 machines on a ring",
    )
    ap.add_argument("--prepare", metavar="TEXT", help="instead: time and peak memory of preparing TEXT")
    ap.add_argument(
        "--code", metavar="DIR", help="with --prepare: the minirnn checkout to measure (default: this)"
    )
    ap.add_argument("--cache", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker and args.prepare:
        return prepare_worker(args)
    if args.worker:
        return worker(args)
    mpiexec = Path(sys.executable).with_name("mpiexec")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    )
    if args.model:
        return paper_model(args, env)
    if args.prepare:
        return prepare_bench(args, env)
    results = {name: [] for name, _, _ in CONFIGS}
    for _ in range(args.rounds):
        for name, ranks, threads in CONFIGS:
            cmd = [
                sys.executable,
                "-m",
                "minirnn.bench_mpi",
                "--worker",
                "--threads",
                str(threads),
                "--steps",
                str(args.steps),
                "--hidden-size",
                str(args.hidden_size),
                "--batch-size",
                str(args.batch_size),
            ]
            if ranks > 1:
                cmd = [str(mpiexec), "-n", str(ranks), *cmd]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1]))
    from threadpoolctl import threadpool_info

    blas = [
        (i.get("internal_api"), i.get("architecture"))
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    summary = {"blas": blas, "rounds": args.rounds, "steps": args.steps, "results": results}
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    base = numpy.median([r["step_ms"] for r in results[CONFIGS[0][0]]])
    print(
        f"BLAS {blas}; {args.rounds} rounds of {args.steps} steps, N {args.batch_size}, H {args.hidden_size}"
    )
    for name, ranks, _ in CONFIGS:
        ms = [r["step_ms"] for r in results[name]]
        comm = numpy.median([r["comm_ms"] for r in results[name]])
        waits = f", of which {comm:.1f} ms in the Allreduce and the stop agreement" if ranks > 1 else ""
        print(
            f"{name:<28} step {numpy.median(ms):7.1f} ms (rounds {min(ms):.1f} to {max(ms):.1f}), "
            f"{base / numpy.median(ms):.2f}x one thread{waits}"
        )
    return 0


LATENCY = 20e-6  # seconds per message on a datacenter network (assumed, not measured here)
MACHINES = (1, 2, 4, 8, 16, 32, 64)


def paper_model(args, env):
    """Measure one process's step at 128/P rows (the rows each of P machines gets of the batch), then
    add a ring allreduce of the float32 gradient: 2 (P - 1) messages, 2 (P - 1) / P of the bytes each way."""
    compute = {}
    for P in MACHINES:
        rows = args.batch_size // P
        cmd = [
            sys.executable,
            "-m",
            "minirnn.bench_mpi",
            "--worker",
            "--threads",
            "1",
            "--steps",
            str(args.steps),
            "--hidden-size",
            str(args.hidden_size),
            "--batch-size",
            str(rows),
        ]
        runs = [
            json.loads(
                subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            for _ in range(args.rounds)
        ]
        # CPU time, not wall time: one thread's CPU time is its compute, however busy the machine
        compute[P] = numpy.median([r["cpu_ms"] for r in runs]) / 1000
        params = runs[0]["params"]
    size = 4 * params  # bytes of float32 gradient
    print(
        f"gradient {params:,} float32 = {size / 1e6:.2f} MB; compute: the CPU time of a step of one process "
        f"on one thread at 128 / P rows; the ring: latency {LATENCY * 1e6:.0f} us a message"
    )
    print(
        "| machines P | rows each | compute (ms) | ring at 10 Gb/s (ms) | efficiency | "
        "ring at 100 Gb/s (ms) | efficiency |"
    )
    print("|---|---|---|---|---|---|---|")
    for P in MACHINES:
        cells = [f"{P}", f"{args.batch_size // P}", f"{1000 * compute[P]:.1f}"]
        for gbps in (10, 100):
            ring = 0.0 if P == 1 else 2 * (P - 1) / P * size * 8 / (gbps * 1e9) + 2 * (P - 1) * LATENCY
            cells += [f"{1000 * ring:.2f}", f"{compute[1] / (P * (compute[P] + ring)):.2f}"]
        print("| " + " | ".join(cells) + " |")
    return 0


def prepare_bench(args, env):
    """Prepare the text twice, each in a fresh process: with an empty cache, then with the cache filled."""
    import tempfile

    code = str(Path(args.code).resolve()) if args.code else str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as cache:
        for what in ("first", "cached"):
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                "--prepare",
                args.prepare,
                "--cache",
                cache,
                "--code",
                code,
            ]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            print(f"{what:<7} {out.strip()}")
    return 0


def prepare_worker(args):
    """Prepare, split, Batches(128, 50) and one batch; print the time and the peak resident memory. Runs
    the checkout ``args.code``: one from before data.prepare_file existed reads the whole text (load_text)."""
    import resource

    sys.path.insert(0, args.code)
    from minirnn import data

    t = time.perf_counter()
    if hasattr(data, "prepare_file"):
        vocab, ids = data.prepare_file(args.prepare, args.cache)
    else:
        vocab, ids = data.prepare(data.load_text(args.prepare), args.cache)
    train_ids, _ = data.split(ids)
    data.Batches(train_ids, 128, 50).next()
    took = time.perf_counter() - t
    status = dict(line.split(":", 1) for line in open("/proc/self/status")) if os.path.exists("/proc") else {}
    mine = f", of it at the end: own {status['RssAnon'].strip()}, mapped files {status['RssFile'].strip()}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"{took:.1f} s, peak resident {peak:.2f} GiB{mine if status else ''}, ids {ids.dtype}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
