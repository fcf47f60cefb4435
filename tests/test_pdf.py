"""The PDF of a language (tools/pdf.py) and the print stylesheet it prints with.

The Korean PDF is printed once per module from the site the browser tests use
(``site_server``, the build served at /) and read back with poppler-utils (``pdfinfo``,
``pdftotext``, ``pdffonts``). Printing all three languages takes longer than a test should,
so the test prints Korean only and ``make pdf`` prints all three.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from sitebuild import ROOT

from hooks import pdf_link
from tools import pdf

LANG = "ko"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
RAW_TEX = re.compile(
    r"\\(?:frac|sum|hat|mathbb|mathrm|sqrt|partial|left|right)\b|\$\$"
)


def _squeeze(text: str) -> str:
    """Text without whitespace: a heading reads the same however a line broke it."""
    return re.sub(r"\s+", "", text)


def _poppler(*args: str) -> str:
    return subprocess.run(
        args, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def book(site_server, browser, tmp_path_factory):
    result = site_server.builds["/"]
    if result.rc != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{result.output}")
    out = tmp_path_factory.mktemp("pdf")
    (printed,) = pdf.build(
        result.site,
        out,
        (LANG,),
        base_url=site_server.url("/"),
        browser=browser,
    )
    # pdftotext -layout: one string per page (pages end with a form feed).
    text = _poppler("pdftotext", "-layout", str(printed.path), "-")
    printed.page_texts = text.split("\f")[: printed.pages]
    printed.site = result.site
    return printed


def _nav_chapters() -> list[str]:
    """The pages of mkdocs.yml's nav in order, without the API reference and the glossary."""
    config = pdf._config(ROOT / "mkdocs.yml")
    found = []

    def walk(items):
        for item in items:
            (value,) = item.values()
            if isinstance(value, list):
                walk(value)
            elif not value.startswith("api/") and value != "glossary.md":
                found.append(value)

    walk(config["nav"])
    return found


def test_pdf_holds_every_chapter_page_in_nav_order(book):
    """The PDF's chapters are the nav's pages in order, all but the API reference and glossary."""
    assert [c.src for c in book.chapters] == _nav_chapters()
    on_disk = {
        p.relative_to(ROOT / "docs" / LANG).as_posix()
        for p in (ROOT / "docs" / LANG).rglob("*.md")
    }
    assert {c.src for c in book.chapters} == {
        p for p in on_disk if not p.startswith("api/") and p != "glossary.md"
    }


def test_pdf_has_title_page_contents_and_a_page_per_chapter(book):
    """After the title page and the contents, each chapter starts on a page of its own."""
    assert book.pages == pdf.page_count(book.path) == len(book.page_texts)
    starts = [c.page for c in book.chapters]
    assert starts[0] >= 3
    assert all(a < b for a, b in itertools.pairwise(starts))
    assert book.pages >= starts[-1]


def test_pdf_pages_are_numbered(book):
    """The footer of page i of n reads "i / n"."""
    n = book.pages
    for i, text in enumerate(book.page_texts, start=1):
        assert text.rstrip().endswith(f"{i} / {n}"), (i, text[-200:])


def test_pdf_chapter_headings_are_on_their_pages(book):
    """Each chapter's heading is printed on the page the table of contents gives for it."""
    for chapter in book.chapters:
        page = book.page_texts[chapter.page - 1]
        assert _squeeze(chapter.title) in _squeeze(page), chapter.src


def test_pdf_contents_give_each_chapter_its_page(book):
    """The table of contents lists every chapter's heading with the page it starts on."""
    first = book.chapters[0].page
    lines = [
        _squeeze(line)
        for text in book.page_texts[1 : first - 1]
        for line in text.splitlines()
    ]
    for chapter in book.chapters:
        entry = _squeeze(chapter.title) + str(chapter.page)
        assert entry in lines, chapter.src


def test_pdf_korean_text_is_extractable(book):
    """Every chapter's first page gives at least 100 Hangul syllables back as text."""
    for chapter in book.chapters:
        page = book.page_texts[chapter.page - 1]
        assert len(HANGUL.findall(page)) >= 100, chapter.src


def test_pdf_formulas_are_typeset_by_katex(book):
    """The PDF embeds KaTeX's fonts and none of its text is TeX source."""
    fonts = _poppler("pdffonts", str(book.path))
    assert "KaTeX_Main" in fonts and "KaTeX_Math" in fonts
    text = "".join(book.page_texts)
    assert not RAW_TEX.search(text), RAW_TEX.search(text)


