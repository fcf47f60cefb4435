r"""Diagrams drawn from code: the index sets $S_i$ of batch, layer, instance and group norm.

Wu & He (2018, Fig. 2) draw each normalization as a cube of an ``(N, C, H, W)`` tensor with
the elements that share one mean and variance shaded. This module draws the same picture
flat: one panel per method, one row per example $n$, one column per channel $c$, and inside
each cell the $H \times W$ spatial positions. The shading is not drawn by hand: it is the
boolean array [`normalization_mask`][bnnotes.groupnorm.normalization_mask] returns, so the
figure shows exactly the sets the code normalizes over.

The SVG is written by string formatting only (no plotting library, no timestamps), so the
same arguments give the same bytes on every machine, and a test compares the committed files
with a fresh rendering. It is drawn once per language of the site
(``docs/assets/figures/<lang>/index-sets.svg``), every word from one table, on an opaque
white background so that it reads on a dark page as well.

References
----------
- Y. Wu and K. He, "Group Normalization", ECCV 2018, arXiv:1803.08494, Fig. 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bnnotes.figure_text import (
    FONT_STACKS,
    LANGUAGES,
    FigureText,
    check_language,
)
from bnnotes.groupnorm import METHODS, normalization_mask

__all__ = ["INDEX_SETS_FIGURES", "index_sets_svg", "write_index_sets"]

_FIGURES = Path(__file__).resolve().parents[1] / "docs" / "assets" / "figures"

INDEX_SETS_FIGURES = {
    lang: _FIGURES / lang / "index-sets.svg" for lang in LANGUAGES
}
"""Where the committed figure of each language lives
(``docs/assets/figures/<lang>/index-sets.svg``)."""

# The words of the diagram in every language of the site.
_TEXT = FigureText(
    "diagrams",
    {
        "batch": {"en": "Batch Norm", "ko": "배치 정규화", "zh": "批量归一化"},
        "layer": {"en": "Layer Norm", "ko": "층 정규화", "zh": "层归一化"},
        "instance": {
            "en": "Instance Norm",
            "ko": "인스턴스 정규화",
            "zh": "实例归一化",
        },
        "group": {"en": "Group Norm", "ko": "그룹 정규화", "zh": "组归一化"},
        "groups": {
            "en": "{name} (G={g})",
            "ko": "{name} (G={g})",
            "zh": "{name}（G={g}）",
        },
        "channels": {
            "en": "C (channels) →",
            "ko": "C (채널) →",
            "zh": "C（通道）→",
        },
        "examples": {
            "en": "← N (examples)",
            "ko": "← N (샘플)",
            "zh": "← N（样本）",
        },
        "size": {
            "en": "|S_i| = {size}",
            "ko": "|S_i| = {size}",
            "zh": "|S_i| = {size}",
        },
        "title": {
            "en": "The elements that share one mean and variance (shaded) for "
            "batch, layer, instance and group normalization; the dark square "
            "is the element being normalized",
            "ko": "배치 정규화, 층 정규화, 인스턴스 정규화, 그룹 정규화에서 "
            "평균과 분산 하나를 함께 쓰는 원소들(음영); 진한 칸은 정규화되는 "
            "원소",
            "zh": "批量归一化、层归一化、实例归一化和组归一化中共用同一个均值"
            "和方差的元素（阴影）；深色方格是被归一化的元素",
        },
    },
)
_SHADE, _PIVOT, _EMPTY, _LINE = "#8fb4e3", "#1f5fa8", "#ffffff", "#4b5563"


def _panel(
    mask: np.ndarray,
    index: tuple[int, ...],
    x0: float,
    y0: float,
    cell: float,
    gap: float,
) -> list[str]:
    n_size, c_size, h_size, w_size = mask.shape
    parts = []
    for n in range(n_size):
        for c in range(c_size):
            cx = x0 + c * (w_size * cell + gap)
            cy = y0 + n * (h_size * cell + gap)
            for h in range(h_size):
                for w in range(w_size):
                    k = (n, c, h, w)
                    fill = (
                        _PIVOT
                        if k == index
                        else (_SHADE if mask[k] else _EMPTY)
                    )
                    parts.append(
                        f'<rect x="{cx + w * cell:.1f}" y="{cy + h * cell:.1f}" width="{cell:.1f}" '
                        f'height="{cell:.1f}" fill="{fill}" stroke="{_LINE}" stroke-width="0.4"/>'
                    )
    return parts


def index_sets_svg(
    shape: tuple[int, int, int, int] = (4, 6, 2, 2),
    index: tuple[int, int, int, int] = (1, 2, 0, 1),
    num_groups: int = 3,
    lang: str = "en",
) -> str:
    r"""An SVG diagram of $S_i$ for the four methods on a tensor of shape ``(N, C, H, W)``.

    Parameters
    ----------
    shape : tuple of 4 int, optional
        ``(N, C, H, W)``, each at least 1 and at most 16, so that the drawing stays legible.
    index : tuple of 4 int, optional
        The element $i$ whose set is drawn; it is drawn darker than the rest of $S_i$.
    num_groups : int, optional
        $G$ for the group-norm panel, a divisor of $C$.
    lang : {"en", "ko", "zh"}, optional
        The language of the titles and labels.

    Returns
    -------
    str
        The SVG document. Shaded squares are exactly the True entries of
        ``normalization_mask(method, shape, index)`` for each method.

    Raises
    ------
    ValueError
        On a shape that is not four sizes in ``[1, 16]``, or anything
        [`normalization_mask`][bnnotes.groupnorm.normalization_mask] refuses (an index out of
        range, a ``num_groups`` that does not divide $C$), or a ``lang`` that is not one of
        the site's languages.

    Examples
    --------
    >>> from bnnotes.diagrams import index_sets_svg
    >>> svg = index_sets_svg((2, 4, 1, 1), (0, 1, 0, 0), num_groups=2)
    >>> svg.startswith("<svg") and svg.count("<rect") == 4 * 2 * 4
    True
    """
    check_language(lang)
    shape = tuple(shape)
    if len(shape) != 4 or any(
        isinstance(s, bool)
        or not isinstance(s, (int, np.integer))
        or not 1 <= s <= 16
        for s in shape
    ):
        raise ValueError(
            f"shape must be (N, C, H, W) with sizes in [1, 16], got {shape}"
        )
    masks = {
        m: normalization_mask(
            m, shape, index, num_groups if m == "group" else None
        )
        for m in METHODS
    }
    index = tuple(int(i) % s for i, s in zip(index, shape, strict=True))
    n_size, c_size, h_size, w_size = shape
    cell, gap, margin, title_h, label_w = 9.0, 3.0, 10.0, 34.0, 14.0
    panel_w = c_size * (w_size * cell + gap) - gap
    panel_h = n_size * (h_size * cell + gap) - gap
    width = margin + 4 * (label_w + panel_w + margin)
    height = title_h + panel_h + 22.0
    font = FONT_STACKS[lang]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.1f} {height:.1f}" '
        f'width="{width:.1f}" height="{height:.1f}" font-family="{font}" role="img">',
        f"<title>{_TEXT('title', lang)}</title>",
        f'<path d="M0 0H{width:.1f}V{height:.1f}H0Z" fill="{_EMPTY}"/>',
    ]
    for p, method in enumerate(METHODS):
        x0 = margin + p * (label_w + panel_w + margin) + label_w
        title = _TEXT(method, lang)
        if method == "group":
            title = _TEXT("groups", lang, name=title, g=num_groups)
        parts.append(
            f'<text x="{x0 + panel_w / 2:.1f}" y="14" font-size="10" '
            f'text-anchor="middle">{title}</text>'
        )
        parts.append(
            f'<text x="{x0 + panel_w / 2:.1f}" y="27" font-size="8" text-anchor="middle" '
            f'fill="{_LINE}">{_TEXT("channels", lang)}</text>'
        )
        parts.append(
            f'<text x="{x0 - 4:.1f}" y="{title_h + panel_h / 2:.1f}" font-size="8" '
            'text-anchor="middle" '
            f'fill="{_LINE}" transform="rotate(-90 {x0 - 4:.1f} {title_h + panel_h / 2:.1f})">'
            f"{_TEXT('examples', lang)}</text>"
        )
        parts.extend(_panel(masks[method], index, x0, title_h, cell, gap))
        size = int(masks[method].sum())
        parts.append(
            f'<text x="{x0 + panel_w / 2:.1f}" y="{title_h + panel_h + 14:.1f}" font-size="8" '
            f'text-anchor="middle" fill="{_LINE}">{_TEXT("size", lang, size=size)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_index_sets(directory: Path | None = None) -> list[Path]:
    """Write the default diagram in every language to ``directory/<lang>/index-sets.svg``.

    ``directory`` defaults to ``docs/assets/figures``. Returns the files written.

    Examples
    --------
    >>> import tempfile
    >>> from bnnotes.diagrams import write_index_sets
    >>> folder = tempfile.mkdtemp()
    >>> [p.parent.name for p in write_index_sets(folder)]
    ['en', 'ko', 'zh']
    """
    written = []
    for lang in LANGUAGES:
        path = (
            INDEX_SETS_FIGURES[lang]
            if directory is None
            else Path(directory) / lang / "index-sets.svg"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(index_sets_svg(lang=lang), encoding="utf-8")
        written.append(path)
    return written
