r"""Santurkar et al. (2018), Figure 3 (VGG) in small: gradient-based ICS with and without BN.

A VGG-style network ([`bnnotes.models.vgg`][bnnotes.models.vgg]: three stages of two 3x3
convolutions with 16, 32 and 64 channels, 2x2 max pooling between stages, then two fully
connected layers) trains on scikit-learn's 8x8 digits (offline) with plain SGD, batch 128
and learning rate 0.1, the optimizer, batch size and learning rate of the paper's VGG runs
. The two networks differ only in the normalization after each weight layer
but the last: none, or BN. Both are initialized (Glorot) under the same seed and see the
same batches in the same order.

At regular steps, before the SGD step, the ICS of Definition 2.1 is measured on the batch
of that step for every weight layer with [`bnnotes.ics.gradient_ics`][bnnotes.ics.gradient_ics]:
the $\ell_2$ difference $\lVert G - G' \rVert$ and the cosine of $G$ and $G'$. Training loss
and test accuracy are recorded along the way. The run is repeated over a few seeds.

With ``--data-dir`` the network is the wider CIFAR-10 version (3 input channels, 32x32
images, stages of 64, 128 and 256 channels) trained for the paper's 15,000 steps; that run
needs a GPU (``--device cuda``).
"""

from __future__ import annotations

import itertools
import math
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from bnnotes.data import Dataset, load_digits
from bnnotes.experiments import Experiment, RunConfig, one_thread
from bnnotes.experiments.plotting import (
    COLORS,
    NORM_STYLE,
    language,
    new_figure,
    subplots,
    to_svg,
)
from bnnotes.experiments.progress import Progress
from bnnotes.figure_text import FigureText
from bnnotes.ics import gradient_ics
from bnnotes.models import images, vgg, weight_layers

__all__ = [
    "EXPERIMENT",
    "FULL",
    "PAPER",
    "QUICK",
    "figures",
    "measurement_steps",
    "run",
    "shown_layers",
    "summarize",
    "train_one",
]

FULL = {
    "steps": 1500,
    "batch_size": 128,
    "lr": 0.1,
    "widths": [16, 32, 64],
    "hidden": 128,
    "ics_every": 25,
    "ics_dense_until": 100,
    "ics_dense_every": 5,
    "eval_every": 50,
    "early_steps": 50,
    "repeats": 3,
}
QUICK = {**FULL, "steps": 400, "ics_every": 50, "repeats": 1}
CIFAR_FULL = {
    **FULL,
    "steps": 15_000,
    "widths": [64, 128, 256],
    "hidden": 512,
    "ics_every": 250,
    "eval_every": 500,
    "repeats": 1,
}
CIFAR_QUICK = {**CIFAR_FULL, "steps": 500, "ics_every": 50}
NORMS = ("none", "batch")
LABELS = {"none": "standard", "batch": "BN"}  # progress bar; figures use TEXT
COLOR = {"none": COLORS["baseline"], "batch": COLORS["batchnorm"]}
STYLE = {"none": NORM_STYLE["baseline"], "batch": NORM_STYLE["batchnorm"]}

#: What Santurkar et al. (2018) report for their VGG on CIFAR-10.
PAPER = {
    "setup": "VGG on CIFAR-10, plain SGD, batch 128, learning rate 0.1, 15,000 steps "
    "(Santurkar et al., 2018, §2)",
    "test_accuracy": {"none": 0.80, "batch": 0.83},
    "ics": "BN networks show similar or even worse ICS (larger l2 difference, smaller cosine) "
    "despite better loss and accuracy (Santurkar et al., 2018, §2.2, Fig. 3)",
}


def measurement_steps(settings: dict) -> list[int]:
    """Steps at which ICS is measured: every ``ics_dense_every`` steps up to ``ics_dense_until``,
    then every ``ics_every`` steps, up to and including ``steps - 1`` (before the last step)."""
    last = settings["steps"] - 1
    dense = range(
        0,
        min(settings["ics_dense_until"], last + 1),
        settings["ics_dense_every"],
    )
    regular = range(0, last + 1, settings["ics_every"])
    return sorted(set(dense) | set(regular) | {last})


def _nan_to_none(values) -> list:
    """Floats rounded to 6 significant digits, None for nan or inf (JSON has neither)."""
    return [
        float(f"{v:.6g}") if math.isfinite(v) else None
        for v in np.asarray(values, dtype=float).ravel()
    ]


