"""Print each language of the built site as one PDF: ``site/pdf/bnnotes-LANG.pdf``.

    python tools/pdf.py [SITE_DIR] [--lang ko] [--out DIR]     (``make pdf``)

SITE_DIR (default ``site``) is a finished build. For each language, the chapter pages
(the ``nav`` of ``mkdocs.yml`` in its order, without the API reference and the glossary,
the pages that also get a notebook) are read from the built HTML and joined into one print
page: a title page, a table of contents with page numbers, then one chapter per page
(each starting on a new sheet). The print page links the site's own stylesheets
(Material, KaTeX, ``site.css`` with its ``@media print`` rules) and adds
``tools/pdf.css``; it is served, together with the site, from 127.0.0.1 and never written
into SITE_DIR. Debian's Chromium (its headless shell) prints it through Playwright
(``page.pdf``): A4, a page number in every footer, KaTeX's HTML with its fonts, the
language's own SVG figures as vectors and all text as text, so Korean and Chinese can be
selected and searched. No request leaves the local server. The PDFs have no bookmarks:
Chromium makes them only for a tagged PDF, which for these pages is three times the size
(about 12 MB instead of 4) and slower to print; the table of contents links every chapter
instead.

Links between chapters become links inside the PDF; links to pages that are not in it
(the API reference, the glossary) go to the site's address (``site_url``), or are left as
plain text when the site was built for a local address.

The table of contents needs the page on which each chapter starts, which only the print
knows: a first print leaves the numbers blank (their width is reserved), ``pdfinfo
-dests`` (poppler-utils) reads the page of each chapter's named destination, and a
second print fills them in; the layout does not move between the two.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import notebooks  # noqa: E402
from tools.sitehttp import SiteServer  # noqa: E402

#: Debian's Chromium without its user interface (package chromium-headless-shell): the same
#: engine as the browser, with less work per page; the browser tests drive it too.
CHROMIUM = Path("/usr/bin/chromium-headless-shell")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
#: Language -> URL prefix of its pages inside the site.
LANG_PREFIX = {"en": "", "ko": "ko/", "zh": "zh/"}
#: The words of the title page, the table of contents and the footer.
LABELS = {
    "en": {"contents": "Contents", "edition": "Edition of {date}"},
    "ko": {"contents": "목차", "edition": "{date} 판"},
    "zh": {"contents": "目录", "edition": "{date} 版"},
}
BOOK_CSS = Path(__file__).with_suffix(".css")
#: Where, under the site's address, the print page is served (never a file on disk).
BOOK_PATH = "_print/{lang}.html"
FOOTER = (
    '<div style="width:100%;font-size:8pt;text-align:center;color:#555;'
    'font-family:sans-serif"><span class="pageNumber"></span> / '
    '<span class="totalPages"></span></div>'
)
#: Page size and margins; the footer sits in the bottom margin.
PDF_OPTIONS = {
    "format": "A4",
    "margin": {
        "top": "18mm",
        "bottom": "20mm",
        "left": "20mm",
        "right": "20mm",
    },
    "print_background": True,
    "display_header_footer": True,
    "header_template": "<span></span>",
    "footer_template": FOOTER,
}


@dataclass
class Chapter:
    """One page of the book: where it is in the site and in the PDF."""

    src: str  # "toolkit.md", inside the language folder
    #: the nav section it belongs to, in the book's language (None: at the top level)
    section: str | None
    url: str = ""  # site-relative directory URL: "ko/toolkit/"
    anchor: str = ""  # the id of its <section> in the print page: "ch-toolkit"
    title: str = ""  # its h1, as plain text
    title_html: str = ""  # its h1's content, as HTML
    body: str = ""  # its article, rewritten for the print page
    page: int | None = None  # the PDF page it starts on (1-based)


@dataclass
class Book:
    """One language's PDF: its chapters, pages and the time it took."""

    lang: str
    path: Path
    chapters: list[Chapter] = field(default_factory=list)
    pages: int = 0
    seconds: float = 0.0


# --- The chapters, in navigation order ------------------------------------------------


class _Loader(yaml.SafeLoader):
    """mkdocs.yml's own tags (!ENV) read as null: only the nav and i18n are used here."""


_Loader.add_constructor("!ENV", lambda loader, node: None)


def _config(mkdocs_yml: Path) -> dict:
    return yaml.load(mkdocs_yml.read_text("utf-8"), Loader=_Loader)


