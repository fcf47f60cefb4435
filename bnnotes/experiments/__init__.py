r"""The experiment harness: every reproduced figure comes from a registered experiment.

An experiment is a function from a [`RunConfig`][bnnotes.experiments.RunConfig] to a
JSON-serializable dict of results, and a function from those results and a language to SVG
figures. Full runs write ``docs/assets/results/NAME.json`` and, once per language of the
site (en, ko, zh), ``docs/assets/figures/<lang>/NAME-*.svg``, which the pages of that
language show; ``--quick`` runs write under ``quick/`` subfolders that git ignores.
``figures`` redraws every figure of the site from the stored results, without training:
the experiments', the covariate-shift page's and the index-set diagram.

Command line::

    python -m bnnotes.experiments list
    python -m bnnotes.experiments NAME [--quick] [--seed S] \
        [--device cpu|cuda] [--data-dir DIR]
    python -m bnnotes.experiments figures
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bnnotes._threads import one_thread

__all__ = [
    "FIGURES_DIR",
    "RESULTS_DIR",
    "Experiment",
    "RunConfig",
    "get",
    "names",
    "one_thread",
    "render_figures",
    "run_experiment",
]

_DOCS_ASSETS = Path(__file__).resolve().parents[2] / "docs" / "assets"
RESULTS_DIR = _DOCS_ASSETS / "results"
"""Where full-run results are stored (committed; the site reads them)."""
FIGURES_DIR = _DOCS_ASSETS / "figures"
"""Where figures are written, one folder per language (``en/``, ``ko/``, ``zh/``; committed)."""


@dataclass(frozen=True)
class RunConfig:
    """How to run an experiment.

    Attributes
    ----------
    quick : bool
        A short configuration that finishes in about a minute on 2 CPU cores.
    seed : int
        Seed of every random choice (initialization, batch order).
    device : str
        ``"cpu"`` or ``"cuda"``.
    data_dir : pathlib.Path or None
        Folder with the real data set's files; None uses the offline default.
    progress : bool
        Whether to draw a progress bar on standard error.
    overrides : dict
        Experiment-specific settings that replace the defaults (used by the tests for tiny runs).

    Examples
    --------
    >>> from bnnotes.experiments import RunConfig
    >>> config = RunConfig(quick=True, overrides={"steps": 40})
    >>> config.seed, config.device, config.overrides
    (0, 'cpu', {'steps': 40})
    """

    quick: bool = False
    seed: int = 0
    device: str = "cpu"
    data_dir: Path | None = None
    progress: bool = True
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: a name, a one-line summary, a runner and a figure renderer.

    ``figures(results, lang)`` returns file name -> SVG text, with every word in ``lang``.
    ``accepts_data_dir`` says whether ``--data-dir`` means anything to it.

    Examples
    --------
    >>> from bnnotes.experiments import get
    >>> experiment = get("batch_size")
    >>> experiment.name, experiment.accepts_data_dir
    ('batch_size', False)
    """

    name: str
    summary: str
    run: Callable[[RunConfig], dict]
    figures: Callable[[dict, str], dict[str, str]]
    accepts_data_dir: bool = True


def _registry() -> dict[str, Experiment]:
    from bnnotes.experiments import (
        batch_size,
        deep_linear,
        ics,
        landscape,
        lp_norm,
        mnist_sigmoid,
        noisy_bn,
    )

    modules = (
        mnist_sigmoid,
        batch_size,
        noisy_bn,
        ics,
        deep_linear,
        landscape,
        lp_norm,
    )
    return {m.EXPERIMENT.name: m.EXPERIMENT for m in modules}


def names() -> list[str]:
    """Names of the registered experiments, sorted.

    Examples
    --------
    >>> from bnnotes.experiments import names
    >>> names()[:3]
    ['batch_size', 'deep_linear', 'ics']
    """
    return sorted(_registry())


