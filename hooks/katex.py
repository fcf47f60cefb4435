"""Render math to HTML at build time with KaTeX from ``node_modules/katex``.

``pymdownx.arithmatex`` (``generic: true``) turns ``$...$`` / ``$$...$$`` into
``<span class="arithmatex">\\(...\\)</span>`` / ``<div class="arithmatex">\\[...\\]</div>``,
in pages and in mkdocstrings docstrings alike. ``on_post_page`` replaces each of
them with KaTeX's HTML+MathML, so the site ships only CSS and woff2 fonts, no JS.

* One persistent ``node hooks/katex_render.cjs`` process serves every page of
  every language build (mkdocs-static-i18n rebuilds the site once per language);
  results are cached by ``(tex, display)``, in memory and across builds under
  ``.cache/site/katex/`` (``hooks/site_cache.py``; keyed by the KaTeX version too).
* A TeX error raises ``PluginError`` naming the page and the formula, so the
  build fails. KaTeX strict-mode complaints are logged as warnings, which fail
  ``mkdocs build --strict``.
* ``katex.min.css`` (font ``src`` lists trimmed to woff2) and ``fonts/*.woff2``
  are added to the build as ``assets/katex/...``; the stylesheet is appended to
  ``extra_css``, so pages need nothing.
"""

from __future__ import annotations

import atexit
import html
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.hooks.katex")

ASSET_DIR = "assets/katex"
CSS_URI = f"{ASSET_DIR}/katex.min.css"
RENDER_SCRIPT = Path(__file__).with_name("katex_render.cjs")
#: Preloaded on every page with math: upright text, digits and operators, and italic variables.
PRELOAD_FONTS = ("KaTeX_Main-Regular.woff2", "KaTeX_Math-Italic.woff2")

ARITHMATEX_RE = re.compile(
    r'<(?P<tag>span|div)(?P<attrs>\s[^>]*?\bclass="(?:[^"]*\s)?arithmatex(?:\s[^"]*)?"[^>]*)>'
    r"(?P<body>.*?)</(?P=tag)>",
    re.S,
)
# katex.min.css lists woff2, woff and ttf for each font; we ship woff2 only.
FONT_FALLBACK_RE = re.compile(
    r',url\(fonts/[^)]+\.(?:woff|ttf)\) format\("(?:woff|truetype)"\)'
)