def chapters(
    lang: str, mkdocs_yml: Path = ROOT / "mkdocs.yml"
) -> list[Chapter]:
    """The chapter pages of ``nav``, in order, with their nav section in ``lang``.

    The chapter pages are those that get a notebook (:func:`tools.notebooks.is_chapter`):
    every page but the API reference and the glossary.
    """
    config = _config(mkdocs_yml)
    i18n = next(
        p["i18n"]
        for p in config["plugins"]
        if isinstance(p, dict) and "i18n" in p
    )
    language = next(lc for lc in i18n["languages"] if lc["locale"] == lang)
    names = language.get("nav_translations") or {}
    found: list[Chapter] = []

    def walk(items, section):
        for item in items:
            ((title, value),) = item.items()
            if isinstance(value, list):
                walk(value, names.get(title, title))
            elif notebooks.is_chapter(value):
                found.append(Chapter(src=value, section=section))

    walk(config["nav"], None)
    return found


# --- The print page ------------------------------------------------------------------

_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ATTR = re.compile(r'(\s)(id|for|href|src)="([^"]*)"')
_DROP = [
    # the permalink after each heading
    re.compile(r'<a class="headerlink"[^>]*>.*?</a>', re.S),
    # the notebook, script (and PDF) download links below the title
    re.compile(r'<div class="bn-downloads"[^>]*>.*?</div>', re.S),
    # "last update" and the edit link
    re.compile(r'<aside class="md-source-file">.*?</aside>', re.S),
    re.compile(r'<a [^>]*class="md-content__button[^"]*"[^>]*>.*?</a>', re.S),
    # a figure loads when the reader scrolls near it on the site; the print page loads them
    # all before it is printed (page.pdf waits for the load event, not for lazy images)
    re.compile(r' loading="lazy"'),
]
# A figure opens full screen on the site (glightbox); in the PDF the image stands alone.
_LIGHTBOX = re.compile(r'<a class="glightbox"[^>]*>(.*?)</a>', re.S)
_H1 = re.compile(r'<h1 id="([^"]*)"[^>]*>(.*?)</h1>', re.S)
_MATHML = re.compile(
    r'<span class="katex-mathml">.*?</span>\s*(?=<span class="katex-html")',
    re.S,
)


def plain_text(fragment: str) -> str:
    """The visible text of an HTML fragment (KaTeX's MathML copy left out)."""
    text = re.sub(r"<[^>]+>", "", _MATHML.sub("", fragment))
    return " ".join(html.unescape(text).split())


def _between(page: str, start: str, end: str) -> str:
    i = page.index(start) + len(start)
    return page[i : page.rindex(end)]


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1", None}


class _Rewriter:
    """Turns one chapter's article into part of the print page.

    Ids get the chapter's prefix (every page has its own #references); links to a chapter
    of the book become links to its section, other links to the site go to site_url (or
    are dropped when that is a local address); images are fetched from the served site.
    """

    def __init__(
        self, book: dict[str, Chapter], base_path: str, site_url: str
    ):
        #: site-relative URL -> chapter
        self.book = book
        #: where the site is served: "/" or "/bnnotes/"
        self.base_path = base_path
        #: the address the site was built for
        self.site_url = site_url

    def __call__(self, chapter: Chapter, article: str) -> str:
        for pattern in _DROP:
            article = pattern.sub("", article)
        article = _LIGHTBOX.sub(r"\1", article)
        page = "http://site/" + chapter.url
        prefix = chapter.anchor + "--"

        def attr(m: re.Match) -> str:
            space, name, value = m.groups()
            value = html.unescape(value)
            if name in ("id", "for"):
                return f'{space}{name}="{html.escape(prefix + value)}"'
            if name == "href" and value.startswith("#"):
                return f'{space}href="#{html.escape(prefix + value[1:])}"'
            target = urlsplit(urljoin(page, value))
            if target.netloc != "site":  # another site: as it is
                return f'{space}{name}="{html.escape(value)}"'
            path = target.path.lstrip("/")
            path = path.removesuffix("index.html")
            if name == "src":
                return f'{space}src="{html.escape(self.base_path + path)}"'
            linked = self.book.get(path)
            if linked is not None:
                frag = target.fragment
                anchor = linked.anchor + ("--" + frag if frag else "")
                return f'{space}href="#{html.escape(anchor)}"'
            if _is_local(self.site_url):
                return f'{space}data-site-path="{html.escape(path)}"'
            full = urljoin(self.site_url, path) + (
                "#" + target.fragment if target.fragment else ""
            )
            return f'{space}href="{html.escape(full)}"'

        return _TAG.sub(lambda m: _ATTR.sub(attr, m.group(0)), article)


