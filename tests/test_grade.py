"""The exercises and their grader (python -m minirnn.grade): every solution passes, every
student version is all TODO, every hint is triggered by a wrong version, and the handout
opens as notebooks that run to their first TODO."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from minirnn import grade
from minirnn.grading import EXERCISES, SOURCE, bptt, cells, core, grade_file, load, optim, reference
from minirnn.grading.handout import HandoutError, make_student, student_version

from .grade_mistakes import MISTAKES

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(EXERCISES)


def env():
    return dict(
        os.environ,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        OPENBLAS_NUM_THREADS="1",
        MINIRNN_QUICK="1",
    )


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    folder = tmp_path_factory.mktemp("handout")
    make_student(SOURCE, folder)
    return folder


def test_the_exercises_are_the_registered_ones_in_order():
    assert [p.stem for p in sorted(SOURCE.glob("[0-9][0-9]_*.py"))] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_solution_passes(name):
    exercise, rows = grade_file(SOURCE / f"{name}.py")
    assert exercise == name
    assert [r.name for r in rows] == [c.name for c in EXERCISES[name]]
    assert all(r.status == "PASS" for r in rows), core.format_rows(rows)
    assert all(r.error <= core.TOL for r in rows)


@pytest.mark.parametrize("name", NAMES)
def test_every_student_version_is_todo_and_exits_1(name, handout, capsys):
    assert grade.main([str(handout / f"{name}.py")]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and out.err == ""
    rows = [line for line in out.out.splitlines() if line.endswith(("PASS", "FAIL", "TODO"))]
    assert len(rows) == len(EXERCISES[name]) and all(r.endswith("TODO") for r in rows), out.out
    assert "TODO:" in out.out  # the message of the TODO says what to write


def test_the_command_line_grades_a_solution_and_a_handout(handout):
    ok = subprocess.run(
        [sys.executable, "-m", "minirnn.grade", str(SOURCE / "02_rnn_step.py")],
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and "2 passed, 0 failed, 0 to do" in ok.stdout, ok.stdout + ok.stderr
    todo = subprocess.run(
        [sys.executable, "-m", "minirnn.grade", str(handout / "04_lstm_step.py")],
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert todo.returncode == 1 and "0 passed, 0 failed, 2 to do" in todo.stdout
    assert "Traceback" not in todo.stdout + todo.stderr


def wrong_file(tmp_path, name, replacements):
    text = (SOURCE / f"{name}.py").read_text()
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} is not once in {name}"
        text = text.replace(old, new)
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, function, hint, replacements", MISTAKES, ids=[f"{m[0][:2]}-{m[1]}-{m[2]}" for m in MISTAKES]
)
def test_each_hint_is_given_for_its_mistake(tmp_path, name, function, hint, replacements):
    _, (row,) = grade_file(wrong_file(tmp_path, name, replacements), only=function)
    assert row.status == "FAIL" and hint in row.hints, core.format_rows([row])
    assert row.hints[0] == hint  # the first hint given is the one for this mistake


def test_every_hint_has_a_wrong_version_that_triggers_it():
    tested = {(name, hint) for name, _, hint, _ in MISTAKES}
    for name, checks in EXERCISES.items():
        for hint in {h for c in checks for h in c.hints}:
            assert (name, hint) in tested, f"no wrong version of {name} triggers the hint {hint!r}"
    assert set(core.HINTS) <= {hint for _, hint in tested}


def test_a_students_exception_is_a_row_with_its_last_line(tmp_path):
    path = wrong_file(tmp_path, "01_dense_and_loss", [("y = x @ W + b  # (M, V)", "y = x @ W.T + b")])
    _, rows = grade_file(path)
    assert rows[0].status == "FAIL" and rows[0].notes[-1].startswith("ValueError: matmul")
    assert f"(line {path.read_text().splitlines().index('    y = x @ W.T + b') + 1})" in rows[0].notes[-1]
    assert rows[1].status == "FAIL" and rows[1].notes[-1].startswith("in dense_forward: ValueError")
    assert rows[2].status == "PASS"


def test_a_file_that_does_not_import_is_one_failed_row(tmp_path, capsys):
    path = tmp_path / "02_rnn_step.py"
    path.write_text("import numpy as np\n\ndef rnn_step_forward(x:\n")
    assert grade.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "SyntaxError" in out and "Traceback" not in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["/no/such/file.py"], "no such file"),
        (["README.md"], "not a Python file"),
        (["lessons/exercises/02_rnn_step.py", "--only", "lstm_step_forward"], "--only lstm_step_forward"),
        (["tests/__init__.py"], "defines none of the exercises' functions"),
        ([], "give a FILE to grade or --make-student DIR"),
    ],
)
def test_bad_input_is_one_line_and_status_2(args, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    try:
        status = grade.main(args)
    except SystemExit as exc:  # argparse's own complaints exit from inside parse_args
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_only_grades_one_function():
    _, rows = grade_file(SOURCE / "04_lstm_step.py", only="lstm_step_backward")
    assert [r.name for r in rows] == ["lstm_step_backward"] and rows[0].status == "PASS"


# -- the handout -------------------------------------------------------------------------------------------
def test_student_versions_keep_the_prose_and_lose_the_solutions(handout):
    for name in NAMES:
        teacher, student = (SOURCE / f"{name}.py").read_text(), (handout / f"{name}.py").read_text()
        assert "SOLUTION" not in student and 'raise NotImplementedError("TODO: ' in student
        prose = [line for line in teacher.splitlines() if line.startswith("# ")]
        assert prose == [line for line in student.splitlines() if line.startswith("# ")]
    assert (handout / "README.md").read_text() == (SOURCE / "README.md").read_text()


def test_make_student_refuses_to_overwrite_and_to_convert_a_broken_source(tmp_path, capsys):
    assert grade.main(["--make-student", str(tmp_path / "out")]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    assert grade.main(["--make-student", str(tmp_path / "out")]) == 2
    assert "--force" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == before
    assert grade.main(["--make-student", str(tmp_path / "out"), "--force"]) == 0
    broken = tmp_path / "src"
    broken.mkdir()
    (broken / "01_x.py").write_text("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    assert grade.main(["--make-student", str(tmp_path / "new"), "--source", str(broken)]) == 2
    assert "01_x.py:2: BEGIN SOLUTION is never closed" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_a_solution_region_becomes_one_todo_line_at_its_indentation():
    text = "def f(x):\n    ### BEGIN SOLUTION  double it\n    y = 2 * x\n    return y\n    ### END SOLUTION\n"
    assert student_version(text) == 'def f(x):\n    raise NotImplementedError("TODO: double it")\n'
    for bad in (
        "### END SOLUTION\n",
        "def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n",
        "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n",
    ):
        with pytest.raises(HandoutError):
            student_version(bad)


@pytest.mark.parametrize("name", NAMES)
def test_student_notebooks_run_to_their_first_todo(name, handout, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    nb = jupytext.read(handout / f"{name}.py")
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(handout)}}
    )
    with pytest.raises(nbclient.exceptions.CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "NotImplementedError" and "TODO: " in info.value.evalue
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = next(
        k for k, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    )
    assert all(c.get("execution_count") for c in code[: failed + 1])  # every cell up to the TODO ran
    assert "__main__" in code[failed].source  # the first "try it" cell, not a definition


@pytest.mark.parametrize("name", NAMES)
def test_solutions_run_top_to_bottom_as_scripts(name, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SOURCE / f"{name}.py")],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


# -- the known-wrong variants are right when no mistake is asked for ---------------------------------------
@pytest.mark.parametrize("cell", [cells.RNN, cells.LSTM, cells.GRU], ids=lambda c: c.name)
def test_a_cell_variant_without_a_mistake_is_minirnns_step(cell, rng):
    x, states, p = cells._inputs(cell, rng)
    dstates = tuple(rng.normal(size=s.shape) for s in states)
    new, (dx, dprev, grads) = reference.step(cell.name, p, x, states, dstates)
    mine = cell.variant(x, states, p, dstates)
    grads_in_order = (dx, *dprev, *(grads[k] for k in cell.params))
    want = dict(zip(cell.states, new), **dict(zip(cell.outputs(), grads_in_order)))
    for k, v in want.items():
        assert reference.rel_error(mine[k], v) < 1e-12, k


def test_the_bptt_variant_without_a_mistake_is_minirnns(rng):
    p, x, h0, mask = bptt._inputs(rng)
    dhs, dh_T = rng.normal(size=(bptt.T, bptt.N, bptt.H)), rng.normal(size=(bptt.N, bptt.H))
    hs, h_T, (dx, dh0, grads) = reference.rnn_sequence(p, x, h0, mask, dhs, dh_T)
    mine = bptt.variant(p, x, h0, mask, dhs, dh_T)
    for k, v in dict(hs=hs, h_T=h_T, dx=dx, dh0=dh0, **{f"d{k}": g for k, g in grads.items()}).items():
        assert reference.rel_error(mine[k], v) < 1e-12, k


def test_the_adam_variant_without_a_mistake_is_minirnns(rng):
    p0, gs = rng.normal(size=(3, 4)), [rng.normal(size=(3, 4)) for _ in range(3)]
    updates = optim._adam_variant(p0, gs, 1e-2, 0.9, 0.999, 1e-8, None)
    params = {"w": p0.copy()}
    opt = reference.adam(params, 1e-2)
    for g, u in zip(gs, updates):
        before = params["w"].copy()
        opt.step({"w": g})
        numpy.testing.assert_allclose(params["w"] - before, u, rtol=1e-12, atol=0)


def test_an_endless_loop_is_a_failed_row_not_a_hang(tmp_path):
    path = wrong_file(
        tmp_path,
        "02_rnn_step",
        [("    h = np.tanh(x @ Wx + h_prev @ Wh + b)  # (N, H)\n", "    while True:\n        pass\n")],
    )
    module, _ = load(path)
    row = core.grade(EXERCISES["02_rnn_step"][0], core.Student(module, path), seconds=0.5)
    assert row.status == "FAIL" and "rnn_step_forward still running after 0.5 s (line" in row.notes[-1]


def anchors(page: Path) -> set:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    heads = [line.lstrip("#").strip() for line in page.read_text().splitlines() if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


def test_every_link_into_docs_names_a_page_and_heading_that_exist():
    texts = [
        p.read_text()
        for p in [
            *SOURCE.glob("*.py"),
            *(ROOT / "minirnn" / "grading").glob("*.py"),
            ROOT / "docs" / "teaching.md",
        ]
    ]
    links = {m.groups() for text in texts for m in re.finditer(r"(\w+\.md)(?:#([\w-]+))?", text)}
    assert len(links) > 10
    for page, anchor in links:
        path = ROOT / "docs" / page
        if page == "README.md":
            continue
        assert path.is_file(), page
        assert anchor is None or anchor in anchors(path), f"{page}#{anchor}"
