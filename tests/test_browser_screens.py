"""The site on a phone (390 px) and a desktop (1280 px), in English, Korean and Chinese: the
checks that need their own page loads or interaction. What every page shows at each width
(code width, Korean line breaks, wide tables and formulas, API lists, dates, repository
links, code links, logo) is checked on each page's one load in tests/test_browser.py.

Each check runs in Debian's Chromium (Playwright, as tests/test_browser.py) against the site
that conftest.py builds and serves at /, one claim each:

* the split-word check finds words broken when keep-all is off (it is not vacuous);
* the edge shadow of a wide table is there in pixels, and absent where a table fits;
* with JavaScript off the page still fits a phone, its language list too;
* search from a language lists that language's pages only, with math as text, and ranks a
  code name's page first;
* the language switcher carries the current section over;
* long pages: a box far below is skipped while the page loads and shown when scrolled
  to, and skipping boxes off screen changes no element's layout;
* light and dark palettes, following the system setting, both legible, a toggle that is
  remembered, and a page load that does not restyle the page as a palette switch;
* the date shown is the last commit of the page source, also outside git; edit links lead
  to the page's source in its language when a repository is configured;
* API pages do not open by repeating their module's summary.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from helpers import load_module
from sitebuild import DOCS, LANGS, ROOT
from test_browser import (
    RAW_TEX,
    SHOW_ALL_CSS,
    SURVEY_JS,
    TWO_FRAMES_JS,
    Tab,
    resize,
)

WIDTHS = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 900},
}
NEXT_LANG = {"en": "ko", "ko": "zh", "zh": "en"}
SWITCHER_NAMES = {"en": "English", "ko": "한국어", "zh": "简体中文"}


def _require_build(site_server) -> None:
    result = site_server.builds["/"]
    if result.rc != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{result.output}")


@pytest.fixture(scope="session")
def chromium(browser):
    """The session's one Chromium (tests/conftest.py)."""
    return browser


class _Browser:
    """The browser, with extra options (e.g. color_scheme) for every new context."""

    def __init__(self, chromium, **options):
        self.chromium, self.options = chromium, options

    def new_context(self, **kwargs):
        return self.chromium.new_context(**kwargs, **self.options)


def _context(
    chromium, site_server, width: str, search: bool = False, **options
) -> Tab:
    """A browser context at one of WIDTHS that records errors and blocks off-site requests
    (test_browser.Tab); options go to the context. Only with search=True do its pages load
    their search (else the search worker is served empty: Tab.search); the tests of search
    ask for it, the others leave the browser the work of indexing the site on every load."""
    tab = Tab(_Browser(chromium, **options), site_server.origin, WIDTHS[width])
    tab.search = search
    return tab


def _contexts(chromium, site_server, **options) -> dict[str, Tab]:
    """One such context per width."""
    return {
        name: _context(chromium, site_server, name, **options)
        for name in WIDTHS
    }


both_widths = pytest.mark.parametrize("width", WIDTHS)
all_langs = pytest.mark.parametrize("lang", LANGS)


# 2. Korean line breaks -------------------------------------------------------------------


def test_split_word_check_finds_words_broken_without_keep_all(
    chromium, site_server
):
    """The split-word check is not vacuous: with keep-all off, Korean words split at 390 px."""
    _require_build(site_server)
    tab = _context(chromium, site_server, "phone")
    try:
        page = tab.start(site_server.url("/ko/batch-normalizing-transform/"))
        page.wait_for_load_state("load")
        page.add_style_tag(
            content="body, body * { word-break: normal !important; }"
        )
        assert len(page.evaluate(SURVEY_JS)["splitWords"]) > 0
    finally:
        tab.context.close()


# 3. Wide tables and equations on phones -----------------------------------------------------


# The edge shadow, seen in pixels: the content is made transparent, so a strip at an edge of
# the box shows only the box's background, which is compared with the middle of the box.
EDGE_JS = """([selector, index]) => {
  const box = [...document.querySelectorAll(selector)][index];
  box.classList.add("bn-probe");
  window.scrollBy(0, box.getBoundingClientRect().top - 150);  // below the sticky header
  const r = box.getBoundingClientRect();
  return {x: r.left, y: r.top, width: r.width, height: r.height};
}"""
PROBE_CSS = """.bn-probe * { color: transparent !important; border-color: transparent !important;
  background: transparent !important; box-shadow: none !important; }
.bn-probe { border-color: transparent !important; }"""


