"""`make lighthouse`: Lighthouse scores for the home page and the heaviest pages of each language.

Builds the site (strict) into test-artifacts/lighthouse/site, serves it on 127.0.0.1 with gzip
like a static host, and runs Lighthouse (tools/lighthouse/node_modules, pinned in
package.json here) with the local Chromium (CHROME_PATH, default /usr/bin/chromium) on each
page: Lighthouse's default mobile profile with simulated throttling, no network needed.
Prints a table of the four category scores and the audits that lost points; the JSON reports
are kept in test-artifacts/lighthouse/. Targets: performance >= 95, accessibility 100,
best practices 100, SEO 100. A report, not a gate: exits 0 unless a run fails.
The heaviest page is the one with the most bytes of HTML and images; where another page has
more elements (the browser's style and layout work grows with them: formulas and highlighted
code are thousands of elements), that page is scored too, as "most elements".
``--only "en heaviest"`` scores only the pages whose label contains the text.

Each page is scored in both palettes: the site follows the reader's system setting
(prefers-color-scheme), so the dark runs start Chromium with --force-dark-mode, which makes
the page see a dark preference. `--palette light` or `--palette dark` runs one of them
(`make lighthouse LIGHTHOUSE_ARGS="--palette dark"`).

Scores move from run to run (the simulated timings start from an observed page load):
`--runs 3` scores each page three times and reports the run with the median performance
score (Lighthouse's own advice is the median of several runs), with the spread of the
performance scores in its own column.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tools.sitehttp import SiteServer  # noqa: E402 (after the sys.path line above)

OUT = ROOT / "test-artifacts" / "lighthouse"
LIGHTHOUSE = HERE / "node_modules" / "lighthouse" / "cli" / "index.js"
LANGS = {"en": "", "ko": "ko/", "zh": "zh/"}
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
TARGETS = {
    "performance": 95,
    "accessibility": 100,
    "best-practices": 100,
    "seo": 100,
}
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --no-first-run --disable-sync"
)
#: Extra Chromium flags per palette: a dark system preference for the dark runs.
PALETTES = {"light": "", "dark": " --force-dark-mode"}
IMG_RE = re.compile(r'<img\b[^>]*\bsrc="([^"]+)"')
#: A start tag: <name, not </, <!-- or <!doctype.
TAG_RE = re.compile(r"<[a-zA-Z]")


def build(site: Path, site_url: str) -> None:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", BNNOTES_SITE_URL=site_url)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-d",
            str(site),
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )


def weight(page_dir: Path) -> int:
    """Bytes of a page's HTML and of the images it shows."""
    html = (page_dir / "index.html").read_text("utf-8")
    images = {
        (page_dir / src).resolve()
        for src in IMG_RE.findall(html)
        if "://" not in src
    }
    return len(html.encode()) + sum(
        p.stat().st_size for p in images if p.is_file()
    )


def elements(page_dir: Path) -> int:
    """The number of elements (start tags) of a page's HTML."""
    return len(TAG_RE.findall((page_dir / "index.html").read_text("utf-8")))


def pages(site: Path) -> list[tuple[str, str]]:
    """(label, path) for the home page, the heaviest page and (if it is another) the page with
    the most elements, of each language."""
    out = []
    for lang, prefix in LANGS.items():
        root = site / prefix
        others = [site / p for p in LANGS.values() if p and p != prefix]
        candidates = [
            d.parent
            for d in root.rglob("index.html")
            if d.parent != root and not any(o in d.parents for o in others)
        ]
        heaviest = max(candidates, key=weight)
        out.append((f"{lang} home", prefix))
        out.append((
            f"{lang} heaviest",
            heaviest.relative_to(site).as_posix() + "/",
        ))
        largest = max(candidates, key=elements)
        if largest != heaviest:
            out.append((
                f"{lang} most elements",
                largest.relative_to(site).as_posix() + "/",
            ))
    return out


