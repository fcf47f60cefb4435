"""The build cache (hooks/site_cache.py) and `make serve`'s rebuilds (tools/serve.py) give the
site a full build gives, byte for byte, on a small project with the same kinds of content
(headings, code blocks, an API page from docstrings, cross-references, search)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import load_module
from sitebuild import ROOT

from tools import serve

MKDOCS_YML = """\
site_name: mini
site_url: !ENV [BNNOTES_SITE_URL, http://127.0.0.1:8000/]
theme:
  name: material
  custom_dir: overrides
watch:
  - mini
  - overrides
nav:
  - index.md
  - other.md
hooks:
  - {hook}
markdown_extensions:
  - toc:
      permalink: true
  - pymdownx.highlight
  - pymdownx.superfences
plugins:
  - search
  - autorefs
  - mkdocstrings:
      handlers:
        python:
          paths: [.]
          options:
            show_root_heading: true
"""
INDEX = """\
# Home

Some text, and a [link to the other page](other.md#usage).

```python
print(sum(range(10)))
```

## Details

More text.
"""
OTHER = """\
# Other

## Usage

See [`mini.mod.scale`][] and the [home page](index.md).

```python
from mini.mod import scale
scale(2.0)
```

::: mini.mod
"""
MODULE = '''\
"""A tiny module."""


def scale(x: float, factor: float = 3.0) -> float:
    """Multiply ``x`` by ``factor``.

    Parameters
    ----------
    x : float
        The value.
    factor : float
        The factor.
    """
    return x * factor
'''


def site_cache():
    """hooks/site_cache.py, as the hooks load it."""
    module = load_module(
        ROOT / "hooks" / "site_cache.py", "site_cache_under_test"
    )
    return module


@pytest.fixture
def project(tmp_path) -> Path:
    """A small MkDocs project that uses the build cache, with its own cache folder."""
    root = tmp_path / "mini-project"
    (root / "docs").mkdir(parents=True)
    (root / "mini").mkdir()
    (root / "mkdocs.yml").write_text(
        MKDOCS_YML.format(hook=ROOT / "hooks" / "build_cache.py"), "utf-8"
    )
    (root / "docs" / "index.md").write_text(INDEX, "utf-8")
    (root / "docs" / "other.md").write_text(OTHER, "utf-8")
    (root / "mini" / "__init__.py").write_text("", "utf-8")
    (root / "mini" / "mod.py").write_text(MODULE, "utf-8")
    (root / "overrides").mkdir()
    return root


def _env(project: Path, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        NO_MKDOCS_2_WARNING="1",
        BNNOTES_SITE_CACHE_DIR=str(project.parent / "cache"),
        **extra,
    )


def build(project: Path, out: Path, **env: str) -> Path:
    """`mkdocs build --strict` of the project into out (a failed build fails the test)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=project,
        env=_env(project, **env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def files(site: Path) -> dict[str, bytes]:
    """Every file of a built site, by path. sitemap.xml.gz is left out: gzip records the
    time it was written."""
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in sorted(site.rglob("*"))
        if p.is_file() and p.name != "sitemap.xml.gz"
    }


def cached_kinds(project: Path) -> set[str]:
    cache = project.parent / "cache"
    return {p.name for p in cache.iterdir() if any(p.rglob("*"))}


def test_cached_builds_equal_the_uncached_build(project, tmp_path):
    """A build that fills the cache and one that reads it write the files of a build without it."""
    uncached = files(build(project, tmp_path / "a", BNNOTES_SITE_CACHE="0"))
    filling = files(build(project, tmp_path / "b"))
    reading = files(build(project, tmp_path / "c"))
    assert uncached == filling == reading
    assert {"highlight", "mkdocstrings", "page", "search"} <= cached_kinds(
        project
    )


def test_edited_docstring_shows_after_a_cached_build(project, tmp_path):
    """A docstring edited after the cache was filled shows on the API page (no stale entry)."""
    build(project, tmp_path / "first")
    module = project / "mini" / "mod.py"
    module.write_text(
        module.read_text("utf-8").replace("The factor.", "The new factor."),
        "utf-8",
    )
    page = build(project, tmp_path / "second") / "other" / "index.html"
    assert "The new factor." in page.read_text("utf-8")


def test_edited_code_block_shows_after_a_cached_build(project, tmp_path):
    """A code block edited after the cache was filled shows highlighted as edited."""
    build(project, tmp_path / "first")
    page = project / "docs" / "index.md"
    page.write_text(
        page.read_text("utf-8").replace("range(10)", "range(12)"), "utf-8"
    )
    html = (build(project, tmp_path / "second") / "index.html").read_text(
        "utf-8"
    )
    assert ">12<" in html and ">10<" not in html


def test_digest_tells_apart_differently_split_parts():
    """The key of ("ab", "c") is not the key of ("a", "bc"), nor of a list of the same."""
    cache = site_cache()
    keys = {
        cache._digest("ab", "c"),
        cache._digest("a", "bc"),
        cache._digest(["ab", "c"]),
    }
    assert len(keys) == 3


def test_store_returns_what_was_put_and_misses_a_damaged_entry(tmp_path):
    """An entry reads back equal, from memory and from disk; a damaged file is a miss."""
    cache = site_cache()
    store = cache.Store(tmp_path)
    store.put("page", "ab" * 32, {"html": "<p>x</p>"})
    again = cache.Store(tmp_path)  # a new process: nothing in memory
    assert store.get("page", "ab" * 32) == again.get("page", "ab" * 32)
    (tmp_path / "page" / "ab" / ("ab" * 32)).write_bytes(b"not a pickle")
    assert cache.Store(tmp_path).get("page", "ab" * 32) is cache.MISS


def test_prune_removes_only_entries_unread_for_a_long_time(tmp_path):
    """prune() deletes the entries older than its limit and keeps the others."""
    cache = site_cache()
    store = cache.Store(tmp_path)
    store.put("page", "aa" * 32, 1)
    store.put("page", "bb" * 32, 2)
    old = time.time() - 30 * 86400
    os.utime(tmp_path / "page" / "aa" / ("aa" * 32), (old, old))
    assert store.prune(max_age_days=14) == 1
    assert cache.Store(tmp_path).get("page", "bb" * 32) == 2
    assert cache.Store(tmp_path).get("page", "aa" * 32) is cache.MISS


# ---------------------------------------------------------------- make serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read()


def _wait_for(url: str, token: bytes, proc, timeout: float = 120) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            body = _get(url)
        except OSError:
            body = b""
        if token in body:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{url} never showed {token!r}")


@pytest.fixture
def serving(project):
    """tools/serve.py (`make serve`) on the project; yields (url, process, log file)."""
    port = _free_port()
    log = project.parent / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tools" / "serve.py"),
                "-a",
                f"127.0.0.1:{port}",
                "-f",
                str(project / "mkdocs.yml"),
            ],
            cwd=project,
            env=_env(project),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_for(url, b"</html>", proc)
            yield url, proc, log
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _served_equal_built(url: str, project: Path, out: Path) -> list[str]:
    """The HTML pages and search index served, against a full build: those that differ."""
    site = build(project, out, BNNOTES_SITE_URL=url)
    return [
        name
        for name, data in files(site).items()
        if name.endswith(".html") or name.endswith("search_index.json")
        if serve.without_livereload(_get(url + name)) != data
    ]


def test_serve_after_a_body_edit_gives_the_full_build(
    serving, project, tmp_path
):
    """After a one-line edit, every served page and the search index are a full build's."""
    url, proc, _ = serving
    page = project / "docs" / "index.md"
    page.write_text(page.read_text("utf-8") + "\nserve-edit-one\n", "utf-8")
    _wait_for(url, b"serve-edit-one", proc)
    assert _served_equal_built(url, project, tmp_path / "full") == []


def test_serve_after_a_body_edit_rewrites_only_that_page(serving, project):
    """A one-line edit rewrites the edited page's file only (the other is left as it is)."""
    url, proc, log = serving
    page = project / "docs" / "index.md"
    page.write_text(page.read_text("utf-8") + "\nserve-edit-two\n", "utf-8")
    _wait_for(url, b"serve-edit-two", proc)
    deadline = time.monotonic() + 30
    while "Rebuilt in" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "1 page(s) written, 1 unchanged" in log.read_text()


def test_serve_after_a_title_edit_updates_the_other_pages(
    serving, project, tmp_path
):
    """A new title reaches the other page's navigation: every served page is a full build's."""
    url, proc, _ = serving
    page = project / "docs" / "index.md"
    page.write_text(
        page.read_text("utf-8").replace("# Home", "# Welcome home"), "utf-8"
    )
    _wait_for(url + "other/", b"Welcome home", proc)
    assert _served_equal_built(url, project, tmp_path / "full") == []


def test_serve_after_a_docstring_edit_gives_the_full_build(
    serving, project, tmp_path
):
    """An edited docstring of the documented package (a watched folder) reaches the API page,
    and every served page is a full build's."""
    url, proc, _ = serving
    module = project / "mini" / "mod.py"
    module.write_text(
        module.read_text("utf-8").replace(
            "The factor.", "The serve-edit factor."
        ),
        "utf-8",
    )
    _wait_for(url + "other/", b"serve-edit factor", proc)
    assert _served_equal_built(url, project, tmp_path / "full") == []


def test_serve_picks_up_a_file_added_to_the_theme_overrides(serving, project):
    """A file added to the theme's custom_dir (a watched folder) while serving is served:
    the theme's file list is not reused from before the change."""
    url, proc, _ = serving
    (project / "overrides" / "extra.txt").write_text(
        "serve-theme-file\n", "utf-8"
    )
    _wait_for(url + "extra.txt", b"serve-theme-file", proc, timeout=60)


def test_serve_rebuilds_once_per_edit(serving, project):
    """One edit gives one rebuild: the files a build reads do not trigger another."""
    url, proc, log = serving
    page = project / "docs" / "index.md"
    page.write_text(page.read_text("utf-8") + "\nserve-edit-four\n", "utf-8")
    _wait_for(url, b"serve-edit-four", proc)
    time.sleep(
        3
    )  # a build reads every page: a rebuild on reads would have started by now
    text = log.read_text()
    assert text.count("Rebuilt in") + text.count("Building documentation") == 2
