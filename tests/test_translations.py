"""tools/translations.py (`make translations`) on small git repositories made for the test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import translations

TOOL = Path(translations.__file__)


def _git(repo: Path, *args: str, when: int = 1_700_000_000) -> None:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
        GIT_AUTHOR_DATE=f"{when} +0000",
        GIT_COMMITTER_DATE=f"{when} +0000",
    )
    subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True
    )


def _write(repo: Path, path: str, text: str) -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text, "utf-8")


@pytest.fixture
def repo(tmp_path) -> Path:
    _git(tmp_path, "init", "-q")
    for lang in ("en", "ko", "zh"):
        _write(tmp_path, f"docs/{lang}/a.md", f"# a ({lang})\n")
        _write(tmp_path, f"docs/{lang}/api/b.md", f"# b ({lang})\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "pages", when=1_700_000_000)
    return tmp_path


def _statuses(repo: Path) -> dict[tuple[str, str], str]:
    return {(r.page, r.lang): r.status for r in translations.status(repo)}


def test_all_up_to_date_after_one_commit(repo):
    assert set(_statuses(repo).values()) == {"up to date"}


def test_english_change_makes_both_translations_stale_until_each_is_updated(
    repo,
):
    _write(repo, "docs/en/a.md", "# a (en), revised\n")
    _git(repo, "commit", "-qam", "en: a", when=1_700_000_100)
    assert _statuses(repo)[("a.md", "ko")] == "stale"
    assert _statuses(repo)[("a.md", "zh")] == "stale"
    assert _statuses(repo)[("api/b.md", "ko")] == "up to date"

    _write(repo, "docs/zh/a.md", "# a (zh), revised\n")
    _git(repo, "commit", "-qam", "zh: a", when=1_700_000_200)
    assert _statuses(repo)[("a.md", "ko")] == "stale"
    assert _statuses(repo)[("a.md", "zh")] == "up to date"


def test_a_checked_trailer_marks_a_translation_up_to_date(repo):
    """A commit with `Translations-checked: ko/a.md` clears ko/a.md only, not zh/a.md."""
    _write(repo, "docs/en/a.md", "# a (en), 1,000 instead of 1 000\n")
    _git(repo, "commit", "-qam", "en: a", when=1_700_000_100)
    _git(
        repo,
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "ko/a.md already says this\n\nTranslations-checked: ko/a.md",
        when=1_700_000_200,
    )
    assert _statuses(repo)[("a.md", "ko")] == "up to date"
    assert _statuses(repo)[("a.md", "zh")] == "stale"


def test_a_checked_trailer_before_the_english_change_does_not_count(repo):
    """Checking a translation does not cover English edits made after the check."""
    _git(
        repo,
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "check\n\nTranslations-checked: ko/a.md, zh/a.md",
        when=1_700_000_100,
    )
    _write(repo, "docs/en/a.md", "# a (en), revised\n")
    _git(repo, "commit", "-qam", "en: a", when=1_700_000_200)
    assert _statuses(repo)[("a.md", "ko")] == "stale"
    assert _statuses(repo)[("a.md", "zh")] == "stale"


def test_commits_in_the_same_second_are_ordered_by_history(repo):
    _write(repo, "docs/en/a.md", "# a (en), revised\n")
    _git(repo, "commit", "-qam", "en: a", when=1_700_000_100)
    _write(repo, "docs/ko/a.md", "# a (ko), revised\n")
    _git(repo, "commit", "-qam", "ko: a", when=1_700_000_100)
    _write(repo, "docs/en/api/b.md", "# b (en), revised\n")
    _git(repo, "commit", "-qam", "en: b", when=1_700_000_100)
    statuses = _statuses(repo)
    assert (
        statuses[("a.md", "ko")] == "up to date"
    )  # translated after the English change
    assert (
        statuses[("api/b.md", "ko")] == "stale"
    )  # English changed after, in the same second


def test_missing_and_uncommitted_translations(repo):
    _write(repo, "docs/en/c.md", "# c\n")
    _write(repo, "docs/ko/c.md", "# c (ko)\n")
    _git(repo, "add", "docs/en/c.md")
    _git(repo, "commit", "-qm", "en: c", when=1_700_000_100)
    statuses = _statuses(repo)
    assert statuses[("c.md", "ko")] == "not committed"
    assert statuses[("c.md", "zh")] == "missing"


def test_command_prints_a_table_and_exits_0(repo):
    _write(repo, "docs/en/a.md", "# a (en), revised\n")
    _git(repo, "commit", "-qam", "en: a", when=1_700_000_100)
    _write(repo, "docs/en/api/b.md", "# b (en), being edited\n")
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--root", str(repo)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["page", "lang", "status"]
    assert any(line.split()[:3] == ["a.md", "ko", "stale"] for line in lines)
    assert any(
        line.startswith("api/b.md") and "en has uncommitted edits" in line
        for line in lines
    )
    assert "2 of 4 translations (ko, zh) are up to date" in proc.stdout


def test_command_refuses_a_directory_without_history(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "not a git checkout" in proc.stdout


@pytest.mark.skipif(
    not (TOOL.parents[1] / ".git").exists(), reason="not a git checkout"
)
def test_command_runs_on_this_repository():
    """`make translations` on the project itself: exits 0 with a summary line."""
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--all"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "translations (ko, zh) are up to date" in proc.stdout
