r"""Santurkar et al. (2018), Figures 3 and 4 (deep linear network) in small: ICS and landscape.

A deep linear network (DLN) of 25 layers ``Linear(10, 10, bias=False)``
([`bnnotes.models.deep_linear`][bnnotes.models.deep_linear], Glorot initialization), with
or without BN after every layer, is fit by full-batch gradient descent to a random linear
map: the loss is

$$\mathcal L = \frac1n \sum_{s=1}^n \big\lVert f(x_s) - A x_s \big\rVert_2^2,$$

with $n$ samples $x_s \sim \mathcal N(0, I_{10})$ and a $10 \times 10$ matrix $A$ of
independent standard normal entries, as in the paper's setup. Without BN,
$f(x) = W_{25} \cdots W_1 x$.

Santurkar et al. run 10,000 steps at learning rate $10^{-6}$. Their loss scale and
initialization are not known to us; with the mean over samples and Glorot initialization
used here, gradient descent behaves like gradient flow run for a time of learning rate
times steps, and $10^{-6} \times 10^4 = 0.01$ is the time our run reaches after 100 steps at
$10^{-4}$, where the standard DLN's loss has barely moved. The default here is therefore
$10^{-4}$ for 10,000 steps, with runs at $10^{-5}$ and $3 \cdot 10^{-4}$ to show how the
picture depends on the rate. Both networks start from the same weights (the same seed, and
BN draws nothing) and everything is in float64.

At regular steps the run records the ICS of Definition 2.1 for every layer
([`bnnotes.ics.gradient_ics`][bnnotes.ics.gradient_ics]) and probes the landscape along
the gradient ([`bnnotes.landscape.probe`][bnnotes.landscape.probe]) with step sizes from
$\tfrac1{100}$ to 30 times the learning rate, the range of the paper's DLN probes
as a secondary source reports it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bnnotes.experiments import Experiment, RunConfig, one_thread
from bnnotes.experiments.plotting import (
    COLORS,
    MARKED,
    NORM_STYLE,
    language,
    new_figure,
    subplots,
    to_svg,
)
from bnnotes.experiments.progress import Progress
from bnnotes.figure_text import FigureText
from bnnotes.ics import gradient_ics
from bnnotes.landscape import probe
from bnnotes.models import deep_linear

__all__ = [
    "EXPERIMENT",
    "FULL",
    "PAPER",
    "QUICK",
    "figures",
    "make_data",
    "run",
    "squared_error",
    "summarize",
    "train_one",
]

FULL = {
    "steps": 10_000,
    "lrs": [1e-4, 1e-5, 3e-4],
    "samples": 1000,
    "dim": 10,
    "depth": 25,
    "loss_every": 10,
    "ics_every": 200,
    "probe_every": 250,
    "probe_multiples": np.round(np.geomspace(0.01, 30, 10), 6).tolist(),
}
QUICK = {**FULL, "steps": 1000, "ics_every": 100, "probe_every": 250}
NORMS = ("none", "batch")
LABELS = {"none": "standard", "batch": "BN"}  # progress bar; figures use TEXT
COLOR = {"none": COLORS["baseline"], "batch": COLORS["batchnorm"]}
STYLE = {"none": NORM_STYLE["baseline"], "batch": NORM_STYLE["batchnorm"]}
MARKS = {"none": MARKED["baseline"], "batch": MARKED["batchnorm"]}

#: What Santurkar et al. (2018) report for the DLN.
PAPER = {
    "setup": "25-layer DLN, loss ||W_1...W_25 x - A x||^2, A random 10x10 Gaussian, synthetic "
    "Gaussian data, full-batch gradient descent, 10,000 steps, learning rate 1e-6 "
    "(Santurkar et al., 2018, §2)",
    "lr": 1e-6,
    "steps": 10_000,
    "probe_multiples": [0.01, 30],
    "ics": "the standard DLN has almost no ICS for the whole run, while with BN G and G' look "
    "nearly uncorrelated (Santurkar et al., 2018, Fig. 3)",
}


def make_data(
    samples: int, dim: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs ``x`` (samples, dim) ~ N(0, I), a matrix ``A`` (dim, dim) ~ N(0, 1) and
    targets ``x A^T``, float64."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, dim, generator=generator, dtype=torch.float64)
    a = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return x, a, x @ a.T


def squared_error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the squared Euclidean distance ||out - target||^2."""
    return ((out - target) ** 2).sum(dim=1).mean()


def _finite(value: float) -> float | None:
    """The value rounded to 6 significant digits, None for nan or inf (JSON has neither)."""
    return float(f"{value:.6g}") if math.isfinite(value) else None


