"""The landscape experiment: a tiny run on the digits and its qualitative results, determinism,
figures, and the CIFAR-10 path."""

import numpy as np
import pytest
from helpers import assert_same_files
from test_data import write_cifar10

from bnnotes.experiments import RunConfig, get, render_figures, run_experiment
from bnnotes.experiments.landscape import FULL, PAPER, RECORD_KEYS, run
from bnnotes.figure_text import LANGUAGES

TINY = {
    "steps": 160,
    "probe_every": 20,
    "step_multiples": [0.5, 2.0, 4.0],
    "lrs": [0.1],
    "seeds": 1,
}
FIGURES = [
    "landscape-beta-vs-loss.svg",
    "landscape-beta.svg",
    "landscape-gradient.svg",
    "landscape-loss.svg",
    "landscape-random.svg",
    "landscape-training.svg",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """160 steps at lr 0.1, probes every 20 steps at 0.5, 2 and 4 x lr, seed 0,
    stored in a temporary folder."""
    out = tmp_path_factory.mktemp("landscape")
    results = run_experiment(
        "landscape",
        RunConfig(seed=0, progress=False, overrides=TINY),
        out / "results",
        out / "figures",
    )
    nets = results["runs"]["0.1"]["0"]
    return results, nets, out


def test_experiment_is_registered_and_accepts_a_data_dir():
    """`landscape` is in the registry and --data-dir (CIFAR-10) applies to it."""
    assert get("landscape").accepts_data_dir


def test_full_settings_follow_the_paper_vgg_probe():
    """Batch 128, the same learning rate 0.1 for both nets, and step sizes from 1/2 to 4
    times it (Santurkar §3.2)."""
    assert FULL["batch_size"] == 128 and FULL["lrs"][0] == 0.1
    assert (
        min(FULL["step_multiples"]) == PAPER["step_multiples_of_lr"][0] == 0.5
    )
    assert (
        max(FULL["step_multiples"]) == PAPER["step_multiples_of_lr"][1] == 4.0
    )


def test_run_records_one_value_per_probe_for_every_key(tiny_run):
    """Each net has a probe at steps 0, 20, ..., 160 and one entry per probe
    for every recorded quantity."""
    results, nets, _ = tiny_run
    for record in nets.values():
        assert record["step"] == list(range(0, 161, 20))
        assert all(len(record[key]) == 9 for key in RECORD_KEYS)
        assert record["diverged_at"] is None
    assert results["settings"]["steps"] == 160 and results["paper"] == PAPER


def test_probe_bands_contain_their_summaries(tiny_run):
    """loss_variation = loss_max - loss_min and 0 <= gradient_change_min <=
    gradient_change_max at every probe."""
    _, nets, _ = tiny_run
    for record in nets.values():
        lo, hi = np.array(record["loss_min"]), np.array(record["loss_max"])
        assert np.allclose(
            np.array(record["loss_variation"]), hi - lo, rtol=1e-12, atol=0
        )
        assert np.all(np.array(record["gradient_change_min"]) >= 0)
        assert np.all(
            np.array(record["gradient_change_min"])
            <= np.array(record["gradient_change_max"])
        )


def test_bn_trains_faster(tiny_run):
    """After 160 steps the BN net's training loss is below a tenth of the standard net's."""
    _, nets, _ = tiny_run
    assert (
        nets["batch"]["train_loss"][-1] < 0.1 * nets["none"]["train_loss"][-1]
    )


def test_standard_net_starts_on_a_plateau(tiny_run):
    """At step 0 the standard net's gradient is over 10x smaller than BN's, and
    so is its loss variation."""
    _, nets, _ = tiny_run
    plain, bn = nets["none"], nets["batch"]
    assert plain["gradient_norm"][0] < 0.1 * bn["gradient_norm"][0]
    assert plain["loss_variation"][0] < 0.1 * bn["loss_variation"][0]


def test_bn_gradient_changes_less_once_the_standard_net_moves(tiny_run):
    """At the last three probes the standard net's largest gradient change exceeds BN's tenfold
    (Santurkar Fig. 4b's direction)."""
    _, nets, _ = tiny_run
    plain, bn = (
        np.array(nets["none"]["gradient_change_max"]),
        np.array(nets["batch"]["gradient_change_max"]),
    )
    assert np.all(plain[-3:] > 10 * bn[-3:])


def test_a_random_direction_changes_the_gradient_less_than_the_gradient_direction(
    tiny_run,
):
    """Along a random direction of the gradient's length the gradient changes less than along
    the gradient, after step 0."""
    _, nets, _ = tiny_run
    for record in nets.values():
        along = np.array(record["gradient_change_max"][1:])
        random = np.array(record["random_gradient_change_max"][1:])
        assert np.all(random < along)


def test_same_seed_gives_identical_records():
    """Two short runs with one seed on the CPU give identical records."""
    short = {**TINY, "steps": 20, "probe_every": 10}
    first, second = (
        run(RunConfig(seed=3, progress=False, overrides=short))
        for _ in range(2)
    )
    assert (
        first["runs"] == second["runs"]
        and first["summary"] == second["summary"]
    )


@pytest.fixture(scope="module")
def rerendered(tiny_run, tmp_path_factory):
    """The tiny run's figures rendered again from its results folder (render_figures):
    (folder, files written)."""
    _, _, out = tiny_run
    folder = tmp_path_factory.mktemp("landscape-again")
    return folder, render_figures(out / "results", folder)


def test_figures_are_rendered_deterministically_from_results(
    tiny_run, rerendered
):
    """The six figures are written in every language and re-render byte-identically from
    the stored JSON."""
    _, _, out = tiny_run
    folder, written = rerendered
    for lang in LANGUAGES:
        assert (
            sorted(p.name for p in (out / "figures" / lang).iterdir())
            == FIGURES
        )
    assert len(written) == len(FIGURES) * len(LANGUAGES)
    assert_same_files(written, folder, out / "figures")


def test_render_figures_picks_up_the_stored_result(rerendered):
    """`python -m bnnotes.experiments figures` re-renders the landscape
    figures from a results folder."""
    folder, written = rerendered
    assert {f"{lang}/{name}" for lang in LANGUAGES for name in FIGURES} <= {
        p.relative_to(folder).as_posix() for p in written
    }


def test_cifar10_data_dir_builds_a_network_for_32x32_colour_images(tmp_path):
    """--data-dir reads CIFAR-10 python batches; the run trains on 3x32x32 images."""
    write_cifar10(tmp_path / "cifar", n_per_batch=8)
    overrides = {
        **TINY,
        "steps": 2,
        "probe_every": 1,
        "batch_size": 16,
        "random_direction": False,
    }
    results = run(
        RunConfig(
            data_dir=tmp_path / "cifar", progress=False, overrides=overrides
        )
    )
    assert results["data"].startswith("CIFAR-10")
    record = results["runs"]["0.1"]["0"]["batch"]
    assert record["step"] == [0, 1, 2] and record["random_beta"] == [
        None,
        None,
        None,
    ]
    assert all(v is not None and v > 0 for v in record["beta"])