def _strip_brightness(page, box: dict, where: str) -> float:
    from PIL import Image

    x = {
        "left": box["x"] + 1,
        "middle": box["x"] + box["width"] / 2,
        "right": box["x"] + box["width"] - 4,
    }[where]
    png = page.screenshot(
        clip={
            "x": x,
            "y": box["y"] + 4,
            "width": 3,
            "height": min(box["height"] - 8, 120),
        },
        animations="disabled",
    )
    pixels = list(
        Image.open(io.BytesIO(png)).convert("L").get_flattened_data()
    )
    return sum(pixels) / len(pixels)


def _probe_first_table(tab, address: str):
    """The page at address with its first table's content made transparent, its box and
    a function telling which edges of the box are shaded."""
    page = tab.start(address)
    page.wait_for_load_state("load")
    page.add_style_tag(content=PROBE_CSS)
    box = page.evaluate(EDGE_JS, [".md-typeset__scrollwrap", 0])
    page.mouse.move(0, 0)  # no row hover

    def shaded() -> dict[str, bool]:
        middle = _strip_brightness(page, box, "middle")
        return {
            side: middle - _strip_brightness(page, box, side) > 3
            for side in ("left", "right")
        }

    return page, shaded


@both_widths
@all_langs
def test_edge_shadow_marks_where_a_wide_table_is_cut_off(
    chromium, site_server, width, lang
):
    """The comparison table, wider than the screen, has a shaded right edge; scrolled to its
    end, a shaded left edge and a plain right one."""
    _require_build(site_server)
    tab = _context(chromium, site_server, width)
    try:
        page, shaded = _probe_first_table(
            tab, site_server.url("/") + LANGS[lang] + "comparison/"
        )
        assert shaded() == {"left": False, "right": True}
        page.evaluate(
            "() => { const w = document.querySelector('.md-typeset__scrollwrap');"
            " w.scrollLeft = w.scrollWidth; }"
        )
        assert shaded() == {"left": True, "right": False}
    finally:
        tab.context.close()


@both_widths
@all_langs
def test_a_table_that_fits_has_no_edge_shadow(
    chromium, site_server, width, lang
):
    """A table that fits the text column (training and inference's first) shows no shadow."""
    _require_build(site_server)
    tab = _context(chromium, site_server, width)
    try:
        page, shaded = _probe_first_table(
            tab,
            site_server.url("/") + LANGS[lang] + "training-and-inference/",
        )
        assert not page.evaluate(
            "() => { const w = document.querySelector('.md-typeset__scrollwrap');"
            " return w.scrollWidth > w.clientWidth; }"
        )
        assert shaded() == {"left": False, "right": False}
    finally:
        tab.context.close()


#: The language list's box and the page's width, with the list closed and opened (hovered).
LANGUAGE_LIST_JS = """() => {
  const box = document.querySelector('.md-header__option .md-select__inner')
    .getBoundingClientRect();
  return {left: box.left, right: box.right,
          page: document.documentElement.scrollWidth, screen: innerWidth};
}"""


@all_langs
def test_without_javascript_the_page_fits_a_phone_and_the_language_list_too(
    chromium, site_server, lang
):
    """With JavaScript off (Material then hides the search and the palette toggle, and the
    language button is at the screen's edge) the page is no wider than a phone, and the
    language list, closed or opened, lies inside the screen."""
    _require_build(site_server)
    tab = _context(chromium, site_server, "phone", java_script_enabled=False)
    try:
        page = tab.start(site_server.url("/") + LANGS[lang])
        page.wait_for_load_state("load")
        closed = page.evaluate(LANGUAGE_LIST_JS)
        page.hover(".md-header__option .md-select")
        page.wait_for_timeout(600)  # Material's opening transition: 0.25 s
        opened = page.evaluate(LANGUAGE_LIST_JS)
        for state in (closed, opened):
            assert state["page"] == state["screen"] == WIDTHS["phone"]["width"]
            assert 0 <= state["left"] < state["right"] <= state["screen"], (
                state
            )
    finally:
        tab.context.close()


# 4. Search per language ------------------------------------------------------------------

