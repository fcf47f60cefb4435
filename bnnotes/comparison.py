r"""Six normalizations side by side: what each one normalizes over and what it ignores.

Batch, layer, instance and group normalization (BN, LN, IN, GN) standardize the outputs of a
layer over different index sets; weight normalization (WN) and weight standardization (WS)
normalize the weights of each output unit instead. This module measures, for each of them,
the properties that decide where it can be used, on one random layer and batch in float64:

- which axes of an ``(N, C, H, W)`` tensor its statistics run over;
- whether an example's output depends on the other examples of the batch;
- whether training and inference compute the same function;
- which re-scalings and shifts leave the output unchanged.

The layer is a 1x1 convolution, $a_{n c h w} = \sum_k W_{c k}\, x_{n k h w}$, so that every
method acts on the same summed inputs $a$ and weights $W$ (row $c$ of $W$ is the incoming
weight vector of output channel $c$). Every normalization runs through its bnnotes
implementation: [`BatchNorm`][bnnotes.batchnorm.BatchNorm] (training and evaluation mode),
[`layer_norm_forward`][bnnotes.layernorm.layer_norm_forward],
[`instance_norm_forward`][bnnotes.groupnorm.instance_norm_forward],
[`group_norm_forward`][bnnotes.groupnorm.group_norm_forward],
[`weight_norm_forward`][bnnotes.weightnorm.weight_norm_forward] and
[`weight_standardization_forward`][bnnotes.weight_standardization.weight_standardization_forward].

References
----------
- S. Ioffe and C. Szegedy, "Batch Normalization", ICML 2015, arXiv:1502.03167.
- J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization", arXiv:1607.06450, 2016.
- D. Ulyanov, A. Vedaldi and V. Lempitsky, "Instance Normalization", arXiv:1607.08022, 2016.
- Y. Wu and K. He, "Group Normalization", ECCV 2018, arXiv:1803.08494.
- T. Salimans and D. P. Kingma, "Weight Normalization", NIPS 2016, arXiv:1602.07868.
- S. Qiao et al., "Micro-Batch Training with Batch-Channel Normalization and Weight
  Standardization", arXiv:1903.10520, 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnnotes import _validation as check
from bnnotes.batchnorm import BatchNorm
from bnnotes.groupnorm import (
    group_norm_forward,
    instance_norm_forward,
    normalization_mask,
)
from bnnotes.layernorm import layer_norm_forward
from bnnotes.weight_standardization import weight_standardization_forward
from bnnotes.weightnorm import weight_norm_forward

__all__ = [
    "EXPECTED",
    "METHODS",
    "PROPERTIES",
    "TABLE_WORDS",
    "Measurement",
    "comparison_markdown",
    "comparison_table",
    "normalize",
]

METHODS = ("BN", "LN", "IN", "GN", "WN", "WS")
"""Row labels: batch, layer, instance, group normalization, weight
normalization, weight standardization."""

PROPERTIES = (
    "statistics over",
    "uses other examples",
    "same in training and inference",
    "invariant to scaling all weights",
    "invariant to scaling one channel's weights",
    "invariant to scaling one example",
    "absorbs a per-channel bias",
)
"""Column labels. All but the first are yes/no properties measured by
[`comparison_table`][bnnotes.comparison.comparison_table]."""

_EPS = 1e-30  # far below every variance in play: the standardizations are exact to rounding

EXPECTED = {
    "BN": ("(N, H, W)", True, False, True, True, False, True),
    "LN": ("(C, H, W)", False, True, True, False, True, False),
    "IN": ("(H, W)", False, True, True, True, True, True),
    "GN": ("(C/G, H, W)", False, True, True, False, True, False),
    "WN": (
        "weights of each output channel",
        False,
        True,
        True,
        True,
        False,
        False,
    ),
    "WS": (
        "weights of each output channel",
        False,
        True,
        True,
        True,
        False,
        False,
    ),
}
"""The table the derivations in
[`comparison_table`][bnnotes.comparison.comparison_table]'s Notes predict."""


