r"""Section 4.1 of Ioffe & Szegedy (2015): a sigmoid network on MNIST with and without BN.

The paper's network has 3 fully connected hidden layers of 100 sigmoid units and a
10-way softmax output trained with cross-entropy, mini-batches of 60 and 50,000 steps.
BN is inserted before each sigmoid. The paper records test accuracy over training
(Fig. 1a) and the 15th, 50th and 85th percentiles of the input of one sigmoid of the
last hidden layer (Fig. 1b without BN, 1c with BN).

The paper gives neither the optimizer nor the learning rate nor the scale of its "small
random Gaussian" initialization. This module uses plain SGD with learning rate 0.5,
weights drawn from $\mathcal N(0, 0.1^2)$ and zero biases, for both networks: plain SGD is
the setting of the paper's Algorithm 2, and one learning rate for both networks keeps the
comparison about BN alone. By default the data are scikit-learn's 8x8 digits (offline);
``--data-dir`` reads the real MNIST IDX files.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bnnotes.data import Dataset, load_digits, load_mnist
from bnnotes.experiments import Experiment, RunConfig
from bnnotes.experiments.plotting import (
    COLORS,
    NORM_STYLE,
    language,
    new_figure,
    to_svg,
)
from bnnotes.experiments.progress import Progress
from bnnotes.figure_text import FigureText

__all__ = [
    "EXPERIMENT",
    "FULL",
    "QUICK",
    "build_network",
    "figures",
    "last_sigmoid_input",
    "percentile_drift",
    "run",
    "train_variant",
]

FULL = {
    "steps": 50_000,
    "eval_every": 500,
    "batch_size": 60,
    "lr": 0.5,
    "init_std": 0.1,
    "hidden": 100,
    "layers": 3,
}
QUICK = {**FULL, "steps": 5_000, "eval_every": 100}
PERCENTILES = (15, 50, 85)
VARIANTS = ("baseline", "batchnorm")


def build_network(
    num_inputs: int,
    batch_norm: bool,
    hidden: int = 100,
    layers: int = 3,
    init_std: float = 0.1,
) -> nn.Sequential:
    """The paper's network: ``layers`` x (Linear -> [BN] -> Sigmoid), then Linear to 10 logits.

    With BN the linear layers before it have no bias, since BN's shift replaces it.
    """
    modules: list[nn.Module] = []
    width = num_inputs
    for _ in range(layers):
        linear = nn.Linear(width, hidden, bias=not batch_norm)
        modules.append(linear)
        if batch_norm:
            modules.append(nn.BatchNorm1d(hidden))
        modules.append(nn.Sigmoid())
        width = hidden
    modules.append(nn.Linear(width, 10))
    for module in modules:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, init_std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return nn.Sequential(*modules)


def last_sigmoid_input(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Inputs of the last hidden layer's sigmoids, shape (n, hidden)."""
    sigmoids = [i for i, m in enumerate(model) if isinstance(m, nn.Sigmoid)]
    return model[: sigmoids[-1]](x)


def _load(config: RunConfig) -> Dataset:
    return (
        load_mnist(config.data_dir)
        if config.data_dir is not None
        else load_digits(seed=0)
    )


