"""The three languages share their pages and their code: ko and zh run exactly the en code blocks."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$", re.M | re.S)
EN_PAGES = sorted(p.relative_to(DOCS / "en") for p in (DOCS / "en").rglob("*.md"))


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block, indentation removed."""
    out = []
    for m in FENCE.finditer(path.read_text(encoding="utf-8")):
        indent = m.group("indent")
        body = "\n".join(line[len(indent):] if line.startswith(indent) else line for line in m.group("body").splitlines())
        out.append((m.group("info").strip(), body))
    return out


def test_english_pages_exist():
    """The English tree has pages (so the parity checks below check something)."""
    assert len(EN_PAGES) >= 4


@pytest.mark.parametrize("lang", ["ko", "zh"])
def test_same_pages_in_every_language(lang):
    """docs/ko and docs/zh have exactly the pages of docs/en."""
    assert sorted(p.relative_to(DOCS / lang) for p in (DOCS / lang).rglob("*.md")) == EN_PAGES


@pytest.mark.parametrize("lang", ["ko", "zh"])
@pytest.mark.parametrize("page", EN_PAGES, ids=str)
def test_translated_page_has_the_english_code_blocks(lang, page):
    """Each ko/zh page has the same code blocks as its en page, in the same order, byte for byte."""
    translated = DOCS / lang / page
    assert translated.exists(), f"missing {translated}"
    assert code_blocks(translated) == code_blocks(DOCS / "en" / page)