RESULT_LINKS = "li.md-search-result__item > a.md-search-result__link"


def _search(page, query: str) -> list[dict]:
    """Type query into the search box (opened with its keyboard shortcut) and return the
    listed results: address and text."""
    page.wait_for_function(
        "() => document.querySelector('.md-search-result__meta')"
        "&& window.__searchMetaAtLoad !== undefined"
        "&& document.querySelector('.md-search-result__meta').textContent"
        " !== window.__searchMetaAtLoad",
        timeout=15_000,
    )
    page.keyboard.press("/")  # opens the search box at either width
    # The whole query at once (typed, each prefix would be searched and listed in
    # turn); Material searches on keyup.
    page.fill("input.md-search__input", query)
    page.keyboard.press("End")
    page.wait_for_function(
        f"() => document.querySelectorAll('{RESULT_LINKS}').length > 0",
        timeout=10_000,
    )
    return page.eval_on_selector_all(
        RESULT_LINKS,
        "as => as.map(a => ({href: a.href.split(/[?#]/)[0], text: a.innerText}))",
    )


@pytest.fixture(scope="module")
def momentum_results(chromium, site_server):
    """The results of searching "momentum" from each language's home: (width, lang) -> list."""
    _require_build(site_server)
    tabs = _contexts(chromium, site_server, search=True)
    try:
        return {
            (width, lang): _search(
                tab.start(site_server.url("/") + prefix), "momentum"
            )
            for width, tab in tabs.items()
            for lang, prefix in LANGS.items()
        }
    finally:
        for tab in tabs.values():
            tab.context.close()


@both_widths
@all_langs
def test_search_lists_only_pages_of_its_language(
    momentum_results, site_server, width, lang
):
    """Searching from /, /ko/ or /zh/ lists pages of that language only."""
    root = site_server.url("/")
    others = [root + p for other, p in LANGS.items() if p and other != lang]
    own = root + LANGS[lang]
    hrefs = [r["href"] for r in momentum_results[width, lang]]
    assert hrefs
    assert [
        h
        for h in hrefs
        if not h.startswith(own) or any(h.startswith(o) for o in others)
    ] == []


@both_widths
@all_langs
def test_search_snippets_show_math_as_text(momentum_results, width, lang):
    """Result snippets show formulas as readable text, never as TeX source."""
    text = " ".join(r["text"] for r in momentum_results[width, lang])
    assert "α" in text  # the momentum formula is among the snippets ...
    assert RAW_TEX.findall(text) == []  # ... as text


@both_widths
@all_langs
def test_code_name_search_lists_its_page_first(
    chromium, site_server, width, lang
):
    """Searching the code name running_var lists the training-and-inference page first."""
    _require_build(site_server)
    tab = _context(chromium, site_server, width, search=True)
    base = site_server.url("/") + LANGS[lang]
    try:
        results = _search(tab.start(base), "running_var")
    finally:
        tab.context.close()
    assert results[0]["href"] == base + "training-and-inference/"


def test_each_language_has_its_own_search_index(site_server):
    """The built site has one search index per language, each with that language's pages,
    addressed from the language's root, and no TeX."""
    _require_build(site_server)
    site = site_server.builds["/"].site
    indexes = {
        lang: json.loads(
            (site / prefix / "search" / "search_index.json").read_text("utf-8")
        )
        for lang, prefix in LANGS.items()
    }
    for lang, index in indexes.items():
        locations = [doc["location"] for doc in index["docs"]]
        assert [
            loc for loc in locations if loc.startswith(("ko/", "zh/"))
        ] == []
        assert "training-and-inference/" in locations, lang
        text = " ".join(doc["text"] for doc in index["docs"])
        assert RAW_TEX.findall(text) == [], lang
    titles = {
        lang: next(
            doc["title"]
            for doc in index["docs"]
            if doc["location"] == "training-and-inference/"
        )
        for lang, index in indexes.items()
    }
    # (jieba's word boundaries, U+200B, are in the Chinese index)
    titles = {lang: t.replace("\u200b", "") for lang, t in titles.items()}
    assert titles == {
        "en": "Training and inference",
        "ko": "학습과 추론",
        "zh": "训练与推理",
    }


# 5. The language switcher keeps the section ------------------------------------------------


