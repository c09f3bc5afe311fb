"""minirnn.data: the vocabulary, the content-hash cache, the tutorial's batch layout, the split,
input errors."""

import json
import os

import numpy
import pytest

from minirnn import checks, data
from minirnn.data import Batches, DataError, Vocab


def test_bundled_tiny_shakespeare_is_the_shared_file():
    text = data.load_text()
    assert len(text) == 1_115_394
    assert len(Vocab.from_text(text)) == 65


def test_vocab_is_ordered_by_count_then_code_point():
    v = Vocab.from_text("bbbaaccd" + "dd")  # counts: b 3, d 3, a 2, c 2
    assert v.chars == ["b", "d", "a", "c"]  # ties broken by code point, never by set order
    assert Vocab.from_text("dd" + "ccaabbb" + "d").chars == v.chars  # the order of the text does not matter


def test_vocab_matches_the_tutorials_counter_sort():
    import collections

    text = data.load_text()[:20000]
    counts = collections.Counter(text)
    ours = Vocab.from_text(text)
    assert [counts[c] for c in ours.chars] == sorted(counts.values(), reverse=True)


def test_encode_decode_round_trip_and_json():
    text = "To be, or not to be: that is the question. Ünïcödé ✓"
    v = Vocab.from_text(text)
    ids = v.encode(text)
    assert ids.dtype == numpy.int32 and ids.shape == (len(text),)
    assert v.decode(ids) == text
    assert Vocab.from_json(v.to_json()) == v
    assert json.loads(v.to_json())["chars"] == v.chars


def test_encode_names_unknown_characters():
    v = Vocab.from_text("abc")
    with pytest.raises(DataError, match="'xz'"):
        v.encode("axbzx")


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing", "no such file"),
        ("empty", "is empty"),
        ("directory", "is a directory"),
        ("latin1", "not UTF-8: byte 0xe9 at offset 6"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, case, match):
    path = tmp_path / "t.txt"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "directory":
        path.mkdir()
    elif case == "latin1":
        path.write_bytes("Hello caf\u00e9".encode("utf-8")[:6] + "\u00e9t\u00e9".encode("latin-1"))
    with pytest.raises(DataError, match=match) as info:
        data.load_text(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "case, match",
    [
        ("fifo", "is a FIFO"),  # opening it would wait forever for a writer
        ("device", "is a character device"),  # /dev/zero would be read until memory runs out
        ("symlink loop", "Too many levels of symbolic links"),
        ("empty name", "the file name is empty"),  # '' never means the bundled text
    ],
)
def test_only_regular_files_are_read(tmp_path, case, match):
    path = tmp_path / "t"
    if case == "fifo":
        os.mkfifo(path)
    elif case == "device":
        path = "/dev/zero"
    elif case == "symlink loop":
        os.symlink(tmp_path / "u", path)
        os.symlink(path, tmp_path / "u")
    elif case == "empty name":
        path = ""
    with pytest.raises(DataError, match=match) as info:
        data.load_text(path)
    assert "\n" not in str(info.value)


def test_a_text_too_large_for_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_text("ab" * 1000)
    monkeypatch.setattr(checks, "machine_memory", lambda: 5000)  # 2,000 bytes of text need 20,000 to read
    with pytest.raises(DataError, match="would need at least 19.5 KiB of memory; this machine has 4.9 KiB"):
        data.load_text(path)


def test_a_single_symbol_is_not_a_language():
    with pytest.raises(DataError, match="only one distinct symbol"):
        Vocab.from_text("aaaaaaaa")


def test_cache_is_reused_only_while_the_content_is_unchanged(tmp_path, monkeypatch):
    text = "the cat sat on the mat\n" * 20
    vocab, ids = data.prepare(text, tmp_path)
    key = data.text_hash(text)
    assert sorted(f.name for f in tmp_path.iterdir()) == [f"{key}.json", f"{key}.npy"]

    def fail(*args):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as m:
        m.setattr(Vocab, "from_counts", fail)
        vocab2, ids2 = data.prepare(text, tmp_path)
    assert vocab2 == vocab and numpy.array_equal(ids2, ids)
    # Same length, one character changed: a timestamp or size check would miss it, a hash does not.
    edited = text[:-2] + "!\n"
    vocab3, ids3 = data.prepare(edited, tmp_path)
    assert "!" in vocab3.chars and vocab3.decode(ids3) == edited
    assert len(list(tmp_path.glob("*.npy"))) == 2