def train_one(
    norm: str,
    seed: int,
    settings: dict,
    tensors,
    shape,
    device: str,
    progress: Progress | None = None,
    done: int = 0,
) -> dict:
    """Train one network with SGD; measure ICS at the measurement steps; return the records."""
    x_train, y_train, x_test, y_test = tensors
    torch.manual_seed(seed)
    model = vgg(
        norm,
        in_channels=shape[0],
        image_size=shape[1],
        widths=tuple(settings["widths"]),
        hidden=settings["hidden"],
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings["lr"])
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    n, batch_size = len(x_train), settings["batch_size"]
    measure = set(measurement_steps(settings))
    record = {
        "seed": seed,
        "ics_steps": [],
        "l2": [],
        "cosine": [],
        "grad_norm": [],
        "batch_loss": [],
        "eval_steps": [],
        "train_loss": [],
        "test_accuracy": [],
    }
    window: list[float] = []
    order, position = torch.randperm(n, generator=generator), 0

    def evaluate(step: int) -> None:
        model.eval()
        with torch.no_grad():
            accuracy = (
                (model(x_test).argmax(dim=1) == y_test).double().mean().item()
            )
        model.train()
        record["eval_steps"].append(step)
        record["train_loss"].append(
            float(f"{np.mean(window):.6g}") if window else None
        )
        record["test_accuracy"].append(round(accuracy, 6))
        window.clear()

    model.train()
    for step in range(settings["steps"]):
        if (
            position + batch_size > n
        ):  # a new epoch: reshuffle, drop the last partial batch
            order, position = torch.randperm(n, generator=generator), 0
        index = order[position : position + batch_size].to(device)
        position += batch_size
        x, y = x_train[index], y_train[index]
        if step in measure:
            result = gradient_ics(model, loss_fn, x, y, settings["lr"])
            record["ics_steps"].append(step)
            record["l2"].append(_nan_to_none(result.l2))
            record["cosine"].append(_nan_to_none(result.cosine))
            record["grad_norm"].append(_nan_to_none(result.grad_norm))
            record["batch_loss"].append(float(f"{result.loss:.6g}"))
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append(loss.item())
        if (step + 1) % settings["eval_every"] == 0 or step + 1 == settings[
            "steps"
        ]:
            evaluate(step + 1)
        if progress is not None:
            progress.update(
                done + step + 1, net=LABELS[norm], seed=seed, loss=loss.item()
            )
    record["final_test_accuracy"] = record["test_accuracy"][-1]
    return record


def _mean(values) -> float:
    array = np.asarray(
        [np.nan if v is None else v for v in values], dtype=float
    )
    return float(np.nanmean(array))


def _mean_or_none(values: np.ndarray, digits: int) -> float | None:
    """The mean of the finite entries, rounded; None when there are none."""
    finite = values[np.isfinite(values)]
    return round(float(finite.mean()), digits) if finite.size else None


LOSS_BINS = (0.001, 0.01, 0.1, 1.0, 10.0)
"""Edges of the mini-batch loss bins in which the two networks are compared at equal loss."""


def _by_loss(
    loss: np.ndarray, cos: np.ndarray, relative: np.ndarray
) -> list[dict]:
    """Mean cosine and relative l2 over layers 2..k of the measurements whose
    batch loss lies in each bin."""
    out = []
    for low, high in itertools.pairwise(LOSS_BINS):
        inside = (loss >= low) & (loss < high)  # (seeds, times)
        count = int(inside.sum())
        out.append({
            "low": low,
            "high": high,
            "count": count,
            "cosine": _mean_or_none(cos[inside][:, 1:], 6),
            "relative_l2": _mean_or_none(relative[inside][:, 1:], 6),
        })
    return out


def summarize(runs: dict, settings: dict) -> dict:
    """Averages over seeds: per layer over the whole run, over layers 2..k
    early and late, accuracy."""
    summary = {}
    for norm, records in runs.items():
        steps = np.asarray(records[0]["ics_steps"])
        l2 = np.asarray(
            [r["l2"] for r in records], dtype=float
        )  # (seeds, times, layers)
        cos = np.asarray([r["cosine"] for r in records], dtype=float)
        gnorm = np.asarray([r["grad_norm"] for r in records], dtype=float)
        relative = l2 / gnorm
        early = steps < settings["early_steps"]
        summary[norm] = {
            "cosine_per_layer": np.nanmean(cos, axis=(0, 1)).round(6).tolist(),
            "l2_per_layer": np.nanmean(l2, axis=(0, 1)).round(8).tolist(),
            "relative_l2_per_layer": np
            .nanmean(relative, axis=(0, 1))
            .round(6)
            .tolist(),
            "grad_norm_per_layer": np
            .nanmean(gnorm, axis=(0, 1))
            .round(8)
            .tolist(),
            "cosine_early": _mean_or_none(cos[:, early, 1:], 6),
            "cosine_late": _mean_or_none(cos[:, ~early, 1:], 6),
            "l2_early": _mean_or_none(l2[:, early, 1:], 8),
            "l2_late": _mean_or_none(l2[:, ~early, 1:], 8),
            "relative_l2_early": _mean_or_none(relative[:, early, 1:], 6),
            "relative_l2_late": _mean_or_none(relative[:, ~early, 1:], 6),
            "by_loss": _by_loss(
                np.asarray([r["batch_loss"] for r in records], dtype=float),
                cos,
                relative,
            ),
            "final_test_accuracy": round(
                float(np.mean([r["final_test_accuracy"] for r in records])), 6
            ),
            "final_train_loss": round(
                _mean([r["train_loss"][-1] for r in records]), 6
            ),
        }
    return summary


