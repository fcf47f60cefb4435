"""Figures as a reader meets them: every image of every page sits in a <figure> with one
numbered caption in the page's language ("Figure 2.", "그림 2.", "图 2"), the numbers run
1, 2, 3, ... on each page, the prose refers to every figure by its number, and figure
images load lazily."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from helpers import (
    DOCS,
    FIGURE_LABEL,
    FIGURE_REFERENCE,
    page_figures,
    render_markdown,
)

LANGS = ("en", "ko", "zh")
PAGES = sorted(
    p.relative_to(DOCS / "en").as_posix() for p in (DOCS / "en").rglob("*.md")
)


@functools.cache
def figures_of(path: Path):
    """(figures, images outside figures, prose without figures and code) of a page."""
    html, _ = render_markdown(path)
    figures, loose = page_figures(html)
    prose = re.sub(
        r"<figure\b.*?</figure>|<pre\b.*?</pre>", "", html, flags=re.S
    )
    return figures, loose, re.sub(r"<[^>]+>", "", prose)


def caption_numbers(figures: list[dict], lang: str) -> list[int | None]:
    """The number each figure's single caption gives it (None: no caption, or not numbered)."""
    numbers = []
    for figure in figures:
        captions = figure["captions"]
        match = len(captions) == 1 and FIGURE_LABEL[lang].match(captions[0])
        numbers.append(int(match.group(1)) if match else None)
    return numbers


def test_the_pages_have_figures():
    """Some pages of every language have figures (so the checks below check something)."""
    for lang in LANGS:
        count = sum(len(figures_of(DOCS / lang / p)[0]) for p in PAGES)
        assert count >= 20, lang


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page", PAGES)
def test_every_image_is_a_captioned_figure(lang, page):
    """No image stands outside a <figure>, and each figure has exactly one <figcaption>
    that starts with the page language's word and a number."""
    figures, loose, _ = figures_of(DOCS / lang / page)
    assert loose == [], f"{lang}/{page}: images outside a <figure>: {loose}"
    for figure, number in zip(
        figures, caption_numbers(figures, lang), strict=True
    ):
        assert figure["images"], f"{lang}/{page}: a figure without an image"
        assert number is not None, (
            f"{lang}/{page}: {figure['images']} needs one caption starting with "
            f"{FIGURE_LABEL[lang].pattern!r}, has {figure['captions']}"
        )


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page", PAGES)
def test_figure_images_load_when_scrolled_near(lang, page):
    """Every figure image has loading="lazy" (``![...](...){ loading=lazy }``): a phone
    fetches a figure when the reader nears it, and the page is drawn without waiting for
    figures far below (on gradient-ics, six figures held up the first paint by 1-2 s)."""
    html, _ = render_markdown(DOCS / lang / page)
    eager = [
        tag
        for tag in re.findall(r"<img\b[^>]*>", html)
        if "assets/figures/" in tag and 'loading="lazy"' not in tag
    ]
    assert eager == [], f"{lang}/{page}: {eager}"


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page", PAGES)
def test_figures_are_numbered_one_two_three(lang, page):
    """The figures of a page are numbered 1, 2, 3, ... in the order they appear."""
    figures, _, _ = figures_of(DOCS / lang / page)
    numbers = caption_numbers(figures, lang)
    assert numbers == list(range(1, len(figures) + 1)), f"{lang}/{page}"


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page", PAGES)
def test_prose_refers_to_every_figure(lang, page):
    """Each figure's number is named in the page's text outside the figures ("Figure 3",
    "그림 3", "图 3"), so the reader is sent to it."""
    figures, _, prose = figures_of(DOCS / lang / page)
    named = {
        int(n)
        for match in FIGURE_REFERENCE[lang].finditer(prose)
        for n in match.groups()
        if n
    }
    missing = set(range(1, len(figures) + 1)) - named
    assert not missing, f"{lang}/{page}: figures never referred to: {missing}"
