"""The words of the site's figures, in every language of the site.

Every figure is drawn once per language (``docs/assets/figures/<lang>/NAME.svg``), and every
word on it -- title, axis labels, legend entries, annotations -- comes from one
[`FigureText`][bnnotes.figure_text.FigureText] table per figure set. A table refuses to be
built when an entry lacks a language or when the languages disagree on the ``{fields}``
an entry is formatted with, so a missing translation stops the figure run (and the tests,
which import every table) instead of leaving an English word on a Korean figure.

The Korean and Chinese entries use the terms of ``glossary.yml``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

__all__ = ["FONT_STACKS", "LANGUAGES", "FigureText", "check_language"]

LANGUAGES = ("en", "ko", "zh")
"""The languages of the site, in the order the figures are written."""

_FONTS = {
    "en": ("'DejaVu Sans'", "Verdana", "sans-serif"),
    "ko": (
        "'DejaVu Sans'",
        "'Noto Sans CJK KR'",
        "'Source Han Sans K'",
        "'Apple SD Gothic Neo'",
        "'Malgun Gothic'",
        "sans-serif",
    ),
    "zh": (
        "'DejaVu Sans'",
        "'Noto Sans CJK SC'",
        "'Source Han Sans SC'",
        "'PingFang SC'",
        "'Microsoft YaHei'",
        "sans-serif",
    ),
}
FONT_STACKS = {k: ", ".join(v) for k, v in _FONTS.items()}
"""The CSS font-family list the text of each language's figures is drawn with: DejaVu
Sans for Latin text (the font matplotlib measures it with), then a CJK font for Hangul
and Han characters (Noto Sans CJK, which matplotlib measures them with, then the system
fonts of macOS and Windows)."""


def check_language(lang) -> str:
    """``lang`` if it is one of [`LANGUAGES`][bnnotes.figure_text.LANGUAGES].

    Raises
    ------
    ValueError
        For any other value, naming the argument and the languages.

    Examples
    --------
    >>> from bnnotes.figure_text import check_language
    >>> check_language("ko")
    'ko'
    >>> check_language("fr")
    Traceback (most recent call last):
    ...
    ValueError: lang must be one of en, ko, zh, got 'fr'
    """
    if not isinstance(lang, str) or lang not in LANGUAGES:
        raise ValueError(
            f"lang must be one of {', '.join(LANGUAGES)}, got {lang!r}"
        )
    return lang


def _fields(template: str) -> set[str]:
    return {
        name
        for _, name, _, _ in string.Formatter().parse(template)
        if name is not None
    }


class FigureText:
    """One figure set's words: key -> {language -> text}.

    Parameters
    ----------
    name : str
        The figure set (for error messages), e.g. ``"landscape"``.
    table : mapping
        ``{key: {"en": ..., "ko": ..., "zh": ...}}``; a text may hold ``{fields}`` that
        [`__call__`][bnnotes.figure_text.FigureText.__call__] fills in.

    Raises
    ------
    ValueError
        When an entry does not give exactly the languages of
        [`LANGUAGES`][bnnotes.figure_text.LANGUAGES], a text is empty or not a string, or
        the languages of an entry use different ``{fields}``.

    Examples
    --------
    >>> from bnnotes.figure_text import FigureText
    >>> text = FigureText(
    ...     "demo",
    ...     {
    ...         "lr": {
    ...             "en": "lr {lr}",
    ...             "ko": "학습률 {lr}",
    ...             "zh": "学习率 {lr}",
    ...         }
    ...     },
    ... )
    >>> text("lr", "ko", lr=0.1)
    '학습률 0.1'
    >>> FigureText("demo", {"step": {"en": "step", "ko": "단계"}})
    Traceback (most recent call last):
    ...
    ValueError: figure text demo['step'] has no zh translation
    """

    def __init__(self, name: str, table: Mapping[str, Mapping[str, str]]):
        self.name = name
        entries = {}
        for key, entry in table.items():
            for lang in LANGUAGES:
                text = entry.get(lang)
                if text is None:
                    raise ValueError(
                        f"figure text {name}[{key!r}] has no {lang} translation"
                    )
                if not isinstance(text, str) or not text.strip():
                    raise ValueError(
                        f"figure text {name}[{key!r}][{lang!r}] must be a "
                        f"non-empty string, got {text!r}"
                    )
            extra = set(entry) - set(LANGUAGES)
            if extra:
                raise ValueError(
                    f"figure text {name}[{key!r}] has unknown languages "
                    f"{sorted(extra)}"
                )
            fields = {lang: _fields(entry[lang]) for lang in LANGUAGES}
            if len({frozenset(f) for f in fields.values()}) != 1:
                raise ValueError(
                    f"figure text {name}[{key!r}]: the languages use different "
                    f"fields {fields}"
                )
            entries[key] = dict(entry)
        self._entries = entries

    def __call__(self, key: str, lang: str, **fields) -> str:
        """The text of ``key`` in ``lang``, with ``fields`` filled in.

        Raises
        ------
        KeyError
            For a key the table does not have.
        ValueError
            For a language that is not one of the site's.
        """
        check_language(lang)
        if key not in self._entries:
            raise KeyError(f"figure text {self.name} has no entry {key!r}")
        return self._entries[key][lang].format(**fields)

    def entries(self) -> dict[str, dict[str, str]]:
        """A copy of the table: key -> {language -> text}."""
        return {key: dict(entry) for key, entry in self._entries.items()}
