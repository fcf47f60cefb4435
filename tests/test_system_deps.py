"""tools/system-deps.sh: the set-up of `make serve` and `make test` finds missing Debian
packages (run with BNNOTES_SYSTEM_DEPS_DRY_RUN=1, so nothing is installed)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "system-deps.sh"
#: What the script itself calls; every other tool it looks for is a package it checks.
BASICS = ["bash", "python3", "id", "dpkg", "dpkg-query", "env"]
TOOLS = {
    "node": "nodejs",
    "npm": "npm",
    "git": "git",
    "pdftotext": "poppler-utils",
    "chromium-headless-shell": "chromium-headless-shell",
}


def run_with_path(bin_dir: Path, target: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=str(bin_dir), BNNOTES_SYSTEM_DEPS_DRY_RUN="1")
    return subprocess.run(
        [shutil.which("bash"), str(SCRIPT), target],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def path_without(tmp_path: Path, hidden: str) -> Path:
    """A PATH directory with links to the basics and the checked tools, less `hidden`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in [*BASICS, *TOOLS]:
        # python3 may be a version manager's shim script: link the real interpreter.
        found = (
            sys._base_executable if name == "python3" else shutil.which(name)
        )
        if name != hidden and found:
            (bin_dir / name).symlink_to(found)
    return bin_dir


@pytest.fixture(scope="module")
def everything_present():
    missing = [n for n in [*BASICS, *TOOLS] if not shutil.which(n)]
    if missing:  # pragma: no cover - make test installs them first
        pytest.fail(f"set-up should have installed {missing}")


@pytest.mark.parametrize("target", ["serve", "test"])
def test_nothing_is_missing_after_the_setup(
    tmp_path, everything_present, target
):
    """With every tool on PATH the check passes silently (a second run starts at once)."""
    result = run_with_path(path_without(tmp_path, hidden=""), target)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_hidden_tool_is_reported_with_its_package(
    tmp_path, everything_present, tool
):
    """A tool missing from PATH is named by its Debian package in the install command."""
    result = run_with_path(path_without(tmp_path, hidden=tool), "test")
    assert result.returncode == 1
    assert "apt-get install -y --no-install-recommends" in result.stdout
    assert TOOLS[tool] in result.stdout.split("(install with:")[0]


def test_serve_does_not_ask_for_the_browser_test_packages(
    tmp_path, everything_present
):
    """`make serve` needs node and npm but not git or poppler-utils."""
    result = run_with_path(path_without(tmp_path, hidden="pdftotext"), "serve")
    assert result.returncode == 0


def test_only_lighthouse_asks_for_the_full_browser(
    tmp_path, everything_present
):
    """The tests drive the headless shell; `make lighthouse` needs Chromium itself."""
    bin_dir = path_without(tmp_path, hidden="")  # links no `chromium`
    assert not (bin_dir / "chromium").exists()
    assert run_with_path(bin_dir, "test").returncode == 0
    result = run_with_path(bin_dir, "lighthouse")
    assert result.returncode == 1
    assert "install -y --no-install-recommends chromium)" in result.stdout


def test_an_unknown_target_is_refused():
    """The script names a wrong target and exits 2."""
    result = subprocess.run(
        ["bash", str(SCRIPT), "deploy"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "unknown target 'deploy'" in result.stderr
