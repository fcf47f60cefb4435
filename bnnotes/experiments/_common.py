"""What the VGG-style experiments share (private): data, training, summaries and figures.

The noisy-BN experiment ([`bnnotes.experiments.noisy_bn`][bnnotes-experiments-noisy-bn])
and the ℓp-normalization experiment
([`bnnotes.experiments.lp_norm`][bnnotes-experiments-lp-norm]) train the same VGG-style
network in several variants, record the same activation statistics and draw the same kind
of figures; the code they share lives here rather than in one of them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bnnotes.data import Dataset, load_cifar10, load_digits
from bnnotes.experiments import RunConfig
from bnnotes.experiments.plotting import subplots, to_svg
from bnnotes.experiments.progress import Progress
from bnnotes.figure_text import FigureText
from bnnotes.models import vgg, weight_layers

COLORS = {
    "none": "#1f5fa8",
    "batch": "#c2410c",
    "noisy_batch": "#7e22ce",
    "noise": "#4b5563",
    "l1": "#4d7c0f",
    "l2": "#0f766e",
    "linf": "#be185d",
}
# A line style per variant as well as a colour: the four variants of this experiment,
# and the five of lp_norm, differ in both.
LINESTYLES = {
    "none": "--",
    "batch": "-",
    "noisy_batch": "-.",
    "noise": ":",
    "l1": "-.",
    "l2": ":",
    "linf": (0, (6, 2, 1, 2, 1, 2)),
}

# The words of the VGG-variant figures (this experiment's and lp_norm's shared ones).
TEXT = FigureText(
    "noisy_bn",
    {
        "none": {"en": "Standard", "ko": "표준 네트워크", "zh": "普通网络"},
        "batch": {
            "en": "Standard + BatchNorm",
            "ko": "표준 네트워크 + BN",
            "zh": "普通网络 + BN",
        },
        "noisy_batch": {
            "en": "Standard + noisy BatchNorm",
            "ko": "표준 네트워크 + 잡음을 넣은 BN",
            "zh": "普通网络 + 带噪声的 BN",
        },
        "noise": {
            "en": "Standard + noise",
            "ko": "표준 네트워크 + 잡음",
            "zh": "普通网络 + 噪声",
        },
        "l1": {"en": "ℓ1 normalization", "ko": "ℓ1 정규화", "zh": "ℓ1 归一化"},
        "l2": {"en": "ℓ2 normalization", "ko": "ℓ2 정규화", "zh": "ℓ2 归一化"},
        "linf": {
            "en": "ℓ∞ normalization",
            "ko": "ℓ∞ 정규화",
            "zh": "ℓ∞ 归一化",
        },
        "step": {"en": "step", "ko": "단계", "zh": "步数"},
        "train_accuracy": {
            "en": "training accuracy",
            "ko": "학습 정확도",
            "zh": "训练准确率",
        },
        "test_accuracy": {
            "en": "test accuracy",
            "ko": "테스트 정확도",
            "zh": "测试准确率",
        },
        "band_outer": {
            "en": "5–95th percentile",
            "ko": "5–95번째 백분위수",
            "zh": "第 5–95 百分位数",
        },
        "band_inner": {
            "en": "25–75th percentile",
            "ko": "25–75번째 백분위수",
            "zh": "第 25–75 百分位数",
        },
        "median": {"en": "median", "ko": "중앙값", "zh": "中位数"},
        "pre_activation": {
            "en": "pre-activation",
            "ko": "사전 활성값",
            "zh": "预激活值",
        },
        "accuracy_title": {
            "en": "Standard, BatchNorm and noisy BatchNorm (mean over seeds)",
            "ko": "표준 네트워크, BN, 잡음을 넣은 BN (시드 평균)",
            "zh": "普通网络、BN 与带噪声的 BN（各种子的平均）",
        },
        "channel_title": {
            "en": "Channel {channel} of weight layer {layer}, before its ReLU",
            "ko": "{layer}번째 가중치 층의 채널 {channel}, ReLU 이전",
            "zh": "第 {layer} 个权重层的通道 {channel}，ReLU 之前",
        },
    },
)
PERCENTILES = (5, 25, 50, 75, 95)


def load_data(config: RunConfig) -> Dataset:
    """CIFAR-10 from ``config.data_dir``, or the bundled digits."""
    return (
        load_cifar10(config.data_dir)
        if config.data_dir is not None
        else load_digits(seed=0)
    )


def pre_activation_module(model: nn.Sequential, layer: int) -> nn.Module:
    """The module whose output enters the ReLU after weight layer number ``layer`` (0-based).

    That is the normalization (or noise) layer when there is one, else the weight layer.
    """
    layers = weight_layers(model)
    if not 0 <= layer < len(layers) - 1:
        raise ValueError(
            f"probe_layer must be in 0..{len(layers) - 2} (a hidden weight layer), got {layer}"
        )
    modules = list(model)
    start = modules.index(layers[layer])
    index = start
    while not isinstance(modules[index + 1], nn.ReLU):
        index += 1
    return modules[index]


class ActivationRecorder:
    """A forward hook that keeps per-channel means and standard deviations of one
    module's output in training mode."""

    def __init__(
        self,
        module: nn.Module,
        channel: int,
        record_every: int,
        percentiles: bool = True,
    ) -> None:
        self.channel, self.record_every, self.keep_percentiles = (
            channel,
            record_every,
            percentiles,
        )
        self.means: list[np.ndarray] = []
        self.stds: list[np.ndarray] = []
        self.percentile_steps: list[int] = []
        self.percentiles: list[list[float]] = []
        self.step = 0
        self.enabled = True
        self.handle = module.register_forward_hook(self._hook)

    @torch.no_grad()
    def _hook(self, module, inputs, output) -> None:
        if not (self.enabled and module.training):
            return
        values = output.detach().double()
        axes = (0, *range(2, values.ndim))
        mean = values.mean(dim=axes)
        shape = (1, -1) + (1,) * (values.ndim - 2)
        std = (values - mean.reshape(shape)).square().mean(dim=axes).sqrt()
        self.means.append(mean.cpu().numpy())
        self.stds.append(std.cpu().numpy())
        if self.keep_percentiles and self.step % self.record_every == 0:
            one = values[:, self.channel].reshape(-1).cpu().numpy()
            self.percentile_steps.append(self.step)
            self.percentiles.append([
                float(v) for v in np.percentile(one, PERCENTILES)
            ])

    def drift(self) -> dict:
        """Median over channels of the step-to-step drift of the channel mean (in
        standard deviations) and log std."""
        means, stds = (
            np.array(self.means),
            np.maximum(np.array(self.stds), 1e-12),
        )
        mean_drift = np.abs(np.diff(means, axis=0)).mean(axis=0) / stds.mean(
            axis=0
        )
        scale_drift = np.abs(np.diff(np.log(stds), axis=0)).mean(axis=0)
        return {
            "mean_drift": float(np.median(mean_drift)),
            "scale_drift": float(np.median(scale_drift)),
        }

    def remove(self) -> None:
        self.handle.remove()


