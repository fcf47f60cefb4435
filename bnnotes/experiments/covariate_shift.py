r"""The covariate-shift page's training run and figures: hidden units
drifting while a network learns.

[`layer_input_drift`][bnnotes.experiments.covariate_shift.layer_input_drift] trains the
two-layer network of [`bnnotes.covariate_shift`][bnnotes-covariate-shift] by SGD in the
source domain and records the moments of its hidden units on a fixed probe batch after
every step; [`figures`][bnnotes.experiments.covariate_shift.figures] draws the page's two
figures in every language of the site, and
[`write_figures`][bnnotes.experiments.covariate_shift.write_figures] writes them to
``docs/assets/figures/<lang>/``. The concepts (the domains, the fitted classifiers, the
network and the moments) stay in ``bnnotes.covariate_shift``; this module only trains and
draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bnnotes import _validation as check
from bnnotes._threads import one_thread
from bnnotes.covariate_shift import (
    SOURCE_MEAN,
    TARGET_MEAN,
    TwoLayerNet,
    boundary,
    covariate_shift_report,
    hidden_moments,
    sample_domain,
)
from bnnotes.figure_text import LANGUAGES, FigureText, check_language

__all__ = [
    "FIGURE_NAMES",
    "DriftTrace",
    "figures",
    "layer_input_drift",
    "write_figures",
]

FIGURE_NAMES = ("covariate-shift-domains.svg", "covariate-shift-drift.svg")
"""The figures [`figures`][bnnotes.experiments.covariate_shift.figures] renders."""


# --------------------------------------------------------------------------- training


@dataclass(frozen=True, eq=False)
class DriftTrace:
    r"""The hidden units of a two-layer network on a fixed probe batch, after every step.

    Row $t$ of each array is measured with the parameters after $t$ SGD steps (row 0 at
    initialization), using the probe batch's own statistics for BN.

    Attributes
    ----------
    batch_norm, learn_affine : bool
        The network's configuration.
    lr : float
        SGD learning rate.
    eps : float
        BN's $\epsilon$.
    means, variances, skewness, kurtosis : numpy.ndarray
        Shape ``(steps + 1, k)``, see [`HiddenMoments`][bnnotes.covariate_shift.HiddenMoments].
    correlations : numpy.ndarray
        Shape ``(steps + 1, k, k)``.
    pre_variances : numpy.ndarray
        Variance of $W_1 x$ (before BN) per unit, shape ``(steps + 1, k)``.
    gammas, betas : numpy.ndarray or None
        $\gamma$ and $\beta$ per step, shape ``(steps + 1, k)``; None without BN.
    losses : numpy.ndarray
        Training loss of each step's mini-batch, shape ``(steps,)``.
    net : TwoLayerNet
        The trained network (in training mode).
    """

    batch_norm: bool
    learn_affine: bool
    lr: float
    eps: float
    means: np.ndarray
    variances: np.ndarray
    skewness: np.ndarray
    kurtosis: np.ndarray
    correlations: np.ndarray
    pre_variances: np.ndarray
    gammas: np.ndarray | None
    betas: np.ndarray | None
    losses: np.ndarray
    net: TwoLayerNet

    @staticmethod
    def _step_change(values: np.ndarray) -> np.ndarray:
        diff = np.abs(np.diff(values, axis=0))
        return diff.reshape(diff.shape[0], -1).max(axis=1)

    @property
    def mean_change(self) -> np.ndarray:
        """Per step, the largest change of a unit's mean: ``max_k |mean[t+1,k] - mean[t,k]|``."""
        return self._step_change(self.means)

    @property
    def variance_change(self) -> np.ndarray:
        """Per step, the largest change of a unit's variance."""
        return self._step_change(self.variances)

    @property
    def skewness_change(self) -> np.ndarray:
        """Per step, the largest change of a unit's skewness."""
        return self._step_change(self.skewness)

    @property
    def kurtosis_change(self) -> np.ndarray:
        """Per step, the largest change of a unit's kurtosis."""
        return self._step_change(self.kurtosis)

    @property
    def correlation_change(self) -> np.ndarray:
        """Per step, the largest change of a correlation between two units."""
        return self._step_change(self.correlations)


