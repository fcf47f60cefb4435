"""``make serve``: the site on http://127.0.0.1:8000 with live reload, rebuilt fast after an edit.

``mkdocs serve`` rebuilds every page of every language after each save. This server builds
the site the same way at start (``mkdocs build`` into a temporary folder, served by mkdocs'
own live-reload server), then, when only existing pages were edited, rebuilds with a plan
(``ServePlan`` in ``hooks/site_cache.py``): every page goes through the whole build again,
Markdown from the cache where its source did not change, but the HTML file of a page that
was not edited is written again only if an edited page shows the rest of the site something
new (a title, headings, anchors or front matter). The search index, the other languages and
every cross-page reference are then exactly what a full build gives. Any other change
(mkdocs.yml, a hook, glossary.yml, assets, a docstring in bnnotes/, a theme override, a page
added or removed: mkdocs.yml's ``watch`` lists the folders besides docs/) rebuilds
everything.

Usage: ``python tools/serve.py [-a HOST:PORT] [-f mkdocs.yml]``
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]

log = logging.getLogger("mkdocs.serve")


def site_cache():
    """hooks/site_cache.py, the module the hooks use (loaded once per process)."""
    name = "bnnotes_site_cache"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            name, ROOT / "hooks" / "site_cache.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def _ignored(path: Path) -> bool:
    """Editor droppings (hidden files such as swap files, backups) and Python's bytecode,
    which running the tests writes under the watched bnnotes/ and hooks/."""
    return (
        path.name.startswith(".")
        or path.name.endswith("~")
        or "__pycache__" in path.parts
    )


def plan_for(paths, docs_dir: Path, previous: dict | None):
    """A rebuild plan when every changed path is an existing page of the previous build
    (``None``: rebuild everything)."""
    if previous is None:
        return None
    cache = site_cache()
    changed = set()
    for raw in paths:
        path = Path(raw)
        if _ignored(path):
            continue
        try:
            src_uri = path.resolve().relative_to(docs_dir.resolve()).as_posix()
        except ValueError:
            return None
        if (
            path.suffix != ".md"
            or not path.is_file()
            or src_uri not in previous
        ):
            return None
        changed.add(src_uri)
    return cache.ServePlan(changed, previous)


def without_livereload(html: bytes) -> bytes:
    """A served page as built: without the live-reload script the server adds before </body>."""
    end = html.rfind(b"</body>")
    start = html.rfind(b"<script>", 0, end)
    if end < 0 or start < 0 or b"livereload" not in html[start:end]:
        return html
    return html[:start] + html[end:]


#: watchdog's events for a file opened or closed without a write (inotify reports reads
#: too): every build reads the watched files, and a rebuild on these would follow each build.
READ_EVENTS = {"opened", "closed_no_write"}


def make_server_class():
    from mkdocs.livereload import LiveReloadServer

    class Server(LiveReloadServer):
        """mkdocs' live-reload server, which also remembers which files changed, and hears of
        a change from the operating system (inotify on Linux) instead of scanning the
        watched folders every half second."""

        changes: set[str]

        def __init__(self, *args, **kwargs):
            import watchdog.observers

            super().__init__(*args, **kwargs)
            self.observer = watchdog.observers.Observer()

        def watch(self, path, func=None, *, recursive=True):
            import os

            import watchdog.events

            path = os.path.abspath(path)
            if path in self._watched_paths:
                self._watched_paths[path] += 1
                return
            self._watched_paths[path] = 1

            def callback(event):
                paths = [event.src_path, getattr(event, "dest_path", None)]
                if (
                    event.is_directory
                    or event.event_type in READ_EVENTS
                    or all(_ignored(Path(p)) for p in paths if p)
                ):
                    return
                with self._rebuild_cond:
                    self.changes.add(event.src_path)
                    if getattr(event, "dest_path", None):
                        self.changes.add(event.dest_path)
                    self._want_rebuild = True
                    self._rebuild_cond.notify_all()

            handler = watchdog.events.FileSystemEventHandler()
            handler.on_any_event = callback
            self._watch_refs[path] = self.observer.schedule(
                handler, path, recursive=recursive
            )

        def take_changes(self) -> set[str]:
            with self._rebuild_cond:
                changes, self.changes = self.changes, set()
            return changes

    return Server


class Builder:
    def __init__(self, get_config, serve_url: str) -> None:
        self.get_config = get_config
        self.serve_url = serve_url
        self.previous: dict | None = (
            None  # the fingerprints of the last complete build
        )
        self.server = None
        self.docs_dir: Path | None = None

    def build(self, config=None, plan=None) -> None:
        from mkdocs import utils
        from mkdocs.commands.build import build

        cache = site_cache()
        if config is None:
            config = self.get_config()
            config.site_url = self.serve_url
        self.docs_dir = Path(config.docs_dir)
        started = time.perf_counter()
        cache.state.fingerprints = {}
        cache.state.plan = plan
        clean_directory = utils.clean_directory
        if plan is not None:
            utils.clean_directory = lambda path: (
                None
            )  # the previous build stays
        self.previous = None
        try:
            build(config, serve_url=self.serve_url)
        finally:
            utils.clean_directory = clean_directory
            cache.state.plan = None
        self.previous = dict(cache.state.fingerprints)
        if plan is not None:
            log.info(
                f"Rebuilt in {time.perf_counter() - started:.2f} s: "
                f"{len(set(plan.rendered))} page(s) written, {len(plan.kept)} unchanged"
            )

    def rebuild(self) -> None:
        changes = self.server.take_changes() if self.server else set()
        plan = (
            plan_for(changes, self.docs_dir, self.previous)
            if self.docs_dir
            else None
        )
        if plan is None:
            log.info("Building documentation...")
        self.build(plan=plan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-a", "--dev-addr", default="127.0.0.1:8000", metavar="HOST:PORT"
    )
    parser.add_argument(
        "-f", "--config-file", default=str(ROOT / "mkdocs.yml")
    )
    args = parser.parse_args(argv)

    from mkdocs.__main__ import State
    from mkdocs.config import load_config
    from mkdocs.livereload import _serve_url

    state = State()  # mkdocs' console logging  # noqa: F841
    site_cache()
    site_dir = tempfile.mkdtemp(prefix="mkdocs_")

    def get_config():
        return load_config(
            config_file=args.config_file,
            site_dir=site_dir,
            dev_addr=args.dev_addr,
        )

    config = get_config()
    config.plugins.on_startup(command="serve", dirty=False)
    host, port = config.dev_addr
    mount_path = urlsplit(config.site_url or "/").path
    config.site_url = serve_url = _serve_url(host, port, mount_path)

    builder = Builder(get_config, serve_url)
    server = make_server_class()(
        builder=builder.rebuild,
        host=host,
        port=port,
        root=site_dir,
        mount_path=mount_path,
    )
    server.build_delay = 0.05  # quiet time after the last change before building (mkdocs: 0.1 s)
    server.changes = set()
    builder.server = server

    def error_handler(code):
        page = Path(site_dir) / f"{code}.html"
        return (
            page.read_bytes()
            if code in (404, 500) and page.is_file()
            else None
        )

    server.error_handler = error_handler
    try:
        log.info("Building documentation...")
        builder.build(config)
        server.watch(config.docs_dir)
        if config.config_file_path:
            server.watch(config.config_file_path)
        server = config.plugins.on_serve(
            server, config=config, builder=builder.rebuild
        )
        for item in config.watch:
            server.watch(item)
        try:
            server.serve()
        except KeyboardInterrupt:
            log.info("Shutting down...")
        finally:
            server.shutdown()
    finally:
        config.plugins.on_shutdown()
        shutil.rmtree(site_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
