"""The flags every command shares are defined once (minirnn/cli.py) and behave the same everywhere."""

import importlib

import pytest

from minirnn.cli import BACKENDS

COMMANDS = ["train", "sample", "visualize", "gradcheck", "gapfill", "bench"]


def run_main(command, args, capsys):
    """Run ``python -m minirnn.<command> args`` in this process; return (exit status, stdout, stderr)."""
    main = importlib.import_module(f"minirnn.{command}").main
    with pytest.raises(SystemExit) as stop:
        main(args)
    out, err = capsys.readouterr()
    return stop.value.code, out, err


@pytest.mark.parametrize("command", COMMANDS)
def test_backend_usage_lists_the_choices(command, capsys):
    code, out, _ = run_main(command, ["--help"], capsys)
    assert code == 0
    assert f"[--backend {{{','.join(BACKENDS)}}}]" in " ".join(out.split())


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_backend_is_refused_before_anything_runs(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so that anything written would show here
    code, out, err = run_main(command, ["--backend", "tpu"], capsys)
    assert code == 2 and out == ""
    [line] = err.splitlines()  # one line; how argparse quotes the choices differs between Pythons
    assert line.startswith(f"minirnn.{command}: error: argument --backend: invalid choice: 'tpu' (choose")
    assert line.endswith(" (see --help)") and all(name in line for name in BACKENDS)
    assert list(tmp_path.iterdir()) == []
