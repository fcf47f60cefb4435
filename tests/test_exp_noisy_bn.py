"""The noisy_bn experiment (Santurkar et al., 2018, §2.1): a tiny seeded run,
its helpers and its figures."""

import numpy as np
import pytest
import torch
from torch import nn

from bnnotes.experiments import RunConfig, get, run_experiment
from bnnotes.experiments._common import (
    ActivationRecorder,
    pre_activation_module,
    steps_to,
)
from bnnotes.experiments.noisy_bn import VARIANTS, figures
from bnnotes.figure_text import LANGUAGES
from bnnotes.models import vgg, weight_layers
from bnnotes.torch_layers import NoisyBatchNorm

TINY = {
    "steps": 120,
    "eval_every": 20,
    "record_every": 10,
    "batch_size": 32,
    "seeds": 1,
    "widths": [4, 8, 8],
    "hidden": 16,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny noisy_bn run on the digits, seed 0, stored in a temporary folder."""
    out = tmp_path_factory.mktemp("noisy_bn")
    results = run_experiment(
        "noisy_bn",
        RunConfig(seed=0, progress=False, overrides=TINY),
        out / "results",
        out / "figures",
    )
    return results, out


def test_noisy_bn_is_registered_and_reads_cifar():
    """The experiment is registered and accepts --data-dir (CIFAR-10)."""
    assert get("noisy_bn").accepts_data_dir


def test_run_records_every_variant_at_every_evaluation(tiny):
    """Each variant has one entry per evaluation step in each curve, and a drift summary."""
    results, _ = tiny
    for variant in VARIANTS:
        record = results["runs"][variant][0]
        assert record["steps"] == list(range(20, 121, 20))
        assert len(record["train_loss"]) == len(record["test_accuracy"]) == 6
        assert set(results["summary"][variant]) >= {
            "mean_drift",
            "scale_drift",
            "final_train_accuracy",
        }


def test_batchnorm_trains_faster_than_the_standard_network(tiny):
    """Mean training loss over the run is lower with BN than without (the
    paper's Fig. 2 ordering)."""
    results, _ = tiny
    loss = {
        v: np.mean(results["runs"][v][0]["train_loss"])
        for v in ("none", "batch")
    }
    assert loss["batch"] < loss["none"]


def test_noisy_batchnorm_drifts_more_than_batchnorm_and_the_standard_network(
    tiny,
):
    """The injected noise makes the channel means move more per step than in the
    BN and standard networks."""
    summary = tiny[0]["summary"]
    assert summary["noisy_batch"]["mean_drift"] > summary["none"]["mean_drift"]
    assert (
        summary["noisy_batch"]["mean_drift"]
        > 10 * summary["batch"]["mean_drift"]
    )


def test_same_seed_gives_identical_results(tiny):
    """Two runs with one seed on the CPU give identical records."""
    again = get("noisy_bn").run(
        RunConfig(seed=0, progress=False, overrides=TINY)
    )  # the records only: the figures are checked from the first run
    assert again["runs"] == tiny[0]["runs"]


def test_figures_are_deterministic_svg(tiny):
    """figures() renders the two SVG files in every language, byte-identical to those the
    run wrote to figures/<lang>/."""
    results, out = tiny
    for lang in LANGUAGES:
        rendered = figures(results, lang)
        assert sorted(rendered) == [
            "noisy_bn-accuracy.svg",
            "noisy_bn-distributions.svg",
        ]
        for name, svg in rendered.items():
            assert (
                svg.startswith("<?xml")
                and svg == (out / "figures" / lang / name).read_text()
            )


def test_unknown_override_is_rejected():
    """A misspelt setting is a ValueError naming it, not a silently ignored key."""
    with pytest.raises(ValueError, match="stpes"):
        get("noisy_bn").run(RunConfig(progress=False, overrides={"stpes": 3}))


def test_pre_activation_module_is_the_layer_before_each_relu():
    """For weight layer k the recorded module is its norm (noisy BN here), or the
    layer itself without a norm."""
    noisy = vgg("noisy_batch")
    module = pre_activation_module(noisy, 3)
    modules = list(noisy)
    assert isinstance(module, NoisyBatchNorm)
    assert modules[modules.index(module) - 1] is weight_layers(noisy)[3]
    plain = vgg("none")
    assert pre_activation_module(plain, 3) is weight_layers(plain)[3]
    with pytest.raises(ValueError, match="probe_layer"):
        pre_activation_module(plain, len(weight_layers(plain)) - 1)


def test_activation_recorder_drift_matches_a_direct_computation():
    """drift() = median over channels of mean |diff of means| / mean std, and
    of mean |diff of log std|."""
    layer = nn.Identity().train()
    recorder = ActivationRecorder(layer, channel=0, record_every=1)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(50, 3, generator=g) * (1 + k) + k for k in range(4)]
    for x in batches:
        layer(x)
    recorder.remove()
    stacked = np.stack([
        x.double().numpy() for x in batches
    ])  # (steps, n, channels)
    means, stds = stacked.mean(axis=1), stacked.std(axis=1)
    expected_mean = np.median(
        np.abs(np.diff(means, axis=0)).mean(axis=0) / stds.mean(axis=0)
    )
    expected_scale = np.median(
        np.abs(np.diff(np.log(stds), axis=0)).mean(axis=0)
    )
    drift = recorder.drift()
    assert drift["mean_drift"] == pytest.approx(expected_mean, rel=1e-10)
    assert drift["scale_drift"] == pytest.approx(expected_scale, rel=1e-10)
    assert len(recorder.percentiles) == 4


def test_steps_to_finds_the_first_evaluation_over_the_threshold():
    """steps_to returns the first step whose value reaches the threshold, None if none does."""
    record = {"steps": [10, 20, 30], "acc": [0.5, 0.95, 0.99]}
    assert steps_to(record, "acc", 0.9) == 20
    assert steps_to(record, "acc", 0.999) is None


def test_data_dir_trains_on_cifar10_batches(tmp_path):
    """With a data folder the run reads the CIFAR-10 python batches and trains on 3x32x32 images."""
    from test_data import write_cifar10

    write_cifar10(tmp_path / "cifar", n_per_batch=8)
    overrides = {
        **TINY,
        "steps": 4,
        "eval_every": 2,
        "record_every": 2,
        "batch_size": 8,
    }
    results = get("noisy_bn").run(
        RunConfig(
            progress=False, data_dir=tmp_path / "cifar", overrides=overrides
        )
    )
    assert results["data"].startswith("CIFAR-10")
    assert all(
        len(results["runs"][v][0]["test_accuracy"]) == 2 for v in VARIANTS
    )
