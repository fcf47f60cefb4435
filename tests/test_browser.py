"""Every page, in every language, in a real browser with no network: Playwright driving Debian's
Chromium against the built site on a local server: every page at /, and the home page, the
heaviest page, an API page and the glossary of each language under the sub-path /bnnotes/.

Per page: no console errors, no failed or external requests, every formula rendered, a
language switcher that leads to the same page in the other languages. With
BNNOTES_SCREENSHOTS=1 (``make screenshots``) also full-page screenshots at desktop and
mobile width in test-artifacts/screenshots/ (git-ignored): they are for reading the site,
check nothing, and take longer than the checks.
Search is checked with an English, a Korean (particle attached) and a Chinese query.

Chromium comes from apt (`apt-get install chromium fonts-noto-cjk`; `.ci/run` does it);
the tests never download a browser.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from pathlib import Path
from urllib.parse import urldefrag

import pytest
from sitebuild import LANGS, PAGES, ROOT, SUBPATH

PREFIXES = {"root": "/", "subpath": SUBPATH}
VIEWPORTS = {
    "desktop": {"width": 1280, "height": 900},
    "mobile": {"width": 390, "height": 844},
}
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
#: Whether test_page_in_browser writes its full-page screenshots (``make screenshots``).
TAKE_SCREENSHOTS = os.environ.get("BNNOTES_SCREENSHOTS") == "1"

# Text nodes of the article that are visible and not code or KaTeX's hidden MathML copy.
VISIBLE_TEXT_JS = """() => {
  const root = document.querySelector("article") || document.body;
  const skip = "pre, code, script, style, .katex-mathml, annotation";
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const out = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip) || el.getClientRects().length === 0) continue;
    out.push(n.textContent);
  }
  return out.join(" ");
}"""
MATH_JS = """() => {
  const blocks = [...document.querySelectorAll(".arithmatex")];
  return {
    total: blocks.length,
    display: document.querySelectorAll("div.arithmatex").length,
    unrendered: blocks.filter(b => !b.querySelector(".katex")).map(b => b.textContent.slice(0, 80)),
    errors: [...document.querySelectorAll(".katex-error")].map(e => e.textContent.slice(0, 80)),
  };
}"""
# Material shows "Initializing search" in the search box's result line until its worker has
# loaded the index and answered a first (empty) query; then the line changes.
REMEMBER_SEARCH_META_JS = """document.addEventListener("DOMContentLoaded", () => {
  const meta = document.querySelector(".md-search-result__meta");
  window.__searchMetaAtLoad = meta ? meta.textContent : "";
});"""
SEARCH_READY_JS = """() => {
  const meta = document.querySelector(".md-search-result__meta");
  return window.__searchMetaAtLoad !== undefined && meta !== null
    && meta.textContent !== window.__searchMetaAtLoad;
}"""
RAW_TEX = re.compile(
    r"\\[()\[\]]|\$\$|\\(?:frac|sum|hat|mathbb|mathrm|sqrt|partial|left|right|begin|end|cdot)\b"
)


class Tab:
    """One browser context (one viewport) that records errors and off-site requests."""

    def __init__(self, browser, origin: str, viewport: dict):
        self.origin = origin
        self.context = browser.new_context(
            viewport=viewport, service_workers="block"
        )
        self.errors: list[str] = []
        self.external: list[str] = []
        self.context.route("**/*", self._route)
        self.context.add_init_script(REMEMBER_SEARCH_META_JS)
        self.context.on(
            "console",
            lambda m: (
                m.type == "error" and self.errors.append(f"console: {m.text}")
            ),
        )
        self.context.on(
            "weberror", lambda e: self.errors.append(f"page error: {e.error}")
        )
        self.context.on("requestfailed", self._failed)
        self.context.on(
            "response",
            lambda r: (
                r.status >= 400
                and self.errors.append(f"HTTP {r.status}: {r.url}")
            ),
        )
        self.page = (
            self.context.new_page()
        )  # reused: a fresh page per URL costs more than the load

    def _failed(self, request):
        # ERR_ABORTED: cancelled, not failed (e.g. the favicon of the previous page, cut short
        # by the next navigation). A missing file is an HTTP 404, recorded by "response".
        if request.failure != "net::ERR_ABORTED":
            self.errors.append(f"failed: {request.url} ({request.failure})")

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.external.append(url)
            route.abort("blockedbyclient")

    def start(self, url: str):
        """The context's page, navigating to url (not waited for); the recorders start empty."""
        self.errors.clear()
        self.external.clear()
        self.page.goto(url, wait_until="commit")
        return self.page

    @staticmethod
    def settle(page):
        """Wait until the page has loaded and its search is ready: the search worker has then
        fetched the index and the lunr language files, the last requests a page makes."""
        page.wait_for_load_state("load")
        page.wait_for_function(SEARCH_READY_JS, timeout=15_000)
        return page

    def open(self, url: str):
        """The context's page at url, loaded and settled; the recorders start empty."""
        return self.settle(self.start(url))

    def problems(self) -> list[str]:
        # An aborted external request also shows up as a failed request; report it once.
        errors = [
            e for e in self.errors if not any(x in e for x in self.external)
        ]
        return errors + [f"external request: {u}" for u in self.external]


