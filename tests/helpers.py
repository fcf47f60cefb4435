"""Shared helpers for the tests: PyTorch references in float64 and a relative-error measure."""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

#: Relative tolerance for float64 agreement with PyTorch.
RTOL64 = 1e-10


def rel_err(a, b) -> float:
    """max |a - b| / max(max |b|, 1e-300): one number for a whole array."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def t(x) -> torch.Tensor:
    """NumPy -> float64 torch tensor (None passes through)."""
    return (
        None
        if x is None
        else torch.from_numpy(np.asarray(x, dtype=np.float64).copy())
    )


def central_difference(f, arr: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """The gradient of the scalar function ``f`` at ``arr`` by central
    differences, entry by entry."""
    out = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        plus, minus = arr.copy(), arr.copy()
        plus[idx] += h
        minus[idx] -= h
        out[idx] = (f(plus) - f(minus)) / (2 * h)
    return out


def state_snapshot(layer) -> dict:
    """Every attribute of ``layer``: the object itself and a deep copy of its value."""
    return {
        key: (value, copy.deepcopy(value))
        for key, value in vars(layer).items()
    }


def assert_same_state(layer, snapshot: dict) -> None:
    """Every attribute as in ``snapshot``: arrays bit-identical (dtype too),
    the cache the same object."""
    now = vars(layer)
    assert set(now) == set(snapshot)
    for key, (original, value) in snapshot.items():
        if isinstance(value, np.ndarray):
            assert now[key].dtype == value.dtype, key
            np.testing.assert_array_equal(now[key], value, err_msg=key)
        elif key == "_cache":
            assert now[key] is original, key
        else:
            assert now[key] == value, key


def torch_module_for(ndim: int):
    """The torch BatchNorm class for an input with ``ndim`` dimensions."""
    return {
        2: torch.nn.BatchNorm1d,
        3: torch.nn.BatchNorm1d,
        4: torch.nn.BatchNorm2d,
        5: torch.nn.BatchNorm3d,
    }[ndim]


#: The pages of the site, one folder per language.
DOCS = Path(__file__).resolve().parents[1] / "docs"


def page_tables(lang: str, page: str) -> list[list[list[str]]]:
    """The pipe tables in the prose of docs/LANG/PAGE (code blocks left out),
    as rows of stripped cells."""
    text = (DOCS / lang / page).read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    tables, current = [], []
    for line in [*prose.splitlines(), ""]:
        if line.startswith("|"):
            current.append([
                cell.strip() for cell in line.strip()[1:-1].split("|")
            ])
        elif current:
            tables.append(current)
            current = []
    return tables


def markdown_rows(table: str) -> list[list[str]]:
    """A rendered pipe table as rows of stripped cells, the form page_tables returns."""
    return [
        [cell.strip() for cell in line.strip()[1:-1].split("|")]
        for line in table.splitlines()
    ]


#: The Markdown extensions of mkdocs.yml that shape headings, formulas and figures.
MD_EXTENSIONS = [
    "admonition",
    "attr_list",
    "md_in_html",
    "footnotes",
    "tables",
    "def_list",
    "toc",
    "pymdownx.arithmatex",
    "pymdownx.superfences",
    "pymdownx.details",
    "pymdownx.tabbed",
]
MD_CONFIG = {
    "pymdownx.arithmatex": {"generic": True},
    "pymdownx.tabbed": {"alternate_style": True},
}

#: How a figure caption starts in each language ("Figure 2.", "그림 2.", "图 2").
FIGURE_LABEL = {
    "en": re.compile(r"Figure (\d+)\. "),
    "ko": re.compile(r"그림 (\d+)\. "),
    "zh": re.compile(r"图 (\d+) "),
}
#: A figure of the page referred to in the prose: "Figure 2", "Figures 4 and 5", "그림 2",
#: "图 2"; not a cited paper's figure ("the paper's Figure 1", "논문의 그림 1", "论文的图 1",
#: "Section 3.2, Figure 4", "2018, 그림 3", "3.2절(그림 4)", "第 3.2 节，图 4").
FIGURE_REFERENCE = {
    "en": re.compile(
        r"(?<!paper's )(?<!\d, )\bFigures? (\d+)(?:,? and (\d+))?"
    ),
    "ko": re.compile(
        r"(?<!논문의 )(?<!논문 )(?<!\d, )(?<!절, )(?<!절\()(?<!절과 )그림 (\d+)"
    ),
    "zh": re.compile(
        r"(?<!论文的)(?<!论文)(?<!\d，)(?<!\d, )(?<!节，)(?<!节（)(?<!节、)图 ?(\d+)"
    ),
}


def render_markdown(path: Path):
    """A page rendered to HTML with the site's extensions: (html, the Markdown object)."""
    import markdown

    md = markdown.Markdown(
        extensions=MD_EXTENSIONS, extension_configs=MD_CONFIG
    )
    return md.convert(path.read_text(encoding="utf-8")), md


