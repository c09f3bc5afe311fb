"""Every lesson runs, top to bottom, in its quick mode and draws the pictures it promises;
and minirnn.visualize (the picture the lessons use) works and fails with one line."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from minirnn.layers import softmax
from minirnn.sample import load_model

from .conftest import TINY_TEXT, train_tiny
from minirnn.visualize import VisualizeError, main, to_html, trace, visualize

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"

# The figures each lesson writes into $MINIRNN_FIGURES/<lesson>/.
FIGURES = {
    "01_data": ["vocabulary.png", "batch.png"],
    "02_rnn_cell": ["step_size.png", "gradcheck.png"],
    "03_vanishing_gradients": ["grad_norm_vs_t.png"],
    "04_lstm_cell": ["cell_state_gradient.png"],
    "05_bptt_and_masks": ["mask_and_truncation.png"],
    "06_training": ["clipping_and_lr.png"],
    "07_generating": ["temperature.png", "visualize.png", "visualize.html"],
    "08_checkpoints": ["resume.png"],
    "09_validation": ["validation.png"],
    "10_cell_comparison": ["cells.png", "results.md"],
    "11_regularisation": ["overfitting.png"],
    "12_appendix": ["appendix.png"],
    "13_data_parallel": ["data_parallel.png"],
}
# Lessons that launch mpiexec: they need the mpi extra (which CI installs).
NEEDS_MPI = {"13_data_parallel"}


def lesson_env(figures: Path) -> dict:
    env = dict(os.environ, MINIRNN_QUICK="1", MINIRNN_FIGURES=str(figures), MPLBACKEND="Agg",
               XDG_CACHE_HOME=str(figures.parent / "cache"),  # the encoded-text cache stays in tmp
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"  # small matrices: threads only cost time, and a lot of it on a busy machine
    return env


def test_every_lesson_is_listed_here():
    found = sorted(p.stem for p in LESSONS.glob("[0-9][0-9]_*.py"))
    assert found == sorted(FIGURES), "add the new lesson and its figures to FIGURES"


@pytest.mark.parametrize("lesson", sorted(FIGURES))
def test_lesson_runs_in_quick_mode(lesson, tmp_path):
    if lesson in NEEDS_MPI and importlib.util.find_spec("mpi4py") is None:
        pytest.skip("needs mpi4py and mpiexec: pip install 'minirnn[mpi]'")
    path = LESSONS / f"{lesson}.py"
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=lesson_env(tmp_path / "figures"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{lesson} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    folder = tmp_path / "figures" / lesson
    assert str(folder) in proc.stdout  # the lesson says where its figures go
    for name in FIGURES[lesson]:
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, f"{lesson} did not write {name}"


def test_lessons_are_percent_scripts():
    for path in LESSONS.glob("[0-9][0-9]_*.py"):
        text = path.read_text()
        assert text.startswith("# %% [markdown]"), path.name
        assert "import minirnn" in text or "from minirnn" in text, path.name
        assert re.search(r"^# %%$", text, re.M), path.name


# -- minirnn.visualize ---------------------------------------------------------------------------------------
TEXT = TINY_TEXT


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run, _ = train_tiny(tmp_path_factory.mktemp("visualize"), hidden_size=12, num_layers=1, max_steps=20)
    return run


def test_trace_confidence_is_the_models_probability_of_the_next_character(run_dir):
    model, vocab, _ = load_model(run_dir)
    text = "To be, or not"
    tr = trace(model, vocab, text)
    logits, _, _ = model.forward(vocab.encode(text)[None, :])  # all at once: (T, 1, V)
    p = softmax(logits[:, 0])  # (T, V): after each character
    expected = p[numpy.arange(len(text) - 1), vocab.encode(text)[1:]]
    assert numpy.isnan(tr.confidence[0])
    numpy.testing.assert_allclose(tr.confidence[1:], expected, rtol=1e-5)
    assert tr.acts.shape == (len(text), 12) and numpy.abs(tr.acts).max() <= 1


def test_cli_writes_a_self_contained_page_and_a_png(run_dir, tmp_path):
    out, png = tmp_path / "page.html", tmp_path / "page.png"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "minirnn.visualize", "--checkpoint", str(run_dir),
                           "--text", "To be, or not to be", "--unit", "3", "--out", str(out), "--png", str(png)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Unit 3" in page
    assert page.count("<span style=") >= 2 * len("To be, or not to be")
    assert "<script" not in page and "http" not in page  # nothing to fetch: it opens anywhere
    assert png.stat().st_size > 1000


def test_cli_default_text_and_cell_state(run_dir, capsys):
    assert main(["--checkpoint", str(run_dir), "--state", "c"]) == 0
    assert (run_dir / "visualize.html").is_file()
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--text", "To bé"], "vocabulary lacks: 'é'"),
    (["--text", "To be", "--unit", "12"], "--unit 12 does not exist"),
    (["--text", "To be", "--layer", "1"], "--layer 1 does not exist"),
    (["--text", ""], "the text is empty"),
    (["--text", "To be", "--max-chars", "0"], "--max-chars"),
    (["--text-file", "/no/such/file.txt"], "no such file"),
])
def test_cli_bad_input_is_one_line_and_status_2(run_dir, capsys, args, message):
    assert main(["--checkpoint", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_bad_checkpoint_and_bad_flag(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args in (["--checkpoint", str(tmp_path / "nothing")], ["--checkpoint", str(tmp_path), "--unit", "x"]):
        proc = subprocess.run([sys.executable, "-m", "minirnn.visualize", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_library_function_picks_a_unit_and_escapes_html(run_dir, tmp_path):
    model, vocab, _ = load_model(run_dir)
    tr, unit = visualize(model, vocab, "Whether 'tis", out=tmp_path / "v.html")
    assert 0 <= unit < 12
    assert "&#x27;" in (tmp_path / "v.html").read_text(encoding="utf-8")  # the quote is escaped
    assert to_html(tr, unit).count("<span") >= len("Whether 'tis")
    with pytest.raises(VisualizeError, match="--unit -1"):
        visualize(model, vocab, "To be", unit=-1)


def test_trace_runs_on_the_strict_device_stand_in(run_dir):
    """No implicit host transfer or hidden sync: the page can be drawn from a model on a GPU."""
    from minirnn import checkpoint
    from minirnn.backend import get_backend

    meta, arrays = checkpoint.load(run_dir)
    model, (host_model, vocab, _) = checkpoint.build_model(meta, arrays, get_backend("strict")), load_model(run_dir)
    on_device, on_host = trace(model, vocab, "To be, or not"), trace(host_model, vocab, "To be, or not")
    numpy.testing.assert_allclose(on_device.confidence, on_host.confidence, rtol=1e-6)
    numpy.testing.assert_allclose(on_device.acts, on_host.acts, rtol=1e-6, atol=1e-7)
