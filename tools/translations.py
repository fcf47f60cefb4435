"""List the Korean and Chinese pages whose English page changed after them in git history.

    python3 tools/translations.py          # the pages that need attention, then a summary
    python3 tools/translations.py --all    # every page in every language

For each page of docs/en, the last commit that touched docs/en/<page> is compared with the last
commit that touched docs/ko/<page> and docs/zh/<page>. A translation is *stale* when the
English page's last commit is later (by commit time; for commits made within the same second,
when it is not an ancestor of the translation's commit). A translation can also be *missing*
or *not committed*. Uncommitted edits to the English page are noted. Exits 0: the list is a
report, not a check.

An English change that needs no translation (a typo, a number's digit grouping, a link text
that the translations already had) is recorded by a commit whose message carries the trailer

    Translations-checked: ko/evidence.md, zh/evidence.md

(paths under docs/; `git commit --allow-empty` when no file changes). Such a commit counts as
the translation's last commit for the pages it names, so the page is up to date from then on.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGS = ("ko", "zh")


@dataclass(frozen=True)
class Commit:
    sha: str
    time: int

    def __str__(self) -> str:
        return f"{datetime.fromtimestamp(self.time).strftime('%Y-%m-%d %H:%M')} {self.sha[:7]}"


@dataclass(frozen=True)
class Row:
    page: str
    lang: str
    status: str  # "up to date", "stale", "missing", "not committed", "en not committed"
    english: Commit | None
    translation: Commit | None
    note: str = ""


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def last_commit(root: Path, path: str) -> Commit | None:
    """The last commit that touched path, or None if it has none."""
    out = _git(root, "log", "-1", "--format=%H %ct", "--", path).split()
    return Commit(out[0], int(out[1])) if out else None


TRAILER = "Translations-checked"


def checked_commits(root: Path) -> dict[str, Commit]:
    """For each translated page ("ko/a.md"), the last commit whose message names it in a
    Translations-checked trailer."""
    out = _git(
        root,
        "log",
        f"--format=%x00%H %ct%n%(trailers:key={TRAILER},valueonly,separator=%x2C)",
    )
    latest: dict[str, Commit] = {}
    for record in out.split("\0")[1:]:
        head, _, values = record.partition("\n")
        sha, time = head.split()
        for path in values.replace("\n", ",").split(","):
            path = path.strip()
            if path and path not in latest:  # git log lists the newest first
                latest[path] = Commit(sha, int(time))
    return latest


def is_ancestor(root: Path, a: str, b: str) -> bool:
    return (
        subprocess.run(
            ["git", "merge-base", "--is-ancestor", a, b],
            cwd=root,
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def _changed_in_worktree(root: Path, path: str) -> bool:
    return bool(_git(root, "status", "--porcelain", "--", path).strip())


def status(root: Path = ROOT) -> list[Row]:
    """One row per (English page, translation language)."""
    en_dir = root / "docs" / "en"
    checked = checked_commits(root)
    rows = []
    for md in sorted(en_dir.rglob("*.md")):
        page = md.relative_to(en_dir).as_posix()
        english = last_commit(root, f"docs/en/{page}")
        note = (
            "en has uncommitted edits"
            if _changed_in_worktree(root, f"docs/en/{page}")
            else ""
        )
        for lang in LANGS:
            path = f"docs/{lang}/{page}"
            translation = last_commit(root, path)
            review = checked.get(f"{lang}/{page}")
            if translation and review and review.time >= translation.time:
                translation = review
            if not (root / path).is_file():
                state = "missing"
            elif translation is None:
                state = "not committed"
            elif english is None:
                state = "en not committed"
            elif english.time > translation.time or (
                english.time == translation.time
                and english.sha != translation.sha
                and not is_ancestor(root, english.sha, translation.sha)
            ):
                state = "stale"
            else:
                state = "up to date"
            rows.append(Row(page, lang, state, english, translation, note))
    return rows


def table(rows: list[Row]) -> str:
    header = (
        "page",
        "lang",
        "status",
        "en last commit",
        "translation last commit",
        "note",
    )
    cells = [header] + [
        (
            r.page,
            r.lang,
            r.status,
            str(r.english or "-"),
            str(r.translation or "-"),
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) for c, w in zip(row, widths, strict=True)
        ).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--all", action="store_true", help="list every page, up to date or not"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="the repository (default: this one)",
    )
    args = parser.parse_args(argv)

    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=args.root,
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.stdout.strip() != "true":
        print(
            f"{args.root} is not a git checkout: the history that dates the pages is missing."
        )
        return 1
    rows = status(args.root)
    shown = (
        rows
        if args.all
        else [r for r in rows if r.status != "up to date" or r.note]
    )
    current = sum(r.status == "up to date" for r in rows)
    if shown:
        print(table(shown))
        print()
    print(
        f"{current} of {len(rows)} translations (ko, zh) are up to date with their English page."
    )
    if not args.all and not shown:
        print("No ko or zh page is older than its English page.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