def _edition_date() -> str:
    """The date of the last commit (the site's content), or today outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cs"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out = ""
    return out or time.strftime("%Y-%m-%d")


def dir_url(src: str) -> str:
    """The directory URL of a page inside its language folder: "" for index.md."""
    if src == "index.md" or src.endswith("/index.md"):
        return src.removesuffix("index.md")
    return src.removesuffix(".md") + "/"


@dataclass
class Source:
    """What the print page of one language is made of, read from the built site."""

    lang: str
    chapters: list[Chapter]
    html_tag: str  # <html lang="ko" ...>
    body_tag: str  # <body ...> with Material's palette attributes
    stylesheets: str  # the site's <link rel="stylesheet">s
    description: str  # the site's description in the language (HTML)
    site_url: str  # the address the site was built for
    base_path: str  # where the site is served: "/" or "/bnnotes/"
    #: the header's logo, site-relative ("assets/logo.svg"), if the site has one
    logo: str | None


def read_site(site: Path, lang: str, base_path: str = "/") -> Source:
    """The chapters of one language, rewritten for the print page, and the page's frame."""
    book = chapters(lang)
    prefix = LANG_PREFIX[lang]
    for chapter in book:
        chapter.url = prefix + dir_url(chapter.src)
        chapter.anchor = "ch-" + chapter.src.removesuffix(".md").replace(
            "/", "-"
        )
    home = (site / prefix / "index.html").read_text("utf-8")
    canonical = re.search(
        r'<link rel="canonical" href="([^"]*)"',
        (site / "index.html").read_text("utf-8"),
    )
    site_url = html.unescape(canonical.group(1)) if canonical else ""
    rewrite = _Rewriter({c.url: c for c in book}, base_path, site_url)
    for chapter in book:
        page = (site / chapter.url / "index.html").read_text("utf-8")
        article = _between(
            page,
            '<article class="md-content__inner md-typeset">',
            "</article>",
        )
        h1 = _H1.search(article)
        if h1 is None:
            raise ValueError(f"{chapter.url}: the article has no <h1 id=...>")
        chapter.title_html = _DROP[0].sub("", h1.group(2)).strip()
        chapter.title = plain_text(chapter.title_html)
        chapter.body = rewrite(chapter, article)
    description = re.search(
        r'<meta name="description" content="([^"]*)"', home
    )
    logo = re.search(
        r'class="md-header__button md-logo"[^>]*>\s*<img src="([^"]*)"', home
    )
    if logo:
        logo = urlsplit(
            urljoin("http://site/" + prefix, html.unescape(logo.group(1)))
        )
        logo = (
            logo.path.lstrip("/")
            if (site / logo.path.lstrip("/")).is_file()
            else None
        )
    return Source(
        lang=lang,
        chapters=book,
        html_tag=re
        .search(r"<html [^>]*>", home)
        .group(0)
        .replace(' class="no-js"', ""),
        body_tag=re.search(r"<body [^>]*>", home).group(0),
        stylesheets=_stylesheets(home, base_path, prefix),
        description=description.group(1) if description else "",
        site_url=site_url,
        base_path=base_path,
        logo=logo,
    )


_STYLESHEET = re.compile(
    r'<link (?=[^>]*rel="stylesheet")[^>]*href="([^"]*)"[^>]*>'
)


def _stylesheets(page: str, base_path: str, page_url: str) -> str:
    """The stylesheet links of a built page, as addresses on the served site."""
    links = []
    for m in _STYLESHEET.finditer(page):
        path = urlsplit(
            urljoin("http://site/" + page_url, html.unescape(m.group(1)))
        )
        href = html.escape(base_path + path.path.lstrip("/"))
        links.append(f'<link rel="stylesheet" href="{href}">')
    return "\n".join(links)


