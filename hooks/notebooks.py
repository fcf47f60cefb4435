"""Write a Jupyter notebook and a Python script of every chapter page, and link them.

For each page of every language except the API pages and the glossary, the conversion
in ``tools/notebooks.py`` turns the page's Markdown source into ``PAGE.ipynb`` and
``PAGE.py``, written beside the page's folder: ``site/training-and-inference.ipynb`` for
``site/training-and-inference/``, ``site/ko/training-and-inference.ipynb`` for the Korean
page, ``site/index.ipynb`` for the home page. Below the page's title, two links in the
page's language download them (``download`` attribute). Links in the notebooks point to
``site_url``. A file is rewritten only when its bytes change.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

from mkdocs.utils import get_relative_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import notebooks

LABELS = {
    "en": ("Download notebook", "Download script"),
    "ko": ("노트북 내려받기", "스크립트 내려받기"),
    "zh": ("下载笔记本", "下载脚本"),
}
ICONS = {"ipynb": "simple/jupyter.svg", "py": "simple/python.svg"}

_icons: dict[str, str] = {}


def on_config(config):
    import material

    base = Path(material.__file__).parent / "templates" / ".icons"
    for ext, name in ICONS.items():
        _icons[ext] = (base / name).read_text("utf-8").strip()
    return config


def _write(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def links_html(page_url: str, src_uri: str) -> str:
    """The row of the two download links, relative to the page at ``page_url``."""
    lang, _ = notebooks.split_src(src_uri)
    nb_label, py_label = LABELS.get(lang, LABELS["en"])
    links = []
    for target, label, ext in zip(
        notebooks.download_paths(src_uri),
        (nb_label, py_label),
        ("ipynb", "py"),
        strict=True,
    ):
        href = html.escape(get_relative_url(target, page_url))
        links.append(
            f'<a class="md-button bn-download" href="{href}" download>'
            f'<span class="bn-download__icon">{_icons[ext]}</span>'
            f"{html.escape(label)}</a>"
        )
    # data-search-exclude: the search index holds the page's text, not these labels
    return (
        '<div class="bn-downloads" data-search-exclude>'
        + "".join(links)
        + "</div>"
    )


def on_page_content(html_, page, config, files):
    src_uri = page.file.src_uri
    _, rest = notebooks.split_src(src_uri)
    if not notebooks.is_chapter(rest):
        return html_
    notebook, script = notebooks.convert(
        page.file.content_string, src_uri, config.site_url or None
    )
    site = Path(config.site_dir)
    for target, text in zip(
        notebooks.download_paths(src_uri), (notebook, script), strict=True
    ):
        _write(site / target, text)
    row = links_html(page.url, src_uri)
    head, sep, tail = html_.partition("</h1>")
    return head + sep + row + tail if sep else row + html_
