"""A small static file server for built sites, used by the browser tests, the link check and
``make lighthouse``.

Each built site is mounted under a URL prefix, so one server can hold the site at ``/`` and a
second build of it at ``/bnnotes/`` (as a project site on a static host is served). Like such
hosts, it answers ``/missing`` with the mounted site's ``404.html`` and status 404, and, with
``gzip=True``, compresses text responses for clients that accept it.
"""

from __future__ import annotations

import gzip as gzip_module
import http.server
import os
import sys
import threading
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMPRESSIBLE = (
    ".html",
    ".css",
    ".js",
    ".json",
    ".xml",
    ".svg",
    ".txt",
    ".inv",
    ".ipynb",
    ".py",
)


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - the base class's attribute, extended
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".woff2": "font/woff2",
        ".js": "text/javascript",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        # the chapter pages' notebooks and scripts (hooks/notebooks.py)
        ".ipynb": "application/x-ipynb+json",
        ".py": "text/x-python; charset=utf-8",
    }

    def __init__(self, *args, mounts: dict[str, Path], gzip: bool, **kwargs):
        self.mounts = mounts  # "/bnnotes/" -> directory, longest prefix first
        self.gzip = gzip
        super().__init__(
            *args, directory=str(next(iter(mounts.values()))), **kwargs
        )

    def _mount(self, path: str) -> tuple[str, Path] | None:
        for prefix, directory in self.mounts.items():
            if path.startswith(prefix) or path + "/" == prefix:
                return prefix, directory
        return None

    def translate_path(self, path: str) -> str:
        path = unquote(urlsplit(path).path)
        mount = self._mount(path)
        if mount is None:
            return os.devnull + ".absent"  # outside every mount: 404
        prefix, directory = mount
        rest = Path(path[len(prefix) :].lstrip("/"))
        if ".." in rest.parts:
            return os.devnull + ".absent"
        return str(directory / rest) + ("/" if path.endswith("/") else "")

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path) and not self.path.split("?")[0].endswith("/"):
            return super().send_head()  # 301 to the path with a trailing slash
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        if not os.path.isfile(path):
            return self._not_found()
        accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        if self.gzip and accepts_gzip and path.endswith(COMPRESSIBLE):
            body = gzip_module.compress(Path(path).read_bytes(), 6)
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(path))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=600")
            self.end_headers()
            return _Bytes(body)
        return super().send_head()

    def _not_found(self):
        mount = self._mount(unquote(urlsplit(self.path).path))
        page = mount[1] / "404.html" if mount else None
        if page is None or not page.is_file():
            self.send_error(404)
            return None
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return _Bytes(body)

    def end_headers(self):
        if not self.gzip:
            self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args):
        pass


class _Bytes:
    """The file-like object that SimpleHTTPRequestHandler.copyfile reads from."""

    def __init__(self, data: bytes):
        self.data = data

    def read(self, n: int = -1) -> bytes:
        data, self.data = (
            (self.data, b"") if n < 0 else (self.data[:n], self.data[n:])
        )
        return data

    def close(self) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    # The listen backlog: the default of 5 refuses connections when a crawler opens dozens
    # at once on a loaded machine (linkinator reports them as HTTP 0).
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A browser that drops a connection mid-response (a page closed while its images
        # load) is not a server error; anything else is printed as usual.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SiteServer:
    """Serve directories under URL prefixes on 127.0.0.1, on a free port, from a thread.

    The port is bound on creation (``.port`` is known before the sites are built); mount the
    directories with :meth:`mount`, then :meth:`start`.
    """

    def __init__(self, gzip: bool = False):
        self.mounts: dict[str, Path] = {}
        self.gzip = gzip
        self.httpd = _Server(
            ("127.0.0.1", 0), partial(_Handler, mounts=self.mounts, gzip=gzip)
        )
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread: threading.Thread | None = None

    def url(self, prefix: str = "/") -> str:
        return self.origin + prefix

    def mount(self, prefix: str, directory: Path) -> None:
        assert prefix.startswith("/") and prefix.endswith("/"), prefix
        self.mounts[prefix] = Path(directory)
        ordered = sorted(self.mounts.items(), key=lambda kv: -len(kv[0]))
        self.mounts.clear()
        self.mounts.update(ordered)

    def start(self) -> SiteServer:
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SiteServer:
        return self.start() if self.thread is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