def _switch(page, lang: str) -> None:
    """Choose lang in the header's language switcher, as a reader does, and wait for its
    page. (Locator.click would first scroll the link "into view", which moves the page under
    the sticky header and so changes the section being read.)"""
    page.hover(".md-header__option .md-select")
    link = page.get_by_role("link", name=SWITCHER_NAMES[lang], exact=True)
    link.wait_for(state="visible")
    box = link.bounding_box()
    with page.expect_navigation(wait_until="load"):
        page.mouse.click(
            box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        )


@both_widths
@all_langs
def test_language_switcher_keeps_the_section_in_the_address(
    chromium, site_server, width, lang
):
    """From a page opened at #backward-pass, the switcher opens the other language's page at
    #backward-pass."""
    _require_build(site_server)
    tab = _context(chromium, site_server, width)
    base = site_server.url("/")
    page_url = "batch-normalizing-transform/"
    try:
        page = tab.start(base + LANGS[lang] + page_url + "#backward-pass")
        page.wait_for_load_state("load")
        _switch(page, NEXT_LANG[lang])
        assert page.url == (
            base + LANGS[NEXT_LANG[lang]] + page_url + "#backward-pass"
        )
        assert tab.problems() == []
    finally:
        tab.context.close()


@both_widths
@all_langs
def test_language_switcher_keeps_the_section_scrolled_to(
    chromium, site_server, width, lang
):
    """After the reader scrolls to a section, the switcher opens that section of the other
    language's page: the one the table of contents marks as current."""
    _require_build(site_server)
    tab = _context(chromium, site_server, width)
    base = site_server.url("/")
    page_url = "training-and-inference/"
    try:
        page = tab.start(base + LANGS[lang] + page_url)
        page.wait_for_load_state("load")
        target = page.evaluate(
            "() => { const h = document.querySelectorAll('article h2[id]')[2];"
            " h.scrollIntoView(); window.scrollBy(0, 150); return h.id; }"
        )
        page.wait_for_function(
            "id => [...document.querySelectorAll("
            "'.md-nav--secondary .md-nav__link--active')]"
            ".some(a => a.getAttribute('href') === '#' + id"
            " && a.getClientRects().length > 0)",
            arg=target,
            timeout=5_000,
        )
        before = page.evaluate(
            "() => [scrollY, [...document.querySelectorAll("
            "'.md-nav--secondary .md-nav__link--active')]"
            ".map(a => a.getAttribute('href'))]"
        )
        _switch(page, NEXT_LANG[lang])
        assert urlsplit(page.url).fragment == target, before
        assert urlsplit(page.url).path.endswith(
            "/" + LANGS[NEXT_LANG[lang]] + page_url
        )
    finally:
        tab.context.close()


# 6. Light and dark ------------------------------------------------------------------------

# Every visible text of the page against its background: contrast ratios below WCAG AA
# (4.5:1, large text 3:1), as "selector: text (ratio)".
CONTRAST_JS = r"""() => {
  const parse = c => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3]));
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    return layers.reverse().reduce((bg, layer) => over(layer, bg), [255, 255, 255]);
  };
  const lum = c => {
    const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const low = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || seen.has(el) || !n.data.trim()) continue;
    seen.add(el);
    if (el.closest(".katex-mathml, script, style, [hidden], .md-search, .md-tooltip")) continue;
    if (el.getClientRects().length === 0) continue;
    const s = getComputedStyle(el);
    if (s.visibility !== "visible" || parseFloat(s.opacity) === 0) continue;
    const bg = background(el);
    const fg = parse(s.color);
    const r = ratio(over(fg, bg), bg);
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(s.fontWeight) >= 700);
    if (r < (large ? 3 : 4.5) - 0.01) {
      const where = `${el.tagName.toLowerCase()}.${el.className}`;
      low.push(`${where}: ${n.data.trim().slice(0, 30)} (${r.toFixed(2)})`);
    }
  }
  const figures = [...document.querySelectorAll(".md-typeset figure img")].map(img => {
    const c = parse(getComputedStyle(img).backgroundColor);
    return c !== null && c[3] === 1 && lum(c) > 0.8;
  });
  return {scheme: document.body.dataset.mdColorScheme, low, figures};
}"""
# Pages with prose, code, formulas, tables, figures, the API and the glossary.
PALETTE_PAGES = [
    "",
    "batch-normalizing-transform/",
    "comparison/",
    "landscape/",
    "api/batchnorm/",
    "glossary/",
]


