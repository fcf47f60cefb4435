"""Every page, in every language, in a real browser with no network: Playwright driving Debian's
Chromium against the built site on a local server: every page at /, and the home page, the
heaviest page, an API page and the glossary of each language under the sub-path /bnnotes/.

Each page is loaded once (the ``view`` fixture): at desktop width (1280 px) until its search
is ready, then narrowed to mobile width (390 px); the pages also checked under /bnnotes/ are
loaded afresh at 390 px at /, and test_narrowed_page_is_measured_as_one_loaded_at_mobile_width
shows that both give the same measurements. The checks of a page, one claim each: no console
errors, no failed or external requests, every formula rendered, no raw TeX, a language
switcher that leads to the same page in the other languages; and what a reader sees at each
width (SURVEY_JS, on the page laid out in full): code blocks that fit the text column at
1280 px and scroll in their own box, Korean that breaks between words only, wide tables and
formulas that scroll in their box with a cue, no page wider than the screen, API parameters
as lists, the date of the last change in the page's language, no repository links unless
configured, code links whose underline clears the underscores, no box skipped off screen on
the first screen, the site's logo and favicon.
With BNNOTES_SCREENSHOTS=1 (``make screenshots``) also full-page screenshots at desktop and
mobile width in test-artifacts/screenshots/ (git-ignored): they are for reading the site,
check nothing, and take longer than the checks.
Search is checked with an English, a Korean (particle attached) and a Chinese query.

Chromium's headless shell comes from apt (`apt-get install chromium-headless-shell
fonts-noto-cjk`; `make test` does it); the tests never download a browser.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from dataclasses import dataclass
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
#: Whether the view fixture writes full-page screenshots of the pages at / (``make screenshots``).
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
#: Material's search worker, which fetches the language's search index and lunr files and
#: builds the index: the same for every page of a language.
SEARCH_WORKER = re.compile(
    r"/assets/javascripts/workers/search\.[0-9a-f]+\.min\.js$"
)
RAW_TEX = re.compile(
    r"\\[()\[\]]|\$\$|\\(?:frac|sum|hat|mathbb|mathrm|sqrt|partial|left|right|begin|end|cdot)\b"
)


class Tab:
    """One browser context (one viewport) that records errors and off-site requests."""

    def __init__(self, browser, origin: str, viewport: dict):
        self.origin = origin
        #: False: the site's search worker is served as an empty script (it then fetches
        #: and indexes nothing; the page's search stays "Initializing")
        self.search = True
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
        if not self.search and SEARCH_WORKER.search(url):
            route.fulfill(content_type="text/javascript", body="")
        elif url.startswith(self.origin + "/"):
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


def _screenshot(page, lang: str, url: str, viewport: str) -> None:
    """A full-page screenshot of the page as it is now, in test-artifacts/screenshots/."""
    name = (url.strip("/").replace("/", "-") or "index") + f"-{viewport}.png"
    page.screenshot(
        path=SCREENSHOTS / lang / name, full_page=True, animations="disabled"
    )


#: The pages that are also loaded afresh at mobile width (at /), and checked in Chromium under the
#: sub-path: the home page, the heaviest page, an API page and the glossary of each language.
#: The build under /bnnotes/ differs from the one at / only in site_url; every link, script,
#: stylesheet and image of every page there is checked by tests/test_links.py, and these
#: pages run its scripts (search included).
SUBPATH_PAGES = ("", "gradient-ics/", "api/batchnorm/", "glossary/")
PAGE_CASES = [
    (where, lang, url)
    for where in PREFIXES
    for lang in LANGS
    for url in PAGES
    if where == "root" or url in SUBPATH_PAGES
]
#: The test ids of the page cases; tests/conftest.py hands out all tests of one page (the
#: ``view`` fixture's parameter) to one worker.
PAGE_IDS = [f"page-{w}-{lang}-{u or 'home'}" for w, lang, u in PAGE_CASES]

#: A stylesheet that shows every box the site's CSS lets the browser skip while off screen
#: (content-visibility: auto), as when the reader scrolls to it.
SHOW_ALL_CSS = "* { content-visibility: visible !important; }"
# Everything the width-dependent checks measure on a loaded page, in one evaluation.
SURVEY_JS = r"""() => {
  // The boxes that the site's CSS lets the browser skip while off screen
  // (content-visibility: auto), found once per page load; then the page is laid out in
  // full, every skipped box shown as when the reader scrolls to it (the layout is the
  // same: tests/test_browser_screens.py), and measured.
  if (!window.__skippable) {
    window.__skippable = [...document.querySelectorAll(
      "article :is(p, div.arithmatex, pre, .md-typeset__scrollwrap, figcaption)")]
      .filter(e => getComputedStyle(e).contentVisibility === "auto");
  }
  if (!document.getElementById("bn-show-all")) {
    const all = document.createElement("style");
    all.id = "bn-show-all";
    all.textContent = SHOW_ALL_CSS;
    document.head.append(all);
  }
  const visible = e => e.getClientRects().length > 0;
  const style = e => getComputedStyle(e);
  const scrolls = e => ["auto", "scroll"].includes(style(e).overflowX);
  const overflows = e => e.scrollWidth > e.clientWidth + 1;
  const cue = e => (style(e).backgroundImage.match(/radial-gradient/g) || []).length >= 2;

  // Hangul words (two or more syllables) whose characters lie on more than one line.
  const splitWords = [];
  const range = document.createRange();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest("pre, code, .katex, script, style, .md-search")) continue;
    for (const m of n.data.matchAll(/[\uac00-\ud7a3]{2,}/g)) {
      range.setStart(n, m.index);
      range.setEnd(n, m.index + m[0].length);
      const rects = [...range.getClientRects()].filter(r => r.width > 0);
      if (rects.some(r => Math.abs(r.top - rects[0].top) > r.height / 2)) {
        splitWords.push(m[0]);
      }
    }
  }

  const tables = [...document.querySelectorAll(".md-typeset__scrollwrap")].map(w => {
    const first = w.querySelector("tr > :first-child");
    const out = {overflows: overflows(w), scrolls: scrolls(w), cue: cue(w),
                 firstInView: null};
    if (first && out.overflows) {
      w.scrollLeft = w.scrollWidth;
      const dx = first.getBoundingClientRect().left - w.getBoundingClientRect().left;
      out.firstInView = dx >= -1;
      w.scrollLeft = 0;
    }
    return out;
  });
  const equations = [...document.querySelectorAll("div.arithmatex")].filter(visible).map(
    e => ({overflows: overflows(e), scrolls: scrolls(e), cue: cue(e)}));

  const codeBlocks = [...document.querySelectorAll("article pre > code")].filter(visible);
  const date = document.querySelector(".git-revision-date-localized-plugin-date");
  const paragraph = document.querySelector("article p") || document.body;
  const logo = document.querySelector(".md-header .md-logo img");
  return {
    lang: document.documentElement.lang,
    docWidth: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    codeBlocks: codeBlocks.length,
    wideCode: codeBlocks.filter(overflows).map(c => ({
      width: c.scrollWidth, box: c.clientWidth,
      line: c.textContent.split("\n").reduce((a, b) => b.length > a.length ? b : a, "")})),
    codeScrolls: codeBlocks.every(scrolls),
    splitWords,
    breaking: [style(paragraph).wordBreak, style(paragraph).overflowWrap],
    tables,
    equations,
    // A docstring section (Parameters:, Returns:, Raises:) rendered as a table or a list;
    // tables that a docstring writes itself are content, not a section.
    apiTables: document.querySelectorAll(
      ".doc-contents p:has(> .doc-section-title) + table").length,
    apiLists: document.querySelectorAll(
      ".doc-contents p:has(> .doc-section-title) + ul").length,
    date: date && visible(date) ? date.textContent.trim() : null,
    repoLink: document.querySelectorAll(".md-source").length,
    editLink: document.querySelectorAll("a[rel=edit], .md-content__button").length,
    codeLinks: [...document.querySelectorAll(".md-typeset a > code:only-child")].map(c => [
      c.textContent, style(c.parentElement).textUnderlinePosition]),
    skippable: window.__skippable.length,
    // skippable boxes that start within the first screen (the page scrolled to the top)
    skippedOnFirstScreen: window.__skippable
      .filter(e => e.getBoundingClientRect().top + scrollY < innerHeight)
      .map(e => `${e.tagName.toLowerCase()}: ${e.textContent.trim().slice(0, 40)}`),
    favicon: document.querySelector("link[rel=icon]")?.getAttribute("href"),
    logo: logo ? {src: logo.getAttribute("src"), width: logo.naturalWidth} : null,
  };
}""".replace("SHOW_ALL_CSS", repr(SHOW_ALL_CSS))
# Resolves after two frames: the layout and the page's resize handlers have run.
TWO_FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def resize(page, viewport: dict) -> None:
    """Give the page another viewport and wait until it has been laid out again."""
    page.set_viewport_size(viewport)
    page.evaluate(TWO_FRAMES_JS)


@dataclass
class PageView:
    """What the checks of one page read: the page loaded (and settled) at desktop width,
    then narrowed to mobile width, and measured at each width (keys of VIEWPORTS)."""

    lang: str
    url: str
    address: str
    #: console errors, failed and external requests, by width
    problems: dict[str, list[str]]
    #: SURVEY_JS, by width
    survey: dict[str, dict]
    #: MATH_JS, the visible text and the language switcher's links, at desktop width
    math: dict
    text: str
    switcher: list[list[str]]
    #: SUBPATH_PAGES at / only: SURVEY_JS of the page loaded afresh at mobile width
    loaded_at_mobile: dict | None


@pytest.fixture(scope="module", params=PAGE_CASES, ids=PAGE_IDS)
def view(request, site_server, tabs) -> PageView:
    """One page of one language (every page at /, SUBPATH_PAGES at /bnnotes/ too), loaded
    once at desktop width, then narrowed to mobile width; the pages of SUBPATH_PAGES are
    waited for until their search is ready, and at / loaded at mobile width as well. On the
    other pages the search worker is served empty (Tab.search): it is the same worker, index
    and language files for every page of a language, checked on that language's
    SUBPATH_PAGES at both prefixes and by test_search. With BNNOTES_SCREENSHOTS=1 the pages
    at / are saved as full-page screenshots at both widths."""
    where, lang, url = request.param
    address = site_server.url(PREFIXES[where]) + LANGS[lang] + url
    desktop, mobile = tabs["desktop"], tabs["mobile"]
    search = url in SUBPATH_PAGES
    desktop.search = search
    try:
        return _measure(
            desktop,
            mobile if search and where == "root" else None,
            where,
            lang,
            url,
            address,
        )
    finally:  # the other tests of the desktop tab expect its width and its search; the
        # page is left first, so that it is not laid out again at desktop width for nothing
        desktop.page.goto("about:blank")
        desktop.page.set_viewport_size(VIEWPORTS["desktop"])
        desktop.search = True


def _measure(
    desktop: Tab, mobile: Tab | None, where, lang, url, address
) -> PageView:
    """The view fixture's measurements; mobile: the tab that loads the page at mobile
    width too, or None. The page's search is awaited where the desktop tab serves it."""
    page = desktop.start(address)
    fresh = mobile.start(address) if mobile else None
    if desktop.search:
        Tab.settle(page)
    else:
        page.wait_for_load_state("load")
    problems = {"desktop": list(desktop.problems())}
    survey = {"desktop": page.evaluate(SURVEY_JS)}
    shoot = where == "root" and TAKE_SCREENSHOTS
    if shoot:
        _screenshot(page, lang, url, "desktop")
    result = PageView(
        lang=lang,
        url=url,
        address=address,
        problems=problems,
        survey=survey,
        math=page.evaluate(MATH_JS),
        text=page.evaluate(VISIBLE_TEXT_JS),
        switcher=page.eval_on_selector_all(
            "a.md-select__link[hreflang]",
            "links => links.map(a => [a.hreflang, a.href])",
        ),
        loaded_at_mobile=None,
    )
    resize(page, VIEWPORTS["mobile"])
    survey["mobile"] = page.evaluate(SURVEY_JS)
    problems["mobile"] = [
        p for p in desktop.problems() if p not in problems["desktop"]
    ]
    if shoot:
        _screenshot(page, lang, url, "mobile")
    if fresh is not None:
        Tab.settle(fresh)
        problems["mobile, loaded"] = list(mobile.problems())
        result.loaded_at_mobile = fresh.evaluate(SURVEY_JS)
    return result


