"""Check the built HTML of the site (built once per session, see tests/conftest.py).

Needs `npm ci` (KaTeX in node_modules/) and node on PATH.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from helpers import load_module
from sitebuild import LANGS, PAGES, ROOT
from sitebuild import build as _build

CDN_RE = re.compile(r"cdn|googleapis|gstatic|unpkg|jsdelivr|cloudflare", re.I)
URL_RE = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


@pytest.fixture(scope="module")
def build(site_server):
    """The session's strict build of the site at / (see tests/conftest.py)."""
    return site_server.builds["/"]


@pytest.fixture(scope="module")
def site(build) -> Path:
    if build.rc != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{build.output}")
    return build.site


def _html(site: Path, url: str) -> str:
    return (site / url / "index.html").read_text("utf-8")


def _all_html(site: Path) -> dict[str, str]:
    return {
        p.relative_to(site).as_posix(): p.read_text("utf-8")
        for p in site.rglob("*.html")
    }


def test_strict_build_succeeds(build):
    """`mkdocs build --strict` exits 0 (links, anchors, nav, KaTeX and mkdocstrings all clean)."""
    assert build.rc == 0, build.output


def test_build_output_has_no_warnings(build):
    """The strict build logs no WARNING lines."""
    warnings = [
        line
        for line in build.output.splitlines()
        if line.startswith("WARNING")
    ]
    assert warnings == [], build.output


@pytest.mark.parametrize("lang", LANGS)
def test_language_home_has_html_lang(site, lang):
    """/, /ko/ and /zh/ exist and declare <html lang> en, ko and zh."""
    assert re.search(rf'<html lang="{lang}"', _html(site, LANGS[lang]))


def test_every_page_built_in_every_language(site):
    """Every page of docs/en is built under /, /ko/ and /zh/."""
    missing = [
        p + u
        for p in LANGS.values()
        for u in PAGES
        if not (site / p / u / "index.html").is_file()
    ]
    assert len(PAGES) >= 4 and missing == []


def test_no_cdn_urls(site):
    """No built HTML page references a CDN or Google Fonts URL."""
    bad = {
        (name, url)
        for name, text in _all_html(site).items()
        for url in URL_RE.findall(text)
        if CDN_RE.search(
            urlsplit(url if url.startswith("http") else "https:" + url).netloc
        )
    }
    assert bad == set()


def test_no_raw_tex_left(site):
    """Every arithmatex span/div was rendered by KaTeX: no raw \\( or \\[ wrapper remains."""
    raw = [
        n
        for n, t in _all_html(site).items()
        if re.search(r'arithmatex[^"]*"[^>]*>\s*\\[(\[]', t)
    ]
    assert raw == []


def test_pages_with_math_contain_katex(site):
    """Every page with an arithmatex element contains KaTeX output."""
    unrendered = [
        n
        for n, t in _all_html(site).items()
        if 'class="arithmatex' in t and 'class="katex"' not in t
    ]
    assert unrendered == []


@pytest.mark.parametrize("lang", LANGS)
def test_transform_page_has_rendered_math(site, lang):
    """The batch normalizing transform page renders KaTeX math in every language."""
    assert (
        _html(site, LANGS[lang] + "batch-normalizing-transform/").count(
            'class="katex"'
        )
        > 0
    )


def test_katex_stylesheet_linked(site):
    """Pages link the shipped assets/katex/katex.min.css."""
    assert 'href="../../assets/katex/katex.min.css"' in _html(
        site, "ko/training-and-inference/"
    )


PRELOAD_RE = re.compile(
    r'<link rel="preload" href="([^"]+)" as="font" type="font/woff2" crossorigin>'
)


def test_pages_with_math_preload_the_two_main_katex_fonts(site):
    """Every page with KaTeX output asks in <head> for KaTeX_Main-Regular and
    KaTeX_Math-Italic, at addresses that exist in the built site; pages without math ask
    for no font."""
    wrong = []
    for name, text in _all_html(site).items():
        head = text.split("</head>", 1)[0]
        hrefs = PRELOAD_RE.findall(head)
        if 'class="katex"' not in text:
            if hrefs:
                wrong.append((name, "preloads without math"))
            continue
        page_dir = (site / name).parent
        names = sorted(Path(h).name for h in hrefs)
        missing = [h for h in hrefs if not (page_dir / h).resolve().is_file()]
        if (
            names != ["KaTeX_Main-Regular.woff2", "KaTeX_Math-Italic.woff2"]
            or missing
        ):
            wrong.append((name, names, missing))
    assert wrong == []


SCRIPT_TAG_RE = re.compile(r"<script\b[^>]*>")


