"""The ics experiment: gradient ICS (Definition 2.1) of a VGG-style network with and without BN."""

import json
import pickle

import numpy as np
import pytest
from helpers import assert_same_files

from bnnotes.experiments import RunConfig, get, render_figures, run_experiment
from bnnotes.experiments.ics import measurement_steps
from bnnotes.figure_text import LANGUAGES

TINY = {
    "steps": 60,
    "widths": [8, 16, 32],
    "hidden": 32,
    "ics_every": 10,
    "ics_dense_until": 30,
    "ics_dense_every": 5,
    "early_steps": 30,
    "eval_every": 20,
    "repeats": 1,
}
FIGURES = ["ics-training.svg", "ics-vgg-by-loss.svg", "ics-vgg.svg"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """60 SGD steps of narrow standard and BN networks on the digits, seed 0."""
    out = tmp_path_factory.mktemp("ics")
    results = run_experiment(
        "ics",
        RunConfig(seed=0, progress=False, overrides=TINY),
        out / "results",
        out / "figures",
    )
    return results, out


def test_bn_has_larger_ics_early(tiny_run):
    """In the first 30 steps the BN network's G and G' are less aligned (cosine lower by 0.2) and
    differ by more than ten times as much in l2 (Santurkar et al.'s "similar or even worse")."""
    summary = tiny_run[0]["summary"]
    assert (
        summary["batch"]["cosine_early"]
        < summary["none"]["cosine_early"] - 0.2
    )
    assert summary["batch"]["l2_early"] > 10 * summary["none"]["l2_early"]


def test_bn_trains_faster_despite_larger_ics(tiny_run):
    """After 60 steps the BN network's training loss is below 0.5 while the
    standard one is still above 2."""
    summary = tiny_run[0]["summary"]
    assert summary["batch"]["final_train_loss"] < 0.5
    assert summary["none"]["final_train_loss"] > 2.0


def test_first_layer_never_shifts(tiny_run):
    """Layer 1 has ICS 0 and cosine 1 at every measurement, in both networks."""
    for records in tiny_run[0]["runs"].values():
        for record in records:
            assert all(row[0] == 0.0 for row in record["l2"])
            assert all(row[0] == 1.0 for row in record["cosine"])


def test_one_entry_per_weight_layer(tiny_run):
    """Six convolutions and two linear layers: eight entries per measurement."""
    results = tiny_run[0]
    assert results["layers"] == ["Conv2d"] * 6 + ["Linear"] * 2
    assert all(
        len(row) == 8
        for records in results["runs"].values()
        for r in records
        for row in r["cosine"]
    )


def test_measurement_schedule():
    """Dense measurements early, regular ones later, always including the
    last step before the end."""
    assert measurement_steps({
        "steps": 60,
        "ics_dense_until": 20,
        "ics_dense_every": 5,
        "ics_every": 25,
    }) == [0, 5, 10, 15, 25, 50, 59]


def test_same_seed_gives_identical_results(tiny_run):
    """Two runs with one seed on the CPU give identical records."""
    second = get("ics").run(
        RunConfig(seed=0, progress=False, overrides=TINY)
    )  # the records only: the figures are checked from the first run
    assert json.dumps(second["runs"], sort_keys=True) == json.dumps(
        tiny_run[0]["runs"], sort_keys=True
    )


def test_figures_are_rendered_deterministically(tiny_run, tmp_path):
    """The three figures are written in every language and re-render byte-identically
    from the stored JSON."""
    _, out = tiny_run
    for lang in LANGUAGES:
        folder = out / "figures" / lang
        assert sorted(p.name for p in folder.iterdir()) == FIGURES
    written = render_figures(out / "results", tmp_path)
    assert len(written) == len(FIGURES) * len(LANGUAGES)
    assert_same_files(written, tmp_path, out / "figures")


def write_cifar(folder, per_batch=8, seed=0):
    """Six CIFAR-10 python batches of random images."""
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(
                0, 256, size=(per_batch, 3072), dtype=np.uint8
            ),
            b"labels": rng.integers(0, 10, size=per_batch).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))


def test_data_dir_runs_on_cifar10_files(tmp_path):
    """--data-dir reads CIFAR-10 batches and trains the 3-channel 32x32 network (the
    training figure says so)."""
    write_cifar(tmp_path)
    overrides = {
        "steps": 3,
        "batch_size": 8,
        "widths": [4, 8, 16],
        "hidden": 8,
        "ics_every": 1,
        "eval_every": 3,
        "repeats": 1,
    }
    results = get("ics").run(
        RunConfig(data_dir=tmp_path, progress=False, overrides=overrides)
    )
    assert results["data"].startswith("CIFAR-10")
    assert results["runs"]["batch"][0]["ics_steps"] == [0, 1, 2]
    # The training figure names the data set it was trained on.
    training = get("ics").figures(results, "en")["ics-training.svg"]
    assert "CIFAR-10" in training