@pytest.mark.parametrize("damage", ["npy garbage", "npy truncated", "json garbage", "json gone", "wrong ids"])
def test_damaged_cache_is_ignored_and_rewritten(tmp_path, damage):
    text = "abcabcabd" * 50
    data.prepare(text, tmp_path)
    base = tmp_path / data.text_hash(text)
    npy, meta = base.with_suffix(".npy"), base.with_suffix(".json")
    if damage == "npy garbage":
        npy.write_bytes(b"not an array")
    elif damage == "npy truncated":
        npy.write_bytes(npy.read_bytes()[:-10])
    elif damage == "json garbage":
        meta.write_text("{")
    elif damage == "json gone":
        meta.unlink()
    else:  # a well-formed file whose ids do not fit the vocabulary
        numpy.save(npy, numpy.full(len(text), 9, numpy.uint8))
    vocab, ids = data.prepare(text, tmp_path)
    assert vocab.decode(ids) == text
    assert numpy.array_equal(numpy.load(npy), ids)  # and the cache is whole again


def test_ids_take_the_smallest_unsigned_type_that_fits():
    sizes, expected = (2, 256, 257, 65536, 65537), [numpy.uint8] * 2 + [numpy.uint16] * 2 + [numpy.uint32]
    assert [data.id_dtype(v) for v in sizes] == expected
    _, ids = data.prepare("abcab" * 3)
    assert ids.dtype == numpy.uint8
    wide = "".join(chr(0x4E00 + k) for k in range(300))  # 300 CJK symbols: more than a byte can number
    vocab, ids = data.prepare(wide * 2)
    assert ids.dtype == numpy.uint16 and vocab.decode(ids) == wide * 2


def test_cached_ids_are_one_read_only_memory_map(tmp_path):
    _, ids = data.prepare_file(None, tmp_path)  # Tiny Shakespeare
    assert isinstance(ids, numpy.memmap) and ids.dtype == numpy.uint8 and len(ids) == 1_115_394
    assert not ids.flags.writeable
    _, again = data.prepare_file(None, tmp_path)
    assert isinstance(again, numpy.memmap) and again.filename == ids.filename


def test_a_file_in_small_pieces_encodes_as_the_whole_text(tmp_path, monkeypatch):
    text = "Ünïcödé ✓ and plain ASCII, then 🙂 four bytes\n" * 7  # characters of 1 to 4 bytes
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(data, "CHUNK", 5)
    pieces = list(data.file_chunks(path, chunk=5))  # pieces end in the middle of characters
    assert b"".join(pieces) == path.read_bytes()
    codes = numpy.concatenate([c.astype(numpy.uint32) for c in data.code_points(pieces)])
    assert "".join(map(chr, codes)) == text
    vocab, ids = data.prepare_file(path, tmp_path / "cache")
    assert vocab == Vocab.from_text(text) and vocab.decode(ids) == text
    assert numpy.array_equal(ids, vocab.encode(text))
    assert data.prepare(text, tmp_path / "cache")[1].filename == ids.filename  # one key for str and file


@pytest.mark.parametrize("chunk", [1, 4, 5, 7, 1 << 20])
def test_bad_utf8_in_pieces_names_the_offset_in_the_file(tmp_path, chunk):
    path = tmp_path / "t.txt"
    for raw in ("Hello café".encode() + b" \xe9t\xe9", "Hello café".encode()[:-1]):
        path.write_bytes(raw)  # a bad byte in the middle; a character cut off at the end
        with pytest.raises(DataError) as whole:
            data.decode(raw, str(path))
        with pytest.raises(DataError) as pieces:
            data.prepare_file(path, tmp_path / "cache")
        assert str(pieces.value) == str(whole.value)
        assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing", "no such file"),
        ("empty", "is empty"),
        ("directory", "a directory"),
        ("one symbol", "only one distinct"),
        ("fifo", "is a FIFO"),
        ("empty name", "the file name is empty"),
    ],
)
def test_prepare_file_errors_are_one_line(tmp_path, case, match):
    """The same checks as load_text's (data.open_text): a FIFO is refused, not waited on."""
    path = tmp_path / "t.txt"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "directory":
        path.mkdir()
    elif case == "one symbol":
        path.write_text("a" * 100)
    elif case == "fifo":
        os.mkfifo(path)
    elif case == "empty name":
        path = ""
    with pytest.raises(DataError, match=match) as info:
        data.prepare_file(path, tmp_path / "cache")
    assert "\n" not in str(info.value)


