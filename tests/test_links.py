"""Check the links of the built HTML with linkinator (npm, pinned in package.json), over HTTP
against the local server.

linkinator follows every link on the server from the home page (so every page of every
language, reached through the navigation and the language switcher), checks each anchor
(``page/#id``) against the ids of the page it points to, and each ``url()`` of the
stylesheets (the KaTeX fonts). Links that leave the server are skipped: the check runs
offline. The site is checked as served at / and under /bnnotes/.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from sitebuild import ROOT, SUBPATH

LINKINATOR = ROOT / "node_modules" / ".bin" / "linkinator"


def _check(origin: str, url: str) -> tuple[dict, str]:
    """linkinator's JSON report for url (links outside origin skipped), and its exit status."""
    if not LINKINATOR.is_file():
        pytest.fail(f"{LINKINATOR} not found: run `npm ci` (make setup does)")
    # The report goes to a file: Node writes to a pipe asynchronously, and linkinator's exit
    # can cut a report longer than the pipe's 64 KiB buffer short (seen under load).
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        proc = _linkinator(origin, url, out)
        out.seek(0)
        stdout = out.read()
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"linkinator {url} gave no report (exit {proc.returncode}):\n"
            f"{stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return report, f"exit {proc.returncode}"


def _linkinator(origin: str, url: str, out) -> subprocess.CompletedProcess:
    return subprocess.run(
        # 16 connections at a time (default 100): enough for speed, gentle on a 2-core machine.
        [
            str(LINKINATOR),
            url,
            "--recurse",
            "--check-fragments",
            "--check-css",
            "--concurrency",
            "16",
            "--skip",
            f"^(?!{re.escape(origin)}/)",
            "--format",
            "json",
        ],
        stdout=out,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        check=False,
    )


def _broken(report: dict) -> list[dict]:
    return [link for link in report["links"] if link["state"] == "BROKEN"]


def _describe(links: list[dict]) -> str:
    return "\n".join(
        f"  {x['url']} (on {x.get('parent')}): HTTP {x.get('status')}"
        for x in links
    )


@pytest.mark.parametrize("prefix", ["/", SUBPATH])
def test_no_broken_links_or_anchors(site_server, prefix):
    """Zero broken internal links or anchors in the built site, in every language."""
    result = site_server.builds[prefix]
    if result.rc != 0:
        pytest.fail(
            f"mkdocs build --strict (served at {prefix}) failed:\n{result.output}"
        )
    report, status = _check(site_server.origin, site_server.url(prefix))
    broken = _broken(report)
    assert broken == [] and report["passed"], f"{status}\n{_describe(broken)}"
    # Every page of every language was reached, so the check covered the whole site.
    checked = {x["url"] for x in report["links"]}
    base = site_server.url(prefix)
    pages = {
        base + (d.as_posix() + "/" if d != Path(".") else "")
        for d in (
            p.parent.relative_to(result.site)
            for p in result.site.rglob("index.html")
        )
    }
    assert pages - checked == set()
    # ... and every chapter's notebook and script, linked from the top of its page.
    downloads = {
        base + p.relative_to(result.site).as_posix()
        for pattern in ("*.ipynb", "*.py")
        for p in result.site.rglob(pattern)
    }
    assert downloads and downloads - checked == set()


def test_link_check_reports_a_missing_page_and_anchor(tmp_path):
    """The check is not vacuous: a broken link and a broken anchor in a
    tiny site are both reported."""
    from tools.sitehttp import SiteServer

    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text(
        '<html><body><a href="a/">ok</a> <a href="a/#there">ok</a> '
        '<a href="a/#nowhere">bad anchor</a> <a href="missing/">bad page</a></body></html>',
        "utf-8",
    )
    (tmp_path / "a" / "index.html").write_text(
        '<html><body><h1 id="there">A</h1></body></html>', "utf-8"
    )
    server = SiteServer()
    server.mount("/link-check-selftest/", tmp_path)
    with server:
        base = server.url("/link-check-selftest/")
        report, status = _check(server.origin, base)
    broken = {x["url"] for x in _broken(report)}
    assert broken == {base + "a/#nowhere", base + "missing/"}, (
        f"{status}\n{_describe(_broken(report))}"
    )
    assert not report["passed"]
