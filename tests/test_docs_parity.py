"""The three languages share their pages and their structure: ko and zh run exactly the en code
blocks, and have the same display formulas, figures and heading anchors as the en pages."""

import functools
import re
from pathlib import Path

import markdown
import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.M | re.S,
)
EN_PAGES = sorted(
    p.relative_to(DOCS / "en") for p in (DOCS / "en").rglob("*.md")
)


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block, indentation removed."""
    out = []
    for m in FENCE.finditer(path.read_text(encoding="utf-8")):
        indent = m.group("indent")
        body = "\n".join(
            line[len(indent) :] if line.startswith(indent) else line
            for line in m.group("body").splitlines()
        )
        out.append((m.group("info").strip(), body))
    return out


def test_english_pages_exist():
    """The English tree has pages (so the parity checks below check something)."""
    assert len(EN_PAGES) >= 4


@pytest.mark.parametrize("lang", ["ko", "zh"])
def test_same_pages_in_every_language(lang):
    """docs/ko and docs/zh have exactly the pages of docs/en."""
    assert (
        sorted(p.relative_to(DOCS / lang) for p in (DOCS / lang).rglob("*.md"))
        == EN_PAGES
    )


@pytest.mark.parametrize("lang", ["ko", "zh"])
@pytest.mark.parametrize("page", EN_PAGES, ids=str)
def test_translated_page_has_the_english_code_blocks(lang, page):
    """Each ko/zh page has the same code blocks as its en page, in the same order, byte for byte."""
    translated = DOCS / lang / page
    assert translated.exists(), f"missing {translated}"
    assert code_blocks(translated) == code_blocks(DOCS / "en" / page)


# The Markdown extensions of mkdocs.yml that shape headings, formulas and figures.
MD_EXTENSIONS = [
    "admonition",
    "attr_list",
    "md_in_html",
    "footnotes",
    "tables",
    "def_list",
    "toc",
    "pymdownx.arithmatex",
    "pymdownx.superfences",
    "pymdownx.details",
    "pymdownx.tabbed",
]
MD_CONFIG = {
    "pymdownx.arithmatex": {"generic": True},
    "pymdownx.tabbed": {"alternate_style": True},
}


@functools.cache
def structure(path: Path) -> dict[str, object]:
    """Display-math blocks, figures (images) and heading anchor ids of a page, as rendered."""
    md = markdown.Markdown(
        extensions=MD_EXTENSIONS, extension_configs=MD_CONFIG
    )
    html = md.convert(path.read_text(encoding="utf-8"))

    def ids(tokens):
        for token in tokens:
            yield token["id"]
            yield from ids(token["children"])

    return {
        "display math": len(re.findall(r'<div class="arithmatex">', html)),
        "figures": len(re.findall(r"<img\b", html)),
        "heading ids": list(ids(md.toc_tokens)),
    }


def test_structure_sees_math_figures_and_headings(tmp_path):
    """structure() counts what it should (so equal counts below mean something)."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Title { #title }\n\nText $x$ and\n\n$$\na^2\n$$\n\n"
        "```python\n# not a heading\n```\n\n## Part\n\n![A figure](fig.svg)\n\n$$b$$\n",
        encoding="utf-8",
    )
    assert structure(page) == {
        "display math": 2,
        "figures": 1,
        "heading ids": ["title", "part"],
    }


@pytest.mark.parametrize("lang", ["ko", "zh"])
@pytest.mark.parametrize("page", EN_PAGES, ids=str)
def test_translated_page_has_the_english_structure(lang, page):
    """Each ko/zh page has as many display formulas and figures as its en page, and the same
    heading anchor ids in the same order (so links to #anchors work in every language)."""
    translated = DOCS / lang / page
    assert translated.exists(), f"missing {translated}"
    assert structure(translated) == structure(DOCS / "en" / page)
