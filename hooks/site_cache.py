"""A cache of the costly, deterministic steps of a site build, kept across builds.

Used by ``hooks/build_cache.py`` and ``hooks/katex.py``; loaded once per process under the
fixed name ``bnnotes_site_cache`` (see ``load()`` in ``hooks/build_cache.py``), so its memory
layer survives the rebuilds of ``mkdocs serve``, which re-execute the hook files.

What is cached (each step's result, keyed by everything that goes into it):

* ``highlight``: Pygments' HTML for one code block (``pymdownx.highlight``, in the pages and in
  the API pages' docstrings): the code, the language, every argument and every setting of the
  highlighter;
* ``mkdocstrings``: one ``::: identifier`` block rendered to HTML, with what the rendering
  registers besides (the headings for the table of contents, the anchors and aliases for
  autorefs, the warnings it logged): the identifier, its options, the heading level, the
  template language actually used (mkdocstrings-python has no Korean templates: /ko/ renders
  in English, so /, /ko/ share one rendering), and every source file of the documented
  package. A rendering with a relative link in it is keyed by its page too;
* ``search``: the search index entries of one page (Material's search plugin parses the page's
  HTML and segments Chinese text with jieba): the page's HTML, URL, title, table of contents
  and front matter;
* ``katex``: KaTeX's HTML for one formula (``hooks/katex.py``).

Every key also holds the *salt*: the text of mkdocs.yml, of every file in ``hooks/``, the
installed Python distributions with their versions, the KaTeX version and the Python
version. A change to any of them starts a fresh cache. The entries are files under
``.cache/site/`` (git-ignored), one per key, written atomically, so builds running at the same
time share them safely. ``BNNOTES_SITE_CACHE=0`` turns the cache off (every step computed);
``BNNOTES_SITE_CACHE_DIR`` moves it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import os
import pickle
import re
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import Any

import yaml

MISS = object()
#: Entries not read for this many days are deleted by ``prune``.
MAX_AGE_DAYS = 14
_ANY_RELATIVE_LINK = re.compile(
    r'\b(?:href|src)="(?![a-zA-Z][a-zA-Z0-9+.-]*:|/|#)'
)


def enabled() -> bool:
    return os.environ.get("BNNOTES_SITE_CACHE", "1") != "0"


def _digest(*parts: Any) -> str:
    """SHA-256 of the parts: strings as they are, anything else as canonical JSON."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            data = part.encode("utf-8", "surrogatepass")
            h.update(b"s%d:" % len(data))
        else:
            data = json.dumps(
                part, sort_keys=True, default=repr, ensure_ascii=False
            ).encode("utf-8", "surrogatepass")
            h.update(b"j%d:" % len(data))
        h.update(data)
    return h.hexdigest()


class Store:
    """Entries on disk under ``root/KIND/KEY[:2]/KEY``, read through a memory layer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.memory: dict[tuple[str, str], bytes] = {}
        self.hits = dict.fromkeys(
            ("highlight", "mkdocstrings", "search", "katex"), 0
        )
        self.misses = dict(self.hits)

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    def get(self, kind: str, key: str) -> Any:
        data = self.memory.get((kind, key))
        if data is None:
            path = self._path(kind, key)
            try:
                data = path.read_bytes()
                if time.time() - path.stat().st_mtime > 86400:
                    os.utime(path)  # read today: kept by prune
            except OSError:
                self.misses[kind] = self.misses.get(kind, 0) + 1
                return MISS
            self.memory[(kind, key)] = data
        try:
            value = pickle.loads(data)
        except Exception:
            self.memory.pop((kind, key), None)
            self.misses[kind] = self.misses.get(kind, 0) + 1
            return MISS
        self.hits[kind] = self.hits.get(kind, 0) + 1
        return value

    def has(self, kind: str, key: str) -> bool:
        return (kind, key) in self.memory or self._path(kind, key).is_file()

    def put(self, kind: str, key: str, value: Any) -> None:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.memory[(kind, key)] = data
        path = self._path(kind, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)

    def prune(self, max_age_days: float = MAX_AGE_DAYS) -> int:
        """Delete the entries not read for ``max_age_days``; the number deleted."""
        limit = time.time() - max_age_days * 86400
        removed = 0
        for path in self.root.glob("*/*/*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
        return removed


class _State:
    """The cache's process-wide state (this module is loaded once per process)."""

    def __init__(self) -> None:
        self.store: Store | None = None
        self.salt = ""
        self.katex_salt = ""
        #: package name -> digest of its source files (mkdocstrings' input), per build
        self.package_digests: dict[str, str] = {}
        self.package_paths: list[Path] = []
        self.recorders: list[_Recorder] = []
        #: src_uri -> fingerprint() of every page populated by the current build
        self.fingerprints: dict[str, tuple] = {}
        self.plan: ServePlan | None = None
        self.git_head: str | None = None
        self.git_tags: str | None = None
        #: _autorefs_state() while autorefs fixes the references of a build's pages
        self.autorefs: str | None = None


state = _State()


# ------------------------------------------------------------------------- configuration


def _installed_distributions() -> list[str]:
    """Names and versions of every installed distribution (the ``*.dist-info`` folders of the
    site-packages folders on sys.path; not the working directory, which ``python -m`` adds)."""
    names = set()
    for entry in sys.path:
        if not _installed(entry or "."):
            continue
        with contextlib.suppress(OSError):
            names.update(
                n
                for n in os.listdir(entry)
                if n.endswith((".dist-info", ".egg-info"))
            )
    return sorted(names)


