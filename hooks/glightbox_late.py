"""Load mkdocs-glightbox's script and stylesheet at the end of ``<body>``, not in ``<head>``.

The plugin puts ``<link glightbox.min.css>`` and ``<script glightbox.min.js>`` in the head,
where the script holds up parsing and both hold up the first paint of every page, although
they are only needed once a reader taps a figure. Here both move to just before the
plugin's own ``<script id="init-glightbox">`` at the end of the body. Like the site's other
scripts (overrides/main.html), the script loads with ``defer`` and the init script becomes a
module script (deferred too): they run after the document is parsed, in document order, so
the init script still finds ``GLightbox`` and Material's ``document$`` defined. Pages
without the init script are left as they are.
"""

import re

ASSETS_RE = re.compile(
    r'<link href="[^"]*glightbox\.min\.css" rel="stylesheet">'
    r'<script src="[^"]*glightbox\.min\.js"></script>'
)
INIT = '<script id="init-glightbox">'
DEFERRED_INIT = '<script id="init-glightbox" type="module">'


def on_post_page(output, page, config):
    m = ASSETS_RE.search(output)
    if m is None or INIT not in output:
        return output
    output = output[: m.start()] + output[m.end() :]
    assets = m.group(0).replace("<script src=", "<script defer src=")
    return output.replace(INIT, assets + DEFERRED_INIT, 1)
