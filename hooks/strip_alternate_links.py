"""Remove ``<link rel="alternate" hreflang=...>`` from every page's ``<head>``.

Material's JS fetches ``new URL("sitemap.xml", <alternate href>)``; mkdocs-static-i18n
makes those hrefs page-specific, so browsers log 404s for ``/ko/<page>/sitemap.xml``.
The links only matter for SEO; the visible language switcher is unaffected.
"""

import re

ALTERNATE_LINK_RE = re.compile(
    r'[ \t]*<link\b[^>]*\brel="alternate"[^>]*\bhreflang="[^"]*"[^>]*>\n?'
)


def on_post_page(output, page, config):
    return ALTERNATE_LINK_RE.sub("", output)


def on_post_template(output_content, template_name, config):
    # Static templates such as 404.html bypass on_post_page.
    if template_name.endswith(".html"):
        return ALTERNATE_LINK_RE.sub("", output_content)
    return output_content
