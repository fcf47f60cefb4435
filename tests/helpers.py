"""Shared helpers for the tests: PyTorch references in float64 and a relative-error measure."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

#: Relative tolerance for float64 agreement with PyTorch.
RTOL64 = 1e-10


def rel_err(a, b) -> float:
    """max |a - b| / max(max |b|, 1e-300): one number for a whole array."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def t(x) -> torch.Tensor:
    """NumPy -> float64 torch tensor (None passes through)."""
    return (
        None
        if x is None
        else torch.from_numpy(np.asarray(x, dtype=np.float64).copy())
    )


def torch_module_for(ndim: int):
    """The torch BatchNorm class for an input with ``ndim`` dimensions."""
    return {
        2: torch.nn.BatchNorm1d,
        3: torch.nn.BatchNorm1d,
        4: torch.nn.BatchNorm2d,
        5: torch.nn.BatchNorm3d,
    }[ndim]


#: The pages of the site, one folder per language.
DOCS = Path(__file__).resolve().parents[1] / "docs"


def page_tables(lang: str, page: str) -> list[list[list[str]]]:
    """The pipe tables in the prose of docs/LANG/PAGE (code blocks left out), as rows of stripped cells."""
    text = (DOCS / lang / page).read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    tables, current = [], []
    for line in prose.splitlines() + [""]:
        if line.startswith("|"):
            current.append([
                cell.strip() for cell in line.strip()[1:-1].split("|")
            ])
        elif current:
            tables.append(current)
            current = []
    return tables


def markdown_rows(table: str) -> list[list[str]]:
    """A rendered pipe table as rows of stripped cells, the form page_tables returns."""
    return [
        [cell.strip() for cell in line.strip()[1:-1].split("|")]
        for line in table.splitlines()
    ]


#: The Markdown extensions of mkdocs.yml that shape headings, formulas and figures.
MD_EXTENSIONS = [
    "admonition",
    "attr_list",
    "md_in_html",
    "footnotes",
    "tables",
    "def_list",
    "toc",
    "pymdownx.arithmatex",
    "pymdownx.superfences",
    "pymdownx.details",
    "pymdownx.tabbed",
]
MD_CONFIG = {
    "pymdownx.arithmatex": {"generic": True},
    "pymdownx.tabbed": {"alternate_style": True},
}

#: How a figure caption starts in each language ("Figure 2.", "그림 2.", "图 2").
FIGURE_LABEL = {
    "en": re.compile(r"Figure (\d+)\. "),
    "ko": re.compile(r"그림 (\d+)\. "),
    "zh": re.compile(r"图 (\d+) "),
}
#: A figure of the page referred to in the prose: "Figure 2", "Figures 4 and 5", "그림 2",
#: "图 2"; not a cited paper's figure ("the paper's Figure 1", "논문의 그림 1", "论文的图 1",
#: "Section 3.2, Figure 4", "2018, 그림 3", "3.2절(그림 4)", "第 3.2 节，图 4").
FIGURE_REFERENCE = {
    "en": re.compile(
        r"(?<!paper's )(?<!\d, )\bFigures? (\d+)(?:,? and (\d+))?"
    ),
    "ko": re.compile(
        r"(?<!논문의 )(?<!논문 )(?<!\d, )(?<!절, )(?<!절\()(?<!절과 )그림 (\d+)"
    ),
    "zh": re.compile(
        r"(?<!论文的)(?<!论文)(?<!\d，)(?<!\d, )(?<!节，)(?<!节（)(?<!节、)图 ?(\d+)"
    ),
}


def render_markdown(path: Path):
    """A page rendered to HTML with the site's extensions: (html, the Markdown object)."""
    import markdown

    md = markdown.Markdown(
        extensions=MD_EXTENSIONS, extension_configs=MD_CONFIG
    )
    return md.convert(path.read_text(encoding="utf-8")), md


def page_figures(html: str) -> tuple[list[dict], list[str]]:
    """The ``<figure>`` elements of rendered HTML, in order, each as its image sources and
    its ``<figcaption>`` texts (tags stripped); and the sources of the images outside any
    figure."""
    figures = []
    for match in re.finditer(r"<figure\b[^>]*>(.*?)</figure>", html, re.S):
        body = match.group(1)
        figures.append({
            "images": re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', body),
            "captions": [
                re.sub(r"<[^>]+>", "", c).strip()
                for c in re.findall(
                    r"<figcaption\b[^>]*>(.*?)</figcaption>", body, re.S
                )
            ],
        })
    outside = re.sub(r"<figure\b.*?</figure>", "", html, flags=re.S)
    return figures, re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', outside)
