"""Command line of the experiment harness: ``python -m bnnotes.experiments --help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bnnotes.experiments import (
    RunConfig,
    get,
    names,
    render_figures,
    run_experiment,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bnnotes.experiments",
        description="Run a reproduction experiment, list them, or re-render figures from stored "
        "results.",
    )
    parser.add_argument(
        "name", help="an experiment name, 'list', or 'figures'"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short configuration (about a minute on 2 cores)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (default 0)"
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where to train (default cpu)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the real data set's files",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="do not draw a progress bar"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.name == "list":
        for name in names():
            print(f"{name:20s} {get(name).summary}")
        return 0
    if args.name == "figures":
        from bnnotes.diagrams import write_index_sets
        from bnnotes.experiments.covariate_shift import write_figures

        for path in [*render_figures(), *write_figures(), *write_index_sets()]:
            print(path)
        return 0
    if args.name not in names():
        parser.error(
            f"unknown experiment {args.name!r}; choose from: list, figures, {', '.join(names())}"
        )
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.data_dir is not None and not get(args.name).accepts_data_dir:
        parser.error(
            f"{args.name} runs on bundled data only; --data-dir does not apply"
        )
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} is not a directory")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is available")
    config = RunConfig(
        quick=args.quick,
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
        progress=not args.no_progress,
    )
    results = run_experiment(args.name, config)
    print(f"{args.name}: done in {results['meta']['wall_time_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
