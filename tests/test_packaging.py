"""What a user gets from the package: an sdist that holds the whole project and whose tests pass once
unpacked, a wheel that has the flags page `--help` points at, and an editable install without warnings.

Everything is built offline, with this environment's setuptools (the test extra asks for it), from a copy of
the source tree. One build serves every test in this file (about 5 s)."""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# what is never part of a release: version control, build output, runs, caches
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    "*.egg-info",
    "build",
    "dist",
    "__pycache__",
    "*.py[cod]",
    ".pytest_cache",
    "runs",
    "figures",
    ".venv",
    "venv",
    "out",
    ".whl",
    ".gl",
)
# the tests that run from the unpacked sdist: quick ones that need tests/__init__.py, conftest.py and the
# strict stand-in (strict_xp.py), which is what an sdist without them broke
SDIST_TESTS = [
    "tests/test_backend.py",
    "tests/test_data.py",
    "tests/test_optim.py",
    "tests/test_cli.py",
    "tests/test_visualize_page.py",
]


def setuptools_version():
    try:
        import setuptools
    except ImportError:
        return None
    return tuple(int(v) for v in re.findall(r"\d+", setuptools.__version__)[:2])


def run(args, cwd, **env):
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, **env}
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build the sdist, the wheel and the editable wheel of a copy of the tree; return (dist folder, log)."""
    version = setuptools_version()
    if version is None or version < (77, 0):
        pytest.skip(f"building needs setuptools>=77, as pyproject.toml says (here: {version})")
    tmp = tmp_path_factory.mktemp("packaging")
    src, dist = tmp / "src", tmp / "dist"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    log = ""
    for kind in ("sdist", "wheel", "editable"):  # one process each: setuptools keeps state between builds
        build = f"import sys, setuptools.build_meta as b; b.build_{kind}(sys.argv[1])"
        proc = run([sys.executable, "-c", build, str(dist)], cwd=src)
        log += proc.stdout + proc.stderr
    return dist, log


def test_sdist_holds_the_docs_lessons_tests_and_licence(built):
    dist, _ = built
    [sdist] = dist.glob("minirnn-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = {
        "LICENSE",
        "README.md",
        "setup.cfg",
        "setup.py",
        "pyproject.toml",
        "MANIFEST.in",
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/strict_xp.py",
        "minirnn/texts/tinyshakespeare.txt",
    }
    for pattern in ("docs/**/*", "lessons/*.py", "lessons/*.md", "tests/*.py", "minirnn/*.py"):
        wanted |= {str(p.relative_to(ROOT)) for p in ROOT.glob(pattern) if p.is_file()}
    assert wanted - names == set()
    assert not [n for n in names if "__pycache__" in n or n.startswith("lessons/figures")]


def test_tests_pass_from_the_unpacked_sdist(built, tmp_path):
    dist, _ = built
    [sdist] = dist.glob("minirnn-*.tar.gz")
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.12 and the security releases before it
            tar.extractall(tmp_path, filter="data")
        else:
            tar.extractall(tmp_path)
    [unpacked] = tmp_path.glob("minirnn-*")
    env = {"PYTHONPATH": str(unpacked)}
    where = run(
        [sys.executable, "-c", "import minirnn, tests.strict_xp; print(minirnn.__file__)"],
        cwd=unpacked,
        **env,
    ).stdout.strip()
    assert Path(where).parent == unpacked / "minirnn"  # the sdist's code, not this checkout's
    proc = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not browser", *SDIST_TESTS],
        cwd=unpacked,
        **env,
    )
    assert re.search(r"\d+ passed", proc.stdout) and " failed" not in proc.stdout, proc.stdout[-2000:]


def test_wheel_has_the_flags_page_that_help_names(built, tmp_path):
    dist, _ = built
    [wheel] = [w for w in dist.glob("minirnn-*.whl") if "editable" not in w.name]
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        z.extractall(tmp_path / "site")
    assert {"minirnn/docs/flags.md", "minirnn/texts/tinyshakespeare.txt"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "lessons/", "docs/"))]  # only minirnn installs
    assert "License-Expression: MIT" in metadata and "Author: the minirnn developers" in metadata

    # run from the wheel's files alone, in a folder far from any source tree
    for command in ("train", "sample"):
        out = run(
            [sys.executable, "-m", f"minirnn.{command}", "--help"],
            cwd=tmp_path,
            PYTHONPATH=str(tmp_path / "site"),
        ).stdout
        page = Path(re.search(r"Every flag is described in (\S+)\.\s", " ".join(out.split()) + " ").group(1))
        assert page == tmp_path / "site" / "minirnn" / "docs" / "flags.md"
        assert page.read_text(encoding="utf-8") == (ROOT / "docs" / "flags.md").read_text(encoding="utf-8")


def test_editable_install_needs_no_import_hook_and_warns_of_nothing(built):
    dist, log = built
    [editable] = dist.glob("minirnn-*editable*.whl")
    with zipfile.ZipFile(editable) as z:
        names = z.namelist()
    assert [n for n in names if n.endswith(".pth")] and not [n for n in names if "finder" in n]
    assert "Warning" not in log and "careful with folders" not in log and "meta path finder" not in log, log