def test_page_loads_without_errors_or_external_requests(view):
    """No console error, failed request or off-site request while the page loads and its
    search gets ready, nor when it is narrowed to mobile width (or loaded at that width)."""
    assert {w: p for w, p in view.problems.items() if p} == {}, view.address


def test_page_declares_its_language(view):
    """<html lang> is the page's language at both widths."""
    assert {s["lang"] for s in view.survey.values()} == {view.lang}


def test_every_formula_is_rendered(view):
    """Every formula of the page is rendered by KaTeX, without a KaTeX error."""
    assert (view.math["unrendered"], view.math["errors"]) == ([], [])


def test_no_raw_tex_in_the_visible_text(view):
    """The visible text (not code, not KaTeX's hidden MathML) holds no TeX source."""
    assert RAW_TEX.findall(view.text)[:10] == []


def test_language_switcher_leads_to_the_same_page_in_each_language(view):
    """The switcher's links lead to this page in every language, under the same prefix."""
    base = view.address.removesuffix(LANGS[view.lang] + view.url)
    assert {hl: urldefrag(href).url for hl, href in view.switcher} == {
        other: base + prefix + view.url for other, prefix in LANGS.items()
    }


def test_narrowed_page_is_measured_as_one_loaded_at_mobile_width(view):
    """Narrowing a loaded page to 390 px gives the measurements of a page loaded at 390 px
    (what the checks at mobile width rely on), on the pages loaded both ways."""
    if view.loaded_at_mobile is None:
        pytest.skip("loaded at mobile width: SUBPATH_PAGES at / only")
    assert view.survey["mobile"] == view.loaded_at_mobile