def render(source: Source) -> str:
    """The print page: title page, table of contents (with the chapters' pages once
    known) and the chapters."""
    labels = LABELS[source.lang]
    esc = html.escape
    prefix = LANG_PREFIX[source.lang]
    address = (
        ""
        if _is_local(source.site_url)
        else f'<p class="bn-cover__url">{esc(urljoin(source.site_url, prefix))}</p>'
    )
    cover = (
        '<section class="bn-cover">'
        + (
            f'<img class="bn-cover__logo" alt="" src="{esc(source.base_path + source.logo)}">'
            if source.logo
            else ""
        )
        + '<p class="bn-cover__title">bnnotes</p>'
        f'<p class="bn-cover__subtitle">{source.description}</p>'
        f'<p class="bn-cover__edition">{esc(labels["edition"].format(date=_edition_date()))}</p>'
        f"{address}</section>"
    )
    toc = [f'<nav class="bn-toc"><h1>{esc(labels["contents"])}</h1><ol>']
    section = None
    for chapter in source.chapters:
        if chapter.section != section:
            if section is not None:
                toc.append("</ol></li>")
            section = chapter.section
            if section is not None:
                toc.append(
                    f'<li class="bn-toc__section"><span>{esc(section)}</span><ol>'
                )
        number = "" if chapter.page is None else str(chapter.page)
        toc.append(
            f'<li><a href="#{chapter.anchor}"><span class="bn-toc__title">'
            f'{chapter.title_html}</span><span class="bn-toc__dots"></span>'
            f'<span class="bn-toc__page">{number}</span></a></li>'
        )
    if section is not None:
        toc.append("</ol></li>")
    toc.append("</ol></nav>")
    sections = "\n".join(
        f'<section class="bn-chapter" id="{c.anchor}">{c.body}</section>'
        for c in source.chapters
    )
    return (
        f'<!doctype html>\n{source.html_tag}\n<head>\n<meta charset="utf-8">\n'
        f"<title>bnnotes</title>\n{source.stylesheets}\n"
        f"<style>\n{BOOK_CSS.read_text('utf-8')}</style>\n</head>\n"
        f'{source.body_tag}\n<div class="md-typeset bn-book">\n{cover}\n'
        f"{''.join(toc)}\n{sections}\n</div>\n</body>\n</html>\n"
    )


# --- Printing ------------------------------------------------------------------------


