r"""Diagrams drawn from code: the index sets $S_i$ of batch, layer, instance and group norm.

Wu & He (2018, Fig. 2) draw each normalization as a cube of an ``(N, C, H, W)`` tensor with
the elements that share one mean and variance shaded. This module draws the same picture
flat: one panel per method, one row per example $n$, one column per channel $c$, and inside
each cell the $H \times W$ spatial positions. The shading is not drawn by hand: it is the
boolean array [`normalization_mask`][bnnotes.groupnorm.normalization_mask] returns, so the
figure shows exactly the sets the code normalizes over.

The SVG is written by string formatting only (no plotting library, no timestamps), so the
same arguments give the same bytes on every machine, and a test compares the committed file
with a fresh rendering.

References
----------
- Y. Wu and K. He, "Group Normalization", ECCV 2018, arXiv:1803.08494, Fig. 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bnnotes.groupnorm import METHODS, normalization_mask

__all__ = ["INDEX_SETS_FIGURE", "index_sets_svg"]

INDEX_SETS_FIGURE = (
    Path(__file__).resolve().parents[1]
    / "docs"
    / "assets"
    / "figures"
    / "index-sets.svg"
)
"""Where the committed figure lives (``docs/assets/figures/index-sets.svg``)."""

_TITLES = {
    "batch": "Batch Norm",
    "layer": "Layer Norm",
    "instance": "Instance Norm",
    "group": "Group Norm",
}
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
        range, a ``num_groups`` that does not divide $C$).

    Examples
    --------
    >>> from bnnotes.diagrams import index_sets_svg
    >>> svg = index_sets_svg((2, 4, 1, 1), (0, 1, 0, 0), num_groups=2)
    >>> svg.startswith("<svg") and svg.count("<rect") == 4 * 2 * 4
    True
    """
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
    index = tuple(int(i) % s for i, s in zip(index, shape))
    n_size, c_size, h_size, w_size = shape
    cell, gap, margin, title_h, label_w = 9.0, 3.0, 10.0, 34.0, 14.0
    panel_w = c_size * (w_size * cell + gap) - gap
    panel_h = n_size * (h_size * cell + gap) - gap
    width = margin + 4 * (label_w + panel_w + margin)
    height = title_h + panel_h + 22.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.1f} {height:.1f}" '
        f'width="{width:.1f}" height="{height:.1f}" font-family="sans-serif" role="img">',
        "<title>The elements that share one mean and variance (shaded) for batch, layer, instance "
        "and group normalization; the dark square is the element being normalized</title>",
    ]
    for p, method in enumerate(METHODS):
        x0 = margin + p * (label_w + panel_w + margin) + label_w
        title = _TITLES[method] + (
            f" (G={num_groups})" if method == "group" else ""
        )
        parts.append(
            f'<text x="{x0 + panel_w / 2:.1f}" y="14" font-size="10" text-anchor="middle">{title}</text>'
        )
        parts.append(
            f'<text x="{x0 + panel_w / 2:.1f}" y="27" font-size="8" text-anchor="middle" '
            f'fill="{_LINE}">C (channels) →</text>'
        )
        parts.append(
            f'<text x="{x0 - 4:.1f}" y="{title_h + panel_h / 2:.1f}" font-size="8" text-anchor="middle" '
            f'fill="{_LINE}" transform="rotate(-90 {x0 - 4:.1f} {title_h + panel_h / 2:.1f})">'
            "← N (examples)</text>"
        )
        parts.extend(_panel(masks[method], index, x0, title_h, cell, gap))
        size = int(masks[method].sum())
        parts.append(
            f'<text x="{x0 + panel_w / 2:.1f}" y="{title_h + panel_h + 14:.1f}" font-size="8" '
            f'text-anchor="middle" fill="{_LINE}">|S_i| = {size}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