def _finite_list(values) -> list:
    return [_finite(v) for v in np.asarray(values, dtype=float).ravel()]


def train_one(
    norm: str,
    lr: float,
    settings: dict,
    data,
    seed: int,
    progress: Progress | None = None,
    done: int = 0,
) -> dict:
    """Full-batch gradient descent on one DLN; ICS, landscape probes and loss along the way."""
    x, _, y = data
    torch.manual_seed(seed)
    model = deep_linear(settings["dim"], settings["depth"], norm).double()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    step_sizes = [m * lr for m in settings["probe_multiples"]]
    record = {
        "lr": lr,
        "loss_steps": [],
        "loss": [],
        "ics_steps": [],
        "l2": [],
        "cosine": [],
        "grad_norm": [],
        "probe_steps": [],
        "loss_variation": [],
        "gradient_predictiveness": [],
        "beta_smoothness": [],
        "diverged_at": None,
    }
    steps = settings["steps"]
    for step in range(steps + 1):
        if step % settings["ics_every"] == 0 or step == steps:
            result = gradient_ics(model, squared_error, x, y, lr)
            record["ics_steps"].append(step)
            record["l2"].append(_finite_list(result.l2))
            record["cosine"].append(_finite_list(result.cosine))
            record["grad_norm"].append(_finite_list(result.grad_norm))
        if step % settings["probe_every"] == 0 or step == steps:
            landscape = probe(model, squared_error, x, y, step_sizes)
            record["probe_steps"].append(step)
            record["loss_variation"].append(_finite(landscape.loss_variation))
            record["gradient_predictiveness"].append(
                _finite(landscape.gradient_predictiveness)
            )
            record["beta_smoothness"].append(
                _finite(landscape.beta_smoothness)
            )
        loss = squared_error(model(x), y)
        if step % settings["loss_every"] == 0 or step == steps:
            record["loss_steps"].append(step)
            record["loss"].append(_finite(loss.item()))
        if not torch.isfinite(loss):
            record["diverged_at"] = step
            break
        if step == steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress.update(
                done + step + 1,
                net=LABELS[norm],
                lr=f"{lr:g}",
                loss=loss.item(),
            )
    return record


def _array(rows) -> np.ndarray:
    return np.asarray(
        [[np.nan if v is None else v for v in row] for row in rows],
        dtype=float,
    )


def summarize(record: dict) -> dict:
    """Over the run: mean, min and max of the cosine and relative l2 (layers
    2..k), medians of the probes."""
    cos = _array(record["cosine"])[:, 1:]
    relative = (_array(record["l2"]) / _array(record["grad_norm"]))[:, 1:]
    per_time_cos = np.nanmean(cos, axis=1)
    loss = dict(zip(record["loss_steps"], record["loss"], strict=True))
    probes = {
        key: np.asarray(
            [np.nan if v is None else v for v in record[key]], dtype=float
        )
        for key in (
            "loss_variation",
            "gradient_predictiveness",
            "beta_smoothness",
        )
    }
    return {
        "initial_loss": loss[0],
        "loss_at_100": loss.get(100),
        "final_loss": record["loss"][-1],
        "diverged_at": record["diverged_at"],
        "cosine_mean": round(float(np.nanmean(cos)), 6),
        "cosine_min_over_time": round(float(np.nanmin(per_time_cos)), 6),
        "cosine_max_over_time": round(float(np.nanmax(per_time_cos)), 6),
        "cosine_after_start": round(float(np.nanmean(cos[1:])), 6)
        if len(cos) > 1
        else None,
        "relative_l2_mean": round(float(np.nanmean(relative)), 6),
        "relative_l2_max": round(float(np.nanmax(relative)), 6),
        "cosine_per_layer": np
        .nanmean(_array(record["cosine"]), axis=0)
        .round(6)
        .tolist(),
        **{
            f"{key}_median": round(float(np.nanmedian(values)), 6)
            for key, values in probes.items()
        },
    }


def run(config: RunConfig) -> dict:
    """Run gradient descent on the standard and the BN DLN at each learning rate."""
    if config.data_dir is not None:
        raise ValueError(
            "deep_linear uses synthetic data only; --data-dir is not used"
        )
    if config.device != "cpu":
        raise ValueError(
            "deep_linear runs on the CPU only (its tensors are 10 x 10)"
        )
    settings = {**(QUICK if config.quick else FULL), **config.overrides}
    data = make_data(settings["samples"], settings["dim"], config.seed)
    total = len(settings["lrs"]) * len(NORMS) * settings["steps"]
    progress = Progress(total, "deep_linear", enabled=config.progress)
    with one_thread():
        runs, done = {}, 0
        for lr in settings["lrs"]:
            runs[repr(lr)] = {}
            for norm in NORMS:
                runs[repr(lr)][norm] = train_one(
                    norm, lr, settings, data, config.seed, progress, done
                )
                done += settings["steps"]
    return {
        "settings": settings,
        "data": f"synthetic: {settings['samples']} samples x ~ N(0, I_{settings['dim']}), "
        "targets A x",
        "paper": PAPER,
        "runs": runs,
        "summary": {
            lr: {norm: summarize(r) for norm, r in by_norm.items()}
            for lr, by_norm in runs.items()
        },
    }


