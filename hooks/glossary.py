"""Render ``glossary.yml`` as a table on every page that contains ``<!-- glossary-table -->``.

``glossary.yml`` (at the repository root) maps each concept to its one term in en, ko and zh
and lists the variants the pages must not use; ``tests/test_glossary.py`` enforces them.
The table's column titles are in the language of the page; its rows are the same in every
language; Chinese terms are marked ``<span lang="zh">`` (Korean ones are marked on every
page by ``hooks/korean_text.py``). A malformed entry (a missing language) fails the build.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from mkdocs.exceptions import PluginError

MARKER = "<!-- glossary-table -->"
LANGS = ("en", "ko", "zh")
HEADERS = {
    "en": ("English", "Korean", "Chinese", "Variants not used"),
    "ko": ("영어", "한국어", "중국어", "쓰지 않는 표현"),
    "zh": ("英语", "韩语", "中文", "不使用的译法"),
}

_path: Path | None = None
# The last glossary text read and its entries: the table is built once per language build,
# and `mkdocs serve` rebuilds often; parsing the YAML again only when it changed.
_parsed: dict[str, list[dict]] = {}


def load(path: Path) -> list[dict]:
    """The glossary's term entries, checked: each has a non-empty en, ko and zh term."""
    text = path.read_text("utf-8")
    if text not in _parsed:
        terms = _load_text(text, path)
        _parsed.clear()
        _parsed[text] = terms
    return _parsed[text]


def _load_text(text: str, path: Path) -> list[dict]:
    data = yaml.safe_load(text) or {}
    terms = data.get("terms")
    if not isinstance(terms, list) or not terms:
        raise PluginError(f"glossary: {path} has no `terms` list")
    for i, entry in enumerate(terms):
        missing = [
            lang
            for lang in LANGS
            if not str((entry or {}).get(lang) or "").strip()
        ]
        if missing:
            raise PluginError(
                f"glossary: entry {i + 1} of {path} lacks {', '.join(missing)}: {entry!r}"
            )
    return terms


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _in(lang: str, text: str) -> str:
    """text marked as written in lang: Chinese terms, so that they are set in a Chinese font
    on every page (English is the pages' default; Korean is marked on every page by
    hooks/korean_text.py)."""
    return f'<span lang="{lang}">{text}</span>' if lang == "zh" else text


def table(terms: list[dict], lang: str) -> str:
    """The glossary as a Markdown table, with column titles in ``lang``."""
    en, ko, zh, rejected = HEADERS.get(lang, HEADERS["en"])
    lines = [
        f"| {en} | {ko} | {zh} | {rejected} |",
        "| --- | --- | --- | --- |",
    ]
    for entry in terms:
        reject = entry.get("reject") or {}
        variants = "; ".join(
            f"{code}: {_in(code, ', '.join(reject[code]))}"
            for code in LANGS
            if reject.get(code)
        )
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    str(entry["en"]),
                    _in("ko", str(entry["ko"])),
                    _in("zh", str(entry["zh"])),
                    variants,
                )
            )
            + " |"
        )
    return "\n".join(lines)


def on_config(config):
    global _path
    _path = Path(config.config_file_path).absolute().parent / "glossary.yml"
    return config


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    assert _path is not None
    lang = page.file.src_uri.split("/", 1)[0]
    if lang not in LANGS:
        lang = str(config.theme.get("language") or "en")
    return markdown.replace(MARKER, table(load(_path), lang))


def on_serve(server, config, builder):
    if _path is not None:
        server.watch(str(_path))
    return server
