"""A run directory's lifecycle: one writer at a time, nothing half-written, nothing left behind.

    RUN_DIR/.lock          held (fcntl.flock) by the one process training this run; holds its pid
    RUN_DIR/config.json    the run's options, written first (atomically)
    RUN_DIR/vocab.json     the vocabulary
    RUN_DIR/metrics.jsonl  one JSON row per line, appended
    RUN_DIR/checkpoints/   see checkpoint.py

The lock is taken before anything is read for a resume or written for a new
run, and held until the process ends; the kernel releases it when the process
dies, even by kill -9, so a stale lock never blocks a run. A second trainer
on the same directory gets one line naming the process that holds it.

While it holds the lock, a resume first sweeps what a killed run can leave:
temporary files and arrays that no checkpoint names (checkpoint.sweep), and
metrics rows past the checkpoint it continues from.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import checkpoint
from .options import TrainError

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer per run is then the user's to keep
    fcntl = None

LOCK = ".lock"


class RunBusy(TrainError):
    """Another process holds the run directory; one line naming it."""


def new_path(out: str | None) -> Path:
    """The directory a new run will create: --out, or runs/<date-time> (with a suffix if that is taken)."""
    if out:
        return Path(out)
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _is_fresh(path: Path) -> bool:
    """Nothing there yet, or only what a run killed in its first instant leaves (the lock, a temporary)."""
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    return all(p.name == LOCK or (p.name.startswith(".") and p.name.endswith(".tmp")) for p in path.iterdir())


def check_new(path: Path):
    """Refuse, before any work, a --out that holds something: a run is never overwritten."""
    if not _is_fresh(path):
        hint = (
            f"continue that run with --resume {path}"
            if (path / "config.json").is_file()
            else "choose another --out"
        )
        raise TrainError(f"{path} already exists and is not an empty directory; {hint}")


def create_new(out: str | None) -> RunDir:
    """Create and hold a new run's directory. Without --out, a name another run took meanwhile is skipped."""
    while True:
        run = RunDir(new_path(out))
        try:
            run.create()
            return run
        except TrainError:
            if out:
                raise


def run_of(resume: str) -> Path:
    """The run directory a --resume names: a checkpoint's run, or a run killed before its first checkpoint."""
    p = Path(resume)
    # A run directory is known by its config.json (written first), without reading its checkpoints:
    # this runs before the lock is taken, while a process holding the run may be pruning them.
    if p.is_dir() and (p / "config.json").is_file():
        return p
    if p.is_dir() and p.name == "checkpoints" and (p.parent / "config.json").is_file():
        return p.parent
    return checkpoint.find(p).parent.parent  # RUN_DIR/checkpoints/ckpt-*.json


class RunDir:
    """The directory of one run, held by this process from :meth:`create` or :meth:`claim` to :meth:`close`
    (the lock is released then, or when the process ends)."""

    def __init__(self, path: Path):
        self.path, self._lock = Path(path), None

    def create(self):
        """A new run: make the directory and take its lock; refuse if another run got there first."""
        check_new(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.claim()
        if not _is_fresh(self.path):  # someone else created a run here between the check and the lock
            self.close()
            check_new(self.path)
        for p in self.path.iterdir():
            if p.name != LOCK:
                p.unlink()  # a temporary of a run killed before it wrote config.json

    def claim(self):
        """Take the run's lock (RunBusy if another process holds it) and write our pid into it."""
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _holder(fd)
                os.close(fd)
                who = f"process {holder}" if holder else "another process"
                raise RunBusy(
                    f"{self.path} is being trained by {who}; wait for it to finish, or stop it "
                    "(it saves a checkpoint on Ctrl-C or SIGTERM)"
                ) from None
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.ftruncate(fd, len(f"{os.getpid()}\n"))
        self._lock = fd

    def close(self):
        """Release the lock (the kernel would too, at exit). The lock file stays: deleting it would race."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- what a held run writes ------------------------------------------------------------------------------
    def sweep(self) -> list[Path]:
        """Remove what an interrupted run left: checkpoint litter and temporaries of the run's own files."""
        removed = checkpoint.sweep(self.path / "checkpoints")
        for p in self.path.iterdir():
            if p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.endswith(".tmp.png")):
                p.unlink()
                removed.append(p)
        return removed

    def write_json(self, name: str, obj):
        """Write RUN_DIR/name atomically: a kill leaves the old file or the new one."""
        _atomic_write(self.path / name, json.dumps(obj, indent=1, ensure_ascii=False))

    def open_metrics(self, step: int):
        """metrics.jsonl opened for appending, cut after the last row of ``step`` or before (a resume drops
        rows that a killed run wrote past its checkpoint; a new run starts it empty)."""
        path = self.path / "metrics.jsonl"
        with open(path, "a+b") as f:
            f.seek(0)
            end = 0
            for line in f:  # rows are in step order; only the last can be half-written
                try:
                    row = json.loads(line)
                except ValueError:
                    break
                if not line.endswith(b"\n") or not isinstance(row, dict) or row.get("step", 0) > step:
                    break
                end += len(line)
            f.truncate(end)  # in place, under the lock: no second file for another process to miss
        return open(path, "a", encoding="utf-8")


def _holder(fd: int) -> int | None:
    """The pid in a lock file that another process holds. It writes it just after taking the lock, so a
    reader that lost the race by a hair may first see the previous holder's: wait for a live one."""
    for _ in range(50):
        first = os.pread(fd, 32, 0).decode("ascii", "replace").split("\n")[0]
        if first.isdigit():
            try:
                os.kill(int(first), 0)  # signal 0: only asks whether the process exists
                return int(first)
            except ProcessLookupError:
                pass
            except OSError:  # it exists, but is not ours to signal
                return int(first)
        time.sleep(0.01)
    return None


def _atomic_write(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
