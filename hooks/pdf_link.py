"""Link each language's PDF from its home page, in the build that ``make pdf`` makes.

``make pdf`` builds the site with ``BNNOTES_PDF=1`` and then prints
``site/pdf/bnnotes-LANG.pdf`` from it (``tools/pdf.py``, which fails when a PDF it should
write is missing). Only that build links the PDFs: a third button, "Download PDF" in the
page's language, beside the notebook and script links below the home page's title. Every
other build (``make build``, ``make serve``, the tests) has no PDF and so no link, and the
strict build and the link check never meet a link to a file that is not there. (A check
for the file at build time would not do: ``mkdocs build`` empties the site folder first.)
"""

from __future__ import annotations

import html
import os
import sys
from pathlib import Path

from mkdocs.utils import get_relative_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import notebooks

#: Set (to anything but "" or "0") by ``make pdf``.
ENV = "BNNOTES_PDF"
LABELS = {"en": "Download PDF", "ko": "PDF 내려받기", "zh": "下载 PDF"}
ICON = "material/file-pdf-box.svg"

_icon: list[str] = []


def pdf_path(lang: str) -> str:
    """The PDF of a language, relative to the site root."""
    return f"pdf/bnnotes-{lang}.pdf"


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def link_html(lang: str, page_url: str) -> str:
    """The PDF button, relative to the page at ``page_url``."""
    if not _icon:
        import material

        base = Path(material.__file__).parent / "templates" / ".icons"
        _icon.append((base / ICON).read_text("utf-8").strip())
    href = html.escape(get_relative_url(pdf_path(lang), page_url))
    return (
        f'<a class="md-button bn-download" href="{href}" type="application/pdf">'
        f'<span class="bn-download__icon">{_icon[0]}</span>'
        f"{html.escape(LABELS[lang])}</a>"
    )


def on_page_content(html_, page, config, files):
    if not enabled():
        return html_
    lang, rest = notebooks.split_src(page.file.src_uri)
    if rest != "index.md":
        return html_
    link = link_html(lang, page.url)
    # Into the row of download links (hooks/notebooks.py) when there is one, else
    # below the title.
    start = html_.find('<div class="bn-downloads"')
    if start >= 0:
        end = html_.index("</div>", start)
        return html_[:end] + link + html_[end:]
    head, sep, tail = html_.partition("</h1>")
    wrapped = f'<div class="bn-downloads" data-search-exclude>{link}</div>'
    return head + sep + wrapped + tail if sep else wrapped + html_