# The words of the deep_linear figures in every language.
TEXT = FigureText(
    "deep_linear",
    {
        "none": {"en": "standard", "ko": "표준 네트워크", "zh": "普通网络"},
        "batch": {"en": "BN", "ko": "BN 네트워크", "zh": "BN 网络"},
        "net_lr": {
            "en": "{net}, lr {lr}",
            "ko": "{net}, 학습률 {lr}",
            "zh": "{net}，学习率 {lr}",
        },
        "step": {
            "en": "gradient descent step",
            "ko": "경사 하강법 단계",
            "zh": "梯度下降步数",
        },
        "loss": {
            "en": "loss (mean squared error)",
            "ko": "손실 (평균 제곱 오차)",
            "zh": "损失（均方误差）",
        },
        "loss_title": {
            "en": "{depth}-layer deep linear network",
            "ko": "{depth}층 심층 선형 네트워크",
            "zh": "{depth} 层深度线性网络",
        },
        "layer": {"en": "layer {n}", "ko": "{n}번째 층", "zh": "第 {n} 层"},
        "l2": {"en": "‖G − G′‖₂", "ko": "‖G − G′‖₂", "zh": "‖G − G′‖₂"},
        "cosine": {
            "en": "cosine of G and G′",
            "ko": "G와 G′의 코사인",
            "zh": "G 与 G′ 的余弦",
        },
        "ics_title": {
            "en": "Gradient ICS (Definition 2.1) of the deep linear network, "
            "lr {lr}",
            "ko": "심층 선형 네트워크의 그래디언트 ICS (정의 2.1), 학습률 {lr}",
            "zh": "深度线性网络的梯度 ICS（定义 2.1），学习率 {lr}",
        },
        "loss_variation": {
            "en": "variation of loss",
            "ko": "손실의 변동",
            "zh": "损失的变化幅度",
        },
        "gradient_predictiveness": {
            "en": "max gradient change",
            "ko": "최대 그래디언트 변화",
            "zh": "最大梯度变化",
        },
        "beta_smoothness": {
            "en": "effective β-smoothness",
            "ko": "유효 β-매끄러움",
            "zh": "有效 β-光滑性",
        },
        "landscape_title": {
            "en": "Landscape along the gradient, steps {low} to {high} × lr {lr}",
            "ko": "그래디언트 방향의 손실 지형, 스텝 크기는 학습률 {lr}의 "
            "{low}–{high}배",
            "zh": "沿梯度方向的损失曲面，步长为学习率 {lr} 的 {low} 到 {high} 倍",
        },
        "mean_cosine": {
            "en": "cosine of G and G′ (mean of layers 2..{depth})",
            "ko": "G와 G′의 코사인 (2..{depth}번째 층의 평균)",
            "zh": "G 与 G′ 的余弦（第 2..{depth} 层的平均）",
        },
        "lr_beta": {
            "en": "lr × effective β-smoothness",
            "ko": "학습률 × 유효 β-매끄러움",
            "zh": "学习率 × 有效 β-光滑性",
        },
        "stability_title": {
            "en": "ICS and the stability threshold lr × β = 2 (thick grey line)",
            "ko": "ICS와 안정성 문턱값 학습률 × β = 2 (굵은 회색 선)",
            "zh": "ICS 与稳定性阈值 学习率 × β = 2（粗灰线）",
        },
    },
)


def figures(results: dict, lang: str) -> dict[str, str]:
    """Loss curves; ICS (l2, cosine) over steps for four layers; the landscape probes over
    steps; the mean cosine and lr times the effective beta-smoothness of every run; every
    word in ``lang``."""
    with language(lang):
        return _figures(results, lang)


