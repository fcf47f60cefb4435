"""Mark Korean text on the English and Chinese pages as Korean: ``<span lang="ko">``.

The glossary and a few explanations quote Korean terms (정규화, 이동 통계량) inside English
or Chinese prose. Marked with their language, they break lines as Korean does, between
words and never inside one (``site.css``: keep-all for ``[lang=ko]``), instead of between
any two syllables, and screen readers pronounce them as Korean.

Every run of Hangul words outside code is wrapped; Korean pages are left as they are (their
``<html lang="ko">`` covers them).
"""

from __future__ import annotations

import re

HANGUL_RUN_RE = re.compile(r"[\uac00-\ud7a3]+(?:[ \u00a0]+[\uac00-\ud7a3]+)*")
TAG_RE = re.compile(r"(<[^>]*>)")
SKIP = {"code", "pre", "script", "style", "kbd", "textarea"}
OPEN_OR_CLOSE_RE = re.compile(r"<(/?)([a-zA-Z][\w-]*)")


def mark_korean(html: str) -> str:
    """html with each run of Hangul words outside code wrapped in <span lang="ko">."""
    out, skipping = [], 0
    for part in TAG_RE.split(html):
        tag = OPEN_OR_CLOSE_RE.match(part) if part.startswith("<") else None
        if tag is not None:
            if tag[2].lower() in SKIP and not part.endswith("/>"):
                skipping += -1 if tag[1] else 1
            out.append(part)
        elif skipping > 0 or part.startswith("<"):
            out.append(part)
        else:
            out.append(
                HANGUL_RUN_RE.sub(
                    lambda m: f'<span lang="ko">{m[0]}</span>', part
                )
            )
    return "".join(out)


def on_page_content(html, page, config, files):
    if page.file.src_uri.split("/", 1)[0] == "ko":
        return html
    return mark_korean(html)
