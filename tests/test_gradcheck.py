"""The command teachers run in class."""

import subprocess
import sys

from minirnn import gradcheck


def test_gradcheck_command_passes_every_row():
    proc = subprocess.run(
        [sys.executable, "-m", "minirnn.gradcheck"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.endswith(("PASS", "FAIL"))]
    assert len(rows) > 50 and all(r.endswith("PASS") for r in rows)
    for group in ("rnn", "lstm", "gru", "decoder", "loss", "model(lstm)"):
        assert any(r.startswith(group + " ") for r in rows), group


def test_cell_flag_narrows_the_check():
    proc = subprocess.run(
        [sys.executable, "-m", "minirnn.gradcheck", "--cell", "gru"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "lstm " not in proc.stdout and "gru " in proc.stdout


def test_unknown_cell_is_a_one_line_error():
    proc = subprocess.run(
        [sys.executable, "-m", "minirnn.gradcheck", "--cell", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_rel_error_is_relative_to_the_arrays_scale():
    assert gradcheck.rel_error([1.0, 1e-9], [1.0, 2e-9]) == 1e-9
    assert gradcheck.rel_error([0.0], [0.0]) == 0.0