def round_values(values, digits: int = 6) -> list:
    """``values`` rounded to ``digits`` significant digits for the JSON
    results; nan and inf become None."""
    return [
        None if v is None or not math.isfinite(v) else float(f"{v:.{digits}g}")
        for v in values
    ]


def train_vgg(
    norm: str,
    tensors: tuple[torch.Tensor, ...],
    settings: dict,
    seed: int,
    device: str,
    *,
    record_percentiles: bool = True,
    landscape: dict | None = None,
    progress: Progress | None = None,
    done: int = 0,
) -> dict:
    """Train one VGG-style network with plain SGD; return its curves,
    activation statistics and drift.

    ``landscape`` (optional) is ``{"every": k, "multipliers": [...]}``: every ``k`` steps the
    loss landscape is probed along the gradient on the current batch with step sizes
    ``multipliers * lr`` ([`bnnotes.landscape.probe`][bnnotes.landscape.probe]).
    """
    x_train, y_train, x_test, y_test = tensors
    channels, size, _ = x_train.shape[1:]
    torch.manual_seed(seed)
    model = vgg(
        norm,
        in_channels=channels,
        image_size=size,
        widths=tuple(settings["widths"]),
        convs_per_stage=settings["convs_per_stage"],
        hidden=settings["hidden"],
        generator=torch.Generator().manual_seed(10_000 + seed),
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings["lr"])
    loss_fn = nn.CrossEntropyLoss()
    recorder = ActivationRecorder(
        pre_activation_module(model, settings["probe_layer"]),
        settings["probe_channel"],
        settings["record_every"],
    )
    raw = ActivationRecorder(
        weight_layers(model)[settings["probe_layer"]],
        settings["probe_channel"],
        settings["record_every"],
        percentiles=False,
    )
    order_gen = torch.Generator().manual_seed(seed)
    n, batch, eval_every = (
        len(x_train),
        settings["batch_size"],
        settings["eval_every"],
    )
    order = torch.randperm(n, generator=order_gen)
    position = 0
    record = {
        "steps": [],
        "train_loss": [],
        "train_accuracy": [],
        "test_accuracy": [],
        "diverged_at": None,
    }
    probes = {
        "steps": [],
        "gradient_predictiveness": [],
        "beta_smoothness": [],
        "loss_variation": [],
    }
    losses, correct, seen = [], 0, 0
    for step in range(1, settings["steps"] + 1):
        if (
            position + batch > n
        ):  # a new epoch; the last partial batch is dropped
            order, position = torch.randperm(n, generator=order_gen), 0
        index = order[position : position + batch].to(device)
        position += batch
        xb, yb = x_train[index], y_train[index]
        model.train()
        if landscape is not None and (step - 1) % landscape["every"] == 0:
            from bnnotes.landscape import probe

            recorder.enabled = raw.enabled = False
            result = probe(
                model,
                loss_fn,
                xb,
                yb,
                [m * settings["lr"] for m in landscape["multipliers"]],
            )
            recorder.enabled = raw.enabled = True
            probes["steps"].append(step - 1)
            probes["gradient_predictiveness"].append(
                result.gradient_predictiveness
            )
            probes["beta_smoothness"].append(result.beta_smoothness)
            probes["loss_variation"].append(result.loss_variation)
        recorder.step = step - 1
        logits = model(xb)
        loss = loss_fn(logits, yb)
        if not bool(torch.isfinite(loss)):
            record["diverged_at"] = step
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        correct += int((logits.argmax(dim=1) == yb).sum())
        seen += len(yb)
        if step % eval_every == 0:
            model.eval()
            with torch.no_grad():
                accuracy = (
                    (model(x_test).argmax(dim=1) == y_test)
                    .double()
                    .mean()
                    .item()
                )
            record["steps"].append(step)
            record["train_loss"].append(float(np.mean(losses)))
            record["train_accuracy"].append(correct / seen)
            record["test_accuracy"].append(accuracy)
            losses, correct, seen = [], 0, 0
            if progress is not None:
                progress.update(
                    done + step,
                    variant=norm,
                    seed=seed,
                    loss=record["train_loss"][-1],
                )
    recorder.remove()
    raw.remove()
    for key in ("train_loss", "train_accuracy", "test_accuracy"):
        record[key] = round_values(record[key])
    record["drift"] = recorder.drift()
    record["drift_raw"] = raw.drift()
    if record_percentiles:
        record["percentiles"] = {
            "steps": recorder.percentile_steps,
            "values": [round_values(p, 4) for p in recorder.percentiles],
        }
    if landscape is not None:
        record["landscape"] = {
            k: (v if k == "steps" else round_values(v))
            for k, v in probes.items()
        }
    return record