# The screens: code width, Korean line breaks, wide tables and formulas, API lists, dates,
# links, logo (tests/test_browser_screens.py has the checks that need their own page loads).


def test_code_blocks_fit_the_text_column_on_a_desktop(view):
    """At 1280 px no code block is wider than its box (1 px allowed)."""
    assert view.survey["desktop"]["wideCode"] == []


def test_code_blocks_scroll_inside_their_own_box(view):
    """Every code block scrolls sideways in its box rather than widening the page."""
    assert [w for w, s in view.survey.items() if not s["codeScrolls"]] == []


def test_korean_words_are_not_split_across_lines(view):
    """No Hangul word is broken over two lines: not in the text, sidebars or tables of the
    Korean pages, nor in the Korean terms of the English and Chinese glossary."""
    split = {w: s["splitWords"][:5] for w, s in view.survey.items()}
    assert split == {w: [] for w in split}


def test_keep_all_line_breaking_applies_to_korean_only(view):
    """Korean text breaks at spaces only (keep-all, long tokens anywhere); en and zh as
    Material does (between words, inside a word only if it must)."""
    expected = (
        ["keep-all", "anywhere"]
        if view.lang == "ko"
        else ["normal", "break-word"]
    )
    assert {w: s["breaking"] for w, s in view.survey.items()} == {
        w: expected for w in view.survey
    }


