"""The three languages share their pages and their structure: ko and zh run exactly the en code
blocks, and have the same display formulas, figures and heading anchors as the en pages; each
language shows its own language's figure files."""

import functools
import re
from pathlib import Path

import pytest
from helpers import code_blocks, page_figures, render_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs"
EN_PAGES = sorted(
    p.relative_to(DOCS / "en") for p in (DOCS / "en").rglob("*.md")
)


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


# A figure file of one language: docs/assets/figures/<lang>/NAME.
FIGURE_FILE = re.compile(
    r"assets/figures/(?P<lang>[a-z]{2})/(?P<name>[^\"/)]+)"
)


def figure_names(sources: list[str]) -> list[str]:
    """The figure files of image sources, without their language folder."""
    return [
        FIGURE_FILE.sub(r"assets/figures/\g<name>", source)
        for source in sources
    ]


@functools.cache
def structure(path: Path) -> dict[str, object]:
    """Display-math blocks, figures (the images of each <figure>, modulo the language
    folder, and any image outside one) and heading anchor ids of a page, as rendered."""
    html, md = render_markdown(path)
    figures, loose = page_figures(html)

    def ids(tokens):
        for token in tokens:
            yield token["id"]
            yield from ids(token["children"])

    return {
        "display math": len(re.findall(r'<div class="arithmatex">', html)),
        "figures": [figure_names(f["images"]) for f in figures],
        "images outside figures": figure_names(loose),
        "heading ids": list(ids(md.toc_tokens)),
    }


def test_structure_sees_math_figures_and_headings(tmp_path):
    """structure() counts what it should (so equal counts below mean something)."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Title { #title }\n\nText $x$ and\n\n$$\na^2\n$$\n\n"
        "```python\n# not a heading\n```\n\n## Part\n\n"
        "<figure markdown>\n![A](../assets/figures/ko/a.svg)\n"
        "![B](../assets/figures/ko/b.svg)\n\n"
        '<figcaption markdown="span">그림 1. 두 패널</figcaption>\n</figure>\n\n'
        "![Loose](c.svg)\n\n$$b$$\n",
        encoding="utf-8",
    )
    assert structure(page) == {
        "display math": 2,
        "figures": [["../assets/figures/a.svg", "../assets/figures/b.svg"]],
        "images outside figures": ["c.svg"],
        "heading ids": ["title", "part"],
    }


@pytest.mark.parametrize("lang", ["en", "ko", "zh"])
@pytest.mark.parametrize("page", EN_PAGES, ids=str)
def test_page_shows_its_own_languages_figures(lang, page):
    """Every figure file a page shows is in its own language's folder,
    docs/assets/figures/<lang>/, and exists there."""
    html, _ = render_markdown(DOCS / lang / page)
    figures, loose = page_figures(html)
    sources = [s for f in figures for s in f["images"]] + loose
    for source in sources:
        match = FIGURE_FILE.search(source)
        assert match and match["lang"] == lang, (page, source)
        assert (DOCS / "assets" / "figures" / lang / match["name"]).is_file()


@pytest.mark.parametrize("lang", ["ko", "zh"])
@pytest.mark.parametrize("page", EN_PAGES, ids=str)
def test_translated_page_has_the_english_structure(lang, page):
    """Each ko/zh page has as many display formulas as its en page, the same figures (the
    same files, modulo the language folder, grouped in the same <figure> panels) and the
    same heading anchor ids in the same order (so links to #anchors work in every language)."""
    translated = DOCS / lang / page
    assert translated.exists(), f"missing {translated}"
    assert structure(translated) == structure(DOCS / "en" / page)