@pytest.fixture(scope="module")
def palettes(chromium, site_server):
    """CONTRAST_JS on PALETTE_PAGES with a light and a dark system setting, each page loaded
    at desktop width, measured, then narrowed to phone width and measured again (narrowing
    measures as a load at that width does: tests/test_browser.py):
    (palette, width, lang, url) -> dict."""
    _require_build(site_server)
    results = {}
    for scheme in ("light", "dark"):
        tab = _context(chromium, site_server, "desktop", color_scheme=scheme)
        try:
            for lang, prefix in LANGS.items():
                for url in PALETTE_PAGES:
                    tab.page.set_viewport_size(WIDTHS["desktop"])
                    page = tab.start(site_server.url("/") + prefix + url)
                    page.wait_for_load_state("load")
                    for width in ("desktop", "phone"):
                        resize(page, WIDTHS[width])
                        results[scheme, width, lang, url] = page.evaluate(
                            CONTRAST_JS
                        )
        finally:
            tab.context.close()
    return results


@both_widths
@all_langs
def test_palette_follows_the_system_setting(palettes, width, lang):
    """A first visit shows the light palette to a light system setting and the dark one
    (Material's slate) to a dark one."""
    for scheme, expected in (("light", "default"), ("dark", "slate")):
        assert {
            r["scheme"]
            for (s, w, lg, _), r in palettes.items()
            if (s, w, lg) == (scheme, width, lang)
        } == {expected}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@both_widths
@all_langs
def test_text_is_legible_in_both_palettes(palettes, scheme, width, lang):
    """All visible text (prose, code, formulas, tables, navigation) has a WCAG AA contrast
    with its background, in the light and the dark palette."""
    low = {
        url: r["low"][:5]
        for (s, w, lg, url), r in palettes.items()
        if (s, w, lg) == (scheme, width, lang) and r["low"]
    }
    assert low == {}


@both_widths
@all_langs
def test_figures_have_a_light_ground_in_the_dark_palette(
    palettes, width, lang
):
    """In the dark palette every figure image sits on an opaque light background."""
    figures = palettes["dark", width, lang, "landscape/"]["figures"]
    assert figures and all(figures)


@both_widths
@all_langs
def test_palette_toggle_switches_and_is_remembered(
    chromium, site_server, width, lang
):
    """The header's toggle switches to the dark palette, and the next page keeps it."""
    _require_build(site_server)
    tab = _context(chromium, site_server, width, color_scheme="light")
    base = site_server.url("/") + LANGS[lang]
    scheme = "() => document.body.dataset.mdColorScheme"
    try:
        page = tab.start(base)
        page.wait_for_load_state("load")
        assert page.evaluate(scheme) == "default"
        page.click("form[data-md-component=palette] label:not([hidden])")
        assert page.evaluate(scheme) == "slate"
        page.goto(base + "comparison/", wait_until="load")
        assert page.evaluate(scheme) == "slate"
    finally:
        tab.context.close()


#: Counts each time <body> gets data-md-color-switching (installed before the page's scripts).
SWITCH_COUNTER_JS = """
window.__switching = 0;
new MutationObserver((records) => {
  for (const r of records) if (r.oldValue === null) window.__switching++;
}).observe(document, {
  subtree: true,
  attributeOldValue: true,
  attributeFilter: ["data-md-color-switching"],
});
"""


@all_langs
def test_loading_a_page_does_not_mark_a_palette_switch(
    chromium, site_server, lang
):
    """A page load never marks <body> data-md-color-switching (a restyle of every element
    of the page); a reader's switch with the toggle still does."""
    _require_build(site_server)
    tab = _context(chromium, site_server, "desktop", color_scheme="dark")
    tab.context.add_init_script(SWITCH_COUNTER_JS)
    try:
        page = tab.start(site_server.url("/") + LANGS[lang] + "gradient-ics/")
        page.wait_for_load_state("load")
        page.wait_for_timeout(
            200
        )  # Material sets the palette after load as well
        assert page.evaluate("window.__switching") == 0
        page.click("form[data-md-component=palette] label:not([hidden])")
        page.wait_for_function("window.__switching === 1")
    finally:
        tab.context.close()


