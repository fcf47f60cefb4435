"""The page snippets of a Korean or Chinese page are left out of a run only when they are the
checks of its English page (conftest.py): same code blocks, same shown outputs, same skip
directives, in the same order."""

from __future__ import annotations

import pytest
from helpers import load_module
from sitebuild import ROOT

ENGLISH = """\
# Title

Prose in English.

```python
x = 2 + 3
```

```pycon
>>> x * 2
10
```
"""


@pytest.fixture
def collection(tmp_path, monkeypatch):
    """The repository's conftest.py, reading pages from a docs folder in tmp_path."""
    module = load_module(ROOT / "conftest.py", "root_conftest_under_test")
    docs = tmp_path / "docs"
    for lang in ("en", "ko"):
        (docs / lang).mkdir(parents=True)
    (docs / "en" / "page.md").write_text(ENGLISH, "utf-8")
    monkeypatch.setattr(module, "DOCS", docs)
    return module, docs


def translate(docs, text: str) -> object:
    page = docs / "ko" / "page.md"
    page.write_text(text, "utf-8")
    return page


def test_translation_with_the_english_blocks_is_left_out(collection):
    """A page whose prose is translated and whose blocks are the English ones is not run again."""
    module, docs = collection
    page = translate(
        docs, ENGLISH.replace("Prose in English.", "한국어 문장.")
    )
    assert module.same_checks_as_english(page)


def test_translation_with_another_shown_output_runs(collection):
    """A page that shows another output for the same code is run."""
    module, docs = collection
    page = translate(docs, ENGLISH.replace("\n10\n", "\n11\n"))
    assert not module.same_checks_as_english(page)


def test_translation_with_another_code_line_runs(collection):
    """A page with a different line of code is run."""
    module, docs = collection
    page = translate(docs, ENGLISH.replace("2 + 3", "3 + 2"))
    assert not module.same_checks_as_english(page)


def test_translation_with_its_own_skip_directive_runs(collection):
    """A page that skips a block the English page runs is run (it checks less, or other things)."""
    module, docs = collection
    page = translate(
        docs, ENGLISH.replace("```pycon", "<!-- skip: next -->\n\n```pycon")
    )
    assert not module.same_checks_as_english(page)


def test_english_page_is_never_left_out(collection):
    """The English page itself always runs."""
    module, docs = collection
    assert not module.same_checks_as_english(docs / "en" / "page.md")
