"""Text in, batches out: the vocabulary, encoding (with a cache), the validation split, batching.

    text --Vocab--> ids (L,) --split--> train ids | validation ids (the last 10%)
    train ids --Batches--> x, y (N, T) each, y = x shifted by one character

Legend: N batch size, T sequence length, L characters of text, V vocabulary size.

The vocabulary is ordered by frequency, most frequent first, as the tutorial's
TextLoader sorts its counter; ties are broken by code point, so the order
never depends on set or hash order. Any UTF-8 text works; Tiny Shakespeare
ships in the package (the ``minirnn/texts/`` folder next to this file, which
holds data, not code), so training needs no download.

Every problem with the user's input raises :class:`DataError` with a one-line
message; the command-line tools print it and exit with status 2.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy

from .checks import TooBig, check_fits, human

BUNDLED = Path(__file__).parent / "texts" / "tinyshakespeare.txt"  # 1,115,394 characters, 65 symbols


class DataError(ValueError):
    """Input text (or a data flag) that cannot be used; the message is one line."""


# -- reading ---------------------------------------------------------------------------------------
# What reading a text holds at its peak, per byte of the file: the bytes, the str, its UTF-32 code points and
# the int32 ids. A file whose multiple cannot fit is refused before it is read.
BYTES_PER_BYTE = 10
_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def read_bytes(path=None) -> bytes:
    """The raw bytes of ``path`` (None: the bundled Tiny Shakespeare), or a DataError saying why not.

    Only a regular file is read (a FIFO would wait forever, /dev/zero never end), and only if it fits in
    memory, checked from its size before reading. '' is refused: it never means the bundled text.
    """
    if path is not None and str(path) == "":
        raise DataError("the file name is empty: name a text file, or leave the flag out for the bundled "
                        "text")
    path = BUNDLED if path is None else Path(path)
    try:  # O_NONBLOCK: a FIFO opens at once, instead of waiting for a writer, and is refused below
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except OSError as exc:  # a symlink loop, no permission, a name too long...
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd)
    if not stat.S_ISREG(mode.st_mode):
        os.close(fd)
        if stat.S_ISDIR(mode.st_mode):
            raise DataError(f"{path} is a directory; pass a text file")
        kind = _KINDS.get(stat.S_IFMT(mode.st_mode), "not a regular file")
        raise DataError(f"{path} is {kind}, not a regular file: pass a text file")
    with os.fdopen(fd, "rb") as f:
        try:
            check_fits(mode.st_size * BYTES_PER_BYTE, f"reading {path} ({human(mode.st_size)})")
            raw = f.read(mode.st_size)
        except TooBig as exc:
            raise DataError(str(exc)) from None
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw:
        raise DataError(f"{path} is empty")
    return raw


def decode(raw: bytes, name="the text") -> str:
    """UTF-8 bytes -> str; on bad bytes, say where (the byte offset) instead of a traceback."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name} is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                        f"({exc.reason})") from None


def load_text(path=None) -> str:
    """The whole text of a UTF-8 file as a str; None loads the bundled Tiny Shakespeare."""
    raw = read_bytes(path)
    return decode(raw, str(BUNDLED if path is None else path))


# -- the vocabulary -------------------------------------------------------------------------------------
class Vocab:
    """The symbols of a text, most frequent first, and the maps between symbols and ids.

    >>> v = Vocab.from_text("hello")
    >>> v.chars, v.encode("lo").tolist(), v.decode([0, 1])
    (['l', 'e', 'h', 'o'], [0, 3], 'le')
    """

    def __init__(self, chars):
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}  # symbol -> id
        if len(self.index) != len(self.chars):
            raise DataError("a vocabulary lists a symbol twice")

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        """Count every symbol and sort by (-count, code point). Needs at least two symbols."""
        codes = numpy.frombuffer(text.encode("utf-32-le"), dtype="<u4")  # one code point per character
        symbols, counts = numpy.unique(codes, return_counts=True)  # sorted by code point
        order = numpy.argsort(-counts, kind="stable")  # stable: equal counts stay in code-point order
        vocab = cls(chr(int(c)) for c in symbols[order])
        if len(vocab) < 2:
            raise DataError(f"the text has only one distinct symbol ({text[:1]!r}); "
                            "a language model needs at least two")
        return vocab

    def __len__(self):
        return len(self.chars)

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.chars == other.chars

    def missing(self, text: str) -> list[str]:
        """The symbols of ``text`` that this vocabulary lacks, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.index))

    def encode(self, text: str) -> numpy.ndarray:
        """str of length L -> ids (L,) int32. Raises DataError naming unknown symbols."""
        unknown = self.missing(text)
        if unknown:
            raise DataError(f"characters not in the vocabulary: {''.join(unknown)!r}")
        codes = numpy.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        # A lookup table over code points: one vectorised gather instead of L dict lookups.
        table = numpy.zeros(max(ord(c) for c in self.chars) + 1, dtype=numpy.int32)
        table[[ord(c) for c in self.chars]] = numpy.arange(len(self.chars), dtype=numpy.int32)
        return table[codes]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"chars": self.chars}, ensure_ascii=False)

    @classmethod
    def from_json(cls, s: str) -> "Vocab":
        return cls(json.loads(s)["chars"])


# -- encoding, with a cache keyed by the text's content ---------------------------------------------------------
def text_hash(text: str) -> str:
    """SHA-256 of the text's UTF-8 bytes: a cache key that changes whenever the content does."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minirnn"


