"""Give Material's search dialog an accessible name (Lighthouse/axe ``aria-dialog-name``).

Material renders the search box as ``<div class="md-search" ... role="dialog">`` with no
``aria-label``; screen readers then announce an unnamed dialog. The hook copies the label of
the search input, which Material already translates ("Search", "검색", "搜索"), onto the
dialog. If the template changes so that the dialog cannot be named, it warns (an error under
``--strict``).
"""

import logging
import re

log = logging.getLogger("mkdocs.hooks.search_dialog_name")

DIALOG_RE = re.compile(
    r'<div class="md-search" data-md-component="search" role="dialog">'
)
INPUT_LABEL_RE = re.compile(
    r'<input\b[^>]*\bclass="md-search__input"[^>]*\baria-label="([^"]+)"'
)


def _name_dialog(html: str, where: str) -> str:
    if 'role="dialog"' not in html:
        return html
    label = INPUT_LABEL_RE.search(html)
    if label is None or not DIALOG_RE.search(html):
        log.warning(
            f"search_dialog_name: could not name the search dialog in {where}"
        )
        return html
    return DIALOG_RE.sub(
        lambda m: m.group(0)[:-1] + f' aria-label="{label.group(1)}">',
        html,
        count=1,
    )


def on_post_page(output, page, config):
    return _name_dialog(output, page.file.src_uri)


def on_post_template(output_content, template_name, config):
    # Static templates such as 404.html bypass on_post_page.
    if template_name.endswith(".html"):
        return _name_dialog(output_content, template_name)
    return output_content