def destinations(pdf: Path) -> dict[str, int]:
    """Named destination -> page (1-based), as ``pdfinfo -dests`` lists them."""
    out = subprocess.run(
        ["pdfinfo", "-dests", str(pdf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    dests = {}
    for line in out.splitlines():
        m = re.match(r'\s*(\d+)\s+\[.*\]\s+"(.*)"\s*$', line)
        if m:
            dests[m.group(2)] = int(m.group(1))
    return dests


def page_count(pdf: Path) -> int:
    out = subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


class Printer:
    """Chromium (Debian's, through Playwright) printing print pages served with the site."""

    def __init__(self, origin: str, browser=None):
        #: e.g. http://127.0.0.1:PORT: the only origin the pages may load from
        self.origin = origin
        #: a running Playwright Chromium to print with (the caller's, left open), or
        #: None to launch one for the time of the print
        self.browser, self._own = browser, browser is None
        self.documents: dict[str, str] = {}  # URL -> HTML of a print page
        self.failures: list[str] = []

    def __enter__(self) -> Printer:
        if self._own:
            from playwright.sync_api import sync_playwright

            if not CHROMIUM.is_file():
                raise SystemExit(
                    f"{CHROMIUM} not found: printing needs Debian's Chromium "
                    "(bash tools/system-deps.sh test)."
                )
            self._playwright = sync_playwright().start()
            self.browser = self._playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=CHROMIUM_ARGS,
                headless=True,
            )
        self.context = self.browser.new_context(service_workers="block")
        self.context.route("**/*", self._route)
        self.context.on(
            "requestfailed",
            lambda r: self.failures.append(f"{r.url} ({r.failure})"),
        )
        self.context.on(
            "response",
            lambda r: (
                r.status >= 400
                and self.failures.append(f"HTTP {r.status}: {r.url}")
            ),
        )
        return self

    def __exit__(self, *exc) -> None:
        self.context.close()
        if self._own:
            self.browser.close()
            self._playwright.stop()

    def _route(self, route):
        url = route.request.url
        if url in self.documents:
            route.fulfill(
                status=200,
                content_type="text/html; charset=utf-8",
                body=self.documents[url],
            )
        elif url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.failures.append(f"external request: {url}")
            route.abort("blockedbyclient")

    def print(self, url: str, document: str, path: Path) -> None:
        """Load ``document`` as if served at ``url`` and print it to ``path``."""
        self.documents[url] = document
        self.failures.clear()
        page = self.context.new_page()
        try:
            page.goto(url, wait_until="load")
            page.evaluate("document.fonts.ready.then(() => true)")
            if self.failures:
                raise RuntimeError(
                    f"{url}: requests failed while loading:\n  "
                    + "\n  ".join(self.failures)
                )
            page.emulate_media(media="print")
            page.pdf(path=str(path), **PDF_OPTIONS)
        finally:
            page.close()
            del self.documents[url]


def print_book(
    printer: Printer, site: Path, lang: str, out: Path, base_url: str
) -> Book:
    """Print one language's PDF to ``out`` (twice: the second with the TOC's page numbers)."""
    start = time.perf_counter()
    base_path = urlsplit(base_url).path
    source = read_site(site, lang, base_path)
    url = urljoin(base_url, BOOK_PATH.format(lang=lang))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        draft = Path(tmp) / "draft.pdf"
        printer.print(url, render(source), draft)
        dests = destinations(draft)
        missing = [c.anchor for c in source.chapters if c.anchor not in dests]
        if missing:
            raise RuntimeError(f"{lang}: no PDF destination for {missing}")
        for chapter in source.chapters:
            chapter.page = dests[chapter.anchor]
        draft_pages = page_count(draft)
    printer.print(url, render(source), out)
    final = destinations(out)
    moved = [
        c.anchor for c in source.chapters if final.get(c.anchor) != c.page
    ]
    if moved or page_count(out) != draft_pages:
        raise RuntimeError(
            f"{lang}: the page numbers in the table of contents moved: {moved}"
        )
    return Book(
        lang=lang,
        path=out,
        chapters=source.chapters,
        pages=draft_pages,
        seconds=time.perf_counter() - start,
    )


def build(
    site: Path,
    out_dir: Path,
    langs=tuple(LANG_PREFIX),
    base_url: str | None = None,
    browser=None,
) -> list[Book]:
    """Print ``out_dir/bnnotes-LANG.pdf`` for each language of the built ``site``.

    ``base_url``: where ``site`` is already served (its directory URL); by default it is
    served here, at the root of a local server, for the time of the print.
    ``browser``: a running Playwright Chromium to print with; by default one is launched.
    """
    with contextlib.ExitStack() as stack:
        if base_url is None:
            server = SiteServer()
            server.mount("/", site)
            stack.enter_context(server)
            base_url = server.url("/")
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
        printer = stack.enter_context(Printer(origin, browser))
        return [
            print_book(
                printer, site, lang, out_dir / f"bnnotes-{lang}.pdf", base_url
            )
            for lang in langs
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "site", nargs="?", default="site", type=Path, help="a built site"
    )
    parser.add_argument(
        "--lang",
        action="append",
        choices=list(LANG_PREFIX),
        help="one language (repeatable)",
    )
    parser.add_argument(
        "--out", type=Path, help="where the PDFs go (default SITE/pdf)"
    )
    args = parser.parse_args(argv)
    site = args.site.resolve()
    if not (site / "index.html").is_file():
        parser.error(
            f"{args.site} is not a built site (no index.html): run make build first"
        )
    out_dir = args.out or site / "pdf"
    for book in build(site, out_dir, tuple(args.lang or LANG_PREFIX)):
        print(
            f"{book.path}: {book.pages} pages, {len(book.chapters)} chapters, "
            f"{book.seconds:.1f} s"
        )
    missing = missing_linked_pdfs(site)
    if missing:
        print(
            "the home pages link PDFs that were not written: "
            + ", ".join(missing)
        )
        return 1
    return 0


def missing_linked_pdfs(site: Path) -> list[str]:
    """The PDFs that a home page of ``site`` links (hooks/pdf_link.py) and that are not there."""
    missing = []
    for lang, prefix in LANG_PREFIX.items():
        home = site / prefix / "index.html"
        name = f"pdf/bnnotes-{lang}.pdf"
        if (
            home.is_file()
            and name in home.read_text("utf-8")
            and not (site / name).is_file()
        ):
            missing.append(name)
    return missing


if __name__ == "__main__":
    raise SystemExit(main())
