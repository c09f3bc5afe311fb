"""Keep freed memory in the process between training steps (Linux with glibc only).

Every training step allocates the same large arrays and frees them again: the
gates of every time step, the (T, N, 4H) pre-activations and their gradients,
tens of MiB in all. glibc's malloc hands big blocks back to the operating
system when they are freed: blocks above its mmap threshold at once, and the
free top of its heap once that grows past its trim threshold. So the next step
asks the system for the same memory again, and the system gives it fresh
pages: one page fault per 4 KiB, each zeroed. For the tutorial's LSTM without
shards that was about 36,000 faults, 140 MiB of zeroing, a step.

``keep_freed_memory`` raises both thresholds, so the heap keeps what a step
freed and the next step reuses it. The memory a training process holds is
its peak, as it would be anyway one step later; nothing else changes. The
commands (``python -m minirnn.train``, ``minirnn.bench``, ``minirnn.gapfill``)
call it; importing minirnn does not touch your process's allocator, so in a
script or a notebook call it yourself if you want it.

Measured on a 2-core machine, the forward and backward of a training step
without and with it (tutorial configuration): LSTM 225–235 → 220 ms with its two shards
and 327 → 279 ms without shards, GRU 172–179 → 158 ms, vanilla RNN 67 → 54 ms
(docs/performance.md).

If you set glibc's own variables (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``, ..., or ``glibc.malloc.*`` in ``GLIBC_TUNABLES``)
they are left as you set them.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # blocks up to 32 MiB come from the heap: glibc's largest allowed on 64-bit
TRIM_THRESHOLD = 2**31 - 1  # keep up to 2 GiB of free heap (mallopt takes a C int)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse. True if it did; False where it cannot
    (not glibc, or the user tuned glibc's malloc). Safe to call more than once."""
    global _applied
    if _applied is None:
        _applied = _set_thresholds()
    return _applied


def _set_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False  # macOS, Windows, musl: other allocators, other rules
    tuned = [name for name in os.environ if name.startswith("MALLOC_") and name.endswith("_")]
    if tuned or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False  # the user tuned glibc's malloc already
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