def steps_to(record: dict, key: str, threshold: float) -> int | None:
    """The first evaluation step at which ``record[key]`` reaches ``threshold`` (None if never)."""
    for step, value in zip(record["steps"], record[key], strict=True):
        if value is not None and value >= threshold:
            return step
    return None


def summarize(runs: list[dict], settings: dict) -> dict:
    """Means over seeds of the final numbers of one variant."""

    def final(key):
        return float(np.mean([np.mean(r[key][-4:]) for r in runs]))

    reached = [
        steps_to(r, "train_accuracy", settings["accuracy_threshold"])
        for r in runs
    ]
    return {
        "final_train_loss": final("train_loss"),
        "final_train_accuracy": final("train_accuracy"),
        "final_test_accuracy": final("test_accuracy"),
        "steps_to_threshold": reached,
        "mean_drift": float(np.mean([r["drift"]["mean_drift"] for r in runs])),
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


def settings_for(config: RunConfig, full: dict, quick: dict) -> dict:
    """The defaults for the run (quick or full) with the overrides applied."""
    settings = {**(quick if config.quick else full), **config.overrides}
    unknown = set(config.overrides) - set(full)
    if unknown:
        raise ValueError(
            f"unknown settings {sorted(unknown)}; known: {sorted(full)}"
        )
    return settings


def mean_curve(runs: list[dict], key: str) -> tuple[list[int], np.ndarray]:
    """Steps and the mean over seeds of a recorded curve (over the steps all seeds reached)."""
    length = min(len(r[key]) for r in runs)
    values = np.array(
        [[np.nan if v is None else v for v in r[key][:length]] for r in runs],
        dtype=float,
    )
    return runs[0]["steps"][:length], values.mean(axis=0)


def accuracy_figure(results: dict, variants, title: str, lang: str) -> str:
    """Training accuracy (mini-batches, training mode) and test accuracy against steps.

    ``title`` is already in ``lang``; the other words come from
    ``TEXT``. Call inside ``plotting.language(lang)``.
    """
    fig, axes = subplots(1, 2, 9.0, 3.4)
    for ax, key in (
        (axes[0], "train_accuracy"),
        (axes[1], "test_accuracy"),
    ):
        for variant in variants:
            steps, values = mean_curve(results["runs"][variant], key)
            ax.plot(
                steps,
                values,
                color=COLORS[variant],
                linestyle=LINESTYLES[variant],
                label=TEXT(variant, lang),
            )
        ax.set_xlabel(TEXT("step", lang))
        ax.set_ylabel(TEXT(key, lang))
        ax.set_ylim(0.0, 1.02)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    return to_svg(fig, lang)


def distribution_figure(results: dict, variants, lang: str) -> str:
    """Percentile bands (5-95, 25-75, median) of one channel's pre-activations over training,
    one panel per variant, in ``lang``. Call inside ``plotting.language(lang)``."""
    settings = results["settings"]
    cols = 2
    rows = math.ceil(len(variants) / cols)
    fig, axes = subplots(rows, cols, 9.0, 2.6 * rows, sharex=True)
    # strict=False: with an odd number of variants the last panel stays empty.
    for ax, variant in zip(axes, variants, strict=False):
        record = results["runs"][variant][0]["percentiles"]
        steps = record["steps"]
        p = np.array(
            [
                [np.nan if v is None else v for v in row]
                for row in record["values"]
            ],
            dtype=float,
        )
        color = COLORS[variant]
        ax.fill_between(
            steps,
            p[:, 0],
            p[:, 4],
            color=color,
            alpha=0.2,
            linewidth=0,
            label=TEXT("band_outer", lang),
        )
        ax.fill_between(
            steps,
            p[:, 1],
            p[:, 3],
            color=color,
            alpha=0.4,
            linewidth=0,
            label=TEXT("band_inner", lang),
        )
        ax.plot(
            steps,
            p[:, 2],
            color=color,
            linewidth=1.0,
            label=TEXT("median", lang),
        )
        ax.set_title(TEXT(variant, lang), fontsize=9)
        ax.set_xlabel(TEXT("step", lang))
        ax.set_ylabel(TEXT("pre_activation", lang))
    for ax in axes[len(variants) :]:
        ax.set_visible(False)
    axes[0].legend(loc="upper right", fontsize=7)
    fig.suptitle(
        TEXT(
            "channel_title",
            lang,
            channel=settings["probe_channel"],
            layer=settings["probe_layer"] + 1,
        )
    )
    return to_svg(fig, lang)