def get(name: str) -> Experiment:
    """The experiment called ``name``; KeyError with the known names otherwise.

    Examples
    --------
    >>> from bnnotes.experiments import get
    >>> get("noisy_bn").summary.startswith("Santurkar")
    True
    >>> get("no_such_run")
    Traceback (most recent call last):
    ...
    KeyError: "unknown experiment 'no_such_run'; known: ...
    """
    registry = _registry()
    if name not in registry:
        raise KeyError(
            f"unknown experiment {name!r}; known: {', '.join(sorted(registry))}"
        )
    return registry[name]


def _dump(obj: dict) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def run_experiment(
    name: str,
    config: RunConfig,
    results_dir: Path | None = None,
    figures_dir: Path | None = None,
) -> dict:
    """Run an experiment, store its results as JSON and its figures as SVG, per language.

    Figures go to ``figures_dir/<lang>/`` for each language of the site. Quick runs go to ``quick/``
    below the default folders unless folders are given. Returns the results dict (with a ``meta``
    entry: name, seed, quick, device, wall time).

    Examples
    --------
    A run of 40 steps, stored in a temporary folder:

    >>> import tempfile, pathlib
    >>> from bnnotes.experiments import RunConfig, run_experiment
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> config = RunConfig(
    ...     quick=True,
    ...     progress=False,
    ...     overrides={"steps": 40, "eval_every": 20},
    ... )
    >>> results = run_experiment(
    ...     "mnist_sigmoid", config, folder / "results", folder / "figures"
    ... )
    >>> (
    ...     results["meta"]["name"],
    ...     (folder / "results" / "mnist_sigmoid.json").is_file(),
    ... )
    ('mnist_sigmoid', True)
    >>> sorted(p.name for p in (folder / "figures").iterdir())
    ['en', 'ko', 'zh']
    """
    experiment = get(name)
    if results_dir is None:
        results_dir = RESULTS_DIR / "quick" if config.quick else RESULTS_DIR
    if figures_dir is None:
        figures_dir = FIGURES_DIR / "quick" if config.quick else FIGURES_DIR
    start = time.perf_counter()
    results = experiment.run(config)
    results["meta"] = {
        "name": name,
        "seed": config.seed,
        "quick": config.quick,
        "device": config.device,
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{name}.json").write_text(_dump(results), encoding="utf-8")
    _write_figures(experiment, results, figures_dir)
    return results


def _write_figures(
    experiment: Experiment, results: dict, figures_dir: Path
) -> list[Path]:
    from bnnotes.figure_text import LANGUAGES

    written = []
    for lang in LANGUAGES:
        folder = figures_dir / lang
        folder.mkdir(parents=True, exist_ok=True)
        for filename, svg in experiment.figures(results, lang).items():
            path = folder / filename
            path.write_text(svg, encoding="utf-8")
            written.append(path)
    return written


def render_figures(
    results_dir: Path | None = None, figures_dir: Path | None = None
) -> list[Path]:
    """Re-render the figures of every stored result in every language, without training.

    Writes ``figures_dir/<lang>/NAME-*.svg``; returns the files written.

    Examples
    --------
    The stored results of one experiment, drawn again in a temporary folder:

    >>> import shutil, tempfile, pathlib
    >>> from bnnotes.experiments import RESULTS_DIR, render_figures
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "results").mkdir()
    >>> _ = shutil.copy(RESULTS_DIR / "batch_size.json", folder / "results")
    >>> written = render_figures(folder / "results", folder / "figures")
    >>> for name in sorted(f"{p.parent.name}/{p.name}" for p in written):
    ...     print(name)
    en/batch_size-error.svg
    ko/batch_size-error.svg
    zh/batch_size-error.svg
    """
    results_dir = RESULTS_DIR if results_dir is None else results_dir
    figures_dir = FIGURES_DIR if figures_dir is None else figures_dir
    written = []
    for name in names():
        path = results_dir / f"{name}.json"
        if path.is_file():
            results = json.loads(path.read_text(encoding="utf-8"))
            written += _write_figures(get(name), results, figures_dir)
    return written