def test_no_page_is_wider_than_the_screen(view):
    """The document never scrolls sideways: it is exactly as wide as the viewport."""
    assert [
        (w, s["docWidth"])
        for w, s in view.survey.items()
        if s["docWidth"] > s["viewport"]
    ] == []


#: A page with a table wider than a phone, and one with a formula wider than a phone:
#: the checks of wide tables and formulas are not vacuous.
WIDE_TABLE_PAGE = "comparison/"
WIDE_FORMULA_PAGE = "bn-theory/"


def test_wide_tables_scroll_in_their_box_with_a_cue_and_a_pinned_first_column(
    view,
):
    """A table wider than the text scrolls in its own box, which has edge shadows, and its
    first column stays in view when scrolled to the end (the comparison table is wider
    than a phone)."""
    bad = [
        (w, t)
        for w, s in view.survey.items()
        for t in s["tables"]
        if t["overflows"]
        and not (t["scrolls"] and t["cue"] and t["firstInView"])
    ]
    assert bad == []
    if view.url == WIDE_TABLE_PAGE:
        assert any(t["overflows"] for t in view.survey["mobile"]["tables"])


def test_wide_equations_scroll_in_their_box_with_a_cue(view):
    """A display formula wider than the text scrolls in its own box, which has edge
    shadows (bn-theory has formulas wider than a phone)."""
    bad = [
        (w, e)
        for w, s in view.survey.items()
        for e in s["equations"]
        if e["overflows"] and not (e["scrolls"] and e["cue"])
    ]
    assert bad == []
    if view.url == WIDE_FORMULA_PAGE:
        assert any(e["overflows"] for e in view.survey["mobile"]["equations"])