def _load(config: RunConfig) -> tuple[Dataset, dict]:
    if config.data_dir is None:
        return load_digits(seed=0), (QUICK if config.quick else FULL)
    from bnnotes.data import load_cifar10

    return load_cifar10(config.data_dir), (
        CIFAR_QUICK if config.quick else CIFAR_FULL
    )


def run(config: RunConfig) -> dict:
    """Train the standard and the BN network for each seed; return ICS,
    loss and accuracy records."""
    data, defaults = _load(config)
    settings = {**defaults, **config.overrides}
    tensors = images(data, config.device)
    shape = tuple(tensors[0].shape[1:])
    layer_names = [
        type(m).__name__
        for m in weight_layers(
            vgg(
                "none",
                in_channels=shape[0],
                image_size=shape[1],
                widths=tuple(settings["widths"]),
                hidden=settings["hidden"],
            )
        )
    ]
    seeds = [config.seed + k for k in range(settings["repeats"])]
    total = len(NORMS) * len(seeds) * settings["steps"]
    progress = Progress(total, "ics", enabled=config.progress)
    with one_thread() if config.device == "cpu" else nullcontext():
        runs, done = {}, 0
        for norm in NORMS:
            runs[norm] = []
            for seed in seeds:
                runs[norm].append(
                    train_one(
                        norm,
                        seed,
                        settings,
                        tensors,
                        shape,
                        config.device,
                        progress,
                        done,
                    )
                )
                done += settings["steps"]
    return {
        "settings": settings,
        "data": data.name,
        "layers": layer_names,
        "seeds": seeds,
        "paper": PAPER,
        "runs": runs,
        "summary": summarize(runs, settings),
    }