def _files_digest(paths: list[Path], base: Path | None = None) -> str:
    """Digest of the files' names and bytes. A name is the path below ``base`` (default: the
    file's folder and name), never the absolute path: a copy of the project elsewhere (a
    second checkout, a test's copy) has the same digests and shares the cache."""
    h = hashlib.sha256()
    for path in sorted(paths):
        name = (
            path.relative_to(base)
            if base is not None
            else Path(path.parent.name, path.name)
        )
        h.update(name.as_posix().encode())
        h.update(b"\0")
        with contextlib.suppress(OSError):
            h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def cache_dir(root_dir: Path) -> Path:
    """The cache's folder for the project at ``root_dir``: ``BNNOTES_SITE_CACHE_DIR`` if set,
    else ``.cache/site/`` there."""
    return Path(
        os.environ.get("BNNOTES_SITE_CACHE_DIR")
        or root_dir / ".cache" / "site"
    )


def configure(config) -> None:
    """Open the store and compute the salt for this build (called by each build's on_config)."""
    if not enabled():
        state.store = None
        return
    root_dir = Path(config.config_file_path).resolve().parent
    folder = cache_dir(root_dir)
    if state.store is None or state.store.root != folder:
        state.store = Store(folder)
    folders = {
        Path(__file__).resolve().parent,
        root_dir / "hooks",
        root_dir / "tools",
    }
    code = [
        p
        for folder in folders
        if folder.is_dir()
        for p in folder.iterdir()
        if p.suffix in (".py", ".cjs")
    ]
    state.salt = _digest(
        sys.version,
        _installed_distributions(),
        Path(config.config_file_path).read_text("utf-8"),
        _files_digest(code),
    )
    katex_package = root_dir / "node_modules" / "katex" / "package.json"
    state.katex_salt = _digest(state.salt, _files_digest([katex_package]))
    handler_paths = []
    with contextlib.suppress(Exception):
        handler_paths = config.plugins["mkdocstrings"].config.handlers[
            "python"
        ]["paths"]
    state.package_paths = [
        (root_dir / p).resolve() for p in handler_paths or ["."]
    ]
    state.package_digests = {}
    state.git_head = _git_head(root_dir)
    state.git_tags = _git_tags(root_dir) if state.git_head else None


def _git_head(root: Path) -> str | None:
    """The commit HEAD points to, read from .git without running git (None if unknown)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text("utf-8").strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head[5:]
        with contextlib.suppress(OSError):
            return (git / ref).read_text("utf-8").strip() or None
        for line in (git / "packed-refs").read_text("utf-8").splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except OSError:
        return None
    return None


def _git_tags(root: Path) -> str | None:
    """Digest of the repository's tags (packed and loose), read from .git (None if unknown)."""
    git = root / ".git"
    if not git.is_dir():
        return None
    tags = sorted(
        (
            p.relative_to(git).as_posix(),
            p.read_bytes().decode("utf-8", "replace"),
        )
        for p in (git / "refs" / "tags").rglob("*")
        if p.is_file()
    )
    packed = git / "packed-refs"
    return _digest(tags, packed.read_text("utf-8") if packed.is_file() else "")


def _package_digest(identifier: str) -> str:
    """Digest of every source file of the top-level package that ``identifier`` belongs to."""
    package = identifier.split(".", 1)[0]
    if package not in state.package_digests:
        digests = []
        for base in state.package_paths:
            folder = base / package
            files = []
            if folder.is_dir():
                files += [
                    p for p in folder.rglob("*") if p.suffix in (".py", ".pyi")
                ]
            files += [
                p
                for p in (base / f"{package}.py", base / f"{package}.pyi")
                if p.is_file()
            ]
            digests.append(_files_digest(files, base))
        state.package_digests[package] = _digest(digests)
    return state.package_digests[package]


# ------------------------------------------------------------------------- recording


class _Recorder:
    """What a cached step registers besides its result (autorefs anchors, mkdocstrings
    inventory items, logged warnings), recorded while it is computed, replayed on a hit."""

    def __init__(self, page) -> None:
        self.page = page
        self.thread = threading.get_ident()
        self.anchors: list[tuple] = []
        self.inventory: list[tuple] = []
        self.logs: list[tuple[str, int, str]] = []
        self.cacheable = True

    def __enter__(self):
        state.recorders.append(self)
        return self

    def __exit__(self, *exc):
        state.recorders.remove(self)

    def replay(self, autorefs, inventory, page) -> None:
        for identifier, anchor, title, primary in self.anchors:
            autorefs.register_anchor(
                page, identifier, anchor, title=title, primary=primary
            )
        for args in self.inventory:
            inventory.register(*args)
        for name, level, message in self.logs:
            logging.getLogger(name).log(level, message)

    def value(self) -> tuple:
        return (self.anchors, self.inventory, self.logs)

    @classmethod
    def from_value(cls, value: tuple) -> _Recorder:
        recorder = cls(None)
        recorder.anchors, recorder.inventory, recorder.logs = value
        return recorder