@dataclass(frozen=True)
class Measurement:
    """One yes/no cell of the measured table.

    Attributes
    ----------
    holds : bool
        The verdict: the relative change stayed at most the tolerance (for invariances and
        "same in training and inference") or exceeded it (for "uses other examples").
    relative_change : float
        $\\max|y' - y| / \\max|y|$ between the two outputs that were compared.

    Examples
    --------
    >>> from bnnotes.comparison import comparison_table
    >>> cell = comparison_table(seed=0)["BN"]["uses other examples"]
    >>> cell.holds, cell.relative_change > 0.01
    (True, True)
    """

    holds: bool
    relative_change: float


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def normalize(
    method: str,
    weight: np.ndarray,
    x: np.ndarray,
    num_groups: int = 2,
    training: bool = True,
    layer: BatchNorm | None = None,
) -> np.ndarray:
    r"""Apply a 1x1 convolution with ``weight`` to ``x`` and normalize with ``method``.

    Parameters
    ----------
    method : {"BN", "LN", "IN", "GN", "WN", "WS"}
        The normalization. BN, LN, IN and GN act on the summed inputs $a = Wx$; WN and WS
        replace $W$ by $W_{c\cdot}/\lVert W_{c\cdot}\rVert$ or by the standardized rows first.
    weight : numpy.ndarray
        $W$, shape ``(C, K)``: $C$ output channels with $K$ inputs each.
    x : numpy.ndarray
        Input of shape ``(N, K, H, W)``.
    num_groups : int, optional
        $G$ for GN, a divisor of $C$.
    training : bool, optional
        For BN: batch statistics (True) or the running estimates of ``layer`` (False).
    layer : BatchNorm or None, optional
        The BN layer to use (its running statistics are updated in training mode); None makes
        a fresh one. Ignored by the other methods.

    Returns
    -------
    numpy.ndarray
        The normalized output, shape ``(N, C, H, W)``, with unit gain and zero shift.

    Raises
    ------
    TypeError, ValueError
        On an unknown method, non-floating or non-finite arrays, or shapes that do not fit.

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.comparison import normalize
    >>> rng = np.random.default_rng(0)
    >>> W, x = rng.normal(size=(4, 3)), rng.normal(size=(5, 3, 2, 2))
    >>> y = normalize("IN", W, x)
    >>> bool(
    ...     np.allclose(y.mean(axis=(2, 3)), 0.0)
    ...     and np.allclose(y.var(axis=(2, 3)), 1.0)
    ... )
    True
    """
    _check_method(method)
    weight = check.finite_floating(weight, "weight")
    x = check.finite_floating(x, "x")
    if weight.ndim != 2 or x.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"weight must be (C, K) and x (N, K, H, W), got {weight.shape} and {x.shape}"
        )
    if method == "WN":
        weight = weight_norm_forward(weight, np.ones(weight.shape[0]), dim=0)[
            0
        ]
    elif method == "WS":
        weight = weight_standardization_forward(
            weight, eps=_EPS, correction=0
        )[0]
    a = np.einsum("ck,nkhw->nchw", weight, x)
    if method in ("WN", "WS"):
        return a
    if method == "BN":
        layer = (
            BatchNorm(a.shape[1], eps=_EPS, momentum=None)
            if layer is None
            else layer
        )
        return layer.train(training)(a)
    if method == "LN":
        return layer_norm_forward(a, a.shape[1:], eps=_EPS)[0]
    if method == "IN":
        return instance_norm_forward(a, eps=_EPS)[0]
    return group_norm_forward(a, num_groups, eps=_EPS)[0]


def _change(y0: np.ndarray, y1: np.ndarray) -> float:
    return float(np.max(np.abs(y1 - y0)) / np.max(np.abs(y0)))


