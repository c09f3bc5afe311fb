"""Benchmark: minirnn's training step and sampling, side by side with PyTorch in the same run.

    python -m minirnn.bench                  # the tutorial's configuration, LSTM
    python -m minirnn.bench --cell gru --steps 5
    python -m minirnn.bench --memory         # also peak memory of training, each side in its own process
    python -m minirnn.bench --backend cupy   # on a GPU, against PyTorch's cuDNN on the same GPU

Shared machines are noisy, so absolute times drift; what is reported is the
ratio of the two measured in one run, interleaved step by step so that both
sides see the same noise. PyTorch is optional (``pip install torch``); without
it only minirnn's numbers are printed. A training step is forward, backward,
clipping by global norm and Adam, as in ``python -m minirnn.train``; sampling
draws one character at a time with batch 1, carrying the state. On a GPU,
PyTorch runs with TensorFloat-32 off, since CuPy computes float32 in full
precision (``--torch-tf32`` times PyTorch's default too); a torch without
CUDA is refused there rather than timed on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy

from .backend import BackendError, get_backend
from .bench_torch import (
    TorchNativeSide,
    TorchSide,
    TorchTF32Side,
    torch_available,
    torch_cuda_refusal,
)
from .cli import OneLineParser, add_backend_flag
from .data import Vocab
from .malloc import keep_freed_memory
from .model import CharRNN, ConfigError, ModelConfig
from .optim import Adam, clip_by_global_norm
from .parallel import DataParallel, cpu_count
from .sample import sample

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def gemm_gflop(cell, N, T, V, H, L) -> float:
    """GEMM work of one training step, counted as the PyTorch reference counts it: forward
    2·N·T·(recurrent weights + decoder weights), one-hot input as a GEMM; backward twice that."""
    g = GATES.get(cell, 4)
    weights = sum(g * H * ((V if k == 0 else H) + H) for k in range(L)) + H * V
    return 3 * 2.0 * N * T * weights / 1e9


def stats(xs):
    return min(xs), statistics.median(xs), max(xs)


# -- minirnn ----------------------------------------------------------------------------------------
class MinirnnSide:
    name = "minirnn"

    def __init__(self, args, data):
        self.be = get_backend(args.backend, "float32")
        self.model = CharRNN(
            ModelConfig(args.vocab_size, args.hidden_size, args.layers, args.cell), self.be, seed=args.seed
        )
        self.parallel = DataParallel(self.model, threads=args.threads)  # the shard seam, as in training
        self.opt = Adam(self.model.params, lr=1e-3)
        self.data = [(self.be.asarray(x), self.be.asarray(y)) for x, y in data]
        self.clip = args.clip
        self.shards = args.shards or None  # None: DataParallel's own choice, as in training

    def train_step(self, i):
        x, y = self.data[i % len(self.data)]
        loss, _, _ = self.parallel.loss_and_grads(x, y, shards=self.shards)
        clip_by_global_norm(self.model.grads, self.clip)
        self.opt.step(self.model.grads)
        self.be.synchronize()
        return loss

    def sample(self, n, seed):
        """n characters, batch 1, through minirnn.sample.sample: what python -m minirnn.sample runs."""
        vocab = Vocab([chr(0x21 + k) for k in range(self.model.config.vocab_size)])
        return sample(self.model, vocab, prime=vocab.chars[0], length=n, seed=seed)


def time_training(sides, steps, warmup, block=3):
    """Interleave the sides in short blocks of steps; return seconds per timed step for each.

    Each side runs a block of ``block`` timed steps, then the other side does;
    the order flips every round (A B, B A, ...), so slow and fast minutes of a
    shared machine fall on both sides alike. Each block starts with one untimed
    step: the threads of a BLAS or OpenMP pool spin for a while after their
    last task (OpenBLAS's for about a tenth of a second), and a side whose
    timed step began while the other's threads were still spinning would pay
    for them. ``warmup`` untimed steps per side come first.
    """
    for i in range(warmup):
        for side in sides:
            side.train_step(i)
    times = {s.name: [] for s in sides}
    i, rnd = warmup, 0
    while any(len(t) < steps for t in times.values()):
        for side in sides if rnd % 2 == 0 else sides[::-1]:
            side.train_step(i)  # untimed: lets the other side's threads go quiet
            for _ in range(min(block, steps - len(times[side.name]))):
                i += 1
                t0 = time.perf_counter()
                side.train_step(i)
                times[side.name].append(time.perf_counter() - t0)
        rnd += 1
    return times


def time_sampling(sides, chars, reps, seed):
    rates = {s.name: [] for s in sides}
    for side in sides:
        side.sample(20, seed)  # warm up
    for rep in range(reps):
        for side in sides if rep % 2 == 0 else sides[::-1]:
            t0 = time.perf_counter()
            side.sample(chars, seed)
            rates[side.name].append(chars / (time.perf_counter() - t0))
    return rates


def peak_rss_mib() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec; ru_maxrss
    does not (a child of a big parent inherits its peak), so it is only the fallback."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(args) -> dict:
    """In a fresh process: peak resident memory before and after a few training steps."""
    data = make_data(args)
    side = (TorchSide if args.memory_child == "torch" else MinirnnSide)(args, data)
    before = peak_rss_mib()
    for i in range(3):
        side.train_step(i)
    after = peak_rss_mib()
    return {"before_mib": before, "peak_mib": after, "training_mib": after - before}


def measure_memory(args, names):
    out = {}
    for name in names:
        cmd = [sys.executable, "-m", "minirnn.bench", "--memory-child", name] + passthrough(args)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"memory measurement for {name} failed: {proc.stderr.strip().splitlines()[-1:]}"
            )
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def passthrough(args):
    return [
        "--cell",
        args.cell,
        "--batch-size",
        str(args.batch_size),
        "--seq-length",
        str(args.seq_length),
        "--hidden-size",
        str(args.hidden_size),
        "--layers",
        str(args.layers),
        "--vocab-size",
        str(args.vocab_size),
        "--backend",
        args.backend,
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
    ] + (["--system-malloc"] if args.system_malloc else [])


def make_data(args, n_batches=4):
    rng = numpy.random.default_rng(args.seed)
    shape = (args.batch_size, args.seq_length)
    return [
        (rng.integers(0, args.vocab_size, shape), rng.integers(0, args.vocab_size, shape))
        for _ in range(n_batches)
    ]


def build_parser():
    ap = OneLineParser(
        prog="python -m minirnn.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = ap.add_argument_group("configuration (defaults: the tutorial's)")
    g.add_argument("--cell", choices=sorted(GATES), default="lstm", help="cell type (default lstm)")
    g.add_argument("--batch-size", type=int, default=128, help="sequences per batch (default 128)")
    g.add_argument("--seq-length", type=int, default=50, help="time steps per sequence (default 50)")
    g.add_argument("--hidden-size", type=int, default=256, help="units per layer (default 256)")
    g.add_argument("--layers", type=int, default=2, help="stacked layers (default 2)")
    g.add_argument("--vocab-size", type=int, default=65, help="symbols (default 65, Tiny Shakespeare)")
    g.add_argument("--clip", type=float, default=5.0, help="global-norm clip (default 5)")
    add_backend_flag(g, help="numpy (default) or cupy; PyTorch then runs on CUDA")
    r = ap.add_argument_group("measurement")
    r.add_argument("--steps", type=int, default=10, help="timed training steps per side (default 10)")
    r.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    r.add_argument("--sample-chars", type=int, default=2000, help="characters per sampling run; 0 skips")
    r.add_argument("--sample-reps", type=int, default=3, help="sampling runs per side (default 3)")
    r.add_argument(
        "--shards",
        type=int,
        default=0,
        help="split minirnn's batch into this many shards, one thread each (default 0: automatic)",
    )
    r.add_argument(
        "--threads",
        type=int,
        default=cpu_count(),
        help=f"CPU threads of each side (default: this process's cores, {cpu_count()})",
    )
    r.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave glibc's malloc as it is, to see what minirnn.malloc.keep_freed_memory buys",
    )
    r.add_argument("--no-torch", action="store_true", help="time minirnn alone")
    r.add_argument(
        "--torch-tf32",
        action="store_true",
        help="with --backend cupy, also time PyTorch with TF32 allowed (its cuDNN default); "
        "the side called torch always computes in full float32, as CuPy does",
    )
    r.add_argument("--memory", action="store_true", help="also measure peak memory of training")
    r.add_argument("--json", action="store_true", help="print one JSON line of results at the end")
    r.add_argument("--seed", type=int, default=0)
    ap.add_argument("--memory-child", choices=["minirnn", "torch"], help=argparse.SUPPRESS)
    return ap


FORCING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # variables that make OpenBLAS take another kernel


def blas_line(environ=os.environ) -> str:
    """Which BLAS NumPy's products run on and which kernel it chose (threadpoolctl), and whether
    the environment (``environ``) forced that kernel: figures measured so are not what a user gets."""
    from threadpoolctl import threadpool_info

    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    found = "; ".join(
        f"{i.get('internal_api')} {i.get('version')}, kernel {i.get('architecture')}, "
        f"{i.get('num_threads')} threads"
        for i in libs
    )
    forced = [f"{name}={environ[name]}" for name in FORCING if name in environ]
    how = (
        f"forced by {' '.join(forced)}: unset them for figures a user would see"
        if forced
        else "chosen by the library itself"
    )
    return f"BLAS: {found or 'not found by threadpoolctl'} ({how})"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("batch_size", "seq_length", "hidden_size", "layers", "vocab_size", "steps", "threads"):
        if getattr(args, name) < 1:
            print(f"minirnn.bench: error: --{name.replace('_', '-')} must be positive", file=sys.stderr)
            return 2
    if args.shards < 0:
        print("minirnn.bench: error: --shards must be 0 (automatic) or more", file=sys.stderr)
        return 2
    use_torch = not args.no_torch and not args.memory_child and torch_available()
    if use_torch and args.backend == "cupy":
        import torch

        refusal = torch_cuda_refusal(torch)
        if refusal:
            print(f"minirnn.bench: error: {refusal}", file=sys.stderr)
            return 2
    if not args.system_malloc:
        keep_freed_memory()  # as python -m minirnn.train does; PyTorch, in the same process, gets it too
    try:
        if args.memory_child:
            print(json.dumps(memory_child(args)))
            return 0
        data = make_data(args)
        sides = [MinirnnSide(args, data)]
    except (BackendError, ConfigError) as exc:
        print(f"minirnn.bench: error: {exc}", file=sys.stderr)
        return 2
    if use_torch:
        sides.append(TorchSide(args, data))
        if args.torch_tf32 and sides[1].device == "cuda":
            sides.append(TorchTF32Side(sides[1]))
    on = (
        ("cuda, TF32 off" + ("; torch-tf32: TF32 on" if len(sides) > 2 else ""))
        if args.backend == "cupy"
        else f"cpu, {args.threads} threads"
    )
    print(
        f"minirnn on {sides[0].be}  numpy {numpy.__version__}  python {platform.python_version()} "
        f"{platform.machine()}"
        + (f"  torch {sys.modules['torch'].__version__} ({on})" if use_torch else "  (no torch)")
    )
    if args.backend == "numpy":
        print(blas_line())
    N, T, V, H, L = args.batch_size, args.seq_length, args.vocab_size, args.hidden_size, args.layers
    print(
        f"config: cell={args.cell} vocab={V} hidden={H} layers={L} batch={N} seq={T} float32, "
        f"Adam, clip {args.clip}; params {sides[0].model.num_params():,}"
    )
    if args.backend == "numpy":
        shards = args.shards or sides[0].parallel.shards(N)
        print(
            f"minirnn: {args.threads} threads; the batch runs as {shards} shard(s) "
            f"of about {N // shards} rows"
            + (", one BLAS thread each (minirnn/parallel.py)" if shards > 1 else "")
        )
    result = {"config": {k: v for k, v in vars(args).items() if k != "memory_child"}}

    times = time_training(sides, args.steps, args.warmup)
    gf = gemm_gflop(args.cell, N, T, V, H, L)
    print(
        f"\ntraining step ({args.steps} timed after {args.warmup} warm-up, "
        "interleaved in blocks of 3), seconds:"
    )
    for name, ts in times.items():
        lo, med, hi = stats(ts)
        print(
            f"  {name:<8} min {lo:.4f}  median {med:.4f}  max {hi:.4f}   {N * T / med:>8,.0f} chars/s  "
            f"{gf / med:>5.0f} GFLOP/s"
        )
        result[f"{name}_step_s"] = [lo, med, hi]
    if use_torch:
        ratio = statistics.median(times["torch"]) / statistics.median(times["minirnn"])
        print(f"  ratio: minirnn trains {ratio:.2f}x as fast as torch (median over median)")
        result["train_speedup_vs_torch"] = ratio
        if "torch-tf32" in times:
            ratio = statistics.median(times["torch-tf32"]) / statistics.median(times["minirnn"])
            print(f"         and {ratio:.2f}x as fast as torch with TF32 allowed")
            result["train_speedup_vs_torch_tf32"] = ratio

    if args.sample_chars > 0:
        samplers = sides[:2]  # not torch-tf32: sampling has no GEMM worth the name
        if use_torch and sides[1].device == "cpu":
            samplers.append(TorchNativeSide(sides[1]))
        rates = time_sampling(samplers, args.sample_chars, args.sample_reps, args.seed)
        print(
            f"\nsampling {args.sample_chars} chars, batch 1, carried state "
            f"({args.sample_reps} runs), chars/s:"
        )
        for name, rs in rates.items():
            lo, med, hi = stats(rs)
            print(f"  {name:<8} min {lo:>8,.0f}  median {med:>8,.0f}  max {hi:>8,.0f}")
            result[f"{name}_sample_chars_per_s"] = [lo, med, hi]
        if use_torch:
            ratio = statistics.median(rates["minirnn"]) / statistics.median(rates["torch"])
            print(f"  ratio: minirnn samples {ratio:.1f}x as fast as torch (torch's default backends)")
            result["sample_speedup_vs_torch"] = ratio
            if "torch-native" in rates:
                ratio = statistics.median(rates["minirnn"]) / statistics.median(rates["torch-native"])
                print(f"         and {ratio:.1f}x as fast as torch with mkldnn off")
                result["sample_speedup_vs_torch_native"] = ratio

    if args.memory:
        mem = measure_memory(args, [s.name for s in sides[:2]])
        print(
            "\npeak resident memory, MiB (each side in a fresh process; 'training' = peak during 3 steps "
            "minus the peak before them):"
        )
        for name, m in mem.items():
            print(f"  {name:<8} training {m['training_mib']:>7.0f}   whole process {m['peak_mib']:>7.0f}")
        if use_torch:
            ratio = mem["minirnn"]["training_mib"] / max(mem["torch"]["training_mib"], 1)
            print(f"  ratio: minirnn's training memory is {ratio:.2f}x torch's")
        result["memory_mib"] = mem
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
