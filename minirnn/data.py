"""Text in, batches out: the vocabulary, encoding (with a cache), the validation split, batching.

    text --Vocab--> ids (L,) --split--> train ids | validation ids (the last 10%)
    train ids --Batches--> x, y (N, T) each, y = x shifted by one character

A text of any size: it is read, counted and encoded in pieces (:func:`prepare_file`),
its ids are stored in the smallest unsigned type that fits (one byte each up to 256
symbols) in a cache file that is memory-mapped, and batches are views of those ids.

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

import codecs
import hashlib
import itertools
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
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def open_text(path=None):
    """``path`` (None: the bundled Tiny Shakespeare) opened for reading in binary, and its size in bytes,
    or a DataError saying why not. What every reader of a text shares (:func:`read_bytes`,
    :func:`file_chunks`): only a regular file is opened (a FIFO would wait forever, /dev/zero never end),
    and '' is refused: it never means the bundled text.
    """
    if path is not None and str(path) == "":
        raise DataError(
            "the file name is empty: name a text file, or leave the flag out for the bundled text"
        )
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
    if mode.st_size == 0:
        os.close(fd)
        raise DataError(f"{path} is empty")
    return os.fdopen(fd, "rb"), mode.st_size


def read_bytes(path=None) -> bytes:
    """The raw bytes of ``path`` (None: the bundled Tiny Shakespeare), or a DataError saying why not
    (:func:`open_text`'s), read only if they fit in memory, checked from the size before reading."""
    f, size = open_text(path)
    path = BUNDLED if path is None else Path(path)
    with f:
        try:
            check_fits(size * BYTES_PER_BYTE, f"reading {path} ({human(size)})")
            raw = f.read(size)
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
        raise DataError(
            f"{name} is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} ({exc.reason})"
        ) from None


def load_text(path=None) -> str:
    """The whole text of a UTF-8 file as a str; None loads the bundled Tiny Shakespeare."""
    raw = read_bytes(path)
    return decode(raw, str(BUNDLED if path is None else path))


# -- the vocabulary --------------------------------------------------------------------------------
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
    def from_text(cls, text: str) -> Vocab:
        """Count every symbol and sort by (-count, code point). Needs at least two symbols."""
        codes = numpy.frombuffer(text.encode("utf-32-le"), dtype="<u4")  # one code point per character
        return cls.from_counts(numpy.bincount(codes))

    @classmethod
    def from_counts(cls, counts) -> Vocab:
        """counts[c]: how often code point c occurs -> the vocabulary, sorted by (-count, code point)."""
        symbols = numpy.flatnonzero(counts)  # in code-point order
        order = numpy.argsort(-counts[symbols], kind="stable")  # stable: ties stay in code-point order
        vocab = cls(chr(int(c)) for c in symbols[order])
        if len(vocab) < 2:
            raise DataError(
                f"the text has only one distinct symbol ({''.join(vocab.chars)!r}); "
                "a language model needs at least two"
            )
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
    def from_json(cls, s: str) -> Vocab:
        return cls(json.loads(s)["chars"])


# -- encoding, in pieces, with a cache keyed by the text's content ---------------------------------
CHUNK = 1 << 24  # bytes of text read, counted and encoded at a time: memory stays a few times this


def text_hash(text: str) -> str:
    """SHA-256 of the text's UTF-8 bytes: a cache key that changes whenever the content does."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minirnn"


def id_dtype(vocab_size: int) -> numpy.dtype:
    """The smallest unsigned integer type that holds ids 0..V-1: uint8 up to 256 symbols."""
    for dtype in (numpy.uint8, numpy.uint16, numpy.uint32):
        if vocab_size <= numpy.iinfo(dtype).max + 1:
            return numpy.dtype(dtype)
    raise DataError(f"a vocabulary of {vocab_size} symbols is more than Unicode has")


def file_chunks(path=None, chunk: int = CHUNK):
    """The bytes of a file (None: Tiny Shakespeare) in pieces of ``chunk``, never the whole file at once.

    Errors are the one-line DataErrors of :func:`open_text`.
    """
    f, _ = open_text(path)  # a regular file, not empty
    path = BUNDLED if path is None else Path(path)
    size = 0
    with f:
        try:
            while raw := f.read(chunk):
                size += len(raw)
                yield raw
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size == 0:  # emptied since it was opened
        raise DataError(f"{path} is empty")


def text_chunks(text: str, chunk: int = CHUNK):
    """The UTF-8 bytes of a text already in memory, in pieces that end between characters."""
    for start in range(0, len(text), chunk):
        yield text[start : start + chunk].encode("utf-8")


def code_points(raws, name="the text"):
    """UTF-8 pieces -> the code points of each, as arrays: uint8 (the bytes themselves) where a piece is
    ASCII, as most texts are, so it needs no decoding; else uint32. A character cut by a piece boundary
    is completed in the next piece. Bad bytes: :func:`decode`'s one-line DataError, offset in the file."""
    decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
    for raw in itertools.chain(raws, [b""]):
        pending = decoder.getstate()[0]  # the bytes of a character begun in the last piece
        if raw and not pending and raw.isascii():
            yield numpy.frombuffer(raw, numpy.uint8)
        else:
            try:
                piece = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{name} is not UTF-8: byte 0x{exc.object[exc.start]:02x} at offset "
                    f"{offset - len(pending) + exc.start} ({exc.reason})"
                ) from None
            if piece:
                yield numpy.frombuffer(piece.encode("utf-32-le"), dtype="<u4")  # one code point per character
        offset += len(raw)