def prepare(text: str, cache_dir=None):
    """text -> (vocab, ids (L,) int32), reading and writing ``cache_dir`` when given.

    The cache file is named by the text's SHA-256, so an edited text (even one with
    the same size and modification time) never reuses a stale encoding. A cache
    file that cannot be read is ignored and rewritten; the cache is only a speed-up.
    """
    path = Path(cache_dir) / f"{text_hash(text)}.npz" if cache_dir else None
    if path is not None and path.is_file():
        try:
            with numpy.load(path, allow_pickle=False) as f:
                ids, codes = f["ids"].astype(numpy.int32), f["codepoints"]
            vocab = Vocab(chr(int(c)) for c in codes)
            if len(ids) == len(text) and len(vocab) >= 2 and ids.max() < len(vocab):
                return vocab, ids
        except Exception:  # any damage: fall through and encode again
            pass
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                numpy.savez(f, ids=ids, codepoints=numpy.array([ord(c) for c in vocab.chars], dtype=numpy.uint32))
            os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
        except OSError:
            pass  # a read-only cache only costs time
    return vocab, ids


# -- the split and its size checks -------------------------------------------------------------------------------
def split(ids, val_fraction: float = 0.1):
    """ids (L,) -> (train ids, validation ids): the validation part is the last ``val_fraction`` of the text."""
    n_val = int(len(ids) * val_fraction)
    return ids[:len(ids) - n_val], ids[len(ids) - n_val:]


def min_length(batch_size: int, seq_length: int, val_fraction: float = 0.1) -> int:
    """The fewest characters that give one training batch (N·T inputs plus one target) and,
    when ``val_fraction > 0``, one validation window (T + 1)."""
    need = batch_size * seq_length + 1
    L = need if val_fraction == 0 else max(int(need / (1 - val_fraction)), int((seq_length + 1) / val_fraction))
    while not _fits(L, batch_size, seq_length, val_fraction):
        L += 1
    return L


def _fits(L, N, T, val_fraction):
    n_val = int(L * val_fraction)
    return L - n_val >= N * T + 1 and (val_fraction == 0 or n_val >= T + 1)


def check_length(L: int, batch_size: int, seq_length: int, val_fraction: float = 0.1):
    """Raise a DataError that says how much text is needed, if L characters are too few."""
    if not _fits(L, batch_size, seq_length, val_fraction):
        need = min_length(batch_size, seq_length, val_fraction)
        raise DataError(f"the text has {L:,} characters, too few for batch_size {batch_size} x seq_length "
                        f"{seq_length} with a {val_fraction:g} validation split: it needs at least {need:,}")


# -- batches ------------------------------------------------------------------------------------------------------
class Batches:
    """Training batches laid out as the tutorial's TextLoader lays them out, reshuffled each epoch.

    The ids are cut into B = (L - 1) // (N·T) blocks' worth, reshaped to N rows
    of B·T characters, and each row is cut into B windows of T: batch b is
    column block b, so row r of batch b continues in row r of batch b + 1.
    The targets are the same windows one character later. The order of the B
    batches is a fresh permutation each epoch, drawn from a seeded generator
    whose state a checkpoint saves, so that a resumed run sees the same batches.
    """

    def __init__(self, ids, batch_size: int, seq_length: int, seed: int = 0):
        N, T = batch_size, seq_length
        self.num_batches = B = (len(ids) - 1) // (N * T)
        if B < 1:
            raise DataError(f"{len(ids)} training characters are too few for one batch of {N} x {T}")
        x = numpy.asarray(ids[:B * N * T]).reshape(N, B, T)  # row r holds B consecutive windows
        y = numpy.asarray(ids[1:B * N * T + 1]).reshape(N, B, T)  # the next character of each
        self.x = numpy.ascontiguousarray(x.transpose(1, 0, 2))  # (B, N, T): batch b is x[b]
        self.y = numpy.ascontiguousarray(y.transpose(1, 0, 2))
        self.rng = numpy.random.default_rng(seed)
        self.epoch, self.pointer = 0, 0
        self._shuffle()

    def __len__(self):
        return self.num_batches

    def next(self):
        """The next (x, y) pair of host arrays (N, T); starts a reshuffled epoch when one ends."""
        if self.pointer >= self.num_batches:
            self.epoch, self.pointer = self.epoch + 1, 0
            self._shuffle()
        b = self.order[self.pointer]
        self.pointer += 1
        return self.x[b], self.y[b]

    def _shuffle(self):
        # Remember the generator as it was before this epoch's draw: a checkpoint then needs
        # only (epoch, pointer, that state) to redraw the same order, not the order itself.
        self.epoch_rng_state = self.rng.bit_generator.state
        self.order = self.rng.permutation(self.num_batches)

    def state_dict(self) -> dict:
        """Where we are, as JSON-ready numbers: epoch, batches taken, the generator before this epoch's shuffle."""
        return {"epoch": self.epoch, "pointer": self.pointer, "num_batches": self.num_batches,
                "rng": self.epoch_rng_state}

    def load_state_dict(self, state: dict):
        if state["num_batches"] != self.num_batches:
            raise DataError(f"the checkpoint's data has {state['num_batches']} batches per epoch, "
                            f"this text gives {self.num_batches}")
        self.epoch, self.pointer = int(state["epoch"]), int(state["pointer"])
        self.rng.bit_generator.state = state["rng"]
        self._shuffle()  # the same order as before, and the generator where it was


def eval_windows(ids, batch_size: int, seq_length: int):
    """Validation batches: consecutive windows of T characters, up to N rows a batch, in order.

    Yields (x, y) host arrays of shape (n, T) with n <= N. Every window starts
    from a zero state, as training does, so the numbers compare.
    """
    T = seq_length
    rows = (len(ids) - 1) // T
    x = numpy.asarray(ids[:rows * T]).reshape(rows, T)
    y = numpy.asarray(ids[1:rows * T + 1]).reshape(rows, T)
    for start in range(0, rows, batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]
