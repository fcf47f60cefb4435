"""Give mkdocstrings the locale of the language being built.

mkdocstrings reads ``theme.language`` in its own ``on_config`` (default priority),
but mkdocs-static-i18n switches the language in *its* ``on_config`` (priority -100),
so without this hook each language build uses the previous build's locale
(e.g. Chinese section titles on /ko/ API pages). mkdocstrings-python ships
template translations for en, ja and zh only; Korean falls back to English.

mkdocstrings also inserts its stylesheet into ``extra_css`` on every ``on_config``,
i.e. once per language build; duplicates are dropped here.
"""

from mkdocs.plugins import event_priority


@event_priority(-200)  # after static-i18n (-100) has set theme.language
def on_config(config):
    handlers = getattr(
        config.plugins.get("mkdocstrings"), "_handlers", None
    )  # private attribute
    if handlers is not None:
        handlers._locale = str(config.theme.get("language") or "en").replace(
            "_", "-"
        )
    config.extra_css[:] = list(dict.fromkeys(config.extra_css))
    return config