def _recording_handle(original):
    def handle(self, record):
        if state.recorders and record.levelno >= logging.WARNING:
            thread = threading.get_ident()
            for recorder in state.recorders:
                if recorder.thread == thread:
                    recorder.logs.append((
                        self.name,
                        record.levelno,
                        record.getMessage(),
                    ))
        return original(self, record)

    handle.__bnnotes_site_cache__ = True
    return handle


def _recording_register_anchor(original):
    def register_anchor(
        self, page, identifier, anchor=None, *, title=None, primary=True
    ):
        for recorder in state.recorders:
            if page is not recorder.page:
                recorder.cacheable = False
            recorder.anchors.append((identifier, anchor, title, primary))
        return original(
            self, page, identifier, anchor, title=title, primary=primary
        )

    register_anchor.__bnnotes_site_cache__ = True
    return register_anchor


def _recording_inventory_register(original):
    def register(self, name, domain, role, uri, priority=1, dispname=None):
        for recorder in state.recorders:
            recorder.inventory.append((
                name,
                domain,
                role,
                uri,
                priority,
                dispname,
            ))
        return original(self, name, domain, role, uri, priority, dispname)

    register.__bnnotes_site_cache__ = True
    return register


# ------------------------------------------------------------------------- highlight

_HIGHLIGHT_SKIP_ATTRS = {"md"}


def _highlighter_settings(highlighter) -> list:
    return sorted(
        (k, repr(v))
        for k, v in vars(highlighter).items()
        if k not in _HIGHLIGHT_SKIP_ATTRS
    )


def _cached_highlight(original):
    from xml.etree.ElementTree import Element

    def highlight(self, src, language, *args, **kwargs):
        store = state.store
        if store is None or "html" in repr((
            getattr(self, "title_mode", ""),
            getattr(self, "auto_title_map", {}),
        )):
            return original(self, src, language, *args, **kwargs)
        key = _digest(
            state.salt,
            "highlight",
            src,
            language,
            args,
            kwargs,
            _highlighter_settings(self),
        )
        value = store.get("highlight", key)
        if value is MISS:
            result = original(self, src, language, *args, **kwargs)
            if isinstance(result, str):
                value = ("str", result)
            else:
                value = (
                    "element",
                    result.tag,
                    dict(result.attrib),
                    result.text,
                    result.tail,
                )
            store.put("highlight", key, value)
            return result
        if value[0] == "str":
            return value[1]
        el = Element(value[1], value[2])
        el.text, el.tail = value[3], value[4]
        return el

    highlight.__bnnotes_site_cache__ = True
    return highlight


# ------------------------------------------------------------------------- mkdocstrings


def _effective_locale(handler, locale: str | None) -> str:
    """The template language mkdocstrings-python renders with: ``locale`` if it has templates
    for it, English otherwise (the templates' own fallback, see language.html.jinja)."""
    locale = locale or "en"
    try:
        handler.env.get_template(f"languages/{locale}.html.jinja")
    except Exception:
        return "en"
    return locale


def _cached_process_block(original):
    from xml.etree.ElementTree import Element

    def _process_block(self, identifier, yaml_block, heading_level=0):
        store = state.store
        page = getattr(self._autorefs, "current_page", None)
        nested = any(
            r.page is None for r in state.recorders
        )  # inside a block's rendering
        if store is None or page is None or nested:
            return original(self, identifier, yaml_block, heading_level)
        local_config = {}
        if yaml_block.strip():
            local_config = json.loads(
                json.dumps(yaml.safe_load(yaml_block) or {})
            )
        handler_name = self._handlers.get_handler_name(local_config)
        handler = self._handlers.get_handler(handler_name)
        locale = _effective_locale(
            handler, getattr(self._handlers, "_locale", None)
        )
        shared = _digest(
            state.salt,
            "mkdocstrings",
            identifier,
            local_config,
            heading_level,
            handler_name,
            locale,
            _package_digest(identifier),
        )
        value = store.get("mkdocstrings", shared)
        if isinstance(value, dict) and value.get("page_specific"):
            value = store.get(
                "mkdocstrings", _digest(shared, page.file.src_uri, page.url)
            )
        if value is not MISS:
            _install_alias_cache(handler)
            html, headings, aliases, recorded = value
            handler._alias_cache.update(aliases)
            for tag, attrib, text in headings:
                el = Element(tag, attrib)
                el.text = text
                handler._headings.append(el)
            _Recorder.from_value(recorded).replay(
                self._autorefs, self._handlers.inventory, page
            )
            return html, handler, None

        if state.store is not None and handler.env.bytecode_cache is None:
            handler.env.bytecode_cache = _shared_bytecode_cache()
        first = len(handler._headings)
        # page None: the block's own recorder, told apart from the page's (see render below)
        with _Recorder(None) as recorder:
            html, handler, data = original(
                self, identifier, yaml_block, heading_level
            )
        new_headings = handler._headings[first:]
        headings = [(el.tag, dict(el.attrib), el.text) for el in new_headings]
        aliases = {
            el.attrib["id"]: tuple(handler.get_aliases(el.attrib["id"]))
            for el in new_headings
            if "id" in el.attrib
        }
        value = (html, headings, aliases, recorder.value())
        if _ANY_RELATIVE_LINK.search(html):
            store.put("mkdocstrings", shared, {"page_specific": True})
            store.put(
                "mkdocstrings",
                _digest(shared, page.file.src_uri, page.url),
                value,
            )
        else:
            store.put("mkdocstrings", shared, value)
        return html, handler, data

    _process_block.__bnnotes_site_cache__ = True
    return _process_block


