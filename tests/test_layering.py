"""The imports of bnnotes and its tests, read with ast.

Private names stay private, and the layers of the package point one way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bnnotes"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return (
        path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
    )


def private_imports(source: str) -> list[str]:
    """Every private name of a public module that ``source`` imports.

    Both ``from M import _name`` and ``alias._name`` after ``import M as alias`` count.
    A private submodule (``from bnnotes import _validation``) is not a private name of its
    package, and a private module may hand out its names.
    """
    tree = ast.parse(source)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if any(_is_private(part) for part in node.module.split(".")):
                continue
            for alias in node.names:
                if _is_private(alias.name) and not _is_module(
                    f"{node.module}.{alias.name}"
                ):
                    found.append(f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bnnotes") and not any(
                    _is_private(part) for part in alias.name.split(".")
                ):
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            base = ast.unparse(node.value)
            if base in aliases and not _is_module(
                f"{aliases[base]}.{node.attr}"
            ):
                found.append(f"{aliases[base]}.{node.attr}")
    return found


def test_the_private_import_check_finds_a_private_name_of_a_public_module():
    """The checker flags a private name taken from a public module and passes a private module."""
    bad = "from bnnotes.batchnorm import _centered\nimport bnnotes.layernorm as ln\nln._rows\n"
    good = (
        "from bnnotes import _kernels\nfrom bnnotes._kernels import centered\n"
    )
    assert private_imports(bad) == [
        "from bnnotes.batchnorm import _centered",
        "bnnotes.layernorm._rows",
    ]
    assert private_imports(good) == []


@pytest.mark.parametrize(
    "path",
    _sources(PACKAGE, ROOT / "tests", ROOT / "benchmarks"),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_module_imports_a_private_name_of_a_public_module(path):
    """Shared helpers live in private modules (bnnotes._kernels, ...), not in public ones."""
    assert private_imports(path.read_text(encoding="utf-8")) == []


# --------------------------------------------------------------------------- layers

EXPERIMENTS = PACKAGE / "experiments"
#: The experiments package's own infrastructure: the harness, the command line, plotting,
#: the progress bar and the private helpers the experiments share.
EXPERIMENT_INFRASTRUCTURE = {"__init__", "__main__", "plotting", "progress"}


def imported_modules(source: str, module: str) -> set[str]:
    """The absolute names of the modules ``source`` (the module ``module``)
    imports, also inside functions."""
    package = module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(
                    parts[: len(parts) - node.level + 1]
                    + ([base] if base else [])
                )
            found.add(base)
            found |= {
                f"{base}.{alias.name}"
                for alias in node.names
                if _is_module(f"{base}.{alias.name}")
            }
    return found


def _concept_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("*.py"))


def _experiment_runs() -> list[Path]:
    return sorted(
        p
        for p in EXPERIMENTS.glob("*.py")
        if p.stem not in EXPERIMENT_INFRASTRUCTURE
        and not p.stem.startswith("_")
    )


def test_the_import_reader_resolves_relative_and_nested_imports():
    """Imports inside functions and relative imports are seen, with their submodules."""
    source = (
        "def f():\n"
        "    from bnnotes.experiments import one_thread\n"
        "from . import noisy_bn\n"
    )
    found = imported_modules(source, "bnnotes.experiments.lp_norm")
    assert {"bnnotes.experiments", "bnnotes.experiments.noisy_bn"} <= found


@pytest.mark.parametrize(
    "path", _concept_modules(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_concept_modules_never_import_the_experiments(path):
    """bnnotes/*.py explain concepts; the experiments build on them, never the reverse."""
    found = imported_modules(
        path.read_text(encoding="utf-8"), _module_name(path)
    )
    assert not {m for m in found if m.startswith("bnnotes.experiments")}


@pytest.mark.parametrize(
    "path", _experiment_runs(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_experiments_do_not_import_each_other(path):
    """An experiment shares code through bnnotes.experiments._common, not
    through a sibling experiment."""
    siblings = {f"bnnotes.experiments.{p.stem}" for p in _experiment_runs()}
    found = imported_modules(
        path.read_text(encoding="utf-8"), _module_name(path)
    )
    assert not (found & siblings) - {_module_name(path)}


@pytest.mark.parametrize(
    "path", _concept_modules(), ids=lambda p: str(p.relative_to(ROOT))
)
def test_only_the_process_harness_starts_processes(path):
    """Processes, sockets and queues belong to bnnotes.processes; distributed.py keeps the math."""
    harness = {
        "multiprocessing",
        "torch.multiprocessing",
        "socket",
        "queue",
        "subprocess",
    }
    found = imported_modules(
        path.read_text(encoding="utf-8"), _module_name(path)
    )
    if path.stem != "processes":
        assert not found & harness


def test_figures_and_files_are_written_by_the_experiments_package():
    """No concept module draws with matplotlib or writes into docs/assets,
    except the index-set diagram."""
    for path in _concept_modules():
        source = path.read_text(encoding="utf-8")
        found = imported_modules(source, _module_name(path))
        if path.stem in {"diagrams"}:
            continue  # hand-written SVG of the group-norm page's diagram
        assert "matplotlib" not in {m.split(".")[0] for m in found}, path
        assert "FIGURES_DIR" not in source, path