# Long pages: boxes off screen are skipped, and laid out as they would be without that ------

#: Pages with every kind of box that the site's CSS lets the browser skip while off screen
#: (content-visibility: auto in site.css, from the article's 16th block on): display
#: formulas, paragraphs full of inline formulas and a table (bn-theory), code blocks
#: (batch-normalizing-transform), API entries, figure captions (gradient-ics).
SKIP_PAGES = [
    "bn-theory/",
    "batch-normalizing-transform/",
    "api/batchnorm/",
    "gradient-ics/",
]
# Whether the last display formula's content is rendered now (checkVisibility is false for
# what sits in a box whose content the browser skips).
LAST_FORMULA_SHOWN_JS = """() => [...document.querySelectorAll("article div.arithmatex")]
  .at(-1).firstElementChild.checkVisibility({contentVisibilityAuto: true})"""
# Every element of the article: its box once every skipped box is shown (the article is
# selected: what is selected is never skipped, as what is on screen), and its box with
# content-visibility turned off.
BOXES_JS = f"""async () => {{
  const frames = {TWO_FRAMES_JS};
  const boxes = () => [...document.querySelectorAll("article *")].map(e => {{
    const r = e.getBoundingClientRect();
    return [e.tagName, Math.round(r.left), Math.round(r.top + scrollY),
            Math.round(r.width), Math.round(r.height)];
  }});
  const article = document.querySelector("article");
  getSelection().selectAllChildren(article);
  await frames();
  const shown = boxes();
  getSelection().removeAllRanges();
  const all = document.createElement("style");
  all.textContent = {SHOW_ALL_CSS!r};
  document.head.append(all);
  await frames();
  const without = boxes();
  all.remove();
  const moved = shown.map((b, i) => [b, without[i]])
    .filter(([a, b]) => JSON.stringify(a) !== JSON.stringify(b));
  return {{elements: shown.length, moved: moved.slice(0, 5)}};
}}"""


@pytest.fixture(scope="module")
def skipped_boxes(chromium, site_server):
    """SKIP_PAGES in English, each loaded once at desktop width: whether the last display
    formula is rendered at load and after scrolling to it, then BOXES_JS at desktop width
    and, narrowed, at phone width: (url, what) -> result."""
    _require_build(site_server)
    tab = _context(chromium, site_server, "desktop")
    results = {}
    try:
        for url in SKIP_PAGES:
            tab.page.goto("about:blank")  # not laid out again at desktop width
            tab.page.set_viewport_size(WIDTHS["desktop"])
            page = tab.start(site_server.url("/") + url)
            page.wait_for_load_state("load")
            page.evaluate(TWO_FRAMES_JS)
            if url == "bn-theory/":
                results[url, "at load"] = page.evaluate(LAST_FORMULA_SHOWN_JS)
                page.locator(
                    "article div.arithmatex"
                ).last.scroll_into_view_if_needed()
                page.evaluate(TWO_FRAMES_JS)
                results[url, "scrolled to"] = page.evaluate(
                    LAST_FORMULA_SHOWN_JS
                )
            for width in ("desktop", "phone"):
                resize(page, WIDTHS[width])
                results[url, width] = page.evaluate(BOXES_JS)
    finally:
        tab.context.close()
    return results


def test_a_formula_far_below_is_rendered_only_when_scrolled_to(skipped_boxes):
    """On the longest page the last display formula is not rendered while the page loads
    (the browser skips it), and is once the reader scrolls to it."""
    assert (
        skipped_boxes["bn-theory/", "at load"],
        skipped_boxes["bn-theory/", "scrolled to"],
    ) == (False, True)


@both_widths
@pytest.mark.parametrize("url", SKIP_PAGES)
def test_skipping_boxes_off_screen_does_not_change_the_layout(
    skipped_boxes, url, width
):
    """Once shown, every element of the page has the box it has without content-visibility:
    the boxes that are skipped off screen hold their content (no margin or overflow reaches
    out of them)."""
    result = skipped_boxes[url, width]
    assert result["elements"] > 100 and result["moved"] == []


# 7. Dates, repository and edit links --------------------------------------------------------


