r"""Wu & He (2018), Table 2 in small: test error of BN, GN and LN against the batch size.

A small convolutional network (four 3x3 convolutions, the last three with stride 2, and a linear
read-out) classifies scikit-learn's 8x8 digits (offline). Each of its convolutions is followed by a
normalization: ``BatchNorm2d``, ``GroupNorm`` with 4 groups (of 4 channels in the first, 16-channel
layer and of 8 channels in the three 32-channel layers after it), or layer normalization over
$(C, H, W)$ (``GroupNorm`` with one group, which is how Wu & He define LN for images). Every
configuration trains for the same number of epochs, so smaller batches take more steps, with SGD and
a learning rate scaled linearly with the batch size, $0.1 \cdot B / 32$, the rule Wu & He use. The
reported error is the median over the last 3 evaluations, echoing the paper's median of the last 5
epochs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bnnotes.data import load_digits
from bnnotes.experiments import Experiment, RunConfig
from bnnotes.experiments.plotting import language, new_figure, to_svg
from bnnotes.experiments.progress import Progress
from bnnotes.figure_text import FigureText

__all__ = [
    "EXPERIMENT",
    "FULL",
    "QUICK",
    "build_network",
    "figures",
    "norm_layer",
    "run",
    "train_one",
]

FULL = {
    "epochs": 15,
    "batch_sizes": [2, 4, 8, 16, 32, 64],
    "base_lr": 0.1,
    "channels": 16,
    "groups": 4,
}
QUICK = {**FULL, "epochs": 3, "batch_sizes": [2, 16]}
METHODS = ("batch", "group", "layer")
LABELS = {"batch": "BN", "group": "GN", "layer": "LN"}  # progress bar
COLORS = {"batch": "#c2410c", "group": "#1f5fa8", "layer": "#4d7c0f"}

#: Wu & He (2018), Table 2: ResNet-50 ImageNet validation error (%) against images per GPU.
PAPER_TABLE2 = {
    "batch_sizes": [32, 16, 8, 4, 2],
    "batch": [23.6, 23.7, 24.8, 27.3, 34.7],
    "group": [24.1, 24.2, 24.0, 24.2, 24.1],
}


def norm_layer(method: str, channels: int, groups: int) -> nn.Module:
    """BN, GN (``groups`` groups) or LN (GN with one group) for ``channels`` feature maps."""
    if method == "batch":
        return nn.BatchNorm2d(channels)
    if method == "group":
        return nn.GroupNorm(groups, channels)
    if method == "layer":
        return nn.GroupNorm(1, channels)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def build_network(
    method: str, channels: int = 16, groups: int = 4
) -> nn.Sequential:
    """Four 3x3 convolutions (8x8, then 4x4, 2x2 and 1x1 by stride 2), each followed by norm and
    ReLU, then a linear read-out. Deeper layers see fewer positions per example: a mini-batch of
    B examples gives BN 64B, 16B, 4B and finally only B values per channel."""
    c1, c2 = channels, 2 * channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, bias=False),
        norm_layer(method, c1, groups),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False),
        norm_layer(method, c2, groups),
        nn.ReLU(),
        nn.Conv2d(c2, c2, 3, stride=2, padding=1, bias=False),
        norm_layer(method, c2, groups),
        nn.ReLU(),
        nn.Conv2d(c2, c2, 3, stride=2, padding=1, bias=False),
        norm_layer(method, c2, groups),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c2, 10),
    )


def train_one(
    method: str,
    batch_size: int,
    settings: dict,
    data,
    seed: int,
    device: str,
    progress: Progress | None = None,
    done: int = 0,
) -> dict:
    """Train one network; return the test error (%) after each epoch."""
    torch.manual_seed(seed)
    model = build_network(method, settings["channels"], settings["groups"]).to(
        device
    )
    lr = settings["base_lr"] * batch_size / 32
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x_train = torch.from_numpy(data.x_train).reshape(-1, 1, 8, 8).to(device)
    y_train = torch.from_numpy(data.y_train).to(device)
    x_test = torch.from_numpy(data.x_test).reshape(-1, 1, 8, 8).to(device)
    y_test = torch.from_numpy(data.y_test).to(device)
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    errors = []
    n = len(x_train)
    for epoch in range(settings["epochs"]):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(
            0, n - batch_size + 1, batch_size
        ):  # drop the last partial batch
            index = order[start : start + batch_size]
            loss = loss_fn(model(x_train[index]), y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            wrong = (
                (model(x_test).argmax(dim=1) != y_test).double().mean().item()
            )
        errors.append(round(100.0 * wrong, 4))
        if progress is not None:
            progress.update(
                done + epoch + 1,
                method=LABELS[method],
                batch=batch_size,
                err=errors[-1],
            )
    return {
        "lr": lr,
        "test_error": errors,
        "final_error": float(np.median(errors[-3:])),
    }


def run(config: RunConfig) -> dict:
    """Train every method at every batch size; return the errors (JSON-serializable)."""
    if config.data_dir is not None:
        raise ValueError(
            "batch_size runs on the bundled digits only; --data-dir is not used"
        )
    settings = {**(QUICK if config.quick else FULL), **config.overrides}
    data = load_digits(seed=0)
    total = len(METHODS) * len(settings["batch_sizes"]) * settings["epochs"]
    progress = Progress(total, "batch_size", enabled=config.progress)
    results = {
        "settings": settings,
        "data": data.name,
        "paper_table2": PAPER_TABLE2,
        "runs": {},
    }
    done = 0
    for method in METHODS:
        results["runs"][method] = {}
        for batch_size in settings["batch_sizes"]:
            record = train_one(
                method,
                batch_size,
                settings,
                data,
                config.seed,
                config.device,
                progress,
                done,
            )
            results["runs"][method][str(batch_size)] = record
            done += settings["epochs"]
    return results


# The words of the batch_size figure in every language.
TEXT = FigureText(
    "batch_size",
    {
        "batch": {"en": "BN", "ko": "BN", "zh": "BN"},
        "group": {"en": "GN", "ko": "GN", "zh": "GN"},
        "layer": {"en": "LN", "ko": "LN", "zh": "LN"},
        "batch_axis": {
            "en": "batch size (examples per batch)",
            "ko": "배치 크기 (배치당 샘플 수)",
            "zh": "批量大小（每批样本数）",
        },
        "error_axis": {
            "en": "test error (%)",
            "ko": "테스트 오차 (%)",
            "zh": "测试误差（%）",
        },
        "title": {
            "en": "Test error against batch size",
            "ko": "배치 크기에 따른 테스트 오차",
            "zh": "测试误差随批量大小的变化",
        },
    },
)

# Each method its own line style and marker as well as its colour.
STYLES = {
    "batch": {"linestyle": "-", "marker": "o"},
    "group": {"linestyle": "--", "marker": "s"},
    "layer": {"linestyle": "-.", "marker": "^"},
}


def figures(results: dict, lang: str) -> dict[str, str]:
    """Test error against batch size for each method (log-scaled batch axis), in ``lang``."""
    with language(lang):
        fig, ax = new_figure()
        sizes = results["settings"]["batch_sizes"]
        for method in METHODS:
            errors = [
                results["runs"][method][str(b)]["final_error"] for b in sizes
            ]
            ax.plot(
                sizes,
                errors,
                color=COLORS[method],
                **STYLES[method],
                label=TEXT(method, lang),
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(b) for b in sizes])
        ax.set_xlabel(TEXT("batch_axis", lang))
        ax.set_ylabel(TEXT("error_axis", lang))
        ax.set_title(TEXT("title", lang))
        ax.legend(loc="upper right")
        return {"batch_size-error.svg": to_svg(fig, lang)}


EXPERIMENT = Experiment(
    name="batch_size",
    summary="Wu & He Table 2 in small: BN, GN and LN test error against batch size 2-64",
    run=run,
    figures=figures,
    accepts_data_dir=False,
)