def _install_alias_cache(handler) -> None:
    """Let ``handler.get_aliases`` answer from the cache for objects it has not collected."""
    if hasattr(handler, "_alias_cache"):
        return
    handler._alias_cache = {}
    original = handler.get_aliases

    def get_aliases(identifier):
        if identifier in handler._alias_cache:
            return handler._alias_cache[identifier]
        return original(identifier)

    handler.get_aliases = get_aliases


# ------------------------------------------------------------------------- pages

_AUTODOC_RE = re.compile(r"^[ \t]*:::[ \t]*([\w.]+)", re.M)


def _site_files_digest(files) -> str:
    """Digest of every file of the build as the pages' links see it (source, URL, inclusion)."""
    cached = getattr(files, "_bnnotes_digest", None)
    if cached is not None and cached[0] == len(files):
        return cached[1]
    digest = _digest([
        (f.src_uri, f.dest_uri, f.url, str(f.inclusion)) for f in files
    ])
    files._bnnotes_digest = (len(files), digest)
    return digest


def _toc_tokens(items) -> list:
    return [
        {
            "level": i.level,
            "id": i.id,
            "name": i.title,
            "children": _toc_tokens(i.children),
        }
        for i in items
    ]


def _page_key(page, config, files) -> str:
    mkdocstrings = config.plugins.get("mkdocstrings")
    handlers = getattr(mkdocstrings, "_handlers", None)
    return _digest(
        state.salt,
        "page",
        page.file.src_uri,
        page.url,
        page.markdown,
        _site_files_digest(files),
        str(config.theme.get("language")),
        getattr(handlers, "_locale", None),
        [_package_digest(name) for name in _AUTODOC_RE.findall(page.markdown)],
        logging.getLogger("mkdocs.structure.pages").getEffectiveLevel()
        > logging.DEBUG,
    )


def _cached_render(original):
    """Page.render (Markdown to HTML, with mkdocstrings inside) from the cache: the HTML, the
    table of contents, the title, the anchors and links that mkdocs validates after all pages
    are rendered, and what the rendering registered with autorefs and mkdocstrings."""

    def render(self, config, files):
        store = state.store
        if store is None or self.markdown is None or state.recorders:
            return original(self, config, files)
        from mkdocs.structure.toc import get_toc

        key = _page_key(self, config, files)
        value = store.get("page", key)
        if value is not MISS:
            content, toc, title, anchor_ids, links, recorded = value
            targets = {}
            for src_uri, anchors in links or ():
                target = files.get_file_from_path(src_uri)
                if target is None:
                    break
                targets[target] = dict(anchors)
            else:
                self.content = content
                self.toc = get_toc(toc)
                self._title_from_render = title
                self.present_anchor_ids = set(anchor_ids)
                if links is not None:
                    self.links_to_anchors = targets
                mkdocstrings = config.plugins.get("mkdocstrings")
                _Recorder.from_value(recorded).replay(
                    config.plugins.get("autorefs"),
                    mkdocstrings.handlers.inventory if mkdocstrings else None,
                    self,
                )
                return None
        with _Recorder(self) as recorder:
            original(self, config, files)
        if recorder.cacheable:
            links = self.__dict__.get("links_to_anchors")
            store.put(
                "page",
                key,
                (
                    self.content,
                    _toc_tokens(self.toc),
                    self._title_from_render,
                    sorted(self.present_anchor_ids or ()),
                    None
                    if links is None
                    else [(f.src_uri, d) for f, d in links.items()],
                    recorder.value(),
                ),
            )
        return None

    render.__bnnotes_site_cache__ = True
    return render


# ------------------------------------------------------------------------- autorefs


def _autorefs_state(plugin) -> str:
    """Digest of what autorefs resolves a reference with: the anchors and URLs every page
    registered, their titles, the inventory URLs and the plugin's settings."""
    return _digest(
        state.salt,
        plugin._primary_url_map,
        plugin._secondary_url_map,
        plugin._abs_url_map,
        plugin._title_map,
        dict(plugin.config),
        plugin._get_fallback_anchor is None,
    )


def autorefs_ready(config) -> None:
    """Called just before autorefs fixes the cross-references of a build's pages: the state
    it resolves them with is complete, and is digested once for the whole pass."""
    plugin = config.plugins.get("autorefs")
    ready = state.store is not None and plugin is not None
    state.autorefs = _autorefs_state(plugin) if ready else None