def layer_input_drift(
    batch_norm: bool,
    learn_affine: bool = True,
    steps: int = 200,
    lr: float = 0.1,
    batch_size: int = 32,
    width: int = 16,
    eps: float = 1e-5,
    n_train: int = 1024,
    n_probe: int = 512,
    seed: int = 0,
) -> DriftTrace:
    r"""Train a [`TwoLayerNet`][bnnotes.covariate_shift.TwoLayerNet] by SGD in the source domain
    and record its hidden units.

    Parameters
    ----------
    batch_norm : bool
        Whether $h$ is batch-normalized.
    learn_affine : bool, optional
        With BN, whether $\gamma, \beta$ are trained (default) or fixed at 1 and 0.
    steps : int, optional
        SGD steps (default 200).
    lr : float, optional
        Learning rate $> 0$ of plain SGD (default 0.1).
    batch_size : int, optional
        Mini-batch size, at least 2 and at most ``n_train`` (default 32).
    width : int, optional
        Hidden units (default 16).
    eps : float, optional
        BN's $\epsilon > 0$ (default ``1e-5``).
    n_train, n_probe : int, optional
        Sizes of the training set and of the fixed probe batch, both from the source domain
        (defaults 1024 and 512).
    seed : int, optional
        Seeds the initialization (in a forked torch generator; the global torch state is
        left as it was), the data and the order of the mini-batches.

    Returns
    -------
    DriftTrace

    Raises
    ------
    ValueError
        For arguments out of range.

    Notes
    -----
    The loss is the binary cross-entropy of the logit. Each step draws ``batch_size``
    training examples without replacement. After each step the probe batch $P$ is passed
    through the first layer (and BN with the statistics of $P$, without touching the
    running statistics), and the moments of $h$ over $P$ are recorded. With BN,

    $$\frac1{|P|}\sum_{x \in P} h_k(x) = \beta_k, \qquad
    \frac1{|P|}\sum_{x \in P} \big(h_k(x) - \beta_k\big)^2 =
    \gamma_k^2\,\frac{\sigma_k^2}{\sigma_k^2 + \epsilon}$$

    for every $W_1$, where $\sigma_k^2$ is the variance of $(W_1 x)_k$ over $P$: the first two
    moments can move only through $\gamma$ and $\beta$ (and, by a relative amount below
    $\epsilon/\sigma_k^2$, through $\sigma_k$).

    Examples
    --------
    >>> import numpy as np
    >>> from bnnotes.experiments.covariate_shift import layer_input_drift
    >>> trace = layer_input_drift(batch_norm=True, steps=5)
    >>> bool(
    ...     np.allclose(trace.means, trace.betas, rtol=0, atol=1e-12)
    ... )  # mean pinned to beta
    True
    >>> bool(trace.correlation_change.min() > 0)  # correlations still move
    True
    """
    batch_norm = bool(batch_norm)
    learn_affine = bool(learn_affine)
    steps = check.int_at_least(steps, 1, "steps")
    lr = check.nonnegative(lr, "lr")
    width = check.int_at_least(width, 1, "width")
    eps = check.eps_value(eps)
    n_train = check.int_at_least(n_train, 2, "n_train")
    n_probe = check.int_at_least(n_probe, 2, "n_probe")
    batch_size = check.int_at_least(batch_size, 2, "batch_size")
    if batch_size > n_train:
        raise ValueError(
            f"batch_size ({batch_size}) must not exceed n_train ({n_train})"
        )
    seed = check.int_at_least(seed, 0, "seed")

    with one_thread():
        return _train_and_record(
            batch_norm,
            learn_affine,
            steps,
            lr,
            batch_size,
            width,
            eps,
            n_train,
            n_probe,
            seed,
        )


def _train_and_record(
    batch_norm: bool,
    learn_affine: bool,
    steps: int,
    lr: float,
    batch_size: int,
    width: int,
    eps: float,
    n_train: int,
    n_probe: int,
    seed: int,
) -> DriftTrace:
    """The body of layer_input_drift, with checked arguments."""
    x_train, y_train = sample_domain(n_train, SOURCE_MEAN, seed)
    x_probe, _ = sample_domain(n_probe, SOURCE_MEAN, seed + 1)
    X, Y, P = (
        torch.from_numpy(x_train),
        torch.from_numpy(y_train.astype(np.float64)),
        torch.from_numpy(x_probe),
    )
    order = np.random.default_rng(seed + 2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TwoLayerNet(
            2, width, batch_norm=batch_norm, learn_affine=learn_affine, eps=eps
        )
    net.train()
    parameters = [p for p in net.parameters() if p.requires_grad]

    records: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "mean",
            "variance",
            "skewness",
            "kurtosis",
            "correlation",
            "pre",
            "gamma",
            "beta",
        )
    }

    def record() -> None:
        z, h = net.batch_hidden(P)
        moments = hidden_moments(h.numpy())
        records["mean"].append(moments.mean)
        records["variance"].append(moments.variance)
        records["skewness"].append(moments.skewness)
        records["kurtosis"].append(moments.kurtosis)
        records["correlation"].append(moments.correlation)
        zc = z.numpy() - z.numpy().mean(axis=0)
        records["pre"].append(np.mean(zc * zc, axis=0))
        if batch_norm:
            gamma, beta = net.affine()
            records["gamma"].append(gamma)
            records["beta"].append(beta)

    record()
    losses = np.empty(steps)
    for step in range(steps):
        idx = torch.from_numpy(
            order.choice(n_train, size=batch_size, replace=False)
        )
        loss = nn.functional.binary_cross_entropy_with_logits(
            net(X[idx]), Y[idx]
        )
        grads = torch.autograd.grad(loss, parameters)
        # plain SGD, W <- W - lr * grad (torch.optim would import torch._dynamo: seconds)
        with torch.no_grad():
            for parameter, grad in zip(parameters, grads, strict=True):
                parameter -= lr * grad
        losses[step] = loss.item()
        record()

    return DriftTrace(
        batch_norm=batch_norm,
        learn_affine=learn_affine,
        lr=lr,
        eps=eps,
        means=np.array(records["mean"]),
        variances=np.array(records["variance"]),
        skewness=np.array(records["skewness"]),
        kurtosis=np.array(records["kurtosis"]),
        correlations=np.array(records["correlation"]),
        pre_variances=np.array(records["pre"]),
        gammas=np.array(records["gamma"]) if batch_norm else None,
        betas=np.array(records["beta"]) if batch_norm else None,
        losses=losses,
        net=net,
    )


