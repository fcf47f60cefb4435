"""Deterministic SVG output for the experiment figures.

The same results and the same pinned matplotlib give byte-identical SVG files: a fixed
hash salt for element ids, no date in the metadata, text drawn as paths with the
DejaVu fonts that matplotlib ships.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "svg.hashsalt": "bnnotes",
    "svg.fonttype": "path",
    "font.family": ["DejaVu Sans"],
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
}

COLORS = {"baseline": "#1f5fa8", "batchnorm": "#c2410c"}
"""Colors with enough contrast on white for both lines of a comparison."""


def new_figure(width: float = 5.0, height: float = 3.4):
    """A figure and axes under the project style."""
    with plt.rc_context(STYLE):
        return plt.subplots(figsize=(width, height), layout="constrained")


def to_svg(fig) -> str:
    """Serialize a figure to SVG text deterministically and close it."""
    buffer = io.StringIO()
    with plt.rc_context(STYLE):
        fig.savefig(
            buffer, format="svg", metadata={"Date": None, "Creator": None}
        )
    plt.close(fig)
    return buffer.getvalue()