def _cached_fix_refs(original):
    """autorefs' fix_refs on one page (its cross-references turned into links, the backlinks
    it records), keyed by the page's HTML and URL and the state of autorefs; a page with an
    unresolved reference is not cached (autorefs warns about it)."""

    def fix_refs(html, url_mapper, **kwargs):
        from_url = getattr(url_mapper, "keywords", {}).get("from_url")
        if state.store is None or state.autorefs is None or from_url is None:
            return original(html, url_mapper, **kwargs)
        record_backlink = kwargs.pop("record_backlink", None)
        key = _digest(
            state.autorefs,
            "autorefs",
            html,
            from_url,
            kwargs,
            record_backlink is None,
        )
        value = state.store.get("autorefs", key)
        if value is not MISS:
            fixed, backlinks, recorded = value
            if record_backlink is not None:
                for args in backlinks:
                    record_backlink(*args)
            _Recorder.from_value(recorded).replay(None, None, None)
            return fixed, []
        backlinks = []

        def recording(*args):
            backlinks.append(args)
            return record_backlink(*args)

        with _Recorder("autorefs") as recorder:
            fixed, unmapped = original(
                html,
                url_mapper,
                record_backlink=None if record_backlink is None else recording,
                **kwargs,
            )
        if not unmapped and not recorder.anchors and not recorder.inventory:
            state.store.put(
                "autorefs", key, (fixed, backlinks, recorder.value())
            )
        return fixed, unmapped

    fix_refs.__bnnotes_site_cache__ = True
    return fix_refs


# ------------------------------------------------------------------------- i18n


def _cached_reconfigure_files(original):
    """mkdocs-static-i18n's files of one language build (each file's language, its URL in
    that build, its alternates in the other languages), computed from the files of the docs
    folder: kept as pickled File objects, keyed by those files and the build's settings."""

    def reconfigure_files(self, files, mkdocs_config):
        store = state.store
        if store is None:
            return original(self, files, mkdocs_config)
        key = _digest(
            state.salt,
            "i18n-files",
            self.current_language,
            self.default_language,
            self.all_languages,
            self.build_languages,
            self.config.docs_structure,
            mkdocs_config.docs_dir,
            mkdocs_config.site_dir,
            mkdocs_config.use_directory_urls,
            [sorted((k, repr(v)) for k, v in vars(f).items()) for f in files],
        )
        value = store.get("i18n-files", key)
        if value is not MISS:
            from mkdocs_static_i18n import folder, suffix

            structure = (
                suffix if self.config.docs_structure == "suffix" else folder
            )
            result = structure.I18nFiles(self, [])
            for file in value:
                result.append(file)
            return result
        result = original(self, files, mkdocs_config)
        store.put("i18n-files", key, list(result))
        return result

    reconfigure_files.__bnnotes_site_cache__ = True
    return reconfigure_files


# ------------------------------------------------------------------------- search


def _toc_items(items) -> list:
    return [(i.id, i.url, i.title, _toc_items(i.children)) for i in items]


def _cached_add_entry(original):
    def add_entry_from_context(self, page):
        store = state.store
        if store is None:
            return original(self, page)
        key = _digest(
            state.salt,
            "search",
            page.content,
            page.url,
            page.title,
            page.meta,
            _toc_items(page.toc),
        )
        value = store.get("search", key)
        if value is not MISS:
            self.entries.extend(value)
            return None
        before = len(self.entries)
        result = original(self, page)
        store.put("search", key, copy.deepcopy(self.entries[before:]))
        return result

    add_entry_from_context.__bnnotes_site_cache__ = True
    return add_entry_from_context


# ------------------------------------------------------------------------- Jinja


def _env_fingerprint(env) -> str:
    """The settings of a Jinja environment that change what a template compiles to."""
    autoescape = env.autoescape
    return repr((
        sorted(env.extensions),
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        env.optimized,
        env.is_async,
        getattr(autoescape, "__qualname__", autoescape),
        type(env).__qualname__,
        env.code_generator_class.__qualname__,
    ))


def _bytecode_cache():
    """Compiled templates shared by the theme's environments (one per language build) and
    kept across builds; Jinja checks each against its template's source before using it."""
    import jinja2
    from jinja2.bccache import Bucket

    class SharedBytecodeCache(jinja2.BytecodeCache):
        def get_bucket(self, environment, name, filename, source):
            key = _digest(
                state.salt, _env_fingerprint(environment), name, filename
            )
            bucket = Bucket(environment, key, self.get_source_checksum(source))
            self.load_bytecode(bucket)
            return bucket

        def load_bytecode(self, bucket):
            if state.store is not None:
                data = state.store.get("jinja", bucket.key)
                if data is not MISS:
                    bucket.bytecode_from_string(data)

        def dump_bytecode(self, bucket):
            if state.store is not None:
                state.store.put(
                    "jinja", bucket.key, bucket.bytecode_to_string()
                )

    return SharedBytecodeCache()


_BYTECODE_CACHE = []


def _shared_bytecode_cache():
    if not _BYTECODE_CACHE:
        _BYTECODE_CACHE.append(_bytecode_cache())
    return _BYTECODE_CACHE[0]


def _cached_get_env(original):
    def get_env(self):
        env = original(self)
        if state.store is not None:
            env.bytecode_cache = _shared_bytecode_cache()
        return env

    get_env.__bnnotes_site_cache__ = True
    return get_env


def _installed(path: str) -> bool:
    """A folder of an installed package, which does not change while a process runs."""
    parts = Path(path).parts
    return "site-packages" in parts or "dist-packages" in parts


