"""Cache syntax highlighting, the API pages and the search index across builds.

The steps that take most of a build are deterministic: Pygments highlighting a code block,
mkdocstrings rendering a ``::: bnnotes.module`` block, Material's search plugin parsing a
page's HTML (and jieba segmenting its Chinese). ``hooks/site_cache.py`` stores each result
under ``.cache/site/`` keyed by everything that goes into it, so a build or a rebuild under
``mkdocs serve`` computes only what changed, and /ko/ reuses the English rendering of the API
pages (mkdocstrings has no Korean templates). The built site is the same, byte for byte, as
without the cache (``BNNOTES_SITE_CACHE=0``). ``hooks/katex.py`` caches formulas the same way.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from pathlib import Path

from mkdocs.plugins import event_priority

log = logging.getLogger("mkdocs.hooks.build_cache")

LIBRARY = "bnnotes_site_cache"
PRUNE_EVERY_S = 86400


def library():
    """hooks/site_cache.py, loaded once per process (mkdocs re-executes hook files on rebuilds)."""
    module = sys.modules.get(LIBRARY)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            LIBRARY, Path(__file__).with_name("site_cache.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[LIBRARY] = module
        spec.loader.exec_module(module)
    return module


def on_config(config):
    cache = library()
    cache.configure(config)
    cache.install()
    return config


def on_pre_build(config):
    library().state.autorefs = None


@event_priority(
    -49
)  # just before autorefs' on_env (-50) fixes the cross-references
def on_env(env, config, files):
    library().autorefs_ready(config)
    return env


def on_post_build(config):
    cache = library()
    cache.state.autorefs = None
    store = cache.state.store
    if store is None:
        return
    log.debug(f"build cache: hits {store.hits}, misses {store.misses}")
    stamp = store.root / ".pruned"
    try:
        due = time.time() - stamp.stat().st_mtime > PRUNE_EVERY_S
    except OSError:
        due = True
    if due:
        store.root.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        removed = store.prune()
        log.debug(
            f"build cache: pruned {removed} entries unread for {cache.MAX_AGE_DAYS} days"
        )