def prepare(text: str, cache_dir=None, check=None):
    """text -> (vocab, ids (L,)), reading and writing ``cache_dir`` when given. See :func:`prepare_chunks`."""
    return prepare_chunks(lambda: text_chunks(text), cache_dir, check)


def prepare_file(path=None, cache_dir=None, check=None):
    """A UTF-8 file (None: Tiny Shakespeare) -> (vocab, ids (L,)), read in pieces: :func:`prepare_chunks`."""
    return prepare_chunks(lambda: file_chunks(path), cache_dir, check, str(BUNDLED if path is None else path))


def prepare_chunks(chunks, cache_dir=None, check=None, name="the text"):
    """Count, encode and cache a text given as UTF-8 pieces: ``chunks()`` starts a fresh iterator of bytes.

    Returns (vocab, ids): ids (L,) in the smallest unsigned type that fits the
    vocabulary (:func:`id_dtype`). With a cache they are a read-only memory map
    of ``cache_dir/<sha256>.npy``, so every process that trains on the text
    (every MPI rank on a machine) shares one copy through the page cache.

    The whole text is never in memory. Pass one hashes the bytes: the cache
    files are named by the text's SHA-256, so an edited text never reuses a
    stale encoding, and a cached text needs nothing more. Otherwise pass two
    counts the symbols (the vocabulary) and pass three encodes, hashing again
    so that a file edited meanwhile is noticed. ``check(L)``, if given, sees
    the length before anything is written, and may raise to refuse the text.
    A cache that cannot be read is ignored and rewritten: it is only a speed-up.
    """
    digest = hashlib.sha256()
    for raw in chunks():
        digest.update(raw)
    key = digest.hexdigest()
    base = Path(cache_dir) / key if cache_dir else None
    cached = _load_cached(base) if base is not None else None
    if cached is not None:
        if check is not None:
            check(len(cached[1]))
        return cached
    counts, length = numpy.zeros(128, numpy.int64), 0
    for codes in code_points(chunks(), name):
        piece_counts = numpy.bincount(codes)
        if len(piece_counts) > len(counts):
            piece_counts[: len(counts)] += counts
            counts = piece_counts
        else:
            counts[: len(piece_counts)] += piece_counts
        length += len(codes)
    if check is not None:
        check(length)
    vocab = Vocab.from_counts(counts)
    dtype = id_dtype(len(vocab))
    tmp = None
    if base is not None:
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            tmp = base.with_name(f".{key}.{os.getpid()}.npy")
            ids = numpy.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(length,))
        except OSError:  # a read-only cache only costs time
            tmp = None
    if tmp is None:  # the ids in memory, not a memory map: refused before allocating if they cannot fit
        try:
            check_fits(length * dtype.itemsize, f"the ids of {name} ({length:,} characters, no cache)")
        except TooBig as exc:
            raise DataError(str(exc)) from None
        ids = numpy.empty(length, dtype)
    table = numpy.zeros(max(256, len(counts)), dtype)  # code point -> id: one vectorised gather per piece
    table[[ord(c) for c in vocab.chars]] = numpy.arange(len(vocab), dtype=dtype)
    byte_table = table[:256].tobytes() if dtype == numpy.uint8 else None
    again, start = hashlib.sha256(), 0

    def hashed(raws):
        for raw in raws:
            again.update(raw)
            yield raw

    for codes in code_points(hashed(chunks()), name):
        if start + len(codes) > length or codes.max() >= len(table):
            break  # longer, or a symbol the first pass did not see: the digests differ below
        if byte_table is not None and codes.dtype == numpy.uint8:  # ASCII to one-byte ids: bytes.translate
            encoded = codes.tobytes().translate(byte_table)
            ids[start : start + len(codes)] = numpy.frombuffer(encoded, numpy.uint8)
        else:
            ids[start : start + len(codes)] = table[codes]
        start += len(codes)
    if again.hexdigest() != key or start != length:
        if tmp is not None:
            del ids
            tmp.unlink(missing_ok=True)
        raise DataError(f"{name} changed while it was being read; run again when it is written")
    if tmp is None:
        return vocab, ids
    try:
        ids.flush()
        del ids
        os.replace(tmp, base.with_suffix(".npy"))  # atomic: readers see the old file or the whole new one
        _write_atomic(
            base.with_suffix(".json"),
            json.dumps({"length": length, "chars": vocab.chars}, ensure_ascii=False),
        )
    except OSError:
        pass
    cached = _load_cached(base)
    return cached if cached is not None else prepare_chunks(chunks, None, None, name)  # e.g. a full disk