def _listing(folder: str) -> tuple:
    """Every file under ``folder``: (relative path, size, modification time in ns)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            found.append((
                os.path.relpath(path, folder),
                st.st_size,
                st.st_mtime_ns,
            ))
    return tuple(found)


_theme_files: dict[tuple, list[tuple[str, str]]] = {}


def _cached_add_files_from_theme(original):
    def add_files_from_theme(self, env, config):
        # mkdocs-static-i18n adds its sitemap folder again in every language build.
        dirs = tuple(dict.fromkeys(config.theme.dirs))
        if state.store is None:
            return original(self, env, config)
        from mkdocs import utils
        from mkdocs.structure.files import File, Files

        key = (
            dirs,
            tuple(config.theme.static_templates),
            tuple(utils.markdown_extensions),
            # A folder of the project (theme.custom_dir) can change while serving: its
            # files, with their sizes and times, are part of the key.
            tuple(_listing(d) for d in dirs if not _installed(d)),
        )
        if key not in _theme_files:
            # The theme's static files, listed by mkdocs itself into an empty collection.
            probe = Files([])
            original(probe, env, config)
            _theme_files[key] = [(f.src_uri, f.src_dir) for f in probe]
        for path, folder in _theme_files[key]:
            if self.get_file_from_path(path) is None:
                self.append(
                    File(
                        path,
                        folder,
                        config.site_dir,
                        config.use_directory_urls,
                    )
                )

    add_files_from_theme.__bnnotes_site_cache__ = True
    return add_files_from_theme


# ------------------------------------------------------------------------- pure functions


_PURE_MEMORY: dict[tuple, Any] = {}


def _frozen(value):
    """A hashable stand-in for a value made of strings, numbers, lists and dicts."""
    if isinstance(value, dict):
        return (
            "dict",
            tuple(sorted((k, _frozen(v)) for k, v in value.items())),
        )
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    hash(value)
    return value


def _cached_pure(kind: str, original):
    """A function of the project whose result depends on its arguments only: results are kept
    in memory (keyed by the arguments themselves) and in the store; a result that is not a
    string or a tuple is handed out as a copy."""

    def cached(*args, **kwargs):
        store = state.store
        if store is None:
            return original(*args, **kwargs)
        try:
            memory_key = (state.salt, kind, _frozen(args), _frozen(kwargs))
        except TypeError:
            memory_key = None
        if memory_key is not None and memory_key in _PURE_MEMORY:
            value = _PURE_MEMORY[memory_key]
        else:
            key = _digest(state.salt, kind, args, kwargs)
            value = store.get(kind, key)
            if value is MISS:
                value = original(*args, **kwargs)
                store.put(kind, key, value)
            if memory_key is not None:
                if len(_PURE_MEMORY) > 100_000:
                    _PURE_MEMORY.clear()
                _PURE_MEMORY[memory_key] = value
        if isinstance(value, (str, tuple)):
            return value
        return copy.deepcopy(value)

    cached.__bnnotes_site_cache__ = True
    return cached


#: Project functions that depend on their arguments only (and on the project's code, which
#: the salt holds), by module name and function: ``tools.notebooks.convert`` (a page's
#: Markdown, path and site_url -> its notebook and script), the search hook's
#: ``math_to_text`` (a search entry's text with TeX -> plain text) and ``name_fields`` (a
#: search entry -> the code names in it) and ``mark_korean`` (a page's HTML -> the same with
#: its Korean words marked). Wrapped when loaded (mkdocs loads a hook under
#: the name it has in mkdocs.yml).
PURE_FUNCTIONS = [
    ("tools.notebooks", "convert"),
    ("hooks/search_per_language.py", "math_to_text"),
    ("hooks/search_per_language.py", "name_fields"),
    ("hooks/korean_text.py", "mark_korean"),
]


def _cached_glightbox(original):
    """mkdocs-glightbox wrapping every image of a page's HTML in a lightbox link (it parses
    and writes the whole page): a function of the HTML, the page's front matter and the
    plugin's settings."""

    def wrap_img_with_anchor_selectolax(
        self, html, plugin_config, meta, skip_classes
    ):
        store = state.store
        if store is None:
            return original(self, html, plugin_config, meta, skip_classes)
        key = _digest(
            state.salt,
            "glightbox",
            html,
            sorted((k, repr(v)) for k, v in dict(plugin_config).items()),
            meta,
            skip_classes,
        )
        value = store.get("glightbox", key)
        if value is MISS:
            value = original(self, html, plugin_config, meta, skip_classes)
            store.put("glightbox", key, value)
        return value

    wrap_img_with_anchor_selectolax.__bnnotes_site_cache__ = True
    return wrap_img_with_anchor_selectolax


def _cached_tag_lookup(original):
    """git-revision-date-localized asks git for the tag of each page's commit, once per page
    and language build (``git tag --points-at``): a function of the commit and the tags."""

    def _lookup_tag_name_for_commit(self, commit_hash):
        store = state.store
        if store is None or state.git_tags is None:
            return original(self, commit_hash)
        key = _digest(state.salt, "git-tag", state.git_tags, commit_hash)
        value = store.get("git-tag", key)
        if value is MISS:
            value = original(self, commit_hash)
            store.put("git-tag", key, value)
        return value

    _lookup_tag_name_for_commit.__bnnotes_site_cache__ = True
    return _lookup_tag_name_for_commit


_SHALLOW: dict[tuple, bool] = {}


def _cached_is_shallow(original):
    """Whether the repository is a shallow clone (``git rev-parse``), asked again for every
    folder of pages: kept per repository and HEAD commit, in memory."""

    def is_shallow_clone(repo):
        key = (getattr(repo, "_working_dir", None), state.git_head)
        if key[0] is None or key[1] is None:
            return original(repo)
        if key not in _SHALLOW:
            _SHALLOW[key] = original(repo)
        return _SHALLOW[key]

    is_shallow_clone.__bnnotes_site_cache__ = True
    return is_shallow_clone