class _Katex:
    """A node child process speaking the JSON-lines protocol of katex_render.cjs."""

    def __init__(self, node: str, katex_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [node, str(RENDER_SCRIPT), str(katex_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )

    def render(self, items: list[tuple[str, bool]]) -> list[dict]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps({"items": items}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError) as exc:
            raise PluginError(
                f"katex: the node renderer died ({exc})"
            ) from exc
        if not line:
            raise PluginError(
                f"katex: the node renderer exited (code {self.proc.poll()})"
            )
        reply = json.loads(line)
        if "fatal" in reply:
            raise PluginError(f"katex: renderer error: {reply['fatal']}")
        return reply["results"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


_renderer: _Katex | None = None
_cache: dict[tuple[str, bool], dict] = {}
_katex_dir: Path | None = None
_node: str | None = None
#: The trimmed katex.min.css: .cache/katex/katex-<version>.min.css of the project
#: (git-ignored), set by on_config.
_css_path: Path | None = None


def _shutdown() -> None:
    global _renderer
    if _renderer is not None:
        _renderer.close()
        _renderer = None


atexit.register(_shutdown)


def on_shutdown() -> None:
    _shutdown()


def on_config(config):
    global _katex_dir, _node, _css_path
    root = Path(config.config_file_path).absolute().parent
    katex_dir = root / "node_modules" / "katex"
    if not (katex_dir / "dist" / "katex.min.css").is_file():
        raise PluginError(
            f"katex: {katex_dir} not found; run `npm ci` in {root}"
        )
    wanted = json.loads((root / "package.json").read_text("utf-8"))[
        "dependencies"
    ]["katex"]
    found = json.loads((katex_dir / "package.json").read_text("utf-8"))[
        "version"
    ]
    if found != wanted:
        raise PluginError(
            f"katex: node_modules has katex {found}, package.json pins {wanted}; run `npm ci`"
        )
    node = shutil.which("node")
    if node is None:
        raise PluginError(
            "katex: `node` is not on PATH (Node.js 20+ is needed to render math)"
        )
    _katex_dir, _node = katex_dir, node
    _css_path = root / ".cache" / "katex" / f"katex-{found}.min.css"
    if CSS_URI not in config.extra_css:
        config.extra_css.append(CSS_URI)
    return config


def _trimmed_css() -> Path:
    """katex.min.css with woff2-only font sources, written once per KaTeX version to
    .cache/katex/ (a file, not a temporary folder: a build that is killed leaves nothing
    behind). Written to a temporary name and renamed, so builds running side by side never
    read a partial file."""
    assert _katex_dir is not None and _css_path is not None
    out = _css_path
    if not out.exists():
        css = (_katex_dir / "dist" / "katex.min.css").read_text("utf-8")
        css = FONT_FALLBACK_RE.sub("", css)
        if re.search(r"\.(?:woff|ttf)\)", css):
            raise PluginError(
                "katex: could not trim woff/ttf fallbacks from katex.min.css"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=out.parent, suffix=".tmp", delete=False
        ) as part:
            part.write(css)
        os.replace(part.name, out)
    return out


def on_files(files, config):
    assert _katex_dir is not None
    generated = [(CSS_URI, _trimmed_css())]
    for font in sorted((_katex_dir / "dist" / "fonts").glob("*.woff2")):
        generated.append((f"{ASSET_DIR}/fonts/{font.name}", font))
    for uri, src in generated:
        if files.get_file_from_path(uri) is None:
            # abs_src_path, never content=: mkdocs-static-i18n 1.3.1 crashes on in-memory files.
            files.append(File.generated(config, uri, abs_src_path=str(src)))
    return files


def _site_cache():
    """hooks/site_cache.py, the cache across builds (see hooks/build_cache.py)."""
    module = sys.modules.get("bnnotes_site_cache")
    if module is None:
        spec = importlib.util.spec_from_file_location(
            "bnnotes_site_cache", Path(__file__).with_name("site_cache.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["bnnotes_site_cache"] = module
        spec.loader.exec_module(module)
    return module


def _render_all(items: list[tuple[str, bool]]) -> None:
    """Fill the cache for every (tex, display) in items that is not cached yet: from the
    cache across builds (.cache/site/katex/), else from the node renderer."""
    global _renderer
    todo = list(dict.fromkeys(k for k in items if k not in _cache))
    if not todo:
        return
    site_cache = _site_cache()
    for key in todo:
        stored = site_cache.katex_get(*key)
        if stored is not site_cache.MISS:
            _cache[key] = stored
    todo = [k for k in todo if k not in _cache]
    if not todo:
        return
    if _renderer is None or _renderer.proc.poll() is not None:
        assert _node is not None and _katex_dir is not None
        _renderer = _Katex(_node, _katex_dir)
    try:
        results = _renderer.render(todo)
    except PluginError:
        _renderer.close()
        _renderer = None
        raise
    _cache.update(zip(todo, results, strict=True))
    for key, result in zip(todo, results, strict=True):
        site_cache.katex_put(*key, result)


def _tex_of(tag: str, body: str) -> tuple[str, bool]:
    tex = html.unescape(body).strip()
    if tag == "span" and tex.startswith("\\(") and tex.endswith("\\)"):
        return tex[2:-2].strip(), False
    if tex.startswith("\\[") and tex.endswith("\\]"):
        return tex[2:-2].strip(), True
    return tex, tag == "div"


def _toc_titles(items):
    for item in items:
        yield item.title
        yield from _toc_titles(item.children)


def on_page_content(html_, page, config, files):
    # The TOC sidebar shows heading text, not HTML: math there would stay raw TeX.
    for title in _toc_titles(page.toc):
        if "\\(" in title or "\\[" in title:
            log.warning(
                f"katex: on page '{page.file.src_uri}': math in heading {title!r} shows as raw TeX "
                'in the table of contents; add a plain label: ## ... { data-toc-label="..." }'
            )
    return html_


def on_post_page(output, page, config):
    matches = list(ARITHMATEX_RE.finditer(output))
    if not matches:
        return output
    keys = [_tex_of(m["tag"], m["body"]) for m in matches]
    _render_all(keys)

    src = page.file.src_uri
    for tex, display in dict.fromkeys(keys):
        result = _cache[(tex, display)]
        if "error" in result:
            raise PluginError(
                f"katex: TeX error on page '{src}': {result['error']}\n  formula: {tex}"
            )
        for warning in result.get("warnings", ()):
            log.warning(f"katex: on page '{src}': {warning}\n  formula: {tex}")

    rendered = iter(keys)

    def replace(m: re.Match) -> str:
        html_ = _cache[next(rendered)]["html"]
        return f"<{m['tag']}{m['attrs']}>{html_}</{m['tag']}>"

    return _with_font_preloads(ARITHMATEX_RE.sub(replace, output), page)


def _with_font_preloads(output: str, page) -> str:
    """Ask for the two fonts of almost every formula in ``<head>``, before the stylesheet
    that names them is parsed: KaTeX's fonts are ``font-display: block``, so until they
    arrive no formula is drawn, and the first paragraph, often the page's largest text,
    counts as painted only then."""
    links = "".join(
        f'<link rel="preload" href="{get_relative_url(f"{ASSET_DIR}/fonts/{name}", page.url)}"'
        ' as="font" type="font/woff2" crossorigin>'
        for name in PRELOAD_FONTS
    )
    return output.replace("</head>", links + "</head>", 1)