def _axes(method: str, shape: tuple[int, ...], num_groups: int) -> str:
    if method in ("WN", "WS"):
        return "weights of each output channel"
    name = {"BN": "batch", "LN": "layer", "IN": "instance", "GN": "group"}[
        method
    ]
    mask = normalization_mask(
        name, shape, (0, 0, 0, 0), num_groups if method == "GN" else None
    )
    spans = []
    for axis, label in enumerate("NCHW"):
        covered = int(
            mask.any(axis=tuple(a for a in range(4) if a != axis)).sum()
        )
        if covered == shape[axis]:
            spans.append(label)
        elif covered > 1:
            spans.append(f"{label}/G")
    return "(" + ", ".join(spans) + ")"


def comparison_table(
    seed: int = 0,
    shape: tuple[int, int, int, int] = (6, 4, 3, 3),
    channels: int = 6,
    num_groups: int = 2,
    tol: float = 1e-9,
) -> dict[str, dict[str, str | Measurement]]:
    r"""Measure every property of every method on one random 1x1-convolution layer and batch.

    Parameters
    ----------
    seed : int, optional
        Seed of the weights, the batch and the transformations.
    shape : tuple of 4 int, optional
        Input shape ``(N, K, H, W)`` of positive integers, with $N \ge 2$ and $H W \ge 2$.
    channels : int, optional
        Output channels $C$, a positive integer and a multiple of ``num_groups`` with at
        least 2 channels per group.
    num_groups : int, optional
        $G$ for GN, an integer of at least 2 so that GN differs from LN.
    tol : float, optional
        Largest relative change still counted as "unchanged", a finite real number > 0.

    Returns
    -------
    dict
        ``table[method]["statistics over"]`` is a string; every other
        ``table[method][property]`` is a [`Measurement`][bnnotes.comparison.Measurement], for
        ``method`` in [`METHODS`][bnnotes.comparison.METHODS] and ``property`` in
        [`PROPERTIES`][bnnotes.comparison.PROPERTIES].

    Raises
    ------
    TypeError
        If ``shape`` is not a sequence.
    ValueError
        If ``shape`` does not have 4 entries, a size, ``channels`` or ``num_groups`` is not a
        positive integer (a bool or a float is refused), sizes are below the minimum, $G$
        does not divide $C$, or ``tol`` is not a finite real number > 0.

    Notes
    -----
    Each transformation, and why it does or does not change the output:

    - *Other examples*: replace examples $1, \dots, N-1$ and compare example 0's output. Only
      BN has statistics that run over $N$.
    - *Training and inference*: BN trained on one batch (momentum None, so the running
      estimates are that batch's mean and its unbiased variance) and then evaluated on the
      same batch differs by the factor $\sqrt{(m-1)/m}$ (PyTorch's convention; the paper's
      Algorithm 2 also uses the unbiased estimate). The others have no running estimates.
    - *All weights* $W \to \delta W$, $\delta > 0$: every method divides by a statistic that
      scales with $\delta$.
    - *One channel* $W_{c\cdot} \to \delta W_{c\cdot}$: scales channel $c$ of $a$. BN and IN
      standardize each channel separately and WN, WS each weight row; LN and GN share their
      statistics across channels, so the other channels' outputs change.
    - *One example* $x_n \to \delta x_n$: scales example $n$ of $a$. LN, IN and GN have
      statistics per example; BN's statistics mix examples; WN and WS do not look at $x$.
    - *A bias per channel* $a_{c} \to a_c + b_c$: BN and IN subtract each channel's own mean,
      so a conv bias before them is redundant. LN and GN subtract a mean shared by several
      channels, which removes only the average of their biases; WN and WS pass it through.

    Examples
    --------
    >>> from bnnotes.comparison import EXPECTED, PROPERTIES, comparison_table
    >>> table = comparison_table(seed=0)
    >>> (
    ...     table["GN"]["statistics over"],
    ...     table["GN"]["uses other examples"].holds,
    ... )
    ('(C/G, H, W)', False)
    >>> all(
    ...     (table[m][PROPERTIES[0]],)
    ...     + tuple(table[m][p].holds for p in PROPERTIES[1:])
    ...     == EXPECTED[m]
    ...     for m in EXPECTED
    ... )
    True
    """
    if isinstance(shape, (str, bytes)):
        raise TypeError(
            f"shape must be a sequence of 4 integers (N, K, H, W), got {shape!r}"
        )
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(
            f"shape must be a sequence of 4 integers (N, K, H, W), got {shape!r}"
        ) from None
    if len(shape) != 4:
        raise ValueError(
            f"shape must have 4 entries (N, K, H, W), got {shape!r}"
        )
    shape = tuple(
        check.positive_int(size, f"shape[{axis}] ({name})")
        for axis, (size, name) in enumerate(zip(shape, "NKHW", strict=True))
    )
    if shape[0] < 2 or shape[2] * shape[3] < 2:
        raise ValueError(
            f"shape must be (N, K, H, W) with N >= 2 and H*W >= 2, got {shape}"
        )
    channels = check.positive_int(channels, "channels")
    num_groups = check.positive_int(num_groups, "num_groups")
    if num_groups < 2 or channels % num_groups or channels // num_groups < 2:
        raise ValueError(
            f"channels ({channels}) must split into num_groups ({num_groups}) >= 2 groups "
            "of at least 2 channels"
        )
    tol = check.nonnegative(tol, "tol")
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(channels, shape[1]))
    x = rng.normal(size=shape)
    others = x.copy()
    others[1:] = rng.normal(size=(shape[0] - 1, *shape[1:]))
    delta, one_channel, one_example = (
        rng.uniform(2.0, 5.0),
        int(rng.integers(channels)),
        int(rng.integers(shape[0])),
    )
    bias = rng.normal(size=(channels, 1, 1))
    out_shape = (shape[0], channels, shape[2], shape[3])

    table: dict[str, dict[str, str | Measurement]] = {}
    for method in METHODS:

        def run(w, inputs, method=method):
            return normalize(method, w, inputs, num_groups)

        base = run(weight, x)
        row: dict[str, str | Measurement] = {
            "statistics over": _axes(method, out_shape, num_groups)
        }
        change = _change(base[:1], run(weight, others)[:1])
        row["uses other examples"] = Measurement(change > tol, change)

        layer = BatchNorm(channels, eps=_EPS, momentum=None)  # used by BN only
        trained = normalize(
            method, weight, x, num_groups, training=True, layer=layer
        )
        change = _change(
            trained,
            normalize(
                method, weight, x, num_groups, training=False, layer=layer
            ),
        )
        row["same in training and inference"] = Measurement(
            change <= tol, change
        )

        change = _change(base, run(delta * weight, x))
        row["invariant to scaling all weights"] = Measurement(
            change <= tol, change
        )

        scaled = weight.copy()
        scaled[one_channel] *= delta
        change = _change(base, run(scaled, x))
        row["invariant to scaling one channel's weights"] = Measurement(
            change <= tol, change
        )

        scaled_x = x.copy()
        scaled_x[one_example] *= delta
        change = _change(base, run(weight, scaled_x))
        row["invariant to scaling one example"] = Measurement(
            change <= tol, change
        )

        # A bias after the convolution: append a constant input channel whose weights are the bias.
        with_bias = np.concatenate([weight, bias[:, :, 0]], axis=1)
        x_one = np.concatenate([x, np.ones((shape[0], 1, *shape[2:]))], axis=1)
        # WN and WS: the bias is added after the normalized weights.
        biased = (
            base + bias if method in ("WN", "WS") else run(with_bias, x_one)
        )
        change = _change(base, biased)
        row["absorbs a per-channel bias"] = Measurement(change <= tol, change)
        table[method] = row
    return table


