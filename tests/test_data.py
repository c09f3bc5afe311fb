"""minirnn.data: the vocabulary, the content-hash cache, the tutorial's batch layout, the split, input errors."""
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


@pytest.mark.parametrize("case, match", [
    ("missing", "no such file"),
    ("empty", "is empty"),
    ("directory", "is a directory"),
    ("latin1", "not UTF-8: byte 0xe9 at offset 6"),
])
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


@pytest.mark.parametrize("case, match", [
    ("fifo", "is a FIFO"),  # opening it would wait forever for a writer
    ("device", "is a character device"),  # /dev/zero would be read until memory runs out
    ("symlink loop", "Too many levels of symbolic links"),
    ("empty name", "the file name is empty"),  # '' never means the bundled text
])
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
    files = list(tmp_path.glob("*.npz"))
    assert [f.stem for f in files] == [data.text_hash(text)]

    def fail(*args):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as m:
        m.setattr(Vocab, "from_text", fail)
        vocab2, ids2 = data.prepare(text, tmp_path)
    assert vocab2 == vocab and numpy.array_equal(ids2, ids)
    # Same length, one character changed: a timestamp or size check would miss it, a hash does not.
    edited = text[:-2] + "!\n"
    vocab3, ids3 = data.prepare(edited, tmp_path)
    assert "!" in vocab3.chars and vocab3.decode(ids3) == edited
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_damaged_cache_is_ignored(tmp_path):
    text = "abcabcabd"
    data.prepare(text, tmp_path)
    (tmp_path / f"{data.text_hash(text)}.npz").write_bytes(b"not a zip file")
    vocab, ids = data.prepare(text, tmp_path)
    assert vocab.decode(ids) == text


def test_batches_follow_the_tutorials_layout():
    ids = numpy.arange(1000) % 97
    N, T = 4, 5
    b = Batches(ids, N, T, seed=0)
    assert len(b) == (1000 - 1) // (N * T)
    # The tutorial: reshape to N rows, split each row into windows of T; y is x one character later.
    rows = ids[:len(b) * N * T].reshape(N, -1)
    for k in range(len(b)):
        x, y = b.x[k], b.y[k]
        assert x.shape == y.shape == (N, T)
        assert numpy.array_equal(x, rows[:, k * T:(k + 1) * T])
        assert numpy.array_equal(y, ids[1:len(b) * N * T + 1].reshape(N, -1)[:, k * T:(k + 1) * T])


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
