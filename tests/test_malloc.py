"""minirnn.malloc: the commands keep freed memory for the next step instead of faulting in
fresh pages; importing minirnn leaves the allocator alone. Each case runs in a fresh process,
since the allocator's settings belong to the whole process."""

import importlib
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from minirnn import malloc

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="keep_freed_memory tunes glibc's malloc only")

# What a training step does to memory: several big arrays, written, then all freed.
# Prints the page faults of the last three rounds before and after keep_freed_memory().
CHURN = textwrap.dedent("""
    import resource, numpy
    from minirnn.malloc import keep_freed_memory

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def steps(rounds=3):
        start = faults()
        for _ in range(rounds):
            arrays = [numpy.ones(2**21, numpy.float32) for _ in range(6)]  # 6 x 8 MiB
            del arrays
        return faults() - start

    steps()
    before = steps()
    applied = keep_freed_memory()
    steps()
    print(applied, before, steps())
""")


def churn(**env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run(
        [sys.executable, "-c", CHURN], env={**environ, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2])


@needs_glibc
def test_freed_memory_is_reused_without_page_faults():
    applied, before, after = churn()
    assert applied
    # 3 rounds of 48 MiB: glibc returned it all to the system each round (here about 9,000 faults of 4 KiB)
    if before < 1000:
        pytest.skip(f"only {before} page faults counted: huge pages, or a kernel that does not count them")
    assert after < before / 20  # now the heap keeps it, and the next round reuses it


@needs_glibc
@pytest.mark.parametrize(
    "env", [{"MALLOC_TRIM_THRESHOLD_": "131072"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}]
)
def test_glibc_settings_the_user_made_are_left_alone(env):
    applied, before, after = churn(**env)
    assert not applied and after >= before / 2  # glibc hands the memory back as before


def test_without_glibc_nothing_is_changed(monkeypatch):
    monkeypatch.setattr(malloc, "_applied", None)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert malloc.keep_freed_memory() is False
    assert malloc.keep_freed_memory() is False  # decided once


def test_importing_minirnn_leaves_the_allocator_alone():
    code = (
        "import minirnn.model, minirnn.train, minirnn.sample, minirnn.bench, minirnn.malloc as m; "
        "print(m._applied)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None"


class Stop(Exception):
    """Raised in place of the work, to end a command right after its set-up."""


def stop(*args, **kwargs):
    raise Stop


@pytest.mark.parametrize(
    "command, work, argv, keeps",
    [
        ("train", "train", [], True),
        ("gapfill", "compare", [], True),
        ("bench", "make_data", ["--no-torch"], True),
        ("bench", "make_data", ["--no-torch", "--system-malloc"], False),  # to measure what it buys
    ],
)
def test_the_commands_keep_freed_memory(command, work, argv, keeps, monkeypatch):
    module = importlib.import_module(f"minirnn.{command}")
    calls = []
    monkeypatch.setattr(module, "keep_freed_memory", lambda: calls.append(command))
    monkeypatch.setattr(module, work, stop)
    with pytest.raises(Stop):
        module.main(argv)
    assert calls == ([command] if keeps else [])
