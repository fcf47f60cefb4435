"""hooks/katex.py's trimmed stylesheet: where it is written and what it holds."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import load_module
from sitebuild import ROOT


@pytest.fixture
def hook(tmp_path):
    """hooks/katex.py configured for a project in tmp_path (its node_modules and
    package.json those of the repository)."""
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    shutil.copy(ROOT / "package.json", tmp_path)
    module = load_module(ROOT / "hooks" / "katex.py", "katex_hook_under_test")
    module.on_config(
        SimpleNamespace(
            config_file_path=str(tmp_path / "mkdocs.yml"), extra_css=[]
        )
    )
    return module


def _katex_temp_dirs() -> set[str]:
    return {
        p.name for p in Path(tempfile.gettempdir()).glob("bnnotes-katex-*")
    }


def test_trimmed_stylesheet_goes_to_the_project_cache_not_a_temp_folder(
    hook, tmp_path
):
    """The stylesheet is a file in .cache/katex/ named for the KaTeX version, so a killed
    build leaves no temporary folder behind."""
    before = _katex_temp_dirs()
    css = hook._trimmed_css()
    version = json.loads(
        (ROOT / "node_modules" / "katex" / "package.json").read_text("utf-8")
    )["version"]
    assert css == tmp_path / ".cache" / "katex" / f"katex-{version}.min.css"
    assert _katex_temp_dirs() == before
    assert [p.name for p in css.parent.iterdir()] == [css.name]


def test_trimmed_stylesheet_names_only_woff2_fonts(hook):
    """Every font source left in the stylesheet is a woff2 file."""
    text = hook._trimmed_css().read_text("utf-8")
    sources = [s.split(")")[0] for s in text.split("url(")[1:]]
    assert sources and all(s.endswith(".woff2") for s in sources)
