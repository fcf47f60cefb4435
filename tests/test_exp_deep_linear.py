"""The deep_linear experiment: ICS and landscape of a 25-layer linear
network, with and without BN."""

import json

import pytest
import torch
from helpers import assert_same_files

from bnnotes.experiments import RunConfig, get, render_figures, run_experiment
from bnnotes.experiments.deep_linear import make_data, squared_error
from bnnotes.figure_text import LANGUAGES

TINY = {
    "steps": 300,
    "lrs": [1e-4],
    "samples": 200,
    "ics_every": 50,
    "probe_every": 100,
}
FIGURES = [
    "deep_linear-ics.svg",
    "deep_linear-landscape.svg",
    "deep_linear-loss.svg",
    "deep_linear-stability.svg",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """300 steps of full-batch gradient descent at lr 1e-4 on 200 samples, seed 0."""
    out = tmp_path_factory.mktemp("dln")
    results = run_experiment(
        "deep_linear",
        RunConfig(seed=0, progress=False, overrides=TINY),
        out / "results",
        out / "figures",
    )
    return results, out


def test_standard_dln_has_almost_no_ics(tiny_run):
    """Without BN, the mean cosine of G and G' over layers 2..25 stays
    above 0.99 at every measurement."""
    summary = tiny_run[0]["summary"]["0.0001"]["none"]
    assert summary["cosine_min_over_time"] > 0.99


def test_bn_dln_gradients_decorrelate(tiny_run):
    """With BN, after the first measurement the mean cosine of G and G'
    (layers 2..25) is below 0.7."""
    summary = tiny_run[0]["summary"]["0.0001"]["batch"]
    assert summary["cosine_after_start"] < 0.7


def test_bn_relative_ics_is_ten_times_larger(tiny_run):
    """||G - G'|| / ||G||, averaged over layers and time, is more than 10 times larger with BN."""
    summary = tiny_run[0]["summary"]["0.0001"]
    assert (
        summary["batch"]["relative_l2_mean"]
        > 10 * summary["none"]["relative_l2_mean"]
    )


def test_bn_dln_runs_at_the_edge_of_stability(tiny_run):
    """lr times the median effective beta-smoothness is between 1 and 4 with
    BN and below 0.1 without."""
    summary = tiny_run[0]["summary"]["0.0001"]
    assert 1.0 < 1e-4 * summary["batch"]["beta_smoothness_median"] < 4.0
    assert 1e-4 * summary["none"]["beta_smoothness_median"] < 0.1


def test_first_layer_never_shifts(tiny_run):
    """Layer 1 has ICS 0 and cosine 1 at every measurement (it has no preceding layer)."""
    for record in tiny_run[0]["runs"]["0.0001"].values():
        assert all(row[0] == 0.0 for row in record["l2"])
        assert all(row[0] == 1.0 for row in record["cosine"])


def test_recorded_loss_is_the_mean_squared_error_at_initialization(tiny_run):
    """The loss stored for step 0 is ||f(x) - A x||^2 averaged over samples for
    the seeded initial network."""
    from bnnotes.models import deep_linear

    x, a, y = make_data(200, 10, 0)
    torch.manual_seed(0)
    net = deep_linear(10, 25, "none").double()
    product = torch.eye(10, dtype=torch.float64)
    for layer in net:
        product = layer.weight @ product
    expected = ((x @ product.T - x @ a.T) ** 2).sum(dim=1).mean().item()
    assert tiny_run[0]["runs"]["0.0001"]["none"]["loss"][0] == pytest.approx(
        expected, rel=1e-6
    )  # 6 digits stored
    assert squared_error(net(x), y).item() == pytest.approx(
        expected, rel=1e-12
    )


def test_same_seed_gives_identical_results(tiny_run):
    """Two runs with one seed give identical records."""
    second = get("deep_linear").run(
        RunConfig(seed=0, progress=False, overrides=TINY)
    )  # the records only: the figures are checked from the first run
    assert json.dumps(second["runs"], sort_keys=True) == json.dumps(
        tiny_run[0]["runs"], sort_keys=True
    )


def test_figures_are_rendered_deterministically(tiny_run, tmp_path):
    """The four figures are written in every language and re-render byte-identically from
    the stored JSON."""
    _, out = tiny_run
    for lang in LANGUAGES:
        folder = out / "figures" / lang
        assert sorted(p.name for p in folder.iterdir()) == FIGURES
    written = render_figures(out / "results", tmp_path)
    assert len(written) == len(FIGURES) * len(LANGUAGES)
    assert_same_files(written, tmp_path, out / "figures")


def test_figures_follow_the_run_order_of_the_rates(tmp_path):
    """With rates whose sorted JSON keys differ from the run order, the stored JSON
    renders the same figures."""
    overrides = {
        "steps": 20,
        "lrs": [3e-4, 1e-4],
        "samples": 50,
        "ics_every": 10,
        "probe_every": 10,
    }
    results = run_experiment(
        "deep_linear",
        RunConfig(seed=0, progress=False, overrides=overrides),
        tmp_path / "r",
        tmp_path / "f",
    )
    assert list(
        json.loads((tmp_path / "r" / "deep_linear.json").read_text())["runs"]
    ) == ["0.0001", "0.0003"]
    assert list(results["runs"]) == ["0.0003", "0.0001"]
    # The order is the same in every language: English stands for all three.
    stored = json.loads((tmp_path / "r" / "deep_linear.json").read_text())
    rendered = get("deep_linear").figures(stored, "en")
    assert sorted(rendered) == FIGURES
    for name, svg in rendered.items():
        assert svg == (tmp_path / "f" / "en" / name).read_text("utf-8"), name


def test_data_dir_and_cuda_are_refused():
    """The experiment is synthetic and CPU-only: --data-dir and a cuda device raise ValueError."""
    run = get("deep_linear").run
    with pytest.raises(ValueError, match="--data-dir"):
        run(RunConfig(data_dir="/tmp", overrides=TINY))
    with pytest.raises(ValueError, match="CPU only"):
        run(RunConfig(device="cuda", overrides=TINY))