def shown_layers(count: int) -> list[int]:
    """Four layers spread over the depth (0-based): the second, two in the middle, the last."""
    picks = [1, count // 3, (2 * count) // 3, count - 1]
    return sorted({min(max(p, 0), count - 1) for p in picks})


# The words of the ics figures in every language.
TEXT = FigureText(
    "ics",
    {
        "none": {"en": "standard", "ko": "표준 네트워크", "zh": "普通网络"},
        "batch": {"en": "BN", "ko": "BN 네트워크", "zh": "BN 网络"},
        "digits": {
            "en": "scikit-learn digits",
            "ko": "scikit-learn 손글씨 숫자",
            "zh": "scikit-learn 手写数字",
        },
        "step": {"en": "training step", "ko": "학습 단계", "zh": "训练步数"},
        "train_loss": {
            "en": "training loss (mini-batch mean)",
            "ko": "학습 손실 (미니배치 평균)",
            "zh": "训练损失（小批量平均）",
        },
        "test_accuracy": {
            "en": "test accuracy (%)",
            "ko": "테스트 정확도 (%)",
            "zh": "测试准确率（%）",
        },
        "training_title": {
            "en": "VGG-style network, {data}: training",
            "ko": "VGG 스타일 네트워크, {data}: 학습",
            "zh": "VGG 风格网络，{data}：训练",
        },
        "layer": {
            "en": "layer {n} ({name})",
            "ko": "{n}번째 층 ({name})",
            "zh": "第 {n} 层（{name}）",
        },
        "step_log": {
            "en": "training step (log above 10)",
            "ko": "학습 단계 (10부터 로그 눈금)",
            "zh": "训练步数（10 以上为对数刻度）",
        },
        "l2": {"en": "‖G − G′‖₂", "ko": "‖G − G′‖₂", "zh": "‖G − G′‖₂"},
        "cosine": {
            "en": "cosine of G and G′",
            "ko": "G와 G′의 코사인",
            "zh": "G 与 G′ 的余弦",
        },
        "ics_title": {
            "en": "Gradient ICS (Definition 2.1) of the VGG-style network",
            "ko": "VGG 스타일 네트워크의 그래디언트 ICS (정의 2.1)",
            "zh": "VGG 风格网络的梯度 ICS（定义 2.1）",
        },
        "loss_at_measurement": {
            "en": "mini-batch loss at the measurement",
            "ko": "측정 시점의 미니배치 손실",
            "zh": "测量时的小批量损失",
        },
        "mean_cosine": {
            "en": "cosine of G and G′ (mean of layers 2..k)",
            "ko": "G와 G′의 코사인 (2..k번째 층의 평균)",
            "zh": "G 与 G′ 的余弦（第 2..k 层的平均）",
        },
        "by_loss_title": {
            "en": "ICS against training progress",
            "ko": "학습 진행에 따른 ICS",
            "zh": "ICS 随训练进展的变化",
        },
    },
)


def figures(results: dict, lang: str) -> dict[str, str]:
    """Training curves, and ICS (l2, cosine) over steps for four layers, like the paper's
    Fig. 3; every word in ``lang``."""
    with language(lang):
        return _figures(results, lang)


def _figures(results: dict, lang: str) -> dict[str, str]:
    runs, names = results["runs"], results["layers"]
    fig, axes = subplots(1, 2, 8.0, 3.2)
    ax_loss, ax_acc = axes
    for norm in NORMS:
        steps = runs[norm][0]["eval_steps"]
        loss = np.nanmean(
            np.asarray([
                [np.nan if v is None else v for v in r["train_loss"]]
                for r in runs[norm]
            ]),
            axis=0,
        )
        acc = np.mean([r["test_accuracy"] for r in runs[norm]], axis=0)
        for ax, values in ((ax_loss, loss), (ax_acc, 100 * acc)):
            ax.plot(steps, values, **STYLE[norm], label=TEXT(norm, lang))
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel(TEXT("step", lang))
    ax_loss.set_ylabel(TEXT("train_loss", lang))
    ax_acc.set_xlabel(TEXT("step", lang))
    ax_acc.set_ylabel(TEXT("test_accuracy", lang))
    ax_loss.legend(loc="upper right")
    ax_acc.legend(loc="lower right")
    data = results["data"].split(" (")[0]
    if data == "scikit-learn digits":
        data = TEXT("digits", lang)
    fig.suptitle(TEXT("training_title", lang, data=data))
    out = {"ics-training.svg": to_svg(fig, lang)}

    layers = shown_layers(len(names))
    fig, flat = subplots(2, len(layers), 2.6 * len(layers), 5.0)
    axes = flat.reshape(2, len(layers))
    for col, layer in enumerate(layers):
        for norm in NORMS:
            steps = runs[norm][0]["ics_steps"]
            for row, key in enumerate(("l2", "cosine")):
                values = np.asarray([
                    [[np.nan if v is None else v for v in t] for t in r[key]]
                    for r in runs[norm]
                ])
                axes[row][col].plot(
                    steps,
                    np.nanmean(values[:, :, layer], axis=0),
                    **STYLE[norm],
                    label=TEXT(norm, lang),
                    linewidth=1.2,
                )
        axes[0][col].set_yscale("log")
        axes[0][col].set_title(
            TEXT("layer", lang, n=layer + 1, name=names[layer])
        )
        for row in range(2):
            axes[row][col].set_xscale("symlog", linthresh=10)
            axes[row][col].set_xlim(0, results["settings"]["steps"])
        axes[1][col].set_xlabel(TEXT("step_log", lang))
        axes[1][col].set_ylim(-1.05, 1.05)
    axes[0][0].set_ylabel(TEXT("l2", lang))
    axes[1][0].set_ylabel(TEXT("cosine", lang))
    axes[1][0].legend(loc="lower left")
    fig.suptitle(TEXT("ics_title", lang))
    out["ics-vgg.svg"] = to_svg(fig, lang)

    fig, ax = new_figure(5.0, 3.4)
    for norm in NORMS:
        loss = np.concatenate([r["batch_loss"] for r in runs[norm]])
        cos = np.concatenate([
            [
                np.nanmean([np.nan if v is None else v for v in t[1:]])
                for t in r["cosine"]
            ]
            for r in runs[norm]
        ])
        hollow = norm == "none"  # open circles without BN, filled with BN
        ax.scatter(
            loss,
            cos,
            s=12,
            facecolors="none" if hollow else COLOR[norm],
            edgecolors=COLOR[norm],
            alpha=0.7,
            label=TEXT(norm, lang),
            linewidths=0.8 if hollow else 0,
        )
    ax.set_xscale("log")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel(TEXT("loss_at_measurement", lang))
    ax.set_ylabel(TEXT("mean_cosine", lang))
    ax.legend(loc="lower left")
    ax.set_title(TEXT("by_loss_title", lang))
    out["ics-vgg-by-loss.svg"] = to_svg(fig, lang)
    return out


EXPERIMENT = Experiment(
    name="ics",
    summary="Santurkar et al. Fig. 3 (VGG) in small: gradient ICS per layer with and without BN",
    run=run,
    figures=figures,
)