def test_a_text_changed_between_the_passes_is_refused(tmp_path):
    calls = []

    def chunks():  # the encoding pass (the third) reads other bytes than the first two
        calls.append(1)
        return data.text_chunks("abcd" * 10 if len(calls) < 3 else "abce" * 10)

    with pytest.raises(DataError, match="changed while it was being read"):
        data.prepare_chunks(chunks, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written is left


def test_batches_follow_the_tutorials_layout():
    ids = numpy.arange(1000) % 97
    N, T = 4, 5
    b = Batches(ids, N, T, seed=0)
    assert len(b) == (1000 - 1) // (N * T)
    # The tutorial: reshape to N rows, split each row into windows of T; y is x one character later.
    rows = ids[: len(b) * N * T].reshape(N, -1)
    for k in range(len(b)):
        x, y = b.x[k], b.y[k]
        assert x.shape == y.shape == (N, T)
        assert numpy.array_equal(x, rows[:, k * T : (k + 1) * T])
        assert numpy.array_equal(y, ids[1 : len(b) * N * T + 1].reshape(N, -1)[:, k * T : (k + 1) * T])
        assert numpy.array_equal(b.batch(k)[0], x) and b.batch(k)[0].flags.c_contiguous


def test_batches_are_views_of_the_ids_not_copies():
    ids = (numpy.arange(100_000) % 200).astype(numpy.uint8)
    b = Batches(ids, 8, 10)
    assert numpy.shares_memory(b.x, ids) and numpy.shares_memory(b.y, ids)
    x, y = b.next()
    assert x.dtype == numpy.uint8 and x.shape == (8, 10) and not numpy.shares_memory(x, ids)


def test_each_epoch_is_a_fresh_seeded_permutation():
    ids = numpy.arange(2000)
    b = Batches(ids, 2, 10, seed=3)
    B = len(b)
    epochs = [[int(b.next()[0][0, 0]) // 10 for _ in range(B)] for _ in range(3)]
    for order in epochs:
        assert sorted(order) == [r for r in range(B)]  # every batch exactly once (row 0 starts at b*T)
    assert epochs[0] != epochs[1] != epochs[2]
    again = Batches(ids, 2, 10, seed=3)
    assert [int(again.next()[0][0, 0]) // 10 for _ in range(B)] == epochs[0]


def test_batches_state_round_trip_continues_identically():
    ids = numpy.arange(500)
    a = Batches(ids, 2, 4, seed=1)
    for _ in range(len(a) + 5):  # into the second epoch
        a.next()
    state = json.loads(json.dumps(a.state_dict()))  # it must survive JSON
    b = Batches(ids, 2, 4, seed=99)
    b.load_state_dict(state)
    for _ in range(2 * len(a)):
        xa, ya = a.next()
        xb, yb = b.next()
        assert numpy.array_equal(xa, xb) and numpy.array_equal(ya, yb)


def test_split_holds_out_the_last_tenth():
    ids = numpy.arange(1000)
    train, val = data.split(ids, 0.1)
    assert len(val) == 100 and numpy.array_equal(val, ids[900:]) and numpy.array_equal(train, ids[:900])
    train, val = data.split(ids, 0.0)
    assert len(val) == 0 and len(train) == 1000


def test_length_check_says_how_much_is_needed():
    need = data.min_length(4, 8, 0.1)
    data.check_length(need, 4, 8, 0.1)
    with pytest.raises(DataError, match=f"needs at least {need}"):
        data.check_length(need - 1, 4, 8, 0.1)
    train, val = data.split(numpy.arange(need), 0.1)
    assert len(train) >= 4 * 8 + 1 and len(val) >= 8 + 1


def test_eval_windows_cover_the_text_in_order():
    ids = numpy.arange(43)
    windows = list(data.eval_windows(ids, 3, 5))
    x = numpy.concatenate([w[0] for w in windows])
    y = numpy.concatenate([w[1] for w in windows])
    assert x.shape == (8, 5) and max(len(w[0]) for w in windows) == 3
    assert numpy.array_equal(x.ravel(), ids[:40]) and numpy.array_equal(y.ravel(), ids[1:41])


def test_ids_without_a_cache_that_cannot_fit_are_refused_before_allocating(tmp_path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_text("ab" * 1000)
    monkeypatch.setattr(checks, "machine_memory", lambda: 1000)  # 2,000 one-byte ids
    with pytest.raises(DataError, match="the ids of .* would need at least 2.0 KiB of memory"):
        data.prepare_file(path, None)
    assert data.prepare_file(path, tmp_path / "cache")[1].shape == (2000,)  # a memory map needs no memory
