"""Deterministic SVG output for the site's figures, in each language of the site.

Text is written as text (``svg.fonttype = "none"``), not as glyph outlines, and the
browser draws it with the fonts the SVG names. The choice, against embedding glyph paths:

- The Korean and Chinese figures need a CJK font. Embedded as paths, every distinct Hangul
  syllable or Han character costs one outline of a few kilobytes in every file, and the
  bytes would change with every release of the Noto CJK fonts. As text, a figure stays a
  few tens of kilobytes in every language, and its bytes depend only on the fonts'
  advance widths, which matplotlib uses for the layout.
- Text stays text: it is searchable and selectable when a figure is opened on its own,
  and a printed page keeps it as text.
- Any browser that can show a Korean or Chinese page has a font for it. The SVG names a
  list: DejaVu Sans first (the font matplotlib lays Latin text out with; Verdana, its
  nearest common relative, where it is missing), then Noto Sans CJK KR or SC (the font
  matplotlib lays CJK text out with), then the system CJK fonts of macOS and Windows, then
  ``sans-serif``. DejaVu Sans is wider than most sans-serif fonts, so a substitute font
  makes labels slightly shorter, never longer than the space the layout left for them.
  The site's own CSS sets no font (Material's ``font: false``, the system font stack), and
  an SVG shown in an ``<img>`` cannot use page fonts anyway, so the figure names its own.

The same results and the same pinned matplotlib give byte-identical files: a fixed hash
salt for element ids, no date in the metadata, and the layout measured with DejaVu Sans
(shipped with matplotlib) and Noto Sans CJK (``fonts-noto-cjk``; a Korean or Chinese
figure refuses to render without it rather than measure with another font).
"""

from __future__ import annotations

import io
import re
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import font_manager

from bnnotes.figure_text import FONT_STACKS, LANGUAGES, check_language

__all__ = [
    "COLORS",
    "LANGUAGES",
    "MARKED",
    "NORM_STYLE",
    "STYLE",
    "language",
    "new_figure",
    "plt",
    "subplots",
    "to_svg",
]

STYLE = {
    "svg.hashsalt": "bnnotes",
    "svg.fonttype": "none",
    "font.family": ["DejaVu Sans"],
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
}
"""The matplotlib settings of every figure: text kept as text, a fixed id salt, DejaVu Sans."""

CJK_FONTS = {"ko": "Noto Sans CJK KR", "zh": "Noto Sans CJK SC"}
"""The font matplotlib measures Korean and Chinese text with (Debian: fonts-noto-cjk)."""

COLORS = {"baseline": "#1f5fa8", "batchnorm": "#c2410c"}
"""Colors with enough contrast on white for both lines of a comparison."""

NORM_STYLE = {
    "baseline": {"color": COLORS["baseline"], "linestyle": "--"},
    "batchnorm": {"color": COLORS["batchnorm"], "linestyle": "-"},
}
"""Without BN dashed, with BN solid: the two stay apart in grayscale and for every eye."""

MARKED = {
    "baseline": {
        "marker": "o",
        "markevery": 0.08,
        "markersize": 4,
        "fillstyle": "none",
    },
    "batchnorm": {},
}
"""Where the line style already encodes something else (a learning rate, a direction),
the network without BN carries open circles instead."""

_FAMILY = re.compile(
    r"font-family: 'DejaVu Sans'(?:, 'Noto Sans CJK (?:KR|SC)')?(?=[;\"])"
)


def _rc(lang: str) -> dict:
    check_language(lang)
    if lang == "en":
        return STYLE
    family = CJK_FONTS[lang]
    try:
        font_manager.findfont(
            font_manager.FontProperties(family=family),
            fallback_to_default=False,
        )
    except ValueError:
        raise RuntimeError(
            f"the {lang} figures are measured with the font {family!r}, which is "
            "not installed (Debian: apt-get install fonts-noto-cjk)"
        ) from None
    return {**STYLE, "font.family": ["DejaVu Sans", family]}


@contextmanager
def language(lang: str):
    """Draw in ``lang``: the project style with that language's fonts, inside the block.

    Text objects take their font when they are created, so a figure of one language is
    built, labelled and serialized inside one such block.

    Examples
    --------
    >>> from bnnotes.experiments.plotting import language, plt
    >>> with language("ko"):
    ...     plt.rcParams["font.family"]
    ['DejaVu Sans', 'Noto Sans CJK KR']
    """
    with plt.rc_context(_rc(lang)):
        yield


def new_figure(width: float = 5.0, height: float = 3.4):
    """A figure and axes under the current style (see [`language`]).

    Examples
    --------
    >>> from bnnotes.experiments.plotting import new_figure, plt
    >>> fig, ax = new_figure(4.0, 3.0)
    >>> fig.get_size_inches().tolist()
    [4.0, 3.0]
    >>> plt.close(fig)
    """
    return plt.subplots(figsize=(width, height), layout="constrained")


def subplots(rows: int, cols: int, width: float, height: float, **kwargs):
    """A figure and a flat array of ``rows * cols`` axes under the current style.

    Examples
    --------
    >>> from bnnotes.experiments.plotting import plt, subplots
    >>> fig, axes = subplots(2, 3, 9.0, 5.0)
    >>> axes.shape
    (6,)
    >>> plt.close(fig)
    """
    fig, axes = plt.subplots(
        rows, cols, figsize=(width, height), layout="constrained", **kwargs
    )
    return fig, np.atleast_1d(axes).ravel()


def to_svg(fig, lang: str) -> str:
    """Serialize a figure of ``lang`` to SVG text deterministically and close it.

    Examples
    --------
    >>> from bnnotes.experiments.plotting import language, new_figure, to_svg
    >>> with language("en"):
    ...     fig, ax = new_figure()
    ...     _ = ax.plot([0, 1], [1, 0])
    ...     svg = to_svg(fig, "en")
    >>> svg.startswith("<?xml"), "Date" in svg
    (True, False)
    """
    check_language(lang)
    buffer = io.StringIO()
    with plt.rc_context(_rc(lang)):
        fig.savefig(
            buffer, format="svg", metadata={"Date": None, "Creator": None}
        )
    plt.close(fig)
    return _FAMILY.sub(f"font-family: {FONT_STACKS[lang]}", buffer.getvalue())