_DATE_FORMATS: dict[tuple, dict] = {}


def _cached_date_formats(original):
    """git-revision-date-localized's localized dates of a timestamp (babel formatting,
    twice per page and language): a function of the timestamp, the locale and the
    plugin's time zone and format, kept in memory."""

    def get_date_formats_for_timestamp(
        self, commit_timestamp, locale, add_spans=True
    ):
        key = (
            commit_timestamp,
            locale,
            add_spans,
            self.config.get("timezone"),
            self.config.get("custom_format"),
        )
        if key not in _DATE_FORMATS:
            if len(_DATE_FORMATS) > 10_000:
                _DATE_FORMATS.clear()
            _DATE_FORMATS[key] = original(
                self, commit_timestamp, locale, add_spans
            )
        return dict(_DATE_FORMATS[key])

    get_date_formats_for_timestamp.__bnnotes_site_cache__ = True
    return get_date_formats_for_timestamp


def _git_key(util, realpath: str, is_first_commit: bool) -> str:
    """What a page's commit depends on: the history up to HEAD of the file, read with or
    without following renames, skipping the ignored commits."""
    return _digest(
        state.salt,
        "git",
        state.git_head,
        realpath,
        is_first_commit,
        bool(util.config.get("enable_git_follow")),
        util.ignored_commits,
    )


def _cached_git_timestamp(original):
    """The last (or first) commit of a file as git-revision-date-localized reads it: a
    function of the file's history up to HEAD, so keyed by the HEAD commit. A file without
    history gets the build time, which is never cached."""

    def get_git_commit_timestamp(self, path, is_first_commit=False):
        store = state.store
        if store is None or state.git_head is None:
            return original(self, path, is_first_commit)
        realpath = os.path.realpath(path)
        key = _git_key(self, realpath, is_first_commit)
        value = store.get("git", key)
        if value is not MISS:
            self._get_repo(
                realpath
            )  # its checks (shallow clone warnings) as without the cache
            return tuple(value)
        value = original(self, path, is_first_commit)
        if value[0]:
            store.put("git", key, list(value))
        return value

    get_git_commit_timestamp.__bnnotes_site_cache__ = True
    return get_git_commit_timestamp


class _InlinePool:
    """A stand-in for multiprocessing.Pool that runs each task at once, in this process."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def apply_async(self, func, args=(), kwds=None):
        result = func(*args, **(kwds or {}))
        return types.SimpleNamespace(get=lambda timeout=None: result)

    def close(self) -> None:
        pass

    def join(self) -> None:
        pass


def _inline_when_cached(original):
    """git-revision-date-localized reads the history of every page in a process pool; when
    the cache holds every page's answer, the pool (forking the build process) is skipped."""

    def parallel_compute_commit_timestamps(
        self, files, original_source=None, is_first_commit=False
    ):
        import multiprocessing

        store = state.store
        if store is None or state.git_head is None:
            return original(self, files, original_source, is_first_commit)
        for f in files:
            if not f.is_documentation_page() or f.abs_src_path is None:
                continue
            path = (original_source or {}).get(f.abs_src_path, f.abs_src_path)
            realpath = os.path.realpath(str(Path(path).absolute()))
            key = _git_key(self.util, realpath, is_first_commit)
            if not store.has("git", key):
                return original(self, files, original_source, is_first_commit)
        pool = multiprocessing.Pool
        multiprocessing.Pool = _InlinePool
        try:
            return original(self, files, original_source, is_first_commit)
        finally:
            multiprocessing.Pool = pool

    parallel_compute_commit_timestamps.__bnnotes_site_cache__ = True
    return parallel_compute_commit_timestamps


# ------------------------------------------------------------------------- serving


class ServePlan:
    """A rebuild after edits of existing pages only (set by ``tools/serve.py``).

    The site folder holds the previous build, exact. A page that was not edited is rendered to
    HTML again only if it can have changed: if an edited page rendered before it (in its own
    language or an earlier one: mkdocs renders the Markdown of all pages of a language before
    any template, one language after the other) shows the rest of the site something new: a
    title, headings, anchors or front matter. Otherwise its file is left as it is; it still
    goes through the plugins' page events, so the search index and the rest are complete.
    """

    def __init__(self, changed: set[str], previous: dict[str, tuple]) -> None:
        self.changed = changed
        self.previous = previous
        self.rendered: list[str] = []
        self.kept: list[str] = []

    def keep(self, page) -> bool:
        if page.file.src_uri in self.changed:
            return False
        return all(
            state.fingerprints[q] == self.previous.get(q)
            for q in self.changed
            if q in state.fingerprints
        )


#: Front matter a page shows only itself: git-revision-date-localized's dates of the page
#: (for a file not yet committed, the time of the build, new at every rebuild).
_OWN_META = re.compile(r"git_")


def fingerprint(page) -> tuple:
    """What the rest of the site can see of a page."""
    meta = {k: v for k, v in page.meta.items() if not _OWN_META.match(str(k))}
    return (
        page.url,
        page.title,
        page.__dict__.get("_title_from_render"),
        json.dumps(meta, sort_keys=True, default=repr),
        json.dumps(_toc_tokens(page.toc or ())),
        sorted(page.present_anchor_ids or ()),
    )


