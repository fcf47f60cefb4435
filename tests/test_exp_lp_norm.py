"""The lp_norm experiment (Santurkar et al., 2018, §3.3): a tiny seeded run, the
DLN pieces and the figures."""

import numpy as np
import pytest
import torch

from bnnotes.experiments import RunConfig, get, run_experiment
from bnnotes.experiments.lp_norm import VARIANTS, dln_data, dln_loss, figures
from bnnotes.figure_text import LANGUAGES

TINY = {
    "steps": 60,
    "eval_every": 20,
    "record_every": 10,
    "batch_size": 32,
    "seeds": 1,
    "widths": [4, 8, 8],
    "hidden": 16,
    "landscape_every": 30,
    "landscape_multipliers": [0.5, 2.0],
    "dln_steps": 200,
    "dln_samples": 200,
    "dln_depth": 8,
    "dln_seeds": 1,
    "dln_probe_layer": 3,
    "dln_record_every": 20,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny lp_norm run, seed 0, stored in a temporary folder."""
    out = tmp_path_factory.mktemp("lp_norm")
    results = run_experiment(
        "lp_norm",
        RunConfig(seed=0, progress=False, overrides=TINY),
        out / "results",
        out / "figures",
    )
    return results, out


def test_dln_data_targets_are_a_times_x():
    """dln_data returns Gaussian inputs as rows and targets A x_i, reproducibly from the seed."""
    x, y, a = dln_data(50, 10, seed=3)
    assert x.shape == y.shape == (50, 10) and a.shape == (10, 10)
    assert torch.allclose(y, x @ a.T, rtol=1e-12, atol=0)
    x2, _, a2 = dln_data(50, 10, seed=3)
    assert torch.equal(x, x2) and torch.equal(a, a2)


def test_dln_loss_is_the_mean_over_samples_of_the_summed_squared_error():
    """dln_loss(out, target) = (1/n) sum_i ||out_i - target_i||^2."""
    out = torch.tensor([[1.0, 2.0], [0.0, -1.0]], dtype=torch.float64)
    target = torch.zeros(2, 2, dtype=torch.float64)
    assert dln_loss(out, target).item() == pytest.approx(
        (1 + 4 + 0 + 1) / 2, rel=1e-15
    )


def test_run_records_every_variant_for_both_models(tiny):
    """Each variant has VGG curves with landscape probes and a DLN loss curve from step 0."""
    results, _ = tiny
    for variant in VARIANTS:
        vgg_run = results["vgg"]["runs"][variant][0]
        assert vgg_run["steps"] == [20, 40, 60]
        assert vgg_run["landscape"]["steps"] == [0, 30]
        dln_run = results["dln"]["runs"][variant][0]
        assert (
            dln_run["steps"] == list(range(0, 201, 20))
            and len(dln_run["loss"]) == 11
        )


def test_every_dln_variant_lowers_its_loss(tiny):
    """Full-batch gradient descent at the chosen rate decreases the DLN
    loss for every normalization."""
    for variant in VARIANTS:
        loss = tiny[0]["dln"]["runs"][variant][0]["loss"]
        assert loss[-1] < loss[0]


def test_normalization_pins_the_channel_mean_that_the_raw_layer_lets_drift(
    tiny,
):
    """After BN, l1 or l2 a channel's batch mean is beta, so its drift is under a tenth
    of the raw layer output's."""
    summary = tiny[0]["vgg"]["summary"]
    assert summary["none"]["mean_drift"] == summary["none"]["raw_mean_drift"]
    for variant in ("batch", "l1", "l2"):
        assert (
            summary[variant]["mean_drift"]
            < 0.1 * summary[variant]["raw_mean_drift"]
        )
    assert summary["linf"]["mean_drift"] < summary["linf"]["raw_mean_drift"]


def test_every_normalization_trains_the_vgg_net_faster_than_none(tiny):
    """In the short run every normalized VGG-style net ends with a lower training loss
    than the unnormalized one."""
    summary = tiny[0]["vgg"]["summary"]
    for variant in ("batch", "l1", "l2", "linf"):
        assert (
            summary[variant]["final_train_loss"]
            < summary["none"]["final_train_loss"]
        )


def test_landscape_probes_are_finite_and_positive(tiny):
    """Every probe gives a finite positive gradient change and beta-smoothness."""
    for variant in VARIANTS:
        record = tiny[0]["vgg"]["runs"][variant][0]["landscape"]
        values = np.array(
            record["gradient_predictiveness"] + record["beta_smoothness"],
            dtype=float,
        )
        assert np.isfinite(values).all() and (values > 0).all()


def test_same_seed_gives_identical_results(tiny):
    """Two runs with one seed on the CPU give identical records."""
    again = get("lp_norm").run(
        RunConfig(seed=0, progress=False, overrides=TINY)
    )  # the records only: the figures are checked from the first run
    assert again["vgg"]["runs"] == tiny[0]["vgg"]["runs"]
    assert again["dln"]["runs"] == tiny[0]["dln"]["runs"]


def test_figures_are_deterministic_svg(tiny):
    """figures() renders the four SVG files in every language, byte-identical to those the
    run wrote to figures/<lang>/."""
    results, out = tiny
    for lang in LANGUAGES:
        rendered = figures(results, lang)
        assert sorted(rendered) == [
            "lp_norm-accuracy.svg",
            "lp_norm-distributions.svg",
            "lp_norm-dln.svg",
            "lp_norm-landscape.svg",
        ]
        for name, svg in rendered.items():
            assert (
                svg.startswith("<?xml")
                and svg == (out / "figures" / lang / name).read_text()
            )


def test_lp_norm_is_registered_and_reads_cifar():
    """The experiment is registered and accepts --data-dir (CIFAR-10)."""
    assert get("lp_norm").accepts_data_dir