@pytest.fixture(scope="session")
def tabs(browser, site_server):
    for prefix, result in site_server.builds.items():
        if result.rc != 0:
            pytest.fail(
                f"mkdocs build --strict (served at {prefix}) failed:\n{result.output}"
            )
    tabs = {
        name: Tab(browser, site_server.origin, vp)
        for name, vp in VIEWPORTS.items()
    }
    yield tabs
    for tab in tabs.values():
        tab.context.close()


def _shot_path(lang: str, url: str, viewport: str) -> Path:
    name = (url.strip("/").replace("/", "-") or "index") + f"-{viewport}.png"
    return SCREENSHOTS / lang / name


#: The pages checked in Chromium under the sub-path too: the home page, the heaviest page, an
#: API page and the glossary of each language. The build under /bnnotes/ differs from the
#: one at / only in site_url; every link, script, stylesheet and image of every page there
#: is checked by tests/test_links.py, and these pages run its scripts (search included).
SUBPATH_PAGES = ("", "gradient-ics/", "api/batchnorm/", "glossary/")
PAGE_CASES = [
    (where, lang, url)
    for where in PREFIXES
    for lang in LANGS
    for url in PAGES
    if where == "root" or url in SUBPATH_PAGES
]


@pytest.mark.parametrize(
    ("where", "lang", "url"),
    PAGE_CASES,
    ids=[f"{w}-{lang}-{u or 'home'}" for w, lang, u in PAGE_CASES],
)
def test_page_in_browser(site_server, tabs, where, lang, url):
    """The page loads without console errors or external requests at desktop and mobile width,
    its formulas are rendered, and its switcher leads to the same page in each language.
    With BNNOTES_SCREENSHOTS=1, screenshots of the site at / go to
    test-artifacts/screenshots/."""
    base = site_server.url(PREFIXES[where])
    address = base + LANGS[lang] + url
    # Both widths load at once (each in its own context), so their idle waits overlap.
    pages = {name: tab.start(address) for name, tab in tabs.items()}
    for name, page in pages.items():
        Tab.settle(page)
        assert tabs[name].problems() == [], (
            f"{address} ({name}):\n" + "\n".join(tabs[name].problems())
        )
        assert page.evaluate("document.documentElement.lang") == lang

    page = pages["desktop"]
    math = page.evaluate(MATH_JS)
    assert math["unrendered"] == [] and math["errors"] == [], (
        f"{address}: {math}"
    )
    raw = RAW_TEX.findall(page.evaluate(VISIBLE_TEXT_JS))
    assert raw == [], f"{address}: raw TeX in the visible text: {raw[:10]}"

    switcher = page.eval_on_selector_all(
        "a.md-select__link[hreflang]",
        "links => links.map(a => [a.hreflang, a.href])",
    )
    assert {hl: urldefrag(href).url for hl, href in switcher} == {
        other: base + prefix + url for other, prefix in LANGS.items()
    }, f"{address}: language switcher {switcher}"

    if where == "root" and TAKE_SCREENSHOTS:
        for name, page in pages.items():
            page.screenshot(
                path=_shot_path(lang, url, name),
                full_page=True,
                animations="disabled",
            )


