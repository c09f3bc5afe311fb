"""The PyTorch side of the benchmark (``python -m minirnn.bench``): the same model, trained and
sampled with PyTorch's own LSTM/GRU/RNN, so that both are timed in one run.

torch is imported only when a side is built; without it the benchmark prints minirnn's numbers
alone. On a GPU, TensorFloat-32 is off unless asked for (CuPy computes float32 in full).
"""

from __future__ import annotations


def set_tf32(torch, allowed: bool) -> None:
    """Allow or forbid TensorFloat-32 in PyTorch's cuBLAS and cuDNN calls.

    cuDNN's RNNs may use TF32 by default (10-bit mantissas in the products), while
    CuPy computes float32 in full precision; forbidding it makes the comparison
    like for like. PyTorch 2.9 replaced the allow_tf32 flags by fp32_precision
    settings and refuses a mix of the two, so exactly one set is written.
    """
    if hasattr(torch.backends, "fp32_precision"):  # PyTorch >= 2.9
        mode = "tf32" if allowed else "ieee"
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.rnn.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = allowed
        torch.backends.cudnn.allow_tf32 = allowed


def torch_cuda_refusal(torch) -> str | None:
    """Why ``--backend cupy`` cannot be compared with this torch, or None."""
    if torch.cuda.is_available():
        return None
    return (
        f"--backend cupy compares with PyTorch on the GPU, but torch {torch.__version__} has no CUDA "
        "device here; install a CUDA build of torch, or pass --no-torch"
    )


class TorchSide:
    name = "torch"
    tf32 = False  # full float32, as CuPy computes (TorchTF32Side: PyTorch's own default)

    def __init__(self, args, data):
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        self.device = "cuda" if args.backend == "cupy" else "cpu"  # main() refused a torch without CUDA
        V, H, L = args.vocab_size, args.hidden_size, args.layers
        rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[args.cell]
        self.rnn = rnn_cls(V, H, L, batch_first=True).to(self.device)
        self.dec = torch.nn.Linear(H, V).to(self.device)
        self.V = V
        if args.cell in ("lstm", "rnn"):  # as the reference: b_hh duplicates b_ih, so freeze it at 0
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_hh"):
                    p.requires_grad_(False).zero_()
        self.params = [
            p for p in list(self.rnn.parameters()) + list(self.dec.parameters()) if p.requires_grad
        ]
        self.opt = torch.optim.Adam(self.params, lr=1e-3)
        self.data = [
            (torch.as_tensor(x).to(self.device), torch.as_tensor(y).to(self.device)) for x, y in data
        ]
        self.clip = args.clip

    def forward(self, x, state=None):
        oh = self.F.one_hot(x, self.V).float()  # as the reference: one-hot in, like minirnn's lookup
        out, state = self.rnn(oh, state)
        return self.dec(out), state

    def train_step(self, i):
        torch = self.torch
        x, y = self.data[i % len(self.data)]
        if self.device == "cuda":
            set_tf32(torch, self.tf32)  # every step: the TF32 side shares this process's flags
        self.opt.zero_grad(set_to_none=True)
        logits, _ = self.forward(x)
        loss = self.F.cross_entropy(logits.reshape(-1, self.V), y.reshape(-1))
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        if self.device == "cuda":
            torch.cuda.synchronize()
        return loss

    def sample(self, n, seed, mkldnn=True):
        """As the reference (../shared/bench/torch_reference.py): eval mode, no_grad, and
        torch's default backends, whose oneDNN RNN path is slow for one batch-1 step;
        ``mkldnn=False`` measures torch's native path instead."""
        torch = self.torch
        gen = torch.Generator(device=self.device).manual_seed(seed)
        tok = torch.zeros((1, 1), dtype=torch.long, device=self.device)
        state, out = None, []
        default = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = default and mkldnn
        self.rnn.eval()
        try:
            with torch.no_grad():
                for _ in range(n):
                    logits, state = self.forward(tok, state)
                    nxt = torch.multinomial(torch.softmax(logits[0, -1], dim=-1), 1, generator=gen)
                    out.append(int(nxt))
                    tok = nxt.view(1, 1)
        finally:
            self.rnn.train()
            torch.backends.mkldnn.enabled = default
        return out


class TorchNativeSide(TorchSide):
    """The same PyTorch model, sampled with torch.backends.mkldnn off (its faster native path)."""

    name = "torch-native"

    def __init__(self, torch_side):
        self.__dict__.update(torch_side.__dict__)

    def sample(self, n, seed, mkldnn=False):
        return super().sample(n, seed, mkldnn=False)


class TorchTF32Side(TorchSide):
    """The same PyTorch model, trained with TF32 allowed, as PyTorch runs cuDNN by default."""

    name = "torch-tf32"
    tf32 = True

    def __init__(self, torch_side):
        self.__dict__.update(torch_side.__dict__)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# -- running -------------------------------------------------------------------------------------------