# --------------------------------------------------------------------------- figures


# The words of the page's two figures in every language of the site.
FIGURE_TEXT = FigureText(
    "covariate_shift",
    {
        "source": {
            "en": "source (trained on)",
            "ko": "소스 (학습에 쓴 도메인)",
            "zh": "源域（训练所用）",
        },
        "target": {
            "en": "target (tested on)",
            "ko": "타깃 (테스트한 도메인)",
            "zh": "目标域（测试所用）",
        },
        "points": {
            "en": "{domain}, y = {y}",
            "ko": "{domain}, y = {y}",
            "zh": "{domain}，y = {y}",
        },
        "rule": {
            "en": "rule: x₂ = x₁²/2",
            "ko": "규칙: x₂ = x₁²/2",
            "zh": "规则：x₂ = x₁²/2",
        },
        "linear": {
            "en": "linear model fitted on the source",
            "ko": "소스에서 적합한 선형 모델",
            "zh": "在源域上拟合的线性模型",
        },
        "x1": {"en": "$x_1$", "ko": "$x_1$", "zh": "$x_1$"},
        "x2": {"en": "$x_2$", "ko": "$x_2$", "zh": "$x_2$"},
        "accuracy_title": {
            "en": "source accuracy {source:.2f}, target accuracy {target:.2f}",
            "ko": "소스 정확도 {source:.2f}, 타깃 정확도 {target:.2f}",
            "zh": "源域准确率 {source:.2f}，目标域准确率 {target:.2f}",
        },
        "no_bn": {"en": "no BN", "ko": "BN 없음", "zh": "不带 BN"},
        "bn": {"en": "BN", "ko": "BN 있음", "zh": "带 BN"},
        "mean": {"en": "mean", "ko": "평균", "zh": "均值"},
        "correlation": {"en": "correlation", "ko": "상관", "zh": "相关系数"},
        "series": {
            "en": "{net}: {quantity}",
            "ko": "{net}: {quantity}",
            "zh": "{net}：{quantity}",
        },
        "step": {"en": "SGD step", "ko": "SGD 단계", "zh": "SGD 步数"},
        "drift_axis": {
            "en": "largest change in one step ({window}-step average)",
            "ko": "한 단계의 가장 큰 변화 ({window}단계 평균)",
            "zh": "单步最大变化（{window} 步平均）",
        },
        "drift_title": {
            "en": "hidden units of the two-layer network on a fixed probe batch",
            "ko": "고정된 프로브 배치에서 본 2층 네트워크의 은닉 유닛",
            "zh": "固定探测批量上两层网络的隐藏单元",
        },
    },
)


def _figure_data(seed: int) -> dict:
    """What the two figures show, computed once for every language."""
    return {
        "report": covariate_shift_report("linear", n=2000, seed=seed),
        "source": sample_domain(150, SOURCE_MEAN, seed + 10),
        "target": sample_domain(150, TARGET_MEAN, seed + 11),
        "plain": layer_input_drift(batch_norm=False, seed=seed),
        "normed": layer_input_drift(batch_norm=True, seed=seed),
    }


