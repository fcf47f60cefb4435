r"""Santurkar et al. (2018, §3.2, Fig. 4) in small: the landscape along the gradient, with and without BN.

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
from bnnotes.experiments.plotting import STYLE, new_figure, plt, to_svg
from bnnotes.experiments.progress import Progress
from bnnotes.landscape import flat_gradient, probe
from bnnotes.models import images, vgg

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
LABELS = {"none": "standard", "batch": "BN"}
COLORS = {"none": "#1f5fa8", "batch": "#c2410c"}

#: What Santurkar et al. (2018) report for VGG on CIFAR-10.
PAPER = {
    "source": "Santurkar et al. (2018), Section 3.2 and Figure 4; setup of Section 2 per secondary sources",
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
        for s, v in zip(record["step"], record[key])
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
        plain["step"], plain["batch_loss"], plain[key]
    ):
        for s_b, loss_b, value_b in zip(bn["step"], bn["batch_loss"], bn[key]):
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
                pairs = [
                    (p, q)
                    for s, p, q in zip(plain["step"], plain[key], bn[key])
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


def _band_figure(
    results: dict, low: str, high: str, ylabel: str, title: str
) -> str:
    lr_key, nets = _first(results)
    fig, ax = new_figure()
    for norm in NORMS:
        steps, lo = _series(nets[norm], low)
        _, hi = _series(nets[norm], high)
        ax.fill_between(
            steps, lo, hi, color=COLORS[norm], alpha=0.35, linewidth=0
        )
        ax.plot(
            steps,
            hi,
            color=COLORS[norm],
            linewidth=0.8,
            label=f"{LABELS[norm]} (max)",
        )
        ax.plot(steps, lo, color=COLORS[norm], linewidth=0.8, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (lr {lr_key})")
    ax.legend(loc="upper right")
    return to_svg(fig)


def _line_figure(
    results: dict, keys: tuple[str, ...], ylabel: str, title: str
) -> str:
    lr_key, nets = _first(results)
    fig, ax = new_figure()
    styles = ("-", "--")
    for norm in NORMS:
        for key, style in zip(keys, styles):
            steps, values = _series(nets[norm], key)
            suffix = " (random direction)" if key.startswith("random") else ""
            ax.plot(
                steps,
                values,
                color=COLORS[norm],
                linestyle=style,
                linewidth=1.0,
                label=f"{LABELS[norm]}{suffix}",
            )
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (lr {lr_key})")
    ax.legend(loc="upper right", fontsize=8)
    return to_svg(fig)


def figures(results: dict) -> dict[str, str]:
    """Fig. 4 in small (loss band, gradient-change band, beta), the random direction, training curves,
    and beta against the loss at the probe."""
    out = {
        "landscape-loss.svg": _band_figure(
            results,
            "loss_min",
            "loss_max",
            "loss at w - ηg (range over η)",
            "Variation of loss",
        ),
        "landscape-gradient.svg": _band_figure(
            results,
            "gradient_change_min",
            "gradient_change_max",
            "‖∇L(w - ηg) - g‖ (range over η)",
            "Gradient predictiveness",
        ),
        "landscape-beta.svg": _line_figure(
            results,
            ("beta",),
            "max change / distance",
            "Effective β-smoothness",
        ),
    }
    if results["settings"]["random_direction"]:
        out["landscape-random.svg"] = _line_figure(
            results,
            ("gradient_change_max", "random_gradient_change_max"),
            "largest ‖∇L(w - ηd) - g‖",
            "Gradient change: gradient vs random direction",
        )
    out["landscape-training.svg"] = _training(results)
    out["landscape-beta-vs-loss.svg"] = _beta_vs_loss(results)
    return out


def _training(results: dict) -> str:
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(8.0, 3.4), layout="constrained"
        )
    styles = ("-", "--", ":", "-.")
    for lr_key, style in zip(
        (str(lr) for lr in results["settings"]["lrs"]), styles
    ):
        for k, seed_key in enumerate(sorted(results["runs"][lr_key], key=int)):
            for norm in NORMS:
                record = results["runs"][lr_key][seed_key][norm]
                steps, loss = _series(record, "train_loss")
                _, accuracy = _series(record, "test_accuracy")
                label = f"{LABELS[norm]}, lr {lr_key}" if k == 0 else None
                for ax, values in ((left, loss), (right, accuracy)):
                    ax.plot(
                        steps,
                        values,
                        color=COLORS[norm],
                        linestyle=style,
                        linewidth=1.0,
                        alpha=1.0 if k == 0 else 0.45,
                        label=label,
                    )
    left.set_yscale("log")
    left.set_xlabel("training step")
    left.set_ylabel("training loss (whole training set)")
    right.set_xlabel("training step")
    right.set_ylabel("test accuracy")
    right.set_ylim(0, 1)
    left.legend(loc="lower left", fontsize=8)
    fig.suptitle(
        "Training with plain SGD (every seed; the first seed opaque, the others faded)"
    )
    return to_svg(fig)


def _beta_vs_loss(results: dict) -> str:
    lr_key = str(results["settings"]["lrs"][0])
    fig, ax = new_figure()
    markers = ("o", "s", "^", "v", "D")
    for k, seed_key in enumerate(sorted(results["runs"][lr_key], key=int)):
        for norm in NORMS:
            record = results["runs"][lr_key][seed_key][norm]
            _, loss = _series(record, "batch_loss")
            _, beta = _series(record, "beta")
            ax.scatter(
                loss,
                beta,
                s=9,
                color=COLORS[norm],
                marker=markers[k % len(markers)],
                alpha=0.6,
                label=LABELS[norm] if k == 0 else None,
                linewidths=0,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("mini-batch loss at the probe (training goes right)")
    ax.set_ylabel("effective β-smoothness")
    ax.set_title(f"β against progress, all seeds (lr {lr_key})")
    ax.legend(loc="upper left")
    return to_svg(fig)


EXPERIMENT = Experiment(
    name="landscape",
    summary="Santurkar et al. Fig. 4 in small: loss variation, gradient predictiveness and beta with and without BN",
    run=run,
    figures=figures,
    accepts_data_dir=True,
)
