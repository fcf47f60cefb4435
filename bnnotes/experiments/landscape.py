r"""Santurkar et al. (2018, §3.2, Fig. 4) in small: the landscape along the
gradient, with and without BN.

A VGG-style network ([`bnnotes.models.vgg`][bnnotes.models.vgg]: three stages of two 3x3
convolutions, then two fully connected layers) is trained twice, without normalization
(``norm="none"``) and with BatchNorm after every weight layer but the last
(``norm="batch"``). Both start from the same weights (Glorot uniform, drawn in the same
order), see the same mini-batches of 128 and train with plain SGD at the same learning
rate. Every ``probe_every`` steps, before the update, the current mini-batch is probed
with [`bnnotes.landscape.probe`][bnnotes.landscape.probe] along the negative gradient at
step sizes $\eta \in [\tfrac12, 4] \times$ the learning rate, the range of Santurkar et al.
(2018, §3.2) for VGG. The probe runs in training mode, so the BN network normalizes with
the statistics of the probed batch: the function SGD optimizes. It records the range of
the loss (variation of loss), the largest $\ell_2$ change of the gradient (gradient
predictiveness) and the largest change per distance moved (effective $\beta$-smoothness).
A second probe moves along a random Gaussian direction scaled to the gradient's norm.
Training loss and accuracy on the whole training set and test accuracy are evaluated (in
evaluation mode) at the same steps.

By default the data are scikit-learn's 8x8 digits (offline); ``--data-dir`` reads the
CIFAR-10 python batches through [`bnnotes.data.load_cifar10`][bnnotes.data.load_cifar10]
and builds the network for 32x32 colour images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bnnotes.data import load_digits
from bnnotes.experiments import Experiment, RunConfig, one_thread
from bnnotes.experiments.plotting import (
    MARKED,
    language,
    new_figure,
    subplots,
    to_svg,
)
from bnnotes.experiments.progress import Progress
from bnnotes.figure_text import FigureText
from bnnotes.landscape import flat_gradient, probe
from bnnotes.models import images, vgg

__all__ = [
    "EXPERIMENT",
    "FULL",
    "PAPER",
    "QUICK",
    "figures",
    "run",
    "summarize",
    "train_and_probe",
]

FULL = {
    "steps": 600,
    "probe_every": 10,
    "batch_size": 128,
    "lrs": [0.1, 0.5],
    "seeds": 3,
    "step_multiples": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0],
    "widths": [16, 32, 64],
    "random_direction": True,
}
QUICK = {**FULL, "steps": 200, "lrs": [0.1], "seeds": 1}
NORMS = ("none", "batch")
LABELS = {"none": "standard", "batch": "BN"}  # progress bar; figures use TEXT
COLORS = {"none": "#1f5fa8", "batch": "#c2410c"}
LINESTYLES = {"none": "--", "batch": "-"}
MARKS = {"none": MARKED["baseline"], "batch": MARKED["batchnorm"]}

#: What Santurkar et al. (2018) report for VGG on CIFAR-10.
PAPER = {
    "source": "Santurkar et al. (2018), Section 3.2 and Figure 4; setup of Section 2 per secondary "
    "sources",
    "data": "CIFAR-10, no augmentation",
    "optimizer": "plain SGD, batch 128, learning rate 0.1, 15,000 steps, Glorot initialization",
    "step_multiples_of_lr": [0.5, 4.0],
    "bn_smaller_on_all_three": True,
    "gradient_change_gap_early": "close to two orders of magnitude (secondary sources)",
    "random_direction_claim": "smoothing also along random directions (UNVERIFIED)",
    "test_accuracy": {"none": 0.80, "batch": 0.83},
}

RECORD_KEYS = (
    "step",
    "batch_loss",
    "gradient_norm",
    "loss_min",
    "loss_max",
    "loss_variation",
    "gradient_change_min",
    "gradient_change_max",
    "beta",
    "random_loss_variation",
    "random_gradient_change_max",
    "random_beta",
    "train_loss",
    "train_accuracy",
    "test_accuracy",
)


def _number(value: float) -> float | None:
    """A JSON-friendly float: None for nan or inf."""
    value = float(value)
    return value if math.isfinite(value) else None


def _evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in evaluation mode (BN with its running statistics)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).double().mean().item()
    model.train(was_training)
    return loss, accuracy


def train_and_probe(
    norm: str,
    lr: float,
    seed: int,
    settings: dict,
    tensors,
    device: str,
    progress: Progress | None = None,
    done: int = 0,
) -> dict:
    """Train one network with plain SGD and probe it every ``probe_every`` steps.

    Returns a dict with one list per entry of ``RECORD_KEYS`` (one value per probe) and
    ``diverged_at``, the step at which the training loss stopped being finite (or None).
    """
    x_train, y_train, x_test, y_test = tensors
    channels, side = x_train.shape[1], x_train.shape[2]
    torch.manual_seed(seed)
    model = vgg(
        norm,
        in_channels=channels,
        image_size=side,
        widths=tuple(settings["widths"]),
    ).to(device)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    batches = torch.Generator().manual_seed(seed)
    directions = torch.Generator().manual_seed(seed + 10_000)
    etas = np.asarray(settings["step_multiples"], dtype=np.float64) * lr
    loss_fn = nn.functional.cross_entropy
    record = {key: [] for key in RECORD_KEYS}
    record["diverged_at"] = None
    n, size = len(x_train), settings["batch_size"]
    order, position = torch.randperm(n, generator=batches), 0
    for step in range(settings["steps"] + 1):
        if (
            position + size > n
        ):  # a new epoch; the last partial batch is dropped
            order, position = torch.randperm(n, generator=batches), 0
        index = order[position : position + size].to(device)
        position += size
        x, y = x_train[index], y_train[index]
        if step % settings["probe_every"] == 0:
            along = probe(model, loss_fn, x, y, etas)
            values = {
                "step": step,
                "batch_loss": along.loss,
                "gradient_norm": along.gradient_norm,
                "loss_min": along.losses.min(),
                "loss_max": along.losses.max(),
                "loss_variation": along.loss_variation,
                "gradient_change_min": along.gradient_changes.min(),
                "gradient_change_max": along.gradient_predictiveness,
                "beta": along.beta_smoothness,
            }
            if settings["random_direction"]:
                g = flat_gradient(model, loss_fn, x, y)
                z = torch.randn(
                    g.numel(), generator=directions, dtype=torch.float64
                )
                d = (z * (along.gradient_norm / z.norm())).to(
                    device=g.device, dtype=g.dtype
                )
                random = probe(model, loss_fn, x, y, etas, direction=d)
                values.update(
                    random_loss_variation=random.loss_variation,
                    random_gradient_change_max=random.gradient_predictiveness,
                    random_beta=random.beta_smoothness,
                )
            else:
                values.update(
                    random_loss_variation=None,
                    random_gradient_change_max=None,
                    random_beta=None,
                )
            values["train_loss"], values["train_accuracy"] = _evaluate(
                model, x_train, y_train
            )
            values["test_accuracy"] = _evaluate(model, x_test, y_test)[1]
            for key in RECORD_KEYS:
                value = values[key]
                record[key].append(
                    int(value)
                    if key == "step"
                    else None
                    if value is None
                    else _number(value)
                )
        if step == settings["steps"]:
            break
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            record["diverged_at"] = step
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None and (step + 1) % settings["probe_every"] == 0:
            progress.update(
                done + step + 1,
                net=LABELS[norm],
                lr=lr,
                seed=seed,
                loss=loss.item(),
            )
    return record


def _window_medians(
    record: dict, key: str, low: int, high: int
) -> float | None:
    values = [
        v
        for s, v in zip(record["step"], record[key], strict=True)
        if low <= s <= high and v is not None
    ]
    return float(np.median(values)) if values else None


def _equal_loss_ratios(
    plain: dict, bn: dict, key: str, tolerance: float
) -> list[float]:
    """standard / BN values of ``key`` over all pairs of probes (after step 0) whose mini-batch
    losses differ by less than the factor ``tolerance``."""
    ratios = []
    for s_p, loss_p, value_p in zip(
        plain["step"], plain["batch_loss"], plain[key], strict=True
    ):
        for s_b, loss_b, value_b in zip(
            bn["step"], bn["batch_loss"], bn[key], strict=True
        ):
            if (
                s_p
                and s_b
                and None not in (loss_p, loss_b, value_p, value_b)
                and value_b > 0
                and abs(math.log(loss_p / loss_b)) < math.log(tolerance)
            ):
                ratios.append(value_p / value_b)
    return ratios


def summarize(runs: dict, steps: int, equal_loss_factor: float = 1.25) -> dict:
    """Ratios standard / BN of the probe summaries, per learning rate and seed.

    ``at_start`` compares the probes at step 0; ``windows`` the medians over the probes in
    ``(0, steps/6]``, ``(steps/6, steps/2]`` and ``(steps/2, steps]``; ``bn_smaller_fraction``
    is the fraction of probes after step 0 at which BN's value is the smaller; ``equal_loss``
    the median ratio over all pairs of probes (one per network, after step 0) whose
    mini-batch losses differ by less than the factor ``equal_loss_factor``, with the number
    of such pairs.
    """
    keys = ("loss_variation", "gradient_change_max", "beta")
    random_keys = (
        "random_loss_variation",
        "random_gradient_change_max",
        "random_beta",
    )
    bounds = [
        (1, steps // 6),
        (steps // 6 + 1, steps // 2),
        (steps // 2 + 1, steps),
    ]
    summary = {}
    for lr_key, seeds in runs.items():
        summary[lr_key] = {}
        for seed_key, nets in seeds.items():
            plain, bn = nets["none"], nets["batch"]
            entry = {
                "at_start": {},
                "windows": [],
                "bn_smaller_fraction": {},
                "equal_loss": {"factor": equal_loss_factor},
            }
            for key in keys:
                a, b = plain[key][0], bn[key][0]
                entry["at_start"][key] = None if a is None or not b else a / b
                # strict=False: a network that diverged stops recording early; the pairs
                # are the probes both networks have.
                pairs = [
                    (p, q)
                    for s, p, q in zip(
                        plain["step"], plain[key], bn[key], strict=False
                    )
                    if s > 0 and p is not None and q is not None
                ]
                entry["bn_smaller_fraction"][key] = (
                    sum(q < p for p, q in pairs) / len(pairs)
                    if pairs
                    else None
                )
            for low, high in bounds:
                window = {"steps": [low, high]}
                for key in keys:
                    a, b = (
                        _window_medians(plain, key, low, high),
                        _window_medians(bn, key, low, high),
                    )
                    window[key] = None if a is None or not b else a / b
                entry["windows"].append(window)
            for key in keys + random_keys + ("gradient_norm",):
                ratios = _equal_loss_ratios(plain, bn, key, equal_loss_factor)
                entry["equal_loss"][key] = (
                    float(np.median(ratios)) if ratios else None
                )
            entry["equal_loss"]["pairs"] = len(
                _equal_loss_ratios(
                    plain, bn, "gradient_norm", equal_loss_factor
                )
            )
            summary[lr_key][seed_key] = entry
    return summary


def run(config: RunConfig) -> dict:
    """Train both networks at each learning rate and seed, probing along the way."""
    settings = {**(QUICK if config.quick else FULL), **config.overrides}
    if config.data_dir is not None:
        from bnnotes.data import load_cifar10

        data = load_cifar10(config.data_dir)
    else:
        data = load_digits(seed=0)
    tensors = images(data, config.device)
    seeds = [config.seed + k for k in range(settings["seeds"])]
    total = len(settings["lrs"]) * len(seeds) * len(NORMS) * settings["steps"]
    progress = Progress(total, "landscape", enabled=config.progress)
    results = {
        "settings": settings,
        "data": data.name,
        "paper": PAPER,
        "runs": {},
    }
    with one_thread():
        done = 0
        for lr in settings["lrs"]:
            lr_runs = results["runs"][str(lr)] = {}
            for seed in seeds:
                lr_runs[str(seed)] = {}
                for norm in NORMS:
                    lr_runs[str(seed)][norm] = train_and_probe(
                        norm,
                        lr,
                        seed,
                        settings,
                        tensors,
                        config.device,
                        progress,
                        done,
                    )
                    done += settings["steps"]
    progress.update(total)
    results["summary"] = summarize(results["runs"], settings["steps"])
    return results


def _series(record: dict, key: str) -> tuple[np.ndarray, np.ndarray]:
    steps = np.array(record["step"], dtype=float)
    values = np.array(
        [np.nan if v is None else v for v in record[key]], dtype=float
    )
    return steps, values


def _first(results: dict) -> tuple[str, dict]:
    """The learning rate and runs the figures show: the first learning rate, first seed."""
    lr_key = str(results["settings"]["lrs"][0])
    seed_key = min(results["runs"][lr_key], key=int)
    return lr_key, results["runs"][lr_key][seed_key]


# The words of the landscape figures in every language.
TEXT = FigureText(
    "landscape",
    {
        "none": {"en": "standard", "ko": "표준 네트워크", "zh": "普通网络"},
        "batch": {"en": "BN", "ko": "BN 네트워크", "zh": "BN 网络"},
        "max": {
            "en": "{net} (max)",
            "ko": "{net} (최대)",
            "zh": "{net}（最大）",
        },
        "min": {
            "en": "{net} (min)",
            "ko": "{net} (최소)",
            "zh": "{net}（最小）",
        },
        "random": {
            "en": "{net} (random direction)",
            "ko": "{net} (무작위 방향)",
            "zh": "{net}（随机方向）",
        },
        "net_lr": {
            "en": "{net}, lr {lr}",
            "ko": "{net}, 학습률 {lr}",
            "zh": "{net}，学习率 {lr}",
        },
        "step": {"en": "training step", "ko": "학습 단계", "zh": "训练步数"},
        "with_lr": {
            "en": "{title} (lr {lr})",
            "ko": "{title} (학습률 {lr})",
            "zh": "{title}（学习率 {lr}）",
        },
        "loss_title": {
            "en": "Variation of loss",
            "ko": "손실의 변동",
            "zh": "损失的变化幅度",
        },
        "loss_axis": {
            "en": "loss at w − ηg (range over η)",
            "ko": "w − ηg에서의 손실 (η에 걸친 범위)",
            "zh": "w − ηg 处的损失（η 范围内）",
        },
        "gradient_title": {
            "en": "Gradient predictiveness",
            "ko": "그래디언트 예측성",
            "zh": "梯度可预测性",
        },
        "gradient_axis": {
            "en": "‖∇L(w − ηg) − g‖ (range over η)",
            "ko": "‖∇L(w − ηg) − g‖ (η에 걸친 범위)",
            "zh": "‖∇L(w − ηg) − g‖（η 范围内）",
        },
        "beta_title": {
            "en": "Effective β-smoothness",
            "ko": "유효 β-매끄러움",
            "zh": "有效 β-光滑性",
        },
        "beta_axis": {
            "en": "max change / distance",
            "ko": "최대 변화 / 이동 거리",
            "zh": "最大变化 / 移动距离",
        },
        "random_title": {
            "en": "Gradient change: gradient vs random direction",
            "ko": "그래디언트 변화: 그래디언트 방향과 무작위 방향",
            "zh": "梯度变化：梯度方向与随机方向",
        },
        "random_axis": {
            "en": "largest ‖∇L(w − ηd) − g‖",
            "ko": "가장 큰 ‖∇L(w − ηd) − g‖",
            "zh": "最大的 ‖∇L(w − ηd) − g‖",
        },
        "train_loss": {
            "en": "training loss (whole training set)",
            "ko": "학습 손실 (학습 세트 전체)",
            "zh": "训练损失（整个训练集）",
        },
        "test_accuracy": {
            "en": "test accuracy",
            "ko": "테스트 정확도",
            "zh": "测试准确率",
        },
        "training_title": {
            "en": "Training with plain SGD (every seed; the first seed opaque, "
            "the others faded)",
            "ko": "일반 SGD 학습 (모든 시드; 첫 시드는 진하게, 나머지는 흐리게)",
            "zh": "普通 SGD 训练（所有种子；第一个种子不透明，其余淡化）",
        },
        "probe_loss": {
            "en": "mini-batch loss at the probe (training goes right)",
            "ko": "프로브 시점의 미니배치 손실 (학습은 오른쪽으로 진행)",
            "zh": "探测时的小批量损失（训练向右推进）",
        },
        "beta_axis_short": {
            "en": "effective β-smoothness",
            "ko": "유효 β-매끄러움",
            "zh": "有效 β-光滑性",
        },
        "beta_vs_loss_title": {
            "en": "β against progress, all seeds",
            "ko": "학습 진행에 따른 β, 모든 시드",
            "zh": "β 随训练进展的变化，所有种子",
        },
    },
)


def _band_figure(
    results: dict, low: str, high: str, ylabel: str, title: str, lang: str
) -> str:
    lr_key, nets = _first(results)
    fig, ax = new_figure()
    for norm in NORMS:
        steps, lo = _series(nets[norm], low)
        _, hi = _series(nets[norm], high)
        net = TEXT(norm, lang)
        ax.fill_between(
            steps, lo, hi, color=COLORS[norm], alpha=0.3, linewidth=0
        )
        ax.plot(
            steps,
            hi,
            color=COLORS[norm],
            linestyle=LINESTYLES[norm],
            linewidth=1.2,
            label=TEXT("max", lang, net=net),
        )
        ax.plot(
            steps,
            lo,
            color=COLORS[norm],
            linestyle=LINESTYLES[norm],
            linewidth=0.7,
        )
    ax.set_yscale("log")
    ax.set_xlabel(TEXT("step", lang))
    ax.set_ylabel(TEXT(ylabel, lang))
    ax.set_title(TEXT("with_lr", lang, title=TEXT(title, lang), lr=lr_key))
    ax.legend(loc="upper right")
    return to_svg(fig, lang)


def _line_figure(
    results: dict, keys: tuple[str, ...], ylabel: str, title: str, lang: str
) -> str:
    lr_key, nets = _first(results)
    fig, ax = new_figure()
    for norm in NORMS:
        for key in keys:
            steps, values = _series(nets[norm], key)
            net = TEXT(norm, lang)
            if len(keys) == 1:
                style = {"linestyle": LINESTYLES[norm]}
                label = net
            else:  # the line style tells the directions apart
                random = key.startswith("random")
                style = {"linestyle": "--" if random else "-", **MARKS[norm]}
                label = TEXT("random", lang, net=net) if random else net
            ax.plot(
                steps,
                values,
                color=COLORS[norm],
                linewidth=1.0,
                **style,
                label=label,
            )
    ax.set_yscale("log")
    ax.set_xlabel(TEXT("step", lang))
    ax.set_ylabel(TEXT(ylabel, lang))
    ax.set_title(TEXT("with_lr", lang, title=TEXT(title, lang), lr=lr_key))
    ax.legend(loc="upper right", fontsize=9)
    return to_svg(fig, lang)


def figures(results: dict, lang: str) -> dict[str, str]:
    """Fig. 4 in small (loss band, gradient-change band, beta), the random direction, training
    curves, and beta against the loss at the probe; every word in ``lang``."""
    with language(lang):
        out = {
            "landscape-loss.svg": _band_figure(
                results,
                "loss_min",
                "loss_max",
                "loss_axis",
                "loss_title",
                lang,
            ),
            "landscape-gradient.svg": _band_figure(
                results,
                "gradient_change_min",
                "gradient_change_max",
                "gradient_axis",
                "gradient_title",
                lang,
            ),
            "landscape-beta.svg": _line_figure(
                results, ("beta",), "beta_axis", "beta_title", lang
            ),
        }
        if results["settings"]["random_direction"]:
            out["landscape-random.svg"] = _line_figure(
                results,
                ("gradient_change_max", "random_gradient_change_max"),
                "random_axis",
                "random_title",
                lang,
            )
        out["landscape-training.svg"] = _training(results, lang)
        out["landscape-beta-vs-loss.svg"] = _beta_vs_loss(results, lang)
    return out


def _training(results: dict, lang: str) -> str:
    fig, (left, right) = subplots(1, 2, 8.0, 3.4)
    styles = ("-", "--", ":", "-.")
    # strict=False: one line style per learning rate, the unused styles are dropped.
    for lr_key, style in zip(
        (str(lr) for lr in results["settings"]["lrs"]), styles, strict=False
    ):
        for k, seed_key in enumerate(sorted(results["runs"][lr_key], key=int)):
            for norm in NORMS:
                record = results["runs"][lr_key][seed_key][norm]
                steps, loss = _series(record, "train_loss")
                _, accuracy = _series(record, "test_accuracy")
                label = (
                    TEXT("net_lr", lang, net=TEXT(norm, lang), lr=lr_key)
                    if k == 0
                    else None
                )
                for ax, values in ((left, loss), (right, accuracy)):
                    ax.plot(
                        steps,
                        values,
                        color=COLORS[norm],
                        linestyle=style,
                        linewidth=1.0,
                        alpha=1.0 if k == 0 else 0.45,
                        label=label,
                        **(MARKS[norm] if k == 0 else {}),
                    )
    left.set_yscale("log")
    left.set_xlabel(TEXT("step", lang))
    left.set_ylabel(TEXT("train_loss", lang))
    right.set_xlabel(TEXT("step", lang))
    right.set_ylabel(TEXT("test_accuracy", lang))
    right.set_ylim(0, 1)
    left.legend(loc="lower left", fontsize=8)
    fig.suptitle(TEXT("training_title", lang))
    return to_svg(fig, lang)


def _beta_vs_loss(results: dict, lang: str) -> str:
    lr_key = str(results["settings"]["lrs"][0])
    fig, ax = new_figure()
    markers = ("o", "s", "^", "v", "D")
    for k, seed_key in enumerate(sorted(results["runs"][lr_key], key=int)):
        for norm in NORMS:
            record = results["runs"][lr_key][seed_key][norm]
            _, loss = _series(record, "batch_loss")
            _, beta = _series(record, "beta")
            hollow = norm == "none"  # open markers without BN, filled with BN
            ax.scatter(
                loss,
                beta,
                s=12,
                marker=markers[k % len(markers)],
                alpha=0.7,
                label=TEXT(norm, lang) if k == 0 else None,
                facecolors="none" if hollow else COLORS[norm],
                edgecolors=COLORS[norm],
                linewidths=0.8 if hollow else 0,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel(TEXT("probe_loss", lang))
    ax.set_ylabel(TEXT("beta_axis_short", lang))
    ax.set_title(
        TEXT(
            "with_lr", lang, title=TEXT("beta_vs_loss_title", lang), lr=lr_key
        )
    )
    ax.legend(loc="upper left")
    return to_svg(fig, lang)


EXPERIMENT = Experiment(
    name="landscape",
    summary="Santurkar et al. Fig. 4 in small: loss variation, gradient predictiveness and beta "
    "with and without BN",
    run=run,
    figures=figures,
    accepts_data_dir=True,
)