@pytest.mark.parametrize("where", PREFIXES)
def test_language_switcher_navigates(site_server, tabs, where):
    """Choosing a language in the header's switcher opens the same page in that language."""
    base = site_server.url(PREFIXES[where])
    tab = tabs["desktop"]
    page = tab.open(base + "ko/training-and-inference/")
    for lang, name in (
        ("zh", "简体中文"),
        ("en", "English"),
        ("ko", "한국어"),
    ):
        page.hover(".md-header__option .md-select")
        page.get_by_role("link", name=name, exact=True).click()
        page.wait_for_url(base + LANGS[lang] + "training-and-inference/")
        Tab.settle(page)  # leaving a page mid-load would abort its requests
        assert page.evaluate("document.documentElement.lang") == lang
    assert tab.problems() == []


# (language of the page searched from, query, a page that must be among the results).
# 정규화를 and 역전파를 (with the object particle 를) do not occur on the expected page,
# which has 정규화, 정규화와, 역전파에, 역전파의 ...: the search separator splits particles
# off words, in the index and in the query alike (see mkdocs.yml).
SEARCHES = [
    ("en", "running average", "training-and-inference/"),
    ("ko", "정규화를", "ko/batch-normalizing-transform/"),
    ("ko", "역전파를", "ko/batch-normalizing-transform/"),
    ("zh", "滑动平均", "zh/training-and-inference/"),
]
RESULT_LINKS = "li.md-search-result__item > a.md-search-result__link"


def test_korean_search_queries_are_not_on_their_pages():
    """The Korean queries test particle handling: their exact form is absent from the page."""
    for lang, query, expected in SEARCHES:
        if lang == "ko":
            md = ROOT / "docs" / (expected.rstrip("/") + ".md")
            assert query not in md.read_text("utf-8"), (query, md)