@all_langs
def test_the_date_shown_is_the_last_commit_of_the_page_source(
    site_server, lang
):
    """The date is that of the page source's last commit in git, not of the build."""
    _require_build(site_server)
    source = DOCS / lang / "glossary.md"
    stamp = subprocess.run(
        ["git", "log", "-1", "--follow", "--format=%at", "--", str(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not stamp:
        pytest.skip(f"{source} has no commit (not a git checkout?)")
    committed = datetime.fromtimestamp(int(stamp), UTC).strftime("%H:%M:%S")
    html = (
        site_server.builds["/"].site / LANGS[lang] / "glossary" / "index.html"
    ).read_text("utf-8")
    title = re.search(
        r'git-revision-date-localized-plugin-date" title="([^"]+)"', html
    )
    assert title is not None and f"{committed} UTC" in title.group(1)


def _page_with_repository(repo_url: str | None, src_uri: str):
    """A page of mkdocs.yml's configuration, loaded with BNNOTES_REPO_URL=repo_url and
    passed through hooks/repo_links.py, as the build makes it."""

    from mkdocs.config import load_config
    from mkdocs.structure.files import File
    from mkdocs.structure.pages import Page

    env = dict(os.environ)
    try:
        os.environ.pop("BNNOTES_REPO_URL", None)
        if repo_url is not None:
            os.environ["BNNOTES_REPO_URL"] = repo_url
        config = load_config(str(ROOT / "mkdocs.yml"))
    finally:
        os.environ.clear()
        os.environ.update(env)
    hook = load_module(ROOT / "hooks" / "repo_links.py", "repo_links")
    config = hook.on_config(config)
    file = File(
        src_uri, config.docs_dir, config.site_dir, config.use_directory_urls
    )
    return config, Page(None, file, config)


@all_langs
def test_edit_link_leads_to_the_source_in_the_page_language(lang):
    """With BNNOTES_REPO_URL set, the header links to the repository and a page's edit link
    leads to its own language's source, docs/<lang>/PAGE.md."""
    repo = "https://example.org/team/bnnotes"
    config, page = _page_with_repository(
        repo, f"{lang}/training-and-inference.md"
    )
    assert config.repo_url == repo
    assert (
        page.edit_url
        == f"{repo}/edit/main/docs/{lang}/training-and-inference.md"
    )


def test_no_edit_link_without_a_repository_address():
    """With BNNOTES_REPO_URL unset, neither the repository nor an edit link is configured."""
    config, page = _page_with_repository(None, "ko/training-and-inference.md")
    assert (config.repo_url, page.edit_url) == (None, None)


def test_a_build_outside_git_shows_the_build_date(tmp_path, caplog):
    """Outside a git checkout the date plugin falls back to the build date without a
    warning (a warning would fail the strict build)."""
    import logging
    import time

    from mkdocs.config import load_config
    from mkdocs_git_revision_date_localized_plugin.util import Util

    config = load_config(str(ROOT / "mkdocs.yml"))
    plugin = config.plugins["git-revision-date-localized"]
    page = tmp_path / "page.md"
    page.write_text("# A page\n", "utf-8")
    with caplog.at_level(logging.INFO):
        util = Util(config=plugin.config, mkdocs_dir=str(ROOT))
        _, stamp = util.get_git_commit_timestamp(str(page))
    assert abs(stamp - time.time()) < 60
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# 8. Small things --------------------------------------------------------------------------


API_PAGES = sorted((DOCS / "en" / "api").glob("*.md"))


@pytest.mark.parametrize("page", API_PAGES, ids=lambda p: p.stem)
def test_api_page_opening_does_not_repeat_the_module_summary(page):
    """An API page's opening sentence says where the module is used; it does not restate
    the summary line of the module docstring that follows it."""
    import importlib

    intro = page.read_text("utf-8").split("\n\n")[1]
    summary = importlib.import_module(f"bnnotes.{page.stem}").__doc__.split(
        "\n\n"
    )[0]

    def words(text: str) -> set[str]:
        # A link names another page (its title may share the module's words).
        text = re.sub(r"\[[^\]]*\]\([^)]*\)", "", text)
        return {w for w in re.findall(r"[a-z]{4,}", text.lower())}

    shared = words(intro) & words(summary)
    assert len(shared) <= len(words(summary)) / 3, shared
