"""The code on the pages fits the text column and is formatted like the package.

Material's text column at 1280 px holds about 80 characters of code at its code font size
(tests/test_browser.py checks that no code block scrolls sideways there); the page sources
keep every code line within ruff's line length, 79, so that holds by construction.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_docs_parity import DOCS, code_blocks

LIMIT = 79
PAGES = sorted(DOCS.rglob("*.md"))


def long_lines(path: Path, limit: int = LIMIT) -> list[str]:
    """The lines of a page's fenced code blocks that are wider than ``limit``."""
    return [
        line
        for _, body in code_blocks(path)
        for line in body.splitlines()
        if len(line) > limit
    ]


def test_long_lines_finds_a_wide_line(tmp_path):
    """long_lines() reports a code line one character over the limit, and only that one."""
    page = tmp_path / "page.md"
    wide, narrow = "x = " + "1" * (LIMIT - 3), "y = 1"
    page.write_text(f"# T\n\n```python\n{narrow}\n{wide}\n```\n{wide}\n")
    assert long_lines(page) == [wide]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_code_lines_fit_the_text_column(page):
    """Every line of every fenced code block is at most 79 characters."""
    assert long_lines(page) == []


def test_page_code_is_ruff_formatted():
    """`ruff format --check docs` passes: the page snippets are formatted like the package."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is a pinned development dependency"
    result = subprocess.run(
        [ruff, "format", "--check", str(DOCS)],
        capture_output=True,
        text=True,
        cwd=DOCS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