def figures(seed: int = 0, lang: str = "en") -> dict[str, str]:
    """The page's two figures as SVG text in ``lang``, rendered deterministically.

    ``covariate-shift-domains.svg``: the two domains, the rule's boundary and the boundary
    of the linear model trained in the source. ``covariate-shift-drift.svg``: the change
    per step of the hidden units' mean and of their correlations, with and without BN.

    Parameters
    ----------
    seed : int, optional
        Passed to [`covariate_shift_report`][bnnotes.covariate_shift.covariate_shift_report]
        and [`layer_input_drift`][bnnotes.experiments.covariate_shift.layer_input_drift].
    lang : {"en", "ko", "zh"}, optional
        The language of every word on the figures.

    Returns
    -------
    dict
        File name -> SVG text, for the names in
        [`FIGURE_NAMES`][bnnotes.experiments.covariate_shift.FIGURE_NAMES].

    Raises
    ------
    ValueError
        For a ``lang`` that is not one of the site's languages.
    """
    check_language(lang)
    return _draw(_figure_data(seed), lang)


def _draw(data: dict, lang: str) -> dict[str, str]:
    from bnnotes.experiments.plotting import (
        COLORS,
        MARKED,
        language,
        new_figure,
        to_svg,
    )

    text = FIGURE_TEXT
    report = data["report"]
    with language(lang):
        fig, ax = new_figure(5.6, 3.8)
        for (x, y), color, marker, name in (
            (data["source"], "#111827", "o", "source"),
            (data["target"], COLORS["batchnorm"], "^", "target"),
        ):
            domain = text(name, lang)
            ax.scatter(
                x[y == 1, 0],
                x[y == 1, 1],
                s=9,
                marker=marker,
                color=color,
                label=text("points", lang, domain=domain, y=1),
            )
            ax.scatter(
                x[y == 0, 0],
                x[y == 0, 1],
                s=9,
                marker=marker,
                facecolors="none",
                edgecolors=color,
                linewidths=0.7,
                label=text("points", lang, domain=domain, y=0),
            )
        grid = np.linspace(-3.6, 3.6, 145)
        ax.plot(
            grid,
            boundary(grid),
            color="#4b5563",
            linewidth=1.5,
            label=text("rule", lang),
        )
        w = report.fit.weights
        ax.plot(
            grid,
            -(w[0] + w[1] * grid) / w[2],
            color=COLORS["baseline"],
            linestyle="--",
            linewidth=1.5,
            label=text("linear", lang),
        )
        ax.set_xlim(-3.6, 3.6)
        ax.set_ylim(-3.0, 8.0)
        ax.set_xlabel(text("x1", lang))
        ax.set_ylabel(text("x2", lang))
        ax.set_title(
            text(
                "accuracy_title",
                lang,
                source=report.source_test_accuracy,
                target=report.target_accuracy,
            ),
            fontsize=9,
        )
        ax.legend(fontsize=7, loc="upper center", ncol=2)
        domains = to_svg(fig, lang)

        window = 10
        kernel = np.full(window, 1.0 / window)
        steps = np.arange(window, data["plain"].losses.size + 1)
        fig, ax = new_figure(5.6, 3.8)
        for trace, color, marks, name in (
            (data["plain"], COLORS["baseline"], MARKED["baseline"], "no_bn"),
            (data["normed"], COLORS["batchnorm"], MARKED["batchnorm"], "bn"),
        ):
            for attribute, style, quantity in (
                ("mean_change", "-", "mean"),
                ("correlation_change", ":", "correlation"),
            ):
                smooth = np.convolve(
                    getattr(trace, attribute), kernel, mode="valid"
                )
                ax.semilogy(
                    steps,
                    smooth,
                    color=color,
                    linestyle=style,
                    linewidth=1.5,
                    **marks,
                    label=text(
                        "series",
                        lang,
                        net=text(name, lang),
                        quantity=text(quantity, lang),
                    ),
                )
        ax.set_ylim(1e-3, 10.0)
        ax.set_xlabel(text("step", lang))
        ax.set_ylabel(text("drift_axis", lang, window=window), fontsize=9)
        ax.set_title(text("drift_title", lang), fontsize=9)
        ax.legend(fontsize=8, ncol=2, loc="upper center")
        drift = to_svg(fig, lang)
    return dict(zip(FIGURE_NAMES, (domains, drift), strict=True))


def write_figures(directory: Path | None = None, seed: int = 0) -> list[Path]:
    """Write [`figures`][bnnotes.experiments.covariate_shift.figures] in every language of the site.

    Each language goes to ``directory/<lang>/`` (default ``docs/assets/figures``); the
    data are computed once.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    if directory is None:
        from bnnotes.experiments import FIGURES_DIR

        directory = FIGURES_DIR
    data = _figure_data(seed)
    written = []
    for lang in LANGUAGES:
        folder = Path(directory) / lang
        folder.mkdir(parents=True, exist_ok=True)
        for name, svg in _draw(data, lang).items():
            path = folder / name
            path.write_text(svg, encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover
    for path in write_figures():
        print(path)
