"""Build the MkDocs site for the tests, and the facts about it that several test modules share.

Building needs `npm ci` (KaTeX in node_modules/) and node on PATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The sub-path under which a second build is served, as a project site on a static host.
SUBPATH = "/bnnotes/"
#: Language -> URL prefix of its pages inside the site.
LANGS = {"en": "", "ko": "ko/", "zh": "zh/"}


def page_url(md: Path, lang_dir: Path = DOCS / "en") -> str:
    """The directory URL of a page ("" for the home page), relative to its language root."""
    rel = md.relative_to(lang_dir)
    path = rel.parent if rel.name == "index.md" else rel.with_suffix("")
    return "" if path == Path(".") else path.as_posix() + "/"


#: Every page of the English tree, as its directory URL.
PAGES = sorted(page_url(md) for md in (DOCS / "en").rglob("*.md"))


def _command(project: Path, site_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "-f",
        str(project / "mkdocs.yml"),
        "-d",
        str(site_dir),
    ]


def _env(site_url: str | None) -> dict[str, str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if site_url is not None:
        env["BNNOTES_SITE_URL"] = (
            site_url  # read by mkdocs.yml (site_url: !ENV ...)
        )
    return env


def build(
    project: Path, site_dir: Path, site_url: str | None = None
) -> SimpleNamespace:
    """`mkdocs build --strict` of project into site_dir: rc, output (stdout+stderr), site."""
    return build_many(project, [(site_dir, site_url)])[0]


def build_many(
    project: Path, targets: list[tuple[Path, str | None]]
) -> list[SimpleNamespace]:
    """Several builds of one project at once (one per (site_dir, site_url)), in parallel."""
    procs = [
        (
            site_dir,
            subprocess.Popen(
                _command(project, site_dir),
                cwd=project,
                env=_env(site_url),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for site_dir, site_url in targets
    ]
    results = []
    for site_dir, proc in procs:
        try:
            output, _ = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        results.append(
            SimpleNamespace(rc=proc.returncode, output=output, site=site_dir)
        )
    return results
