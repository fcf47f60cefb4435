r"""Table 1 of the layer normalization paper, computed: which re-scalings and re-centerings
leave BN, WN and LN unchanged.

A layer with weights $W$ (one incoming weight vector $\mathbf w_i$ per row) computes the
summed inputs $a = W\mathbf x$ for each training case of a batch, and the three methods
normalize them as

- batch normalization: $\hat a_i = (a_i - \mu_i)/\sigma_i$, statistics of unit $i$ over the batch;
- weight normalization: $\hat a_i = a_i / \lVert\mathbf w_i\rVert$;
- layer normalization: $\hat a_i = (a_i - \mu)/\sigma$, statistics of one case over its units.

[`invariance_table`][bnnotes.invariance.invariance_table] applies each transformation of the
paper to a random layer and batch, and records whether the normalized output changed:

| transformation | new $W$, $\mathbf x$ |
|---|---|
| weight matrix re-scaling | $\delta W$ |
| weight matrix re-centering | $W + \mathbf 1\boldsymbol\gamma^\top$ (the same vector added to every $\mathbf w_i$) |
| weight vector re-scaling | $\mathrm{diag}(\delta_1, \dots, \delta_H)\,W$ |
| dataset re-scaling | $\delta\,\mathbf x$ for every case |
| dataset re-centering | $\mathbf x + \boldsymbol\gamma$ for every case |
| single training case re-scaling | $\delta_n \mathbf x_n$, a different factor per case |

All factors $\delta$ are positive: a negative factor flips the sign of a standardized output
(see [`layer_norm_forward`][bnnotes.layernorm.layer_norm_forward]). The exact invariances
hold for $\epsilon = 0$; with $\epsilon > 0$ a re-scaling by $\delta$ acts as a change of
$\epsilon$ to $\epsilon/\delta^2$, so they hold only approximately.

References
----------
- J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization", arXiv:1607.06450, 2016, Table 1.
"""  # noqa: E501 (a Markdown table row cannot be wrapped)

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnnotes import _validation as check
from bnnotes.batchnorm import batch_norm_forward
from bnnotes.layernorm import layer_norm_forward

__all__ = [
    "METHODS",
    "PAPER_TABLE",
    "TABLE_WORDS",
    "TRANSFORMATIONS",
    "InvarianceCheck",
    "invariance_markdown",
    "invariance_table",
    "normalized_output",
]

METHODS = ("batch norm", "weight norm", "layer norm")
"""Row labels of the table."""

TRANSFORMATIONS = (
    "weight matrix re-scaling",
    "weight matrix re-centering",
    "weight vector re-scaling",
    "dataset re-scaling",
    "dataset re-centering",
    "single training case re-scaling",
)
"""Column labels of the table, in the paper's order."""

_PAPER_ROWS = {
    "batch norm": (True, False, True, True, True, False),
    "weight norm": (True, False, True, False, False, False),
    "layer norm": (True, True, False, True, False, True),
}
PAPER_TABLE = {
    method: dict(zip(TRANSFORMATIONS, row, strict=True))
    for method, row in _PAPER_ROWS.items()
}
"""Table 1 as printed: ``PAPER_TABLE[method][transformation]`` is True for "Invariant"."""


@dataclass(frozen=True)
class InvarianceCheck:
    """One cell of the computed table.

    Attributes
    ----------
    invariant : bool
        Whether the normalized output stayed the same (relative change at most the tolerance).
    relative_change : float
        $\\max|\\hat a' - \\hat a| / \\max|\\hat a|$ over the whole batch.

    Examples
    --------
    >>> from bnnotes.invariance import invariance_table
    >>> cell = invariance_table()["batch norm"]["weight matrix re-scaling"]
    >>> cell.invariant, cell.relative_change < 1e-12
    (True, True)
    """

    invariant: bool
    relative_change: float