def _figures(results: dict, lang: str) -> dict[str, str]:
    runs = results["runs"]
    lrs = [
        repr(lr) for lr in results["settings"]["lrs"]
    ]  # the run order; the stored JSON sorts its keys
    main = lrs[0]
    styles = ["-", "--", ":", "-."]

    def net_lr(norm: str, lr: str) -> str:
        return TEXT("net_lr", lang, net=TEXT(norm, lang), lr=f"{float(lr):g}")

    fig, ax = new_figure(5.0, 3.4)
    for k, lr in enumerate(lrs):
        for norm in NORMS:
            r = runs[lr][norm]
            loss = [np.nan if v is None else v for v in r["loss"]]
            ax.plot(
                r["loss_steps"],
                loss,
                color=COLOR[norm],
                linestyle=styles[k % 4],
                **MARKS[norm],
                label=net_lr(norm, lr),
            )
    ax.set_yscale("log")
    ax.set_xlabel(TEXT("step", lang))
    ax.set_ylabel(TEXT("loss", lang))
    ax.set_title(
        TEXT("loss_title", lang, depth=len(runs[main]["none"]["l2"][0]))
    )
    ax.legend(loc="lower left", fontsize=8)
    out = {"deep_linear-loss.svg": to_svg(fig, lang)}

    depth = len(runs[main]["none"]["l2"][0])
    layers = sorted({1, depth // 3, (2 * depth) // 3, depth - 1})
    fig, flat = subplots(2, len(layers), 2.6 * len(layers), 5.0)
    axes = flat.reshape(2, len(layers))
    for col, layer in enumerate(layers):
        for norm in NORMS:
            r = runs[main][norm]
            for row, key in enumerate(("l2", "cosine")):
                axes[row][col].plot(
                    r["ics_steps"],
                    _array(r[key])[:, layer],
                    **STYLE[norm],
                    label=TEXT(norm, lang),
                )
        axes[0][col].set_yscale("log")
        axes[0][col].set_title(TEXT("layer", lang, n=layer + 1))
        axes[1][col].set_ylim(-1.05, 1.05)
        axes[1][col].set_xlabel(TEXT("step", lang))
    axes[0][0].set_ylabel(TEXT("l2", lang))
    axes[1][0].set_ylabel(TEXT("cosine", lang))
    axes[1][0].legend(loc="lower left")
    fig.suptitle(TEXT("ics_title", lang, lr=f"{float(main):g}"))
    out["deep_linear-ics.svg"] = to_svg(fig, lang)

    keys = ("loss_variation", "gradient_predictiveness", "beta_smoothness")
    fig, axes = subplots(1, 3, 9.0, 3.2)
    for col, key in enumerate(keys):
        for norm in NORMS:
            r = runs[main][norm]
            values = [np.nan if v is None else v for v in r[key]]
            axes[col].plot(
                r["probe_steps"],
                values,
                **STYLE[norm],
                label=TEXT(norm, lang),
            )
        axes[col].set_yscale("log")
        axes[col].set_title(TEXT(key, lang))
        axes[col].set_xlabel(TEXT("step", lang))
    axes[0].legend(loc="best")
    multiples = results["settings"]["probe_multiples"]
    fig.suptitle(
        TEXT(
            "landscape_title",
            lang,
            low=f"{min(multiples):g}",
            high=f"{max(multiples):g}",
            lr=f"{float(main):g}",
        )
    )
    out["deep_linear-landscape.svg"] = to_svg(fig, lang)

    fig, axes = subplots(1, 2, 9.0, 3.4)
    for k, lr in enumerate(lrs):
        for norm in NORMS:
            r = runs[lr][norm]
            cos = np.nanmean(_array(r["cosine"])[:, 1:], axis=1)
            axes[0].plot(
                r["ics_steps"],
                cos,
                color=COLOR[norm],
                linestyle=styles[k % 4],
                **MARKS[norm],
                label=net_lr(norm, lr),
            )
            beta = [
                np.nan if v is None else float(lr) * v
                for v in r["beta_smoothness"]
            ]
            axes[1].plot(
                r["probe_steps"],
                beta,
                color=COLOR[norm],
                linestyle=styles[k % 4],
                **MARKS[norm],
                label=net_lr(norm, lr),
            )
    axes[1].axhline(2.0, color="#777777", linewidth=2.5, alpha=0.5)
    axes[0].set_ylim(-1.05, 1.05)
    axes[0].set_ylabel(TEXT("mean_cosine", lang, depth=depth))
    axes[1].set_yscale("log")
    axes[1].set_ylabel(TEXT("lr_beta", lang))
    for ax in axes:
        ax.set_xlabel(TEXT("step", lang))
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(TEXT("stability_title", lang))
    out["deep_linear-stability.svg"] = to_svg(fig, lang)
    return out


EXPERIMENT = Experiment(
    name="deep_linear",
    summary="Santurkar et al. Figs. 3-4 (DLN) in small: ICS and landscape of a 25-layer linear "
    "net, with and without BN",
    run=run,
    figures=figures,
    accepts_data_dir=False,
)
