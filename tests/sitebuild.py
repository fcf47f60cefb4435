"""Build the MkDocs site for the tests, and the facts about it that several test modules share.

Building needs `npm ci` (KaTeX in node_modules/) and node on PATH.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The sub-path under which a second build is served, as a project site on a static host.
SUBPATH = "/bnnotes/"
#: The prefixes the tests serve the site at: at the root, and (a second build) under SUBPATH.
PREFIXES = ("/", SUBPATH)
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
    proc = subprocess.Popen(
        _command(project, site_dir),
        cwd=project,
        env=_env(site_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    return SimpleNamespace(rc=proc.returncode, output=output, site=site_dir)


class SiteBuilds:
    """The two strict builds of the site that the tests use (at / and under /bnnotes/, each
    with site_url set to where it is served), made on first use and served on 127.0.0.1.

    ``.builds`` maps each prefix to the build's result (rc, output, site); ``.url(prefix)``
    and ``.origin`` say where it is served. Under pytest-xdist the controller process holds
    one instance (see tests/conftest.py), so the site is built once per run, not once per
    worker, and every worker tests the same files.
    """

    def __init__(self, base: Path) -> None:
        from tools.sitehttp import SiteServer

        self.base = base
        self.server = SiteServer().start()
        self.origin = self.server.origin
        self._lock = threading.Lock()
        self._builds: dict[str, SimpleNamespace] | None = None

    def url(self, prefix: str = "/") -> str:
        return self.origin + prefix

    @property
    def builds(self) -> dict[str, SimpleNamespace]:
        """The builds, made now if they were not yet (by one thread at a time)."""
        with self._lock:
            if self._builds is None:
                # One after the other: the second build (another site_url) takes the
                # highlighted code, API pages, formulas and search entries from the cache
                # the first one filled (on an empty cache: 28 s of CPU instead of 40 s).
                results = [
                    build(ROOT, self.base / f"site{i}", self.url(prefix))
                    for i, prefix in enumerate(PREFIXES)
                ]
                for prefix, result in zip(PREFIXES, results, strict=True):
                    self.server.mount(prefix, result.site)
                self._builds = dict(zip(PREFIXES, results, strict=True))
            return self._builds

    def stop(self) -> None:
        self.server.stop()


class _BuildRequest(http.server.BaseHTTPRequestHandler):
    """GET: the builds of the server's SiteBuilds as JSON (made first if need be)."""

    def do_GET(self):
        builds = self.server.site_builds.builds
        body = json.dumps({
            prefix: {"rc": r.rc, "output": r.output, "site": str(r.site)}
            for prefix, r in builds.items()
        }).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def serve_build_requests(site_builds: SiteBuilds) -> tuple[str, object]:
    """Answer requests for the builds on a free port; (its URL, the server to shut down)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BuildRequest)
    server.daemon_threads = True
    server.site_builds = site_builds
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", server


class RemoteSiteBuilds:
    """A worker's view of the controller's SiteBuilds: the same ``.builds``, ``.url()`` and
    ``.origin``, fetched once (the first fetch waits for the builds)."""

    def __init__(self, origin: str, request_url: str) -> None:
        self.origin = origin
        with urllib.request.urlopen(request_url, timeout=1800) as reply:
            data = json.load(reply)
        self.builds = {
            prefix: SimpleNamespace(
                rc=r["rc"], output=r["output"], site=Path(r["site"])
            )
            for prefix, r in data.items()
        }

    def url(self, prefix: str = "/") -> str:
        return self.origin + prefix
