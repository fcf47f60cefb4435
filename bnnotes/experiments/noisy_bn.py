r"""Santurkar et al. (2018, §2.1) in small: BatchNorm still helps when noise destroys the
stability of the distributions.

A VGG-style network ([`bnnotes.models.vgg`][bnnotes.models.vgg]: six 3x3 convolutions in
three stages and two fully connected layers) is trained with plain SGD in four variants:

* ``none``: the standard network;
* ``batch``: BatchNorm after every hidden weight layer;
* ``noisy_batch``: BatchNorm followed by Santurkar et al.'s noise
  ([`NoisyBatchNorm`][bnnotes.torch_layers.NoisyBatchNorm]), which changes the mean and
  scale of every unit's input at every step;
* ``noise``: the standard network with the same noise injected where BN would sit.

It records the mini-batch training loss and accuracy, the test accuracy (evaluation mode:
running statistics, no noise) and, at every step, the mean and standard deviation of every
channel of one layer's pre-activations (the values entering its ReLU) on the current
batch. From these come the percentile bands of one channel over training (after the paper's §2.1
plots) and two drift numbers: how far a channel's mean moves from one step to the next, in units of
its standard deviation, and how far its log standard deviation moves.

By default the data are scikit-learn's 8x8 digits (offline); ``--data-dir`` reads the
CIFAR-10 python batches. The paper's own setup (VGG on CIFAR-10, batch 128, learning rate
0.1, 15,000 steps) is from one secondary source.
"""

from __future__ import annotations

from bnnotes.experiments import Experiment, RunConfig, one_thread
from bnnotes.experiments._common import (
    TEXT,
    accuracy_figure,
    distribution_figure,
    load_data,
    settings_for,
    summarize,
    train_vgg,
)
from bnnotes.experiments.plotting import language
from bnnotes.experiments.progress import Progress
from bnnotes.models import image_shape, images

__all__ = [
    "EXPERIMENT",
    "FULL",
    "PAPER",
    "QUICK",
    "VARIANTS",
    "figures",
    "run",
]

FULL = {
    "steps": 1000,
    "eval_every": 25,
    "record_every": 10,
    "batch_size": 128,
    "lr": 0.1,
    "seeds": 3,
    "widths": [16, 32, 64],
    "convs_per_stage": 2,
    "hidden": 128,
    "probe_layer": 3,
    "probe_channel": 0,
    "accuracy_threshold": 0.9,
}
QUICK = {**FULL, "steps": 300, "seeds": 1}
VARIANTS = ("none", "batch", "noisy_batch", "noise")

#: What Santurkar et al. (2018, §2.1) report, for comparison.
PAPER = {
    "setup": "VGG on CIFAR-10, plain SGD, batch 128, learning rate 0.1, 15,000 steps "
    "(one secondary source)",
    "noise": "mu ~ U(-0.5, 0.5), sigma ~ U(1, 1.25) per layer and step; m ~ U(mu - 0.1, mu + 0.1), "
    "s ~ N(sigma, 0.1) per activation (one secondary source, not checked against the appendix)",
    "claims": [
        "noisy BatchNorm trains almost as well as BatchNorm, and both better than the standard "
        "network",
        "the noisy BatchNorm network has less stable distributions than even the standard network",
        "the same noise injected into the standard network stops it from training",
    ],
}


def run(config: RunConfig) -> dict:
    """Train the four variants over the seeds; return curves, drift numbers and summaries."""
    settings = settings_for(config, FULL, QUICK)
    data = load_data(config)
    image_shape(data.num_features)
    tensors = images(data, config.device)
    with one_thread():
        seeds = [config.seed + k for k in range(settings["seeds"])]
        progress = Progress(
            len(VARIANTS) * len(seeds) * settings["steps"],
            "noisy_bn",
            enabled=config.progress,
        )
        results = {
            "settings": settings,
            "data": data.name,
            "paper": PAPER,
            "runs": {},
            "summary": {},
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
                        progress=progress,
                        done=done,
                    )
                )
                done += settings["steps"]
            results["runs"][variant] = runs
            results["summary"][variant] = summarize(runs, settings)
    return results


def figures(results: dict, lang: str) -> dict[str, str]:
    """Accuracy curves of the four variants, and the activation distributions of one channel,
    every word in ``lang``."""
    with language(lang):
        return {
            "noisy_bn-accuracy.svg": accuracy_figure(
                results, VARIANTS, TEXT("accuracy_title", lang), lang
            ),
            "noisy_bn-distributions.svg": distribution_figure(
                results, VARIANTS, lang
            ),
        }


EXPERIMENT = Experiment(
    name="noisy_bn",
    summary="Santurkar et al. §2.1 in small: standard, BN, noisy BN and noise-only VGG-style nets",
    run=run,
    figures=figures,
)