def test_print_page_shows_the_languages_own_figures(book, print_page):
    """The print page's figures are those of the Korean pages, from assets/figures/ko/."""
    printed = re.findall(r'<img [^>]*src="([^"]*)"', print_page)
    figures = [src for src in printed if "/figures/" in src]
    on_pages = []
    for chapter in book.chapters:
        page = (book.site / chapter.url / "index.html").read_text("utf-8")
        on_pages += re.findall(
            r'<img [^>]*src="(?:\.\./)*(assets/figures/[^"]*)"', page
        )
    assert figures == ["/" + src for src in on_pages]
    assert figures and all(
        src.startswith("/assets/figures/ko/") for src in figures
    )


def test_print_css_hides_navigation_and_wraps_code(site_server, browser):
    """Printed, a page shows no header, search, navigation or download links, and no code
    block is wider than its box, even on a narrow sheet."""
    with pdf.Printer(site_server.origin, browser) as printer:
        page = printer.context.new_page()
        page.set_viewport_size({"width": 420, "height": 800})
        page.goto(site_server.url("/") + "ko/training-and-inference/")
        page.emulate_media(media="print")
        state = page.evaluate(
            """() => ({
              shown: [".md-header", ".md-search", ".md-sidebar--primary", ".bn-downloads",
                      ".md-footer", ".md-source-file"]
                .filter(s => [...document.querySelectorAll(s)]
                  .some(e => e.getClientRects().length > 0)),
              blocks: document.querySelectorAll("pre > code").length,
              cut: [...document.querySelectorAll("pre > code")]
                .filter(c => c.scrollWidth > c.clientWidth + 1)
                .map(c => c.textContent.slice(0, 60)),
            })"""
        )
    assert printer.failures == []
    assert state["shown"] == []
    assert state["blocks"] > 0 and state["cut"] == []


@pytest.fixture(scope="module")
def print_page(book):
    return pdf.render(pdf.read_site(book.site, LANG, "/"))


def test_print_page_leaves_out_the_sites_controls(print_page):
    """The print page has no download row, permalink, lightbox link or edit link."""
    for control in (
        'class="bn-downloads',
        'class="headerlink',
        'class="glightbox',
        'class="md-content__button',
        '.ipynb"',
    ):
        assert control not in print_page, control


def test_print_page_loads_every_figure_before_printing(print_page):
    """The figures load with the print page (no loading="lazy", which the site's figures
    have): the browser prints once the page's load event has fired."""
    images = re.findall(r"<img\b[^>]*>", print_page)
    assert any("/figures/" in tag for tag in images)
    assert not [tag for tag in images if "loading=" in tag]


def test_print_page_links_lead_to_ids_in_it(print_page):
    """Every link inside the print page (chapter to chapter, to a section, to a
    footnote) leads to an id that the page has, and no id is repeated."""
    ids = re.findall(r'\sid="([^"]*)"', print_page)
    assert len(ids) == len(set(ids))
    targets = set(re.findall(r'\shref="#([^"]*)"', print_page))
    assert targets and targets <= set(ids), sorted(targets - set(ids))[:5]


@pytest.fixture
def home_page():
    return SimpleNamespace(
        file=SimpleNamespace(src_uri=f"{LANG}/index.md"), url=f"{LANG}/"
    )


CONTENT = (
    '<h1 id="bnnotes">bnnotes</h1>'
    '<div class="bn-downloads" data-search-exclude><a>nb</a></div><p>x</p>'
)


def test_home_page_links_its_pdf_in_the_pdf_build(monkeypatch, home_page):
    """With BNNOTES_PDF set (make pdf), the home page links its PDF, relative to the page."""
    monkeypatch.setenv(pdf_link.ENV, "1")
    html = pdf_link.on_page_content(CONTENT, home_page, None, None)
    assert 'href="../pdf/bnnotes-ko.pdf"' in html
    assert html.index("bnnotes-ko.pdf") < html.index(
        "</div>"
    )  # in the download row


def test_home_page_has_no_pdf_link_in_other_builds(monkeypatch, home_page):
    """Without BNNOTES_PDF (make build, make serve, the tests), no page links a PDF."""
    monkeypatch.delenv(pdf_link.ENV, raising=False)
    assert pdf_link.on_page_content(CONTENT, home_page, None, None) == CONTENT


def test_pdf_tool_reports_linked_pdfs_that_are_missing(tmp_path):
    """A home page that links its PDF when the PDF is not there is reported."""
    (tmp_path / "ko").mkdir()
    (tmp_path / "index.html").write_text("<p>no link</p>", "utf-8")
    (tmp_path / "ko" / "index.html").write_text(
        '<a href="../pdf/bnnotes-ko.pdf">PDF</a>', "utf-8"
    )
    assert pdf.missing_linked_pdfs(tmp_path) == ["pdf/bnnotes-ko.pdf"]
    (tmp_path / "pdf").mkdir()
    (tmp_path / "pdf" / "bnnotes-ko.pdf").write_bytes(b"%PDF-1.4")
    assert pdf.missing_linked_pdfs(Path(tmp_path)) == []