TABLE_WORDS = {
    "en": {
        "columns": (
            "Statistics over",
            "Uses other examples",
            "Same in training and inference",
            "Invariant to scaling all weights",
            "Invariant to scaling one channel's weights",
            "Invariant to scaling one example",
            "Absorbs a per-channel bias",
        ),
        "statistics over": {
            "weights of each output channel": "weights of each output channel"
        },
        "yes": "Yes",
        "no": "No",
    },
    "ko": {
        "columns": (
            "통계량을 구하는 축",
            "다른 샘플 사용",
            "학습과 추론에서 같음",
            "모든 가중치 스케일 조정에 불변",
            "한 채널의 가중치 스케일 조정에 불변",
            "한 샘플의 스케일 조정에 불변",
            "채널별 편향 흡수",
        ),
        "statistics over": {
            "weights of each output channel": "출력 채널별 가중치"
        },
        "yes": "예",
        "no": "아니요",
    },
    "zh": {
        "columns": (
            "统计量的范围",
            "使用其他样本",
            "训练与推理相同",
            "对缩放所有权重不变",
            "对缩放单个通道的权重不变",
            "对缩放单个样本不变",
            "吸收逐通道的偏置",
        ),
        "statistics over": {
            "weights of each output channel": "每个输出通道的权重"
        },
        "yes": "是",
        "no": "否",
    },
}
"""The words of the rendered table, per language: ``columns`` follow
[`PROPERTIES`][bnnotes.comparison.PROPERTIES], ``yes`` and ``no`` fill the measured cells,
and ``statistics over`` translates the first column's worded entries; axis lists such as
``(N, H, W)`` are the same in every language."""