def run(url: str, report: Path, palette: str = "light") -> dict:
    env = dict(
        os.environ,
        CHROME_PATH=os.environ.get("CHROME_PATH", "/usr/bin/chromium"),
    )
    subprocess.run(
        [
            "node",
            str(LIGHTHOUSE),
            url,
            "--quiet",
            f"--chrome-flags={CHROME_FLAGS}{PALETTES[palette]}",
            "--output=json",
            f"--output-path={report}",
            f"--only-categories={','.join(CATEGORIES)}",
        ],
        env=env,
        check=True,
    )
    return json.loads(report.read_text("utf-8"))


def performance(result: dict) -> int:
    """A report's performance score, 0-100."""
    return round(100 * result["categories"]["performance"]["score"])


def median_run(results: list[dict]) -> dict:
    """The report whose performance score is the median of the runs (the lower middle
    one for an even count).

    >>> runs = [
    ...     {"categories": {"performance": {"score": s}}}
    ...     for s in (0.9, 0.97, 0.95)
    ... ]
    >>> performance(median_run(runs))
    95
    """
    if not results:
        raise ValueError("median_run: no reports")
    ranked = sorted(results, key=performance)
    return ranked[(len(ranked) - 1) // 2]


def lost_points(result: dict) -> list[str]:
    """Titles of the audits that lost points (accessibility, best practices, SEO)."""
    lost = []
    for category in ("accessibility", "best-practices", "seo"):
        for ref in result["categories"][category]["auditRefs"]:
            audit = result["audits"][ref["id"]]
            if (
                ref["weight"] > 0
                and audit.get("score") is not None
                and audit["score"] < 1
            ):
                lost.append(f"{category}: {ref['id']}")
    return lost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--palette",
        choices=[*PALETTES, "both"],
        default="both",
        help="the colour scheme the pages are scored in (default: both)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="score only the pages whose label contains this text (e.g. 'en heaviest')",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="runs per page; the run with the median performance score is reported",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    palettes = list(PALETTES) if args.palette == "both" else [args.palette]
    if not LIGHTHOUSE.is_file():
        print(
            f"{LIGHTHOUSE} is missing: run `make lighthouse` (it runs npm ci in tools/lighthouse)"
        )
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    site = OUT / "site"
    server = SiteServer(gzip=True)
    build(site, server.url())
    server.mount("/", site)
    rows, notes = [], []
    with server:
        for (label, path), palette in (
            (page, palette)
            for page in pages(site)
            if args.only in page[0]
            for palette in palettes
        ):
            url = server.url() + path
            label = f"{label} ({palette})"
            name = label.replace(" ", "-").replace("(", "").replace(")", "")
            reports = [
                OUT / f"{name}-run{i + 1}.json" for i in range(args.runs)
            ]
            results = [run(url, report, palette) for report in reports]
            result = median_run(results)
            # the median run's report, as Lighthouse wrote it, under the page's name
            shutil.copyfile(
                reports[results.index(result)], OUT / (name + ".json")
            )
            spread = sorted(performance(r) for r in results)
            scores = {
                c: round(100 * result["categories"][c]["score"])
                for c in CATEGORIES
            }
            metrics = {
                k: result["audits"][k]["displayValue"]
                for k in (
                    "first-contentful-paint",
                    "largest-contentful-paint",
                    "total-blocking-time",
                    "cumulative-layout-shift",
                )
            }
            metrics["runs"] = "–".join(
                dict.fromkeys(str(x) for x in (spread[0], spread[-1]))
            )
            rows.append((label, "/" + path, scores, metrics))
            notes += [f"{label}: {x}" for x in lost_points(result)]

    print()
    print(
        "| page | path | performance | accessibility | best practices | SEO | FCP | LCP | TBT "
        "| CLS | performance, all runs |"
    )
    print(
        "| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |"
    )
    for label, path, scores, m in rows:
        marked = [
            f"{scores[c]}" + ("" if scores[c] >= TARGETS[c] else " (!)")
            for c in CATEGORIES
        ]
        print(
            f"| {label} | {path} | "
            + " | ".join(marked)
            + " | "
            + " | ".join(m.values())
            + " |"
        )
    print()
    print(
        "Targets: performance >= 95, accessibility 100, best practices 100, SEO 100 "
        "(Lighthouse's mobile profile); (!) = below."
    )
    print(
        "Audits that lost points: " + ("; ".join(notes) if notes else "none")
    )
    print(f"Reports: {OUT.relative_to(ROOT)}/*.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