@pytest.mark.parametrize(
    "lang, query, expected", SEARCHES, ids=[q for _, q, _ in SEARCHES]
)
@pytest.mark.parametrize("where", PREFIXES)
def test_search(site_server, tabs, where, lang, query, expected):
    """Typing the query into the search box lists the expected page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    base = site_server.url(PREFIXES[where])
    tab = tabs["desktop"]
    page = tab.open(base + LANGS[lang])
    page.locator("input.md-search__input").click()
    page.keyboard.type(query)
    page.keyboard.press(
        "End"
    )  # CJK text is typed with insertText, which fires no keyup
    wanted = base + expected
    # A timeout is reported below, with the results that were listed.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(
            f"wanted => [...document.querySelectorAll('{RESULT_LINKS}')]"
            ".some(a => a.href.split(/[?#]/)[0] === wanted)",
            arg=wanted,
            timeout=10_000,
        )
    found = page.eval_on_selector_all(
        RESULT_LINKS, "as => as.map(a => a.href.split(/[?#]/)[0])"
    )
    assert wanted in found, (
        f"{query!r}: {wanted} not among the results {list(dict.fromkeys(found))}"
    )
    assert tab.problems() == []


def test_page_checks_detect_what_they_look_for(site_server, tabs):
    """The page checks are not vacuous: an external request and raw TeX are both caught."""
    tab = tabs["desktop"]
    page = tab.open(site_server.url("/"))
    page.evaluate("""() => {
        fetch("https://example.org/font.woff2").catch(() => {});
        const p = document.createElement("p");
        p.textContent = "raw \\\\(x^2\\\\) and \\\\frac{a}{b}";
        document.querySelector("article").append(p);
    }""")
    page.wait_for_timeout(300)
    assert tab.external == ["https://example.org/font.woff2"]
    assert RAW_TEX.findall(page.evaluate(VISIBLE_TEXT_JS)) == [
        "\\(",
        "\\)",
        "\\frac",
    ]


@pytest.mark.parametrize("where", PREFIXES)
def test_not_found_page(site_server, tabs, where):
    """A missing page gets the site's 404 page, styled and with working scripts, at either address
    (404.html links its assets through site_url, so this checks the sub-path build too)."""
    base = site_server.url(PREFIXES[where])
    tab = tabs["desktop"]
    page = tab.start(base + "ko/no-such-page/")
    Tab.settle(page)
    missing = f"HTTP 404: {base}ko/no-such-page/"
    assert [
        p
        for p in tab.problems()
        if p != missing and "404 (Not Found)" not in p
    ] == []
    assert page.locator("h1").first.inner_text().strip() == "404 - Not found"
    assert (
        page.eval_on_selector(
            ".md-header", "e => getComputedStyle(e).position"
        )
        == "sticky"
    )


# A page with a multi-panel figure (the three landscape probes side by side) and more
# figures after it; the word each language numbers its figures with.
FIGURE_PAGE = "landscape/"
FIGURE_WORD = {"en": "Figure", "ko": "그림", "zh": "图"}
FIGURES_JS = """() => [...document.querySelectorAll("article figure")].map(f => ({
  caption: (f.querySelector("figcaption") || {textContent: ""}).textContent.trim(),
  panels: [...f.querySelectorAll("img")].map(i => {
    const r = i.getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom,
            background: getComputedStyle(i).backgroundColor,
            link: i.closest("a.glightbox") ? i.closest("a.glightbox").href : null,
            src: i.src};
  }),
}))"""


def _figures(tabs, site_server, lang: str, viewport: str) -> list[dict]:
    tab = tabs[viewport]
    page = tab.open(site_server.url("/") + LANGS[lang] + FIGURE_PAGE)
    for img in page.locator("article figure img").all():
        img.scroll_into_view_if_needed()  # lazy or not, every panel is laid out
    figures = page.evaluate(FIGURES_JS)
    assert tab.problems() == []
    return figures


@pytest.mark.parametrize("lang", LANGS)
def test_figures_carry_numbered_captions_in_the_page_language(
    site_server, tabs, lang
):
    """Every figure of the page has a caption that starts with the language's word and
    its number, 1, 2, 3, ... ("Figure 2.", "그림 2.", "图 2")."""
    figures = _figures(tabs, site_server, lang, "desktop")
    assert len(figures) >= 4
    for number, figure in enumerate(figures, start=1):
        assert re.match(
            rf"{FIGURE_WORD[lang]} {number}\b", figure["caption"]
        ), figure["caption"][:40]


@pytest.mark.parametrize("lang", LANGS)
def test_panels_sit_side_by_side_on_a_wide_screen(site_server, tabs, lang):
    """At 1280 px the first two panels of the multi-panel figure share a row."""
    panels = _figures(tabs, site_server, lang, "desktop")[0]["panels"]
    first, second = panels[:2]
    assert abs(second["top"] - first["top"]) < 1
    assert second["left"] >= first["right"]


@pytest.mark.parametrize("lang", LANGS)
def test_panels_stack_on_a_phone(site_server, tabs, lang):
    """At 390 px the panels of the multi-panel figure stand one below the other, each as
    wide as the text."""
    panels = _figures(tabs, site_server, lang, "mobile")[0]["panels"]
    assert len(panels) == 3
    for above, below in itertools.pairwise(panels):
        assert below["top"] >= above["bottom"]
        assert abs(below["left"] - above["left"]) < 1


@pytest.mark.parametrize("lang", LANGS)
def test_figures_have_an_opaque_white_ground(site_server, tabs, lang):
    """Every figure image is drawn on opaque white, so it stays legible on a dark page."""
    for figure in _figures(tabs, site_server, lang, "desktop"):
        for panel in figure["panels"]:
            assert panel["background"] == "rgb(255, 255, 255)", panel["src"]


@pytest.mark.parametrize("lang", LANGS)
def test_a_tap_opens_a_figure_full_screen(site_server, tabs, lang):
    """At 390 px every figure image links to itself for the lightbox, and a tap on one
    opens it over the page, from the site's own files (no external request)."""
    figures = _figures(tabs, site_server, lang, "mobile")
    assert all(
        panel["link"] == panel["src"]
        for figure in figures
        for panel in figure["panels"]
    )
    tab = tabs["mobile"]
    page = tab.page
    image = page.locator("article figure img").nth(3)  # the training curves
    image.scroll_into_view_if_needed()
    image.click()
    slide = page.locator(".glightbox-container .gslide.current img")
    slide.wait_for(state="visible", timeout=5_000)
    assert slide.evaluate("i => i.src") == figures[1]["panels"][0]["src"]
    box = slide.bounding_box()
    assert box["width"] >= 0.9 * page.viewport_size["width"]
    page.keyboard.press("Escape")
    assert tab.problems() == []
