"""Warn (an error under ``--strict``) when a language folder lacks a page or has an extra one.

``fallback_to_default`` must stay ``true`` in mkdocs-static-i18n 1.3.1: with ``false``,
shared assets in ``docs/assets/`` are dropped from the non-default builds. This hook
restores the guarantee that ``false`` was meant to give: every page under ``docs/en/``
exists under ``docs/ko/`` and ``docs/zh/`` (and vice versa), so nothing silently
falls back to English.
"""

import logging
from pathlib import Path

from mkdocs.plugins import event_priority

log = logging.getLogger("mkdocs.hooks.translations_complete")


def _pages(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.md")}


@event_priority(
    -200
)  # after static-i18n has switched theme.language for this build
def on_pre_build(config):
    i18n = config.plugins.get("i18n")
    if i18n is None:
        return
    default = next(
        lang.locale for lang in i18n.config.languages if lang.default
    )
    current = str(config.theme.get("language") or default)
    if current == default:
        return
    docs = Path(config.docs_dir)
    originals, translated = _pages(docs / default), _pages(docs / current)
    for page in sorted(originals - translated):
        log.warning(
            f"translations: docs/{current}/{page} is missing (docs/{default}/{page} exists); "
            f"/{current}/ would fall back to {default}"
        )
    for page in sorted(translated - originals):
        log.warning(
            f"translations: docs/{current}/{page} has no original docs/{default}/{page}"
        )