def test_api_parameters_are_lists_not_tables(view):
    """API pages list parameters, returns and errors as lists, which reflow on a phone
    (api/batchnorm has all three)."""
    assert [w for w, s in view.survey.items() if s["apiTables"]] == []
    if view.url == "api/batchnorm/":
        assert view.survey["mobile"]["apiLists"] >= 3


#: How each language writes the date of a page's last change.
DATE_FORMS = {
    "en": r"[A-Z][a-z]+ \d{1,2}, \d{4}",
    "ko": r"\d{4}년 \d{1,2}월 \d{1,2}일",
    "zh": r"\d{4}年\d{1,2}月\d{1,2}日",
}


def test_page_shows_its_last_change_in_its_language(view):
    """The page shows the date of its last change, written the way its language writes
    dates (June 5, 2026 / 2026년 6월 5일 / 2026年6月5日)."""
    dates = {w: s["date"] for w, s in view.survey.items()}
    assert [
        d
        for d in dates.values()
        if not re.fullmatch(DATE_FORMS[view.lang], d or "")
    ] == [], dates


def test_no_repository_or_edit_link_without_a_repository_address(view):
    """With BNNOTES_REPO_URL unset (the tests' build), the page links to no repository and
    has no "edit this page" button."""
    if os.environ.get("BNNOTES_REPO_URL"):
        pytest.skip("BNNOTES_REPO_URL is set for this run")
    assert {(s["repoLink"], s["editLink"]) for s in view.survey.values()} == {
        (0, 0)
    }


def test_code_in_links_is_underlined_below_its_underscores(view):
    """A link whose text is code (batch_norm_forward) draws its underline under the
    descenders, so the underscores stay visible (api/batchnorm has such links)."""
    links = [link for s in view.survey.values() for link in s["codeLinks"]]
    assert [(text, pos) for text, pos in links if "under" not in pos] == []
    if view.url == "api/batchnorm/":
        assert any("_" in text for text, _ in links)


