r"""Santurkar et al. (2018, §3.3) in small: ℓ1, ℓ2 and ℓ∞ normalization of
activations against BatchNorm.

Two models, each without normalization, with BatchNorm, and with
[`LpNorm`][bnnotes.torch_layers.LpNorm] for $p = 1, 2, \infty$ after every hidden weight
layer:

* the VGG-style network of [`noisy_bn`][bnnotes-experiments-noisy-bn] on the digits
  (or CIFAR-10 with ``--data-dir``), trained with plain SGD. Besides the accuracy curves it
  records the drift of one layer's pre-activations (as the noisy-BN experiment does) and,
  every few
  steps, a landscape probe along the gradient ([`bnnotes.landscape.probe`][bnnotes.landscape.probe])
  with step sizes from $\tfrac12$ to $4$ times the learning rate;
* the deep linear network (DLN) of [`bnnotes.models.deep_linear`][bnnotes.models.deep_linear]:
  25 layers of $10 \times 10$, trained by full-batch gradient descent on
  $\mathcal L = \frac1n \sum_i \lVert f(x_i) - A x_i \rVert_2^2$ with
  $x_i \sim \mathcal N(0, I_{10})$ and $A$ a $10 \times 10$ matrix of independent standard
  Gaussians, as in Santurkar et al.'s DLN. Their learning rate $10^{-6}$ and 10,000 steps belong to
  their data scale, which the source does not give; here the loss is a mean over ``dln_samples``
  points and the learning rate is ``dln_lr``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bnnotes.experiments import Experiment, RunConfig, one_thread
from bnnotes.experiments._common import (
    COLORS,
    LINESTYLES,
    ActivationRecorder,
    accuracy_figure,
    distribution_figure,
    load_data,
    round_values,
    settings_for,
    summarize,
    train_vgg,
)
from bnnotes.experiments._common import TEXT as NAMES
from bnnotes.experiments.plotting import language, subplots, to_svg
from bnnotes.experiments.progress import Progress
from bnnotes.figure_text import FigureText
from bnnotes.models import deep_linear, image_shape, images, weight_layers

__all__ = [
    "EXPERIMENT",
    "FULL",
    "PAPER",
    "QUICK",
    "VARIANTS",
    "dln_data",
    "dln_figure",
    "dln_loss",
    "figures",
    "landscape_figure",
    "run",
    "train_dln",
]

FULL = {
    "steps": 600,
    "eval_every": 25,
    "record_every": 10,
    "batch_size": 128,
    "lr": 0.1,
    "seeds": 2,
    "widths": [16, 32, 64],
    "convs_per_stage": 2,
    "hidden": 128,
    "probe_layer": 3,
    "probe_channel": 0,
    "accuracy_threshold": 0.9,
    "landscape_every": 50,
    "landscape_multipliers": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0],
    "dln_steps": 1500,
    "dln_lr": 1e-3,
    "dln_samples": 1000,
    "dln_dim": 10,
    "dln_depth": 25,
    "dln_seeds": 3,
    "dln_record_every": 10,
    "dln_probe_layer": 12,
}
QUICK = {
    **FULL,
    "steps": 200,
    "seeds": 1,
    "landscape_every": 100,
    "dln_steps": 400,
    "dln_seeds": 1,
}
VARIANTS = ("none", "batch", "l1", "l2", "linf")

#: What Santurkar et al. (2018, §3.3) report, for comparison.
PAPER = {
    "dln_setup": "25 layers, loss ||W_1...W_25 x - A x||^2 with A a random 10x10 Gaussian matrix, "
    "full-batch gradient descent, 10,000 steps, learning rate 1e-6 (one secondary source)",
    "claims": [
        "all lp variants offer comparable performance to BatchNorm",
        "for deep linear networks, l1 normalization performs even better than BatchNorm",
        "all give similar landscape smoothing",
        "lp normalization leads to larger distributional shift than the unnormalized network",
    ],
}


def dln_data(
    samples: int, dim: int, seed: int, dtype=torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs $x_i \\sim \\mathcal N(0, I)$ (rows), targets $A x_i$ and the matrix $A$
    (standard Gaussian entries)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=g, dtype=dtype)
    x = torch.randn(samples, dim, generator=g, dtype=dtype)
    return x, x @ a.T, a


def dln_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the squared error summed over the output coordinates."""
    return (output - target).square().sum(dim=1).mean()


def _dln_probe_module(model: nn.Sequential, layer: int) -> nn.Module:
    """The output module of weight layer ``layer``: its norm when there is
    one, else the layer itself."""
    layers = weight_layers(model)
    if not 0 <= layer < len(layers):
        raise ValueError(
            f"dln_probe_layer must be in 0..{len(layers) - 1}, got {layer}"
        )
    modules = list(model)
    index = modules.index(layers[layer])
    if index + 1 < len(modules) and not isinstance(
        modules[index + 1], nn.Linear
    ):
        index += 1
    return modules[index]


