"""The experiment harness (command line, storage, figures) and the mnist_sigmoid experiment."""

import json

import pytest
from helpers import assert_same_files
from test_data import write_mnist

from bnnotes import experiments
from bnnotes.diagrams import INDEX_SETS_FIGURES
from bnnotes.experiments import (
    RunConfig,
    covariate_shift,
    render_figures,
    run_experiment,
)
from bnnotes.experiments.__main__ import main
from bnnotes.experiments.mnist_sigmoid import build_network
from bnnotes.experiments.progress import Progress
from bnnotes.figure_text import LANGUAGES

TINY = {"steps": 600, "eval_every": 100}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny mnist_sigmoid run on the digits, seed 0, stored in a temporary folder."""
    out = tmp_path_factory.mktemp("run")
    config = RunConfig(seed=0, progress=False, overrides=TINY)
    results = run_experiment(
        "mnist_sigmoid", config, out / "results", out / "figures"
    )
    return results, out


def test_list_names_every_experiment(capsys):
    """`list` prints each registered experiment with its summary and exits 0."""
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mnist_sigmoid" in out and "batch_size" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no_such_experiment"], "unknown experiment"),
        (["mnist_sigmoid", "--device", "tpu"], "invalid choice"),
        (["mnist_sigmoid", "--seed", "-1"], "--seed must be >= 0"),
        (["mnist_sigmoid", "--seed", "x"], "invalid int value"),
        (
            ["mnist_sigmoid", "--data-dir", "/no/such/dir"],
            "is not a directory",
        ),
        (["batch_size", "--data-dir", "/tmp"], "--data-dir does not apply"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    """Bad arguments print a message naming the problem and exit with status 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_run_writes_results_and_figures(tiny_run):
    """A run stores NAME.json and the three SVG figures once per language (en/, ko/, zh/)."""
    _, out = tiny_run
    assert (
        json.loads((out / "results" / "mnist_sigmoid.json").read_text())[
            "meta"
        ]["seed"]
        == 0
    )
    assert sorted(
        p.relative_to(out / "figures").as_posix()
        for p in (out / "figures").rglob("*")
        if p.is_file()
    ) == [
        f"{lang}/mnist_sigmoid-{name}.svg"
        for lang in LANGUAGES
        for name in ("accuracy", "percentiles-b", "percentiles-c")
    ]


def test_same_seed_gives_identical_results():
    """Two runs with one seed on the CPU give identical records (only the wall time may differ)."""
    short = {"steps": 60, "eval_every": 20}
    first, second = (
        experiments.get("mnist_sigmoid").run(
            RunConfig(seed=0, progress=False, overrides=short)
        )
        for _ in range(2)
    )
    assert first["variants"] == second["variants"]


def test_figures_are_rendered_deterministically_from_results(
    tiny_run, tmp_path
):
    """`figures` re-renders byte-identical SVG from the stored results, without training."""
    _, out = tiny_run
    written = render_figures(out / "results", tmp_path)
    assert len(written) == 3 * len(LANGUAGES)
    assert_same_files(written, tmp_path, out / "figures")


def test_bn_network_is_ahead_early_in_training(tiny_run):
    """With BN, test accuracy at step 300 is higher than without (Fig. 1a's qualitative result)."""
    results, _ = tiny_run
    at = {
        v: dict(zip(r["steps"], r["test_accuracy"], strict=True))[300]
        for v, r in results["variants"].items()
    }
    assert at["batchnorm"] > at["baseline"] + 0.1


def test_bn_sigmoid_inputs_move_less(tiny_run):
    """The percentiles of the last layer's sigmoid inputs drift less with BN (Fig. 1b vs 1c)."""
    results, _ = tiny_run
    drift = {v: r["percentile_drift"] for v, r in results["variants"].items()}
    assert drift["batchnorm"] < 0.5 * drift["baseline"]


def test_bn_network_has_bn_before_each_sigmoid_and_no_redundant_bias():
    """The BN network is Linear(no bias) -> BN -> Sigmoid, three times, then Linear(10)."""
    import torch.nn as nn

    net = build_network(64, batch_norm=True)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "BatchNorm1d", "Sigmoid"] * 3 + ["Linear"]
    assert all(m.bias is None for m in net[:-1] if isinstance(m, nn.Linear))


def test_run_on_real_mnist_files(tmp_path):
    """--data-dir uses the IDX loader: a run on tiny MNIST-format files
    records 784-input networks."""
    write_mnist(tmp_path, n_train=120, n_test=30)
    results = experiments.get("mnist_sigmoid").run(
        RunConfig(
            data_dir=tmp_path,
            progress=False,
            overrides={"steps": 4, "eval_every": 2},
        )
    )
    assert results["data"].startswith("MNIST")
    assert results["variants"]["baseline"]["steps"] == [0, 2, 4]


@pytest.fixture(scope="module")
def committed_renders(tmp_path_factory):
    """Every committed result rendered afresh, in every language: (folder, files written)."""
    folder = tmp_path_factory.mktemp("committed")
    return folder, render_figures(experiments.RESULTS_DIR, folder)


def test_committed_figures_match_committed_results(committed_renders):
    """Each committed figure, in every language, is exactly what its committed result renders to."""
    folder, written = committed_renders
    assert written, "no committed results found"
    assert {p.parent.name for p in written} == set(LANGUAGES)
    for path in written:
        committed = experiments.FIGURES_DIR / path.relative_to(folder)
        assert committed.is_file(), f"{committed} is not committed"
        assert path.read_bytes() == committed.read_bytes(), (
            f"{committed} is stale: run python -m bnnotes.experiments figures"
        )


def test_figures_folder_holds_only_rendered_figures(committed_renders):
    """docs/assets/figures has exactly the files `python -m bnnotes.experiments figures`
    writes, all under en/, ko/ and zh/: no single-language leftovers."""
    folder, written = committed_renders
    others = [*covariate_shift.FIGURE_NAMES, INDEX_SETS_FIGURES["en"].name]
    expected = {p.relative_to(folder).as_posix() for p in written} | {
        f"{lang}/{name}" for lang in LANGUAGES for name in others
    }
    committed = {
        p.relative_to(experiments.FIGURES_DIR).as_posix()
        for p in experiments.FIGURES_DIR.rglob("*")
        if p.is_file()
        and p.relative_to(experiments.FIGURES_DIR).parts[0] != "quick"
    }
    assert committed == expected


def test_progress_prints_tenths_when_not_a_terminal():
    """Off a terminal the bar prints one line per tenth of the run, ending at total/total."""
    import io

    stream = io.StringIO()
    bar = Progress(100, "demo", stream=stream)
    for step in range(1, 101):
        bar.update(step, acc=0.5)
    lines = stream.getvalue().splitlines()
    assert (
        len(lines) == 10
        and lines[-1].startswith("demo [")
        and "100/100" in lines[-1]
    )
