"""The pages in docs/ render on GitHub as written: displays that span lines are ```math fences (a `$$`
block broken over lines inside a paragraph can be read as emphasis), and no spacing command was lost
from a formula (`dY  W^\\top` with two spaces once rendered as "dYW⊤")."""

import re
from pathlib import Path

import pytest

PAGES = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))


def prose_lines(page):
    """(line number, line) for the lines outside code fences (```math fences are code to markdown)."""
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield number, line


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_dollar_display_opens_and_closes_on_one_line(page):
    broken = [n for n, line in prose_lines(page) if line.count("$$") % 2]
    assert broken == [], f"{page.name}: a $$ display spans lines at {broken}; use a ```math fence"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_no_formula_has_two_spaces_where_a_thin_space_was(page):
    lost = [
        (n, m.group(0))
        for n, line in prose_lines(page)
        for m in re.finditer(r"\$[^$]+\$", line)
        if "  " in m.group(0)
    ]
    assert lost == [], f"{page.name}: write \\, for a thin space: {lost}"