def train_dln(
    norm: str,
    settings: dict,
    seed: int,
    device: str,
    progress: Progress | None = None,
    done: int = 0,
) -> dict:
    """Full-batch gradient descent on the DLN; return the loss every
    ``dln_record_every`` steps and the drift."""
    x, y, _ = dln_data(settings["dln_samples"], settings["dln_dim"], seed)
    x, y = x.to(device), y.to(device)
    torch.manual_seed(seed)
    model = (
        deep_linear(settings["dln_dim"], settings["dln_depth"], norm)
        .double()
        .to(device)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=settings["dln_lr"])
    recorder = ActivationRecorder(
        _dln_probe_module(model, settings["dln_probe_layer"]),
        0,
        settings["dln_record_every"],
    )
    raw = ActivationRecorder(
        weight_layers(model)[settings["dln_probe_layer"]],
        0,
        1,
        percentiles=False,
    )
    record = {"steps": [], "loss": [], "diverged_at": None}
    model.train()
    for step in range(settings["dln_steps"] + 1):
        recorder.step = step
        loss = dln_loss(model(x), y)
        if step % settings["dln_record_every"] == 0:
            record["steps"].append(step)
            record["loss"].append(loss.item())
        if not bool(torch.isfinite(loss)):
            record["diverged_at"] = step
            break
        if step == settings["dln_steps"]:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None and step % 50 == 0:
            progress.update(
                done + step, part="dln", variant=norm, loss=loss.item()
            )
    recorder.remove()
    raw.remove()
    record["loss"] = round_values(record["loss"])
    record["drift"] = recorder.drift()
    record["drift_raw"] = raw.drift()
    return record


def run(config: RunConfig) -> dict:
    """Train the VGG-style net and the DLN with every normalization; return
    curves, probes and summaries."""
    settings = settings_for(config, FULL, QUICK)
    data = load_data(config)
    image_shape(data.num_features)
    tensors = images(data, config.device)
    with one_thread():
        seeds = [config.seed + k for k in range(settings["seeds"])]
        dln_seeds = [config.seed + k for k in range(settings["dln_seeds"])]
        total = len(VARIANTS) * (
            len(seeds) * settings["steps"]
            + len(dln_seeds) * settings["dln_steps"]
        )
        progress = Progress(total, "lp_norm", enabled=config.progress)
        landscape = {
            "every": settings["landscape_every"],
            "multipliers": settings["landscape_multipliers"],
        }
        results = {
            "settings": settings,
            "data": data.name,
            "paper": PAPER,
            "vgg": {"runs": {}, "summary": {}},
            "dln": {"runs": {}, "summary": {}},
        }
        done = 0
        for variant in VARIANTS:
            runs = []
            for k, seed in enumerate(seeds):
                runs.append(
                    train_vgg(
                        variant,
                        tensors,
                        settings,
                        seed,
                        config.device,
                        record_percentiles=k == 0,
                        landscape=landscape,
                        progress=progress,
                        done=done,
                    )
                )
                done += settings["steps"]
            summary = summarize(runs, settings)
            for key in (
                "gradient_predictiveness",
                "beta_smoothness",
                "loss_variation",
            ):
                values = [
                    v
                    for r in runs
                    for v in r["landscape"][key]
                    if v is not None
                ]
                summary[f"{key}_median"] = (
                    float(np.median(values)) if values else None
                )
            results["vgg"]["runs"][variant] = runs
            results["vgg"]["summary"][variant] = summary
        for variant in VARIANTS:
            runs = []
            for seed in dln_seeds:
                runs.append(
                    train_dln(
                        variant, settings, seed, config.device, progress, done
                    )
                )
                done += settings["dln_steps"]
            finals = [
                r["loss"][-1] if r["diverged_at"] is None else None
                for r in runs
            ]
            results["dln"]["runs"][variant] = runs
            results["dln"]["summary"][variant] = {
                "final_loss": finals,
                "final_loss_median": None
                if None in finals
                else float(np.median(finals)),
                "mean_drift": float(
                    np.mean([r["drift"]["mean_drift"] for r in runs])
                ),
                "scale_drift": float(
                    np.mean([r["drift"]["scale_drift"] for r in runs])
                ),
                "raw_mean_drift": float(
                    np.mean([r["drift_raw"]["mean_drift"] for r in runs])
                ),
                "raw_scale_drift": float(
                    np.mean([r["drift_raw"]["scale_drift"] for r in runs])
                ),
            }
        progress.update(total)
    return results