def _write_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _load_cached(base: Path):
    """(vocab, read-only memory map of the ids) from ``base``.json and .npy, or None if either is unusable."""
    try:
        meta = json.loads(base.with_suffix(".json").read_text(encoding="utf-8"))
        vocab = Vocab(meta["chars"])
        ids = numpy.load(base.with_suffix(".npy"), mmap_mode="r", allow_pickle=False)
        if (
            meta["length"] == len(ids)
            and ids.ndim == 1
            and len(vocab) >= 2
            and ids.dtype == id_dtype(len(vocab))
            and int(ids.max()) < len(vocab)
        ):
            return vocab, ids
    except Exception:  # missing, damaged or from another version: encode again
        pass
    return None


# -- the split and its size checks -----------------------------------------------------------------
def split(ids, val_fraction: float = 0.1):
    """ids (L,) -> (train ids, validation ids): the validation part is the last ``val_fraction``
    of the text."""
    n_val = int(len(ids) * val_fraction)
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


def min_length(batch_size: int, seq_length: int, val_fraction: float = 0.1) -> int:
    """The fewest characters that give one training batch (N·T inputs plus one target) and,
    when ``val_fraction > 0``, one validation window (T + 1)."""
    need = batch_size * seq_length + 1
    L = (
        need
        if val_fraction == 0
        else max(int(need / (1 - val_fraction)), int((seq_length + 1) / val_fraction))
    )
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
        raise DataError(
            f"the text has {L:,} characters, too few for batch_size {batch_size} x seq_length "
            f"{seq_length} with a {val_fraction:g} validation split: it needs at least {need:,}"
        )