def normalized_output(
    method: str, weight: np.ndarray, x: np.ndarray, eps: float = 0.0
) -> np.ndarray:
    r"""The normalized summed inputs $\hat a$ of a layer $W$ on a batch
    $\mathbf x$, without gain or bias.

    Parameters
    ----------
    method : {"batch norm", "weight norm", "layer norm"}
        The normalization.
    weight : numpy.ndarray
        $W$, shape ``(H, d)``: $H$ units with $d$ inputs each.
    x : numpy.ndarray
        Batch of shape ``(m, d)`` ($m \ge 2$ for batch norm).
    eps : float, optional
        $\epsilon \ge 0$ added to the variance of batch and layer norm; 0 (the default) gives
        the exact standardization, which then requires a non-zero variance.

    Returns
    -------
    numpy.ndarray
        $\hat a$, shape ``(m, H)``.

    Raises
    ------
    TypeError, ValueError
        On an unknown method, non-floating or non-finite arrays, shapes that do not fit, a
        negative ``eps``, or a zero weight vector (weight norm).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.invariance import normalized_output
    >>> rng = np.random.default_rng(0)
    >>> W, x = rng.normal(size=(4, 3)), rng.normal(size=(8, 3))
    >>> bool(
    ...     np.allclose(
    ...         normalized_output("layer norm", W + 5.0, x),
    ...         normalized_output("layer norm", W, x),
    ...     )
    ... )
    True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    weight = check.finite_floating(weight, "weight")
    x = check.finite_floating(x, "x")
    if weight.ndim != 2 or x.ndim != 2 or weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"weight must be (H, d) and x (m, d), got {weight.shape} and {x.shape}"
        )
    eps = check.eps_value(eps, allow_zero=True)
    a = x @ weight.T
    exact = eps == 0.0
    tiny = np.finfo(a.dtype).tiny
    if method == "weight norm":
        norms = np.linalg.norm(weight, axis=1)
        if np.any(norms == 0):
            raise ValueError("weight norm needs non-zero weight vectors")
        return a / norms
    if method == "batch norm":
        if exact and np.any(a.var(axis=0) == 0):
            raise ValueError("with eps=0 every unit must vary over the batch")
        return batch_norm_forward(a, None, None, eps=tiny if exact else eps)[0]
    if exact and np.any(a.var(axis=1) == 0):
        raise ValueError("with eps=0 every case must vary over the units")
    return layer_norm_forward(a, a.shape[1], eps=tiny if exact else eps)[0]


def _transformations(
    weight: np.ndarray, x: np.ndarray, rng: np.random.Generator
) -> dict:
    h, d = weight.shape
    m = x.shape[0]
    return {
        "weight matrix re-scaling": (rng.uniform(2.0, 5.0) * weight, x),
        "weight matrix re-centering": (
            weight + np.outer(np.ones(h), rng.normal(size=d)),
            x,
        ),
        "weight vector re-scaling": (
            rng.uniform(0.2, 5.0, size=(h, 1)) * weight,
            x,
        ),
        "dataset re-scaling": (weight, rng.uniform(2.0, 5.0) * x),
        "dataset re-centering": (weight, x + rng.normal(size=d)),
        "single training case re-scaling": (
            weight,
            rng.uniform(0.2, 5.0, size=(m, 1)) * x,
        ),
    }


def invariance_table(
    seed: int = 0,
    batch: int = 16,
    d_in: int = 6,
    d_out: int = 5,
    eps: float = 0.0,
    tol: float = 1e-9,
) -> dict[str, dict[str, InvarianceCheck]]:
    r"""Table 1 of the LN paper, measured on a random layer and batch.

    Parameters
    ----------
    seed : int, optional
        Seed of the layer, the batch and the transformations.
    batch, d_in, d_out : int, optional
        Batch size $m \ge 2$, inputs $d$ and units $H \ge 2$ of the layer.
    eps : float, optional
        $\epsilon \ge 0$ of batch and layer norm; the default 0 is the setting of the paper's table.
    tol : float, optional
        Largest relative change still counted as invariant.

    Returns
    -------
    dict
        ``table[method][transformation]`` is an
        [`InvarianceCheck`][bnnotes.invariance.InvarianceCheck], for ``method`` in
        [`METHODS`][bnnotes.invariance.METHODS] and ``transformation`` in
        [`TRANSFORMATIONS`][bnnotes.invariance.TRANSFORMATIONS], in that order.

    Raises
    ------
    ValueError
        On sizes below the minimum, a negative ``eps`` or a non-positive ``tol``.

    Notes
    -----
    The outcomes have simple reasons. Re-scaling $W$ or one $\mathbf w_i$ scales unit $i$'s
    inputs over the batch, which BN's statistics and WN's norm absorb; LN absorbs only a
    factor shared by all units. Re-centering $W$ adds $\boldsymbol\gamma^\top\mathbf x$ to every
    unit of a case, which LN subtracts; it varies over the batch, so BN does not. Re-centering
    the data adds $\mathbf w_i^\top\boldsymbol\gamma$ to unit $i$ in every case, which BN subtracts;
    it differs between units, so LN does not. WN has no statistics of the data at all.

    Examples
    --------
    >>> from bnnotes.invariance import PAPER_TABLE, invariance_table
    >>> table = invariance_table()
    >>> {
    ...     m: {t: c.invariant for t, c in row.items()}
    ...     for m, row in table.items()
    ... } == PAPER_TABLE
    True
    >>> table["layer norm"]["weight vector re-scaling"].relative_change > 0.01
    True
    """
    batch = check.positive_int(batch, "batch")
    d_in = check.positive_int(d_in, "d_in")
    d_out = check.positive_int(d_out, "d_out")
    if batch < 2 or d_out < 2:
        raise ValueError(
            f"batch and d_out must be at least 2, got batch={batch}, d_out={d_out}"
        )
    eps = check.eps_value(eps, allow_zero=True)
    tol = check.nonnegative(tol, "tol")
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(d_out, d_in))
    x = rng.normal(size=(batch, d_in))
    transformed = _transformations(weight, x, rng)
    table: dict[str, dict[str, InvarianceCheck]] = {}
    for method in METHODS:
        base = normalized_output(method, weight, x, eps)
        row = {}
        for name in TRANSFORMATIONS:
            new_weight, new_x = transformed[name]
            change = float(
                np.max(
                    np.abs(
                        normalized_output(method, new_weight, new_x, eps)
                        - base
                    )
                )
                / np.max(np.abs(base))
            )
            row[name] = InvarianceCheck(
                invariant=change <= tol, relative_change=change
            )
        table[method] = row
    return table


TABLE_WORDS = {
    "en": {
        "columns": (
            "Weight matrix re-scaling",
            "Weight matrix re-centering",
            "Weight vector re-scaling",
            "Dataset re-scaling",
            "Dataset re-centering",
            "Single training case re-scaling",
        ),
        "rows": ("Batch norm", "Weight norm", "Layer norm"),
        "invariant": "Invariant",
        "not invariant": "No",
    },
    "ko": {
        "columns": (
            "가중치 행렬 재스케일링",
            "가중치 행렬 재중심화",
            "가중치 벡터 재스케일링",
            "데이터셋 재스케일링",
            "데이터셋 재중심화",
            "학습 샘플 하나의 재스케일링",
        ),
        "rows": ("배치 정규화", "가중치 정규화", "층 정규화"),
        "invariant": "불변",
        "not invariant": "아님",
    },
    "zh": {
        "columns": (
            "权重矩阵缩放",
            "权重矩阵重新中心化",
            "权重向量缩放",
            "数据集缩放",
            "数据集重新中心化",
            "单个训练样本缩放",
        ),
        "rows": ("批量归一化", "权重归一化", "层归一化"),
        "invariant": "不变",
        "not invariant": "否",
    },
}
"""The words of the rendered table, per language: ``columns`` follow
[`TRANSFORMATIONS`][bnnotes.invariance.TRANSFORMATIONS], ``rows`` follow
[`METHODS`][bnnotes.invariance.METHODS], and the two verdicts fill the cells."""


def invariance_markdown(
    table: dict[str, dict[str, InvarianceCheck]], lang: str = "en"
) -> str:
    r"""Render a table of [`invariance_table`][bnnotes.invariance.invariance_table] as Markdown.

    Parameters
    ----------
    table : dict
        ``table[method][transformation]`` with an ``invariant`` attribute, for every
        ``method`` in [`METHODS`][bnnotes.invariance.METHODS] and ``transformation`` in
        [`TRANSFORMATIONS`][bnnotes.invariance.TRANSFORMATIONS].
    lang : {"en", "ko", "zh"}, optional
        Language of the headers and cells, from
        [`TABLE_WORDS`][bnnotes.invariance.TABLE_WORDS].

    Returns
    -------
    str
        A pipe table without a trailing newline: a header row (an empty corner cell, then one
        column per transformation), a separator row, and one row per method.

    Raises
    ------
    ValueError
        If ``lang`` is not a key of ``TABLE_WORDS``, or a method or transformation is
        missing from ``table``.

    Examples
    --------
    >>> from bnnotes.invariance import invariance_markdown, invariance_table
    >>> lines = invariance_markdown(invariance_table(), lang="zh").splitlines()
    >>> lines[2]
    '| 批量归一化 | 不变 | 否 | 不变 | 不变 | 不变 | 否 |'
    >>> len(lines)
    5
    """
    if not isinstance(lang, str) or lang not in TABLE_WORDS:
        raise ValueError(
            f"lang must be one of {tuple(TABLE_WORDS)}, got {lang!r}"
        )
    words = TABLE_WORDS[lang]
    verdict = {True: words["invariant"], False: words["not invariant"]}
    lines = [
        "| | " + " | ".join(words["columns"]) + " |",
        "| --- " * (len(TRANSFORMATIONS) + 1) + "|",
    ]
    for method, label in zip(METHODS, words["rows"], strict=True):
        if method not in table:
            raise ValueError(f"table has no row for method {method!r}")
        missing = [t for t in TRANSFORMATIONS if t not in table[method]]
        if missing:
            raise ValueError(
                f"table[{method!r}] has no cell for {missing[0]!r}"
            )
        cells = (verdict[table[method][t].invariant] for t in TRANSFORMATIONS)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