def train_variant(
    data: Dataset,
    batch_norm: bool,
    settings: dict,
    seed: int,
    device: str,
    progress: Progress | None = None,
) -> dict:
    """Train one network; return test accuracy and sigmoid-input percentiles at each evaluation."""
    torch.manual_seed(seed)
    model = build_network(
        data.num_features,
        batch_norm,
        settings["hidden"],
        settings["layers"],
        settings["init_std"],
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings["lr"])
    loss_fn = nn.CrossEntropyLoss()
    x_train = torch.from_numpy(data.x_train).to(device)
    y_train = torch.from_numpy(data.y_train).to(device)
    x_test = torch.from_numpy(data.x_test).to(device)
    y_test = torch.from_numpy(data.y_test).to(device)
    generator = torch.Generator().manual_seed(seed)
    n, batch = len(x_train), settings["batch_size"]
    order, cursor = torch.randperm(n, generator=generator), 0
    record = {
        "steps": [],
        "test_accuracy": [],
        "percentiles": [],
        "unit_percentiles": [],
    }

    def evaluate(step: int) -> None:
        model.eval()
        with torch.no_grad():
            accuracy = (
                (model(x_test).argmax(dim=1) == y_test).double().mean().item()
            )
            z = last_sigmoid_input(model, x_test).double().cpu().numpy()
        model.train()
        q = np.percentile(
            z, PERCENTILES, axis=0
        )  # (3, hidden): every unit of the last layer
        record["steps"].append(step)
        record["test_accuracy"].append(round(accuracy, 6))
        record["percentiles"].append([
            round(float(v), 6) for v in q[:, 0]
        ])  # the unit that is plotted
        record["unit_percentiles"].append(np.round(q, 6).tolist())

    evaluate(0)
    for step in range(1, settings["steps"] + 1):
        if cursor + batch > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        index = order[cursor : cursor + batch].to(device)
        cursor += batch
        loss = loss_fn(model(x_train[index]), y_train[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % settings["eval_every"] == 0:
            evaluate(step)
            if progress is not None:
                progress.update(step, acc=record["test_accuracy"][-1])
    return record


def percentile_drift(unit_percentiles: list) -> float:
    """Mean over units and percentiles of the standard deviation over time of a
    sigmoid-input percentile.

    One number for how much the input distribution of the last hidden layer's sigmoids moves
    during training (the evaluation at step 0 is left out: it measures the initialization).
    """
    q = np.asarray(unit_percentiles)[1:]  # (evaluations, 3, hidden)
    return float(q.std(axis=0).mean())


def run(config: RunConfig) -> dict:
    """Train both networks and return the records (JSON-serializable)."""
    settings = {**(QUICK if config.quick else FULL), **config.overrides}
    data = _load(config)
    results = {"settings": settings, "data": data.name, "variants": {}}
    for variant in VARIANTS:
        progress = Progress(
            settings["steps"],
            f"mnist_sigmoid {variant:9s}",
            enabled=config.progress,
        )
        record = train_variant(
            data,
            variant == "batchnorm",
            settings,
            config.seed,
            config.device,
            progress,
        )
        record["percentile_drift"] = round(
            percentile_drift(record.pop("unit_percentiles")), 6
        )
        results["variants"][variant] = record
    return results


# The words of the mnist_sigmoid figures in every language.
TEXT = FigureText(
    "mnist_sigmoid",
    {
        "without_bn": {"en": "Without BN", "ko": "BN 없음", "zh": "不带 BN"},
        "with_bn": {"en": "With BN", "ko": "BN 있음", "zh": "带 BN"},
        "step": {"en": "training step", "ko": "학습 단계", "zh": "训练步数"},
        "test_accuracy": {
            "en": "test accuracy",
            "ko": "테스트 정확도",
            "zh": "测试准确率",
        },
        "title_a": {
            "en": "(a) Test accuracy",
            "ko": "(a) 테스트 정확도",
            "zh": "(a) 测试准确率",
        },
        "title_b": {
            "en": "(b) Without BN",
            "ko": "(b) BN 없음",
            "zh": "(b) 不带 BN",
        },
        "title_c": {
            "en": "(c) With BN",
            "ko": "(c) BN 있음",
            "zh": "(c) 带 BN",
        },
        "percentile": {
            "en": "{p}th percentile",
            "ko": "{p}번째 백분위수",
            "zh": "第 {p} 百分位数",
        },
        "sigmoid_input": {
            "en": "input of one sigmoid",
            "ko": "시그모이드 하나의 입력",
            "zh": "某个 sigmoid 的输入",
        },
    },
)

# The 15th percentile dashed, the median solid and thicker, the 85th dash-dotted.
PERCENTILE_STYLE = {
    15: {"linestyle": "--", "linewidth": 1.2, "alpha": 0.8},
    50: {"linestyle": "-", "linewidth": 2.0, "alpha": 1.0},
    85: {"linestyle": "-.", "linewidth": 1.2, "alpha": 0.8},
}


def figures(results: dict, lang: str) -> dict[str, str]:
    """Fig. 1(a) test accuracy over steps; Fig. 1(b)/(c) sigmoid-input percentiles without
    and with BN; every word in ``lang``."""
    with language(lang):
        return _figures(results, lang)


def _figures(results: dict, lang: str) -> dict[str, str]:
    out = {}
    fig, ax = new_figure(4.2, 3.2)  # the size of panels (b) and (c)
    for variant, label in (
        ("baseline", "without_bn"),
        ("batchnorm", "with_bn"),
    ):
        record = results["variants"][variant]
        ax.plot(
            record["steps"],
            record["test_accuracy"],
            **NORM_STYLE[variant],
            label=TEXT(label, lang),
        )
    ax.set_xlabel(TEXT("step", lang))
    ax.set_ylabel(TEXT("test_accuracy", lang))
    ax.set_ylim(0.0, 1.0)
    ax.legend(loc="lower right")
    ax.set_title(TEXT("title_a", lang))
    out["mnist_sigmoid-accuracy.svg"] = to_svg(fig, lang)

    all_q = np.concatenate([
        np.asarray(results["variants"][v]["percentiles"]) for v in VARIANTS
    ])
    low, high = float(all_q.min()), float(all_q.max())
    pad = 0.05 * (high - low or 1.0)
    for variant, tag, title in (
        ("baseline", "b", "title_b"),
        ("batchnorm", "c", "title_c"),
    ):
        record = results["variants"][variant]
        q = np.asarray(record["percentiles"])
        fig, ax = new_figure(4.2, 3.2)
        for j, p in enumerate(PERCENTILES):
            ax.plot(
                record["steps"],
                q[:, j],
                color=COLORS[variant],
                **PERCENTILE_STYLE[p],
                label=TEXT("percentile", lang, p=p),
            )
        ax.set_ylim(low - pad, high + pad)
        ax.set_xlabel(TEXT("step", lang))
        ax.set_ylabel(TEXT("sigmoid_input", lang))
        ax.set_title(TEXT(title, lang))
        ax.legend(loc="best", fontsize=8)
        out[f"mnist_sigmoid-percentiles-{tag}.svg"] = to_svg(fig, lang)
    return out


EXPERIMENT = Experiment(
    name="mnist_sigmoid",
    summary="Ioffe & Szegedy Sec. 4.1: 3x100 sigmoid MLP with and without BN (Fig. 1)",
    run=run,
    figures=figures,
)
