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