# -- batches ---------------------------------------------------------------------------------------
class Batches:
    """Training batches laid out as the tutorial's TextLoader lays them out, reshuffled each epoch.

    The ids are cut into B = (L - 1) // (N·T) blocks' worth, reshaped to N rows
    of B·T characters, and each row is cut into B windows of T: batch b is
    column block b, so row r of batch b continues in row r of batch b + 1.
    The targets are the same windows one character later. The order of the B
    batches is a fresh permutation each epoch, drawn from a seeded generator
    whose state a checkpoint saves, so that a resumed run sees the same batches.

    ``x`` and ``y`` (B, N, T) are views of the ids, not copies: a reshape and a
    transpose only change the strides, so a memory-mapped text of gigabytes
    stays on disk (and in the page cache) until a batch reads its N·T ids.
    """

    def __init__(self, ids, batch_size: int, seq_length: int, seed: int = 0):
        N, T = batch_size, seq_length
        self.num_batches = B = (len(ids) - 1) // (N * T)
        if B < 1:
            raise DataError(f"{len(ids)} training characters are too few for one batch of {N} x {T}")
        ids = numpy.asarray(ids)  # a memory map stays one (asarray makes a view)
        self.x = ids[: B * N * T].reshape(N, B, T).transpose(1, 0, 2)  # (B, N, T): batch b is x[b], a view
        self.y = ids[1 : B * N * T + 1].reshape(N, B, T).transpose(1, 0, 2)  # the next character of each
        self.rng = numpy.random.default_rng(seed)
        self.epoch, self.pointer = 0, 0
        self._shuffle()

    def __len__(self):
        return self.num_batches

    def batch(self, b: int):
        """Batch ``b`` in text order: (x, y) host arrays (N, T), copied out of the ids (N·T each)."""
        return numpy.ascontiguousarray(self.x[b]), numpy.ascontiguousarray(self.y[b])

    def next(self):
        """The next (x, y) pair of host arrays (N, T); starts a reshuffled epoch when one ends."""
        if self.pointer >= self.num_batches:
            self.epoch, self.pointer = self.epoch + 1, 0
            self._shuffle()
        b = self.order[self.pointer]
        self.pointer += 1
        return self.batch(b)

    def _shuffle(self):
        # Remember the generator as it was before this epoch's draw: a checkpoint then needs
        # only (epoch, pointer, that state) to redraw the same order, not the order itself.
        self.epoch_rng_state = self.rng.bit_generator.state
        self.order = self.rng.permutation(self.num_batches)

    def state_dict(self) -> dict:
        """Where we are, as JSON-ready numbers: epoch, batches taken, the generator before this
        epoch's shuffle."""
        return {
            "epoch": self.epoch,
            "pointer": self.pointer,
            "num_batches": self.num_batches,
            "rng": self.epoch_rng_state,
        }

    def load_state_dict(self, state: dict):
        if state["num_batches"] != self.num_batches:
            raise DataError(
                f"the checkpoint's data has {state['num_batches']} batches per epoch, "
                f"this text gives {self.num_batches}"
            )
        self.epoch, self.pointer = int(state["epoch"]), int(state["pointer"])
        self.rng.bit_generator.state = state["rng"]
        self._shuffle()  # the same order as before, and the generator where it was


def eval_windows(ids, batch_size: int, seq_length: int):
    """Validation batches: consecutive windows of T characters, up to N rows a batch, in order.

    Yields (x, y) host arrays of shape (n, T) with n <= N, each copied out of a
    view of the ids. Every window starts from a zero state, as training does,
    so the numbers compare.
    """
    T, ids = seq_length, numpy.asarray(ids)  # a memory map stays one (asarray makes a view)
    rows = (len(ids) - 1) // T
    x = ids[: rows * T].reshape(rows, T)
    y = ids[1 : rows * T + 1].reshape(rows, T)
    for start in range(0, rows, batch_size):
        window = slice(start, start + batch_size)
        yield numpy.ascontiguousarray(x[window]), numpy.ascontiguousarray(y[window])