def page_figures(html: str) -> tuple[list[dict], list[str]]:
    """The ``<figure>`` elements of rendered HTML, in order, each as its image sources and
    its ``<figcaption>`` texts (tags stripped); and the sources of the images outside any
    figure."""
    figures = []
    for match in re.finditer(r"<figure\b[^>]*>(.*?)</figure>", html, re.S):
        body = match.group(1)
        figures.append({
            "images": re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', body),
            "captions": [
                re.sub(r"<[^>]+>", "", c).strip()
                for c in re.findall(
                    r"<figcaption\b[^>]*>(.*?)</figcaption>", body, re.S
                )
            ],
        })
    outside = re.sub(r"<figure\b.*?</figure>", "", html, flags=re.S)
    return figures, re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', outside)


#: A fenced code block (``` or longer, possibly indented inside a list or a tab).
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^\n`]*)\n"
    r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.M | re.S,
)


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block, indentation removed."""
    out = []
    for m in FENCE.finditer(path.read_text(encoding="utf-8")):
        indent = m.group("indent")
        body = "\n".join(
            line[len(indent) :] if line.startswith(indent) else line
            for line in m.group("body").splitlines()
        )
        out.append((m.group("info").strip(), body))
    return out


#: What prose() puts where it removed inline code or math: neither a letter, a digit nor
#: punctuation, so it joins nothing to its neighbours.
MASK = "\ufffc"

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
# A mkdocstrings directive and its indented options.
_DIRECTIVE = re.compile(
    r"^:::[^\n]*\n(?:[ \t]+[^\n]*\n|[ \t]*\n(?=[ \t]))*", re.M
)
_INLINE_CODE = re.compile(
    r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.S
)
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]", re.S)
_INLINE_MATH = re.compile(
    r"(?<![\\$])\$(?![\s$])(?:\\.|[^\\$\n]|\n(?![ \t]*\n))+?(?<![\s\\])\$|\\\(.+?\\\)",
    re.S,
)
#: An inline link or image: [text](target "title"), ![alt](source).
LINK = re.compile(
    r"(?P<image>!?)\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]"
    r"\((?P<target>[^()\s]*)(?:\s+\"[^\"]*\")?\)"
)
_FOOTNOTE_LABEL = re.compile(r"\[\^[^\]]+\]:?")
_ATTR_LIST = re.compile(r"\{:?[ \t]*[#.][^}\n]*\}")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_URL = re.compile(r"\bhttps?://\S+")
_LIST_MARKER = re.compile(r"^([ \t]*)\d+[.)](?=[ \t])", re.M)


def mask_code(text: str) -> str:
    """A Markdown page without its fenced code blocks (each left as an empty line) and with its
    inline code spans replaced by MASK."""
    text = FENCE.sub("\n", text)
    return _INLINE_CODE.sub(MASK, text)


def prose(text: str) -> str:
    """The prose of a Markdown page: what a reader reads as sentences, headings, table cells,
    captions, image alt texts and link texts. Removed: fenced code blocks, mkdocstrings
    directives and HTML comments; replaced by MASK: inline code and math ($…$, \\(…\\),
    $$…$$, \\[…\\]); link targets, HTML tags with their attributes, bare URLs, attribute lists
    (heading anchor ids { #… } among them), footnote labels and ordered-list markers ("1. ")
    are dropped, keeping the link texts and the text between the tags."""
    text = _HTML_COMMENT.sub("", FENCE.sub("\n", text))
    text = _DIRECTIVE.sub("", text)
    text = _INLINE_CODE.sub(MASK, text)
    text = _DISPLAY_MATH.sub(MASK, text)
    text = _INLINE_MATH.sub(MASK, text)
    text = LINK.sub(lambda m: m["text"], text)
    text = _FOOTNOTE_LABEL.sub("", text)
    text = _ATTR_LIST.sub("", text)
    text = _HTML_TAG.sub("", text)
    text = _URL.sub("", text)
    return _LIST_MARKER.sub(r"\1", text)


def markdown_links(text: str) -> list[tuple[str, str]]:
    """(text, target) of every inline link of a Markdown page outside code (images left
    out); inline code inside a link text is kept as written, with its backticks."""
    text = FENCE.sub("\n", text)
    spans: list[str] = []

    def hide(m: re.Match) -> str:
        spans.append(m.group(0))
        return f"\0{len(spans) - 1}\0"

    text = _INLINE_CODE.sub(hide, text)
    text = _DISPLAY_MATH.sub(hide, text)
    text = _INLINE_MATH.sub(hide, text)

    def show(s: str) -> str:
        return re.sub(r"\0(\d+)\0", lambda m: spans[int(m[1])], s)

    return [
        (show(m["text"]), m["target"])
        for m in LINK.finditer(text)
        if not m["image"]
    ]


class _ConfigLoader(yaml.SafeLoader):
    """Loads mkdocs.yml, reading tags such as !ENV as null."""


_ConfigLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def mkdocs_config() -> dict:
    """mkdocs.yml as plain data (tags such as !ENV read as null)."""
    return yaml.load(
        (DOCS.parent / "mkdocs.yml").read_text("utf-8"), Loader=_ConfigLoader
    )


def nav_titles(lang: str) -> dict[str, str]:
    """Page path (as in mkdocs.yml's nav) -> its title in the navigation of ``lang``: the nav
    entry's English title, through the i18n plugin's nav_translations for ko and zh."""
    config = mkdocs_config()
    i18n = next(
        p["i18n"]
        for p in config["plugins"]
        if isinstance(p, dict) and "i18n" in p
    )
    translations = next(
        language.get("nav_translations") or {}
        for language in i18n["languages"]
        if language["locale"] == lang
    )

    def walk(items):
        for item in items:
            for title, value in item.items():
                if isinstance(value, str):
                    yield value, translations.get(title, title)
                else:
                    yield from walk(value)

    return dict(walk(config["nav"]))


def page_title(path: Path) -> str:
    """The H1 of a Markdown page, without its { #anchor }."""
    match = re.search(
        r"^# (.+?)(?:[ \t]*\{[^}\n]*\})?[ \t]*$",
        path.read_text("utf-8"),
        re.M,
    )
    if match is None:
        raise ValueError(f"{path} has no '# ' title line")
    return match.group(1)


def load_module(path: Path, name: str):
    """The Python file at ``path`` (a hook, the root conftest.py) loaded as module ``name``,
    afresh on every call, and registered in ``sys.modules`` under that name (dataclasses
    look their module up there while the file runs)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def assert_same_files(
    written: list[Path], root: Path, reference: Path
) -> None:
    """Each file written under ``root`` is byte for byte the file at the same place under
    ``reference`` (figures re-rendered from stored results against the run's own)."""
    for path in written:
        assert (
            path.read_bytes()
            == (reference / path.relative_to(root)).read_bytes()
        ), path
