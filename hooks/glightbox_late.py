"""Load mkdocs-glightbox's script and stylesheet at the end of ``<body>``, not in ``<head>``.

The plugin puts ``<link glightbox.min.css>`` and ``<script glightbox.min.js>`` in the head,
where the script holds up parsing and both hold up the first paint of every page, although
they are only needed once a reader taps a figure. Here both move to just before the
plugin's own ``<script id="init-glightbox">`` at the end of the body, which still finds
``GLightbox`` defined when it runs. Pages without the init script are left as they are.
"""

import re

ASSETS_RE = re.compile(
    r'<link href="[^"]*glightbox\.min\.css" rel="stylesheet">'
    r'<script src="[^"]*glightbox\.min\.js"></script>'
)
INIT = '<script id="init-glightbox">'


def on_post_page(output, page, config):
    m = ASSETS_RE.search(output)
    if m is None or INIT not in output:
        return output
    output = output[: m.start()] + output[m.end() :]
    return output.replace(INIT, m.group(0) + INIT, 1)