def comparison_markdown(
    table: dict[str, dict[str, str | Measurement]], lang: str = "en"
) -> str:
    r"""Render a table of [`comparison_table`][bnnotes.comparison.comparison_table] as Markdown.

    Parameters
    ----------
    table : dict
        ``table[method][property]`` for every ``method`` in
        [`METHODS`][bnnotes.comparison.METHODS] and ``property`` in
        [`PROPERTIES`][bnnotes.comparison.PROPERTIES]: a string for the first property,
        an object with a ``holds`` attribute for the others.
    lang : {"en", "ko", "zh"}, optional
        Language of the headers and cells, from
        [`TABLE_WORDS`][bnnotes.comparison.TABLE_WORDS].

    Returns
    -------
    str
        A pipe table without a trailing newline: a header row (an empty corner cell, then one
        column per property), a separator row, and one row per method, labelled by its
        abbreviation.

    Raises
    ------
    ValueError
        If ``lang`` is not a key of ``TABLE_WORDS``, or a method or property is missing
        from ``table``.

    Examples
    --------
    >>> from bnnotes.comparison import comparison_markdown, comparison_table
    >>> lines = comparison_markdown(comparison_table(), lang="ko").splitlines()
    >>> lines[-1]
    '| WS | 출력 채널별 가중치 | 아니요 | 예 | 예 | 예 | 아니요 | 아니요 |'
    >>> len(lines)
    8
    """
    if not isinstance(lang, str) or lang not in TABLE_WORDS:
        raise ValueError(
            f"lang must be one of {tuple(TABLE_WORDS)}, got {lang!r}"
        )
    words = TABLE_WORDS[lang]
    lines = [
        "| | " + " | ".join(words["columns"]) + " |",
        "| --- " * (len(PROPERTIES) + 1) + "|",
    ]
    for method in METHODS:
        if method not in table:
            raise ValueError(f"table has no row for method {method!r}")
        missing = [p for p in PROPERTIES if p not in table[method]]
        if missing:
            raise ValueError(
                f"table[{method!r}] has no cell for {missing[0]!r}"
            )
        axes = table[method][PROPERTIES[0]]
        cells = [words["statistics over"].get(axes, axes)]
        cells += [
            words["yes" if table[method][p].holds else "no"]
            for p in PROPERTIES[1:]
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