# The words of the lp_norm figures; the variant names, axis words and the distribution
# figure come from the VGG experiments' shared table (bnnotes.experiments._common.TEXT).
TEXT = FigureText(
    "lp_norm",
    {
        "dln_step": {
            "en": "step (full-batch gradient descent)",
            "ko": "단계 (전체 배치 경사 하강법)",
            "zh": "步数（全批量梯度下降）",
        },
        "train_loss": {
            "en": "training loss",
            "ko": "학습 손실",
            "zh": "训练损失",
        },
        "dln_title": {
            "en": "{depth}-layer deep linear network (faded: other seeds)",
            "ko": "{depth}층 심층 선형 네트워크 (흐린 선: 나머지 시드)",
            "zh": "{depth} 层深度线性网络（浅色线：其余种子）",
        },
        "gradient_change": {
            "en": "max ℓ2 change in gradient",
            "ko": "그래디언트의 최대 ℓ2 변화",
            "zh": "梯度的最大 ℓ2 变化",
        },
        "beta": {
            "en": "effective β-smoothness",
            "ko": "유효 β-매끄러움",
            "zh": "有效 β-光滑性",
        },
        "landscape_title": {
            "en": "Landscape along the gradient, step sizes ½ to 4 × learning "
            "rate (first seed)",
            "ko": "그래디언트 방향의 손실 지형, 스텝 크기는 학습률의 ½–4배 "
            "(첫 번째 시드)",
            "zh": "沿梯度方向的损失曲面，步长为学习率的 ½ 到 4 倍（第一个种子）",
        },
        "accuracy_title": {
            "en": "VGG-style network: BatchNorm and ℓp normalization "
            "(mean over seeds)",
            "ko": "VGG 스타일 네트워크: BN과 ℓp 정규화 (시드 평균)",
            "zh": "VGG 风格网络：BN 与 ℓp 归一化（各种子的平均）",
        },
    },
)


def dln_figure(results: dict, lang: str) -> str:
    """DLN training loss against steps (log scale), one line per seed and normalization.

    The first seed is drawn opaque, the others faded; call inside ``language(lang)``.
    """
    fig, axes = subplots(1, 1, 5.5, 3.6)
    ax = axes[0]
    for variant in VARIANTS:
        for k, record in enumerate(results["dln"]["runs"][variant]):
            loss = np.array(
                [np.nan if v is None else v for v in record["loss"]],
                dtype=float,
            )
            ax.plot(
                record["steps"],
                loss,
                color=COLORS[variant],
                linestyle=LINESTYLES[variant],
                alpha=1.0 if k == 0 else 0.35,
                linewidth=1.4 if k == 0 else 0.8,
                label=NAMES(variant, lang) if k == 0 else None,
            )
    ax.set_yscale("log")
    ax.set_xlabel(TEXT("dln_step", lang))
    ax.set_ylabel(TEXT("train_loss", lang))
    ax.set_title(
        TEXT("dln_title", lang, depth=results["settings"]["dln_depth"]),
        fontsize=9,
    )
    ax.legend(loc="upper right", fontsize=8)
    return to_svg(fig, lang)


def landscape_figure(results: dict, lang: str) -> str:
    """Gradient predictiveness and effective beta-smoothness along the gradient over
    training (log scale); call inside ``language(lang)``."""
    fig, axes = subplots(1, 2, 9.0, 3.4)
    for ax, key, name in (
        (axes[0], "gradient_predictiveness", "gradient_change"),
        (axes[1], "beta_smoothness", "beta"),
    ):
        for variant in VARIANTS:
            record = results["vgg"]["runs"][variant][0]["landscape"]
            values = np.array(
                [np.nan if v is None else v for v in record[key]], dtype=float
            )
            ax.plot(
                record["steps"],
                values,
                color=COLORS[variant],
                linestyle=LINESTYLES[variant],
                marker=".",
                label=NAMES(variant, lang),
            )
        ax.set_yscale("log")
        ax.set_xlabel(NAMES("step", lang))
        ax.set_ylabel(TEXT(name, lang))
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle(TEXT("landscape_title", lang))
    return to_svg(fig, lang)


def figures(results: dict, lang: str) -> dict[str, str]:
    """Accuracy curves and landscape probes of the VGG-style net, activation bands, and the
    DLN loss, every word in ``lang``."""
    vgg_results = {
        "settings": results["settings"],
        "runs": results["vgg"]["runs"],
    }
    with language(lang):
        return {
            "lp_norm-accuracy.svg": accuracy_figure(
                vgg_results, VARIANTS, TEXT("accuracy_title", lang), lang
            ),
            "lp_norm-landscape.svg": landscape_figure(results, lang),
            "lp_norm-distributions.svg": distribution_figure(
                vgg_results, VARIANTS, lang
            ),
            "lp_norm-dln.svg": dln_figure(results, lang),
        }


EXPERIMENT = Experiment(
    name="lp_norm",
    summary="Santurkar et al. §3.3 in small: l1, l2, linf normalization vs BN on a VGG-style net "
    "and a 25-layer DLN",
    run=run,
    figures=figures,
)
