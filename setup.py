"""The build's one step that setup.cfg cannot say: docs/ goes into the wheel, as minirnn/docs/.

`--help` tells the reader where docs/flags.md is (minirnn.cli.docs_page), so a user who installed the
wheel, without the source tree, has the page too. Everything else is in setup.cfg."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class build_py_with_docs(build_py):
    def run(self):
        super().run()
        for page in sorted(Path("docs").rglob("*")):
            if page.is_file():
                target = Path(self.build_lib, "minirnn", page)
                self.mkpath(str(target.parent))
                self.copy_file(str(page), str(target))


setup(cmdclass={"build_py": build_py_with_docs})
