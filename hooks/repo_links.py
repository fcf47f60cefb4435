"""No "edit this page" link without a repository address.

``repo_url`` comes from ``BNNOTES_REPO_URL`` (``mkdocs.yml``) and is unset by default, while
``edit_uri`` always has a value. MkDocs joins the two into each page's edit link; with no
``repo_url`` the link would be a broken relative path (and a warning, an error under
``--strict``). This hook drops ``edit_uri`` when ``repo_url`` is unset, so an unconfigured
build shows neither the repository link nor edit links.

With both set, a page's edit link is ``repo_url + edit_uri + src_uri``; under
mkdocs-static-i18n's folder layout ``src_uri`` is ``ko/PAGE.md`` for a Korean page, so the
link leads to the source in the page's own language.
"""


def on_config(config):
    if not config.repo_url:
        config.edit_uri = None
        config.edit_uri_template = None
    return config