def _planned_copy_file(original):
    """In a planned rebuild no static file changed (any other change rebuilds everything), and
    the site folder holds the previous build's copies: they are left as they are."""

    def copy_file(self, dirty=False):
        if state.plan is not None and os.path.isfile(self.abs_dest_path):
            return None
        return original(self, dirty)

    copy_file.__bnnotes_site_cache__ = True
    return copy_file


def _fingerprinting_populate_page(original):
    def _populate_page(page, config, files, dirty=False):
        original(page, config, files, dirty)
        state.fingerprints[page.file.src_uri] = fingerprint(page)

    _populate_page.__bnnotes_site_cache__ = True
    return _populate_page


def _planned_build_page(original):
    def _build_page(
        page, config, doc_files, nav, env, dirty=False, excluded=False
    ):
        plan = state.plan
        if plan is None or excluded or not plan.keep(page):
            if plan is not None:
                plan.rendered.append(page.file.src_uri)
            return original(page, config, doc_files, nav, env, dirty, excluded)
        # mkdocs' _build_page without the template, the post_page events and the write
        from mkdocs.commands.build import get_context

        plan.kept.append(page.file.src_uri)
        config._current_page = page
        try:
            page.active = True
            context = get_context(nav, doc_files, config, page)
            config.plugins.on_page_context(
                context, page=page, config=config, nav=nav
            )
        finally:
            page.active = False
            config._current_page = None
        return None

    _build_page.__bnnotes_site_cache__ = True
    return _build_page


# ------------------------------------------------------------------------- installation


def _patch(owner, name: str, wrap) -> None:
    current = getattr(owner, name)
    if not getattr(current, "__bnnotes_site_cache__", False):
        # update_wrapper keeps what mkdocs reads from an event method (its priority)
        setattr(owner, name, functools.update_wrapper(wrap(current), current))


def install() -> None:
    """Wrap the cached steps (once per process; the wrappers do nothing with the cache off)."""
    from material.plugins.search.plugin import SearchIndex
    from mkdocs.commands import build as build_module
    from mkdocs.structure.files import File, Files
    from mkdocs.structure.pages import Page
    from mkdocs.theme import Theme
    from mkdocs_autorefs import AutorefsPlugin
    from mkdocs_autorefs._internal import plugin as autorefs_plugin_module
    from mkdocstrings._internal.extension import AutoDocProcessor
    from mkdocstrings._internal.inventory import Inventory
    from pymdownx.highlight import Highlight

    _patch(logging.Logger, "handle", _recording_handle)
    _patch(AutorefsPlugin, "register_anchor", _recording_register_anchor)
    _patch(Inventory, "register", _recording_inventory_register)
    _patch(Highlight, "highlight", _cached_highlight)
    _patch(AutoDocProcessor, "_process_block", _cached_process_block)
    _patch(Page, "render", _cached_render)
    with contextlib.suppress(ImportError):
        from mkdocs_static_i18n.reconfigure import ExtendedPlugin

        _patch(ExtendedPlugin, "reconfigure_files", _cached_reconfigure_files)
    _patch(autorefs_plugin_module, "fix_refs", _cached_fix_refs)
    _patch(build_module, "_populate_page", _fingerprinting_populate_page)
    _patch(build_module, "_build_page", _planned_build_page)
    _patch(File, "copy_file", _planned_copy_file)
    for module_name, name in PURE_FUNCTIONS:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, name):
            kind = f"{module_name}.{name}"
            _patch(module, name, lambda f, kind=kind: _cached_pure(kind, f))
    with contextlib.suppress(ImportError):
        from mkdocs_git_revision_date_localized_plugin.util import Util

        _patch(Util, "get_git_commit_timestamp", _cached_git_timestamp)
        _patch(Util, "get_date_formats_for_timestamp", _cached_date_formats)
        _patch(Util, "_lookup_tag_name_for_commit", _cached_tag_lookup)
        from mkdocs_git_revision_date_localized_plugin import ci as git_ci

        _patch(git_ci, "is_shallow_clone", _cached_is_shallow)
        from mkdocs_git_revision_date_localized_plugin.plugin import (
            GitRevisionDateLocalizedPlugin,
        )

        _patch(
            GitRevisionDateLocalizedPlugin,
            "parallel_compute_commit_timestamps",
            _inline_when_cached,
        )
    with contextlib.suppress(ImportError):
        from mkdocs_glightbox.plugin import LightboxPlugin

        _patch(
            LightboxPlugin,
            "wrap_img_with_anchor_selectolax",
            _cached_glightbox,
        )
    _patch(SearchIndex, "add_entry_from_context", _cached_add_entry)
    _patch(Theme, "get_env", _cached_get_env)
    _patch(Files, "add_files_from_theme", _cached_add_files_from_theme)


# ------------------------------------------------------------------------- KaTeX


def katex_get(tex: str, display: bool) -> Any:
    if state.store is None:
        return MISS
    return state.store.get("katex", _digest(state.katex_salt, tex, display))


def katex_put(tex: str, display: bool, result: dict) -> None:
    if state.store is not None:
        state.store.put(
            "katex", _digest(state.katex_salt, tex, display), result
        )