def test_no_box_on_the_first_screen_is_skipped(view):
    """The boxes that the browser may skip while off screen (site.css: content-visibility
    from the article's 16th block on) all start below the first screen, at both widths:
    the first screen is drawn in full at once and nothing on it moves when they are shown."""
    for width, survey in view.survey.items():
        assert survey["skippedOnFirstScreen"] == [], width


def test_page_has_the_site_logo_and_favicon(view):
    """The page shows the project's own SVG logo and favicon, not Material's."""
    assert {
        (
            Path(s["favicon"]).name,
            Path(s["logo"]["src"]).name,
            s["logo"]["width"] > 0,
        )
        for s in view.survey.values()
    } == {("favicon.svg", "logo.svg", True)}


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


def _load_figures(tabs, site_server, lang: str, viewport: str) -> list[dict]:
    """FIGURES_JS on FIGURE_PAGE, loaded in the tab of viewport (left open there)."""
    tab = tabs[viewport]
    page = tab.open(site_server.url("/") + LANGS[lang] + FIGURE_PAGE)
    for img in page.locator("article figure img").all():
        img.scroll_into_view_if_needed()  # lazy or not, every panel is laid out
    figures = page.evaluate(FIGURES_JS)
    assert tab.problems() == []
    return figures


#: The figure checks, by language; the checks of one language go to one worker together
#: (tests/conftest.py), which loads each language's figure page once per viewport.
figure_langs = pytest.mark.parametrize(
    "lang", LANGS, ids=[f"figures-{lang}" for lang in LANGS]
)


@pytest.fixture(scope="module")
def figures(tabs, site_server):
    """FIGURES_JS on FIGURE_PAGE, by language and viewport, each page loaded once."""
    loaded = {}

    def get(lang: str, viewport: str) -> list[dict]:
        if (lang, viewport) not in loaded:
            loaded[lang, viewport] = _load_figures(
                tabs, site_server, lang, viewport
            )
        return loaded[lang, viewport]

    return get


@figure_langs
def test_figures_carry_numbered_captions_in_the_page_language(figures, lang):
    """Every figure of the page has a caption that starts with the language's word and
    its number, 1, 2, 3, ... ("Figure 2.", "그림 2.", "图 2")."""
    assert len(figures(lang, "desktop")) >= 4
    for number, figure in enumerate(figures(lang, "desktop"), start=1):
        assert re.match(
            rf"{FIGURE_WORD[lang]} {number}\b", figure["caption"]
        ), figure["caption"][:40]


@figure_langs
def test_panels_sit_side_by_side_on_a_wide_screen(figures, lang):
    """At 1280 px the first two panels of the multi-panel figure share a row."""
    panels = figures(lang, "desktop")[0]["panels"]
    first, second = panels[:2]
    assert abs(second["top"] - first["top"]) < 1
    assert second["left"] >= first["right"]


@figure_langs
def test_panels_stack_on_a_phone(figures, lang):
    """At 390 px the panels of the multi-panel figure stand one below the other, each as
    wide as the text."""
    panels = figures(lang, "mobile")[0]["panels"]
    assert len(panels) == 3
    for above, below in itertools.pairwise(panels):
        assert below["top"] >= above["bottom"]
        assert abs(below["left"] - above["left"]) < 1


@figure_langs
def test_figures_have_an_opaque_white_ground(figures, lang):
    """Every figure image is drawn on opaque white, so it stays legible on a dark page."""
    for figure in figures(lang, "desktop"):
        for panel in figure["panels"]:
            assert panel["background"] == "rgb(255, 255, 255)", panel["src"]


@figure_langs
def test_a_tap_opens_a_figure_full_screen(site_server, tabs, lang):
    """At 390 px every figure image links to itself for the lightbox, and a tap on one
    opens it over the page, from the site's own files (no external request)."""
    figures = _load_figures(tabs, site_server, lang, "mobile")
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
