"""Every lesson runs, top to bottom, in its quick mode: as a notebook in a real Jupyter kernel, from a
folder that is not lessons/, with its figures inline; and as a plain script. And minirnn.visualize (the
picture the lessons use) works and fails with one line."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jupytext
import numpy
import pytest
from nbclient import NotebookClient

from minirnn.layers import softmax
from minirnn.sample import load_model
from minirnn.visualize import VisualizeError, main, to_html, trace, visualize

from .conftest import TINY_TEXT, train_tiny

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"

# The pictures each lesson shows (inline in a notebook) and writes into figures/<lesson>/, then the other
# files it writes there.
FIGURES = {
    "01_data": ["vocabulary.png", "batch.png"],
    "02_rnn_cell": ["step_size.png", "gradcheck.png"],
    "03_vanishing_gradients": ["grad_norm_vs_t.png"],
    "04_lstm_cell": ["cell_state_gradient.png"],
    "05_bptt_and_masks": ["mask_and_truncation.png"],
    "06_training": ["clipping_and_lr.png"],
    "07_generating": [
        "temperature.png",
        "line_unit.png",
        "visualize.png",
        "visualize.html",
        "visualize_line.png",
        "visualize_line.html",
    ],
    "08_checkpoints": ["resume.png"],
    "09_validation": ["validation.png", "run/loss.png"],
    "10_cell_comparison": ["cells.png", "results.md"],
    "11_regularisation": ["overfitting.png"],
    "12_appendix": ["appendix.png"],
    "13_data_parallel": ["data_parallel.png"],
}
# Lessons that launch mpiexec: they need the mpi extra (which CI installs), and skip without it.
NEEDS_MPI = {"13_data_parallel"}
KERNEL = "minirnn-lessons"  # a kernel spec written for the test: this very Python, whatever is registered


def quick_env(monkeypatch, tmp_path):
    """Quick mode, caches in tmp, minirnn importable without an install; a kernel inherits all of it."""
    monkeypatch.setenv("MINIRNN_QUICK", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the encoded-text cache stays in tmp
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("MINIRNN_FIGURES", raising=False)  # the default folder: figures/ where it runs
    monkeypatch.delenv("MPLBACKEND", raising=False)  # a kernel's own default, as a student gets it
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")  # small matrices: threads only cost time, a lot on a busy machine


@pytest.fixture
def kernel(monkeypatch, tmp_path):
    """The name of a kernel that runs this test's Python (so a fresh CI venv needs no registration)."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec_json = {"argv": argv, "display_name": KERNEL, "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(spec_json))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))  # searched before any registered kernel
    quick_env(monkeypatch, tmp_path)
    return KERNEL


def test_every_lesson_is_listed_here():
    found = sorted(p.stem for p in LESSONS.glob("[0-9][0-9]_*.py"))
    assert found == sorted(FIGURES), "add the new lesson and its figures to FIGURES"


@pytest.mark.parametrize("lesson", sorted(FIGURES))
def test_lesson_runs_as_a_notebook_with_its_figures_inline(lesson, kernel, tmp_path):
    if lesson in NEEDS_MPI and importlib.util.find_spec("mpi4py") is None:
        pytest.skip("needs mpi4py and mpiexec: pip install 'minirnn[mpi]'")
    notebook = jupytext.read(LESSONS / f"{lesson}.py")
    work = tmp_path / "elsewhere"  # not lessons/: as in Colab, or a notebook copied out
    work.mkdir()
    where = {"metadata": {"path": str(work)}}  # the kernel's working folder
    client = NotebookClient(notebook, kernel_name=kernel, timeout=300, resources=where)
    client.execute()

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    pictures = [name for name in FIGURES[lesson] if name.endswith(".png")]
    assert len(images) == len(pictures), f"{lesson}: {len(images)} inline images, {len(pictures)} pictures"
    printed = [out["data"]["text/plain"] for out in outputs if out.output_type == "execute_result"]
    assert not [text for text in printed if "Path(" in text or "<Figure" in text], printed
    for name in FIGURES[lesson]:
        assert (work / "figures" / lesson / name).stat().st_size > 0, f"{lesson} did not write {name}"


@pytest.mark.parametrize("lesson", ["01_data", "07_generating", "12_appendix"])
def test_lesson_runs_as_a_script(lesson, monkeypatch, tmp_path):
    """Scripts write their pictures beside themselves; these three cover pyplot, a library-drawn
    PNG, and a cell class looked up in __main__."""
    quick_env(monkeypatch, tmp_path)
    monkeypatch.setenv("MINIRNN_FIGURES", str(tmp_path / "figures"))  # not into the checkout
    proc = subprocess.run(
        [sys.executable, str(LESSONS / f"{lesson}.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{lesson} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    folder = tmp_path / "figures" / lesson
    assert str(folder) in proc.stdout  # the lesson says where its figures go
    for name in FIGURES[lesson]:
        assert (folder / name).stat().st_size > 0, f"{lesson} did not write {name}"


def test_lessons_are_percent_scripts_that_say_how_to_run_quickly():
    for path in LESSONS.glob("[0-9][0-9]_*.py"):
        text = path.read_text()
        assert text.startswith("# %% [markdown]"), path.name
        assert "from minirnn.lessons import" in text, path.name  # nothing from beside the lesson
        assert "MINIRNN_QUICK=1" in text and "QUICK = True" in text, path.name  # documented at the top
        assert jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="py:percent") == text, path.name


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
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "minirnn.visualize",
            "--checkpoint",
            str(run_dir),
            "--text",
            "To be, or not to be",
            "--unit",
            "3",
            "--out",
            str(out),
            "--png",
            str(png),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
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


@pytest.mark.parametrize(
    "args, message",
    [
        (["--text", "To bé"], "vocabulary lacks: 'é'"),
        (["--text", "To be", "--unit", "12"], "--unit 12 does not exist"),
        (["--text", "To be", "--layer", "1"], "--layer 1 does not exist"),
        (["--text", ""], "the text is empty"),
        (["--text", "To be", "--max-chars", "0"], "--max-chars"),
        (["--text-file", "/no/such/file.txt"], "no such file"),
    ],
)
def test_cli_bad_input_is_one_line_and_status_2(run_dir, capsys, args, message):
    assert main(["--checkpoint", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_bad_checkpoint_and_bad_flag(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args in (["--checkpoint", str(tmp_path / "nothing")], ["--checkpoint", str(tmp_path), "--unit", "x"]):
        proc = subprocess.run(
            [sys.executable, "-m", "minirnn.visualize", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
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
    model = checkpoint.build_model(meta, arrays, get_backend("strict"))
    host_model, vocab, _ = load_model(run_dir)
    on_device, on_host = trace(model, vocab, "To be, or not"), trace(host_model, vocab, "To be, or not")
    numpy.testing.assert_allclose(on_device.confidence, on_host.confidence, rtol=1e-6)
    numpy.testing.assert_allclose(on_device.acts, on_host.acts, rtol=1e-6, atol=1e-7)