def test_no_page_script_stops_the_parser(site):
    """Every script of every page that loads a file has defer, and the lightbox's init script
    is a module script (also deferred): the parser never waits for a script, which held back
    the first paint (overrides/main.html, hooks/glightbox_late.py)."""
    blocking = {}
    for name, html in _all_html(site).items():
        tags = SCRIPT_TAG_RE.findall(html)
        bad = [
            t
            for t in tags
            if ("src=" in t and not re.search(r"\b(defer|async)\b", t))
            or ('id="init-glightbox"' in t and 'type="module"' not in t)
        ]
        if bad:
            blocking[name] = bad
    assert blocking == {}
    home = _html(site, "")
    assert 'id="init-glightbox" type="module"' in home
    assert re.search(r"<script defer[^>]*bundle\.[0-9a-f]+\.min\.js", home)


def test_katex_fonts_shipped(site):
    """Every font file that katex.min.css references exists in the built site."""
    css_dir = site / "assets" / "katex"
    refs = re.findall(
        r"url\(([^)]+)\)", (css_dir / "katex.min.css").read_text("utf-8")
    )
    assert (
        refs
        and [r for r in refs if not (css_dir / r.strip("\"'")).is_file()] == []
    )


def test_language_switcher_is_contextual(site):
    """The switcher on /ko/training-and-inference/ links to the same page in en and zh."""
    base = "http://127.0.0.1:8000/ko/training-and-inference/"
    links = re.findall(
        r'<a href="([^"]*)" hreflang="([^"]+)" class="md-select__link"',
        _html(site, "ko/training-and-inference/"),
    )
    targets = {
        lang: urlsplit(urljoin(base, href)).path for href, lang in links
    }
    assert targets == {
        "en": "/training-and-inference/",
        "ko": "/ko/training-and-inference/",
        "zh": "/zh/training-and-inference/",
    }


def test_no_hreflang_alternate_links(site):
    """<link rel="alternate" hreflang> is stripped (it makes Material fetch <page>/sitemap.xml)."""
    assert [
        n
        for n, t in _all_html(site).items()
        if re.search(r"<link[^>]*hreflang=", t)
    ] == []


@pytest.mark.parametrize("lang", LANGS)
def test_api_page_rendered(site, lang):
    """mkdocstrings renders bnnotes.batchnorm on the API page in every language."""
    page = _html(site, LANGS[lang] + "api/batchnorm/")
    for name in (
        "batch_norm_forward",
        "batch_norm_backward",
        "BatchNorm",
        "population_statistics",
        "fold_batch_norm",
    ):
        assert f'id="bnnotes.batchnorm.{name}"' in page, name


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    ("page", "layer"),
    [
        ("batchnorm", "BatchNorm"),
        ("layernorm", "LayerNorm"),
        ("groupnorm", "GroupNorm"),
        ("groupnorm", "InstanceNorm"),
    ],
)
def test_api_page_lists_the_layers_inherited_methods(site, lang, page, layer):
    """Each NumPy layer's API entry documents train, eval, state_dict, load_state_dict."""
    html = _html(site, LANGS[lang] + f"api/{page}/")
    for method in ("train", "eval", "state_dict", "load_state_dict"):
        assert f'id="bnnotes.{page}.{layer}.{method}"' in html, method


def test_api_page_zh_uses_chinese_section_titles(site):
    """/zh/api/batchnorm/ uses mkdocstrings' Chinese section titles, not
    the previous build's locale."""
    page = _html(site, "zh/api/batchnorm/")
    assert "参数" in page and "Parameters:" not in page


def test_search_index_has_segmented_chinese(site):
    """The Chinese search index holds entries whose text jieba split with U+200B."""
    docs = json.loads(
        (site / "zh" / "search" / "search_index.json").read_text("utf-8")
    )["docs"]
    assert any("\u200b" in d["text"] for d in docs)


def test_tex_error_fails_build_naming_page(tmp_path, monkeypatch):
    """A TeX error in a page fails the build, and the output names that page and formula."""
    # The copy shares the checkout's build cache (the same inputs give the same keys), so
    # only what the broken formula changes is computed afresh.
    site_cache = load_module(
        ROOT / "hooks" / "site_cache.py", "site_cache_dir"
    )
    monkeypatch.setenv(
        "BNNOTES_SITE_CACHE_DIR", str(site_cache.cache_dir(ROOT))
    )
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", project)
    shutil.copy(ROOT / "package.json", project)
    shutil.copy(ROOT / "glossary.yml", project)
    shutil.copytree(
        ROOT / "hooks",
        project / "hooks",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copytree(ROOT / "docs", project / "docs")
    for name in ("node_modules", "bnnotes", "tools", "overrides"):
        (project / name).symlink_to(ROOT / name, target_is_directory=True)
    page = project / "docs" / "ko" / "training-and-inference.md"
    page.write_text(
        page.read_text("utf-8") + "\n\nBroken: $\\frac{1}{$\n", "utf-8"
    )

    result = _build(project, tmp_path / "site")
    assert result.rc != 0
    assert (
        "ko/training-and-inference.md" in result.output
        and "\\frac{1}{" in result.output
    )
