"""A page of the site as a Jupyter notebook and as a Python script.

:func:`convert` turns the Markdown source of one page into both:

* prose becomes Markdown cells: math stays ``$...$`` / ``$$...$$`` (``\\(...\\)`` and
  ``\\[...\\]`` are rewritten to dollars), headings lose their ``{ #anchor }``, attribute
  lists are dropped, admonitions become quotes, content tabs a bold label followed by
  their content, ``<figure markdown>`` blocks their image and caption, and links are
  made absolute to ``site_url`` (plain text when there is none);
* every ```` ```python ```` block becomes a code cell with the block's code;
* every ```` ```pycon ```` block (and a ```` ```python ```` block that starts with
  ``>>>``, which the page tests also read as a doctest) becomes one code cell per
  ``>>>`` example, prompts stripped, whose outputs are the output the page shows: an
  ``execute_result`` for an expression, a ``stream`` for printed text, an ``error`` for
  an expected exception (the cell is tagged ``raises-exception``);
* other fenced blocks (``bash``, ``text``, ...) stay in the Markdown.

The script has the same code in the same order, in the ``# %%`` cell format that
editors and Jupytext read, with the prose and the shown outputs as comments (an output
line starts with ``#>``); an example that the page shows raising an exception runs in a
``try`` block, so ``python page.py`` runs to the end.

The result depends on the source, the page's path and ``site_url`` only: cell ids come
from the page's name and the cell's index, nothing records a time, so building twice
gives the same bytes. ``hooks/notebooks.py`` writes the files during the site build.
"""

from __future__ import annotations

import ast
import doctest
import posixpath
import re
from dataclasses import dataclass, field

import nbformat

#: Language folders under docs/; the first is served at the site root.
LANGS = ("en", "ko", "zh")
#: Pages (relative to a language folder) that get no notebook.
EXCLUDED_DIRS = ("api/",)
EXCLUDED_PAGES = ("glossary.md",)

DOCTEST_LANGS = ("pycon",)
CODE_LANGS = ("python",)

_FENCE_OPEN = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$"
)
_CONTAINER = re.compile(
    r"^(?P<indent>[ \t]*)(?P<marker>!!!|\?\?\?\+?|===\+?)[ \t]*"
    r'(?P<rest>[^"\n]*?)[ \t]*(?:"(?P<title>[^"]*)")?[ \t]*$'
)


@dataclass
class Cell:
    """One notebook cell: Markdown prose or code, with a pycon example's shown output."""

    kind: str  # "markdown" or "code"
    source: str
    want: str | None = None  # the output the page shows (pycon examples only)
    exc_msg: str | None = (
        None  # "ValueError: ...\n" when the page shows an exception
    )
    outputs: list = field(default_factory=list)


def is_chapter(page: str) -> bool:
    """Whether a page (path inside a language folder, e.g. "toolkit.md") gets a notebook."""
    return page.endswith(".md") and not (
        page.startswith(EXCLUDED_DIRS) or page in EXCLUDED_PAGES
    )


def split_src(src_uri: str) -> tuple[str, str]:
    """("ko", "toolkit.md") for "ko/toolkit.md"; a path without a language folder is en."""
    head, _, rest = src_uri.partition("/")
    if head in LANGS and rest:
        return head, rest
    return LANGS[0], src_uri


def lang_prefix(lang: str) -> str:
    """The URL prefix of a language inside the site: "" for en, "ko/" for ko."""
    return "" if lang == LANGS[0] else f"{lang}/"


def page_url(src_path: str) -> str:
    """The URL (relative to the site root) of a docs path, as MkDocs serves it with
    directory URLs and the i18n folder layout: "ko/toolkit.md" -> "ko/toolkit/",
    "en/index.md" -> "", "assets/figures/a.svg" -> "assets/figures/a.svg"."""
    lang, rest = split_src(src_path)
    if not src_path.startswith(f"{lang}/"):
        return src_path  # a shared asset, not inside a language folder
    if not rest.endswith(".md"):
        return lang_prefix(lang) + rest
    stem = rest[: -len(".md")]
    if stem == "index" or stem.endswith("/index"):
        stem = stem[: -len("index")]
    else:
        stem += "/"
    return lang_prefix(lang) + stem


def download_paths(src_uri: str) -> tuple[str, str]:
    """Where the notebook and the script of a page lie in the site, beside the page's
    folder: "ko/training-and-inference.md" -> ("ko/training-and-inference.ipynb",
    "ko/training-and-inference.py"); the home page gives "index.ipynb" / "index.py"."""
    lang, rest = split_src(src_uri)
    stem = lang_prefix(lang) + rest[: -len(".md")]
    return f"{stem}.ipynb", f"{stem}.py"


# ---------------------------------------------------------------- Markdown structure


def _dedent(line: str, indent: str) -> str:
    if line.startswith(indent):
        return line[len(indent) :]
    return line.lstrip(" \t")


_ANY_CONTAINER = re.compile(r"^[ \t]*(?:!!!|\?\?\?|===)", re.M)


def _flatten_containers(lines: list[str]) -> list[str]:
    """Rewrite admonitions, collapsible blocks and content tabs (at any depth) as plain
    Markdown: an admonition as a quote headed by its title in bold (its content
    unquoted when it holds a fenced block, so the code stays a code cell), a tab as its
    label in bold followed by its content."""
    out: list[str] = []
    i, fence = 0, None
    while i < len(lines):
        line = lines[i]
        if fence is not None:
            out.append(line)
            if (
                line.strip().startswith(fence)
                and not line.strip()[len(fence) :].strip()
            ):
                fence = None
            i += 1
            continue
        m_fence = _FENCE_OPEN.match(line)
        if m_fence:
            fence = m_fence["fence"]
            out.append(line)
            i += 1
            continue
        m = _CONTAINER.match(line)
        if not m:
            out.append(line)
            i += 1
            continue
        indent = m["indent"]
        body_indent = indent + "    "
        j = i + 1
        body: list[str] = []
        while j < len(lines) and (
            not lines[j].strip() or lines[j].startswith(body_indent)
        ):
            body.append(
                lines[j][len(body_indent) :] if lines[j].strip() else ""
            )
            j += 1
        while body and not body[-1].strip():
            body.pop()
        body = _flatten_containers(body)
        kind, title = (
            m["rest"].split()[0] if m["rest"].split() else "",
            m["title"],
        )
        if m["marker"].startswith("==="):
            label = title if title is not None else kind
            head = [f"**{label}**", ""] if label else []
            block = head + body
        else:
            if title is None:
                title = kind.capitalize()
            head = [f"**{title}**"] if title else []
            if any(_FENCE_OPEN.match(b) for b in body):
                block = [*head, "", *body] if head else body
            else:
                block = [
                    "> " + b if b.strip() else ">"
                    for b in ([*head, "", *body] if head else body)
                ]
        out.extend(indent + b if b else "" for b in block)
        out.append("")
        i = j
    return out


@dataclass
class _Block:
    kind: str  # "prose" or "fence"
    text: str
    info: str = ""


def _blocks(markdown: str) -> list[_Block]:
    """The page as prose runs and fenced blocks (indentation of the fence removed)."""
    lines = markdown.splitlines()
    if _ANY_CONTAINER.search(markdown):
        lines = _flatten_containers(lines)
    blocks: list[_Block] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m or (m["fence"][0] == "`" and "`" in m["info"]):
            prose.append(lines[i])
            i += 1
            continue
        indent, fence = m["indent"], m["fence"]
        close = re.compile(
            rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$"
        )
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = "\n".join(_dedent(x, indent) for x in lines[i + 1 : j])
        info = m["info"].strip()
        lang = info.split()[0].lstrip(".{").rstrip("}") if info else ""
        if lang in CODE_LANGS + DOCTEST_LANGS:
            if prose:
                blocks.append(_Block("prose", "\n".join(prose)))
                prose = []
            blocks.append(_Block("fence", body, lang))
        else:
            prose.extend(lines[i : j + 1])
        i = j + 1
    if prose:
        blocks.append(_Block("prose", "\n".join(prose)))
    return blocks


# ---------------------------------------------------------------- prose


# Spans left untouched by link and attribute rewriting: fenced blocks that stay in the
# prose, inline code, display and inline math.
_PROTECT = re.compile(
    r"(?P<fenced>^(?P<fi>[ \t]*)(?P<f>`{3,}|~{3,}).*?^(?P=fi)(?P=f)[ \t]*$)"
    r"|(?P<code>(?P<ticks>`+).+?(?P=ticks))"
    r"|(?P<dmath>\$\$.+?\$\$)"
    r"|(?P<bmath>\\\[.+?\\\])"
    r"|(?P<imath>\$(?<![\\$]\$)(?![\s$])(?:\\.|[^$\\\n]|\n(?![ \t]*\n))+?(?<!\s)\$(?!\d))"
    r"|(?P<rmath>\\\(.+?\\\))",
    re.M | re.S,
)
_HEADING_ATTRS = re.compile(
    r"^(?P<h>#{1,6}[ \t].*?)[ \t]*\{[^{}\n]*\}[ \t]*$", re.M
)
_ATTR_TOKEN = r"""(?:[#.][\w-]+|[\w-]+=(?:"[^"\n]*"|'[^'\n]*'|[^\s}]+))"""
_ATTR_LIST = re.compile(
    rf"[ \t]*\{{:?[ \t]*{_ATTR_TOKEN}(?:[ \t]+{_ATTR_TOKEN})*[ \t]*\}}"
)
_BRACKETED = r"\[(?P<text>(?:[^\[\]\\]|\\.|\[[^\[\]]*\])*)\]"
_LINK = re.compile(
    rf"(?P<img>!?){_BRACKETED}\(\s*(?P<target><[^>\n]*>|[^\s()]+(?:\([^\s()]*\))?)"
    r"""(?:\s+(?P<title>"[^"\n]*"|'[^'\n]*'))?\s*\)"""
)
_REF_DEF = re.compile(
    r"^(?P<lead>[ ]{0,3}\[(?!\^)[^\]\n]+\]:[ \t]*)(?P<target>\S+)", re.M
)
_SCHEME = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")
# md_in_html: a block tag with a markdown attribute on a line of its own (<figure markdown>),
# its closing tag, and an inline element with markdown="span" (a <figcaption>).
_MD_BLOCK_OPEN = re.compile(
    r"^[ \t]*<(?P<tag>[a-z][a-z0-9]*)\b[^>\n]*\bmarkdown\b[^>\n]*>[ \t]*$"
)
_MD_SPAN = re.compile(
    r"<(?P<tag>[a-z][a-z0-9]*)\b[^>\n]*\bmarkdown=\"span\"[^>\n]*>(?P<body>.*?)</(?P=tag)>",
    re.S,
)


def resolve_link(
    target: str, src_uri: str, site_url: str | None
) -> str | None:
    """The absolute address of a link or image target on a page, or None when it has
    none: a relative target without a ``site_url``. Absolute targets are kept."""
    if _SCHEME.match(target):
        return target
    if not site_url:
        return None
    path, hash_, fragment = target.partition("#")
    if path:
        docs_path = posixpath.normpath(
            posixpath.join(posixpath.dirname(src_uri), path)
        )
        url = page_url(docs_path)
    else:
        url = page_url(src_uri)
    return site_url.rstrip("/") + "/" + url + hash_ + fragment


def _unwrap_md_in_html(text: str) -> str:
    """Drop the tags of md_in_html blocks and spans, keeping the Markdown inside (Jupyter
    would show the Markdown of a <figure> block as raw text)."""
    out: list[str] = []
    open_tags: list[str] = []
    for line in text.split("\n"):
        m = _MD_BLOCK_OPEN.match(line)
        if m:
            open_tags.append(m["tag"])
            continue
        if open_tags and line.strip() == f"</{open_tags[-1]}>":
            open_tags.pop()
            continue
        out.append(line)
    return _MD_SPAN.sub(lambda m: m["body"], "\n".join(out))


def _rewrite_prose(text: str, src_uri: str, site_url: str | None) -> str:
    kept: list[str] = []

    def protect(m: re.Match) -> str:
        span = m.group(0)
        if m["bmath"]:
            span = "$$" + span[2:-2] + "$$"
        elif m["rmath"]:
            span = "$" + span[2:-2].strip() + "$"
        kept.append(span)
        return f"\x00{len(kept) - 1}\x00"

    text = _PROTECT.sub(protect, text)
    text = _unwrap_md_in_html(text)
    text = _HEADING_ATTRS.sub(lambda m: m["h"], text)
    text = _ATTR_LIST.sub("", text)

    def link(m: re.Match) -> str:
        target = m["target"].strip("<>")
        url = resolve_link(target, src_uri, site_url)
        label = m["text"]
        if url is None:
            return f"*{label}*" if m["img"] else label
        title = f" {m['title']}" if m["title"] else ""
        return f"{m['img']}[{label}]({url}{title})"

    text = _LINK.sub(link, text)

    def ref_def(m: re.Match) -> str:
        url = resolve_link(m["target"].strip("<>"), src_uri, site_url)
        return m["lead"] + (url if url is not None else m["target"])

    text = _REF_DEF.sub(ref_def, text)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m[1])], text)


# ---------------------------------------------------------------- code


def _shown(text: str) -> str:
    """A doctest's expected output as the reader sees it: <BLANKLINE> markers as blank lines."""
    return re.sub(r"(?m)^<BLANKLINE>$", "", text)


def _is_value(source: str) -> bool:
    """Whether an example's source is one expression whose value the prompt would show
    (not a print() call, which shows text through stdout)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return False
    value = tree.body[0].value
    return not (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "print"
    )


def _doctest_cells(body: str, name: str) -> list[Cell]:
    cells = []
    for example in doctest.DocTestParser().get_examples(body, name):
        cells.append(
            Cell(
                "code",
                example.source.rstrip("\n"),
                want=_shown(example.want),
                exc_msg=example.exc_msg,
            )
        )
    return cells


def page_cells(
    markdown: str, src_uri: str, site_url: str | None = None
) -> list[Cell]:
    """The cells of a page, in order (see the module docstring)."""
    cells: list[Cell] = []
    for block in _blocks(markdown):
        if block.kind == "prose":
            text = _rewrite_prose(block.text, src_uri, site_url).strip("\n")
            text = re.sub(r"\n{3,}", "\n\n", text)
            if text.strip():
                cells.append(Cell("markdown", text))
        elif block.info in DOCTEST_LANGS or block.text.startswith(">>>"):
            cells.extend(_doctest_cells(block.text, src_uri))
        else:
            cells.append(Cell("code", block.text.rstrip("\n")))
    return cells


# ---------------------------------------------------------------- output


def _cell_id(src_uri: str, index: int) -> str:
    _, rest = split_src(src_uri)
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", rest[: -len(".md")]).strip("-")
    return f"{slug}-{index:03d}"


def _outputs(cell: Cell, count: int) -> list[dict]:
    if cell.exc_msg is not None:
        ename, _, evalue = cell.exc_msg.rstrip("\n").partition(":")
        return [
            {
                "output_type": "error",
                "ename": ename.strip(),
                "evalue": evalue.strip(),
                "traceback": cell.want.rstrip("\n").splitlines()
                + cell.exc_msg.rstrip("\n").splitlines(),
            }
        ]
    if not cell.want:
        return []
    if _is_value(cell.source):
        return [
            {
                "output_type": "execute_result",
                "execution_count": count,
                "data": {"text/plain": cell.want.rstrip("\n")},
                "metadata": {},
            }
        ]
    return [{"output_type": "stream", "name": "stdout", "text": cell.want}]


def notebook(cells: list[Cell], src_uri: str) -> nbformat.NotebookNode:
    """The notebook of a page's cells; code cells are numbered as if run top to bottom."""
    nb_cells = []
    count = 0
    for index, cell in enumerate(cells):
        cell_id = _cell_id(src_uri, index)
        if cell.kind == "markdown":
            nb_cells.append({
                "cell_type": "markdown",
                "id": cell_id,
                "metadata": {},
                "source": cell.source,
            })
            continue
        count += 1
        metadata = (
            {"tags": ["raises-exception"]} if cell.exc_msg is not None else {}
        )
        nb_cells.append({
            "cell_type": "code",
            "id": cell_id,
            "metadata": metadata,
            "execution_count": count,
            "source": cell.source,
            "outputs": _outputs(cell, count),
        })
    lang, _ = split_src(src_uri)
    nb = nbformat.from_dict({
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            },
            "language_info": {"name": "python"},
            "bnnotes": {"page": src_uri.split("/", 1)[-1], "language": lang},
        },
        "cells": nb_cells,
    })
    return nb


def _comment(text: str, prefix: str = "# ") -> list[str]:
    return [
        prefix + line if line.strip() else prefix.rstrip()
        for line in text.splitlines()
    ]


def script(cells: list[Cell]) -> str:
    """The page as a Python script in the ``# %%`` cell format (see the module docstring)."""
    parts: list[str] = []
    for cell in cells:
        if cell.kind == "markdown":
            parts.append(
                "\n".join(["# %% [markdown]", *_comment(cell.source)])
            )
            continue
        lines = ["# %%"]
        if cell.exc_msg is not None:
            lines.append("try:")
            lines.extend(
                "    " + x if x.strip() else ""
                for x in cell.source.splitlines()
            )
            lines.append("except Exception as exc:")
            lines.append('    print(f"{type(exc).__name__}: {exc}")')
            lines.extend(_comment(cell.exc_msg.rstrip("\n"), "#> "))
        else:
            lines.append(cell.source)
            if cell.want:
                lines.extend(_comment(cell.want.rstrip("\n"), "#> "))
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def convert(
    markdown: str, src_uri: str, site_url: str | None = None
) -> tuple[str, str]:
    """The notebook (JSON text, validated) and the script of the page ``src_uri``
    ("ko/toolkit.md", a path under docs/) whose Markdown source is ``markdown``."""
    if not isinstance(markdown, str):
        raise TypeError(f"markdown must be str, not {type(markdown).__name__}")
    if not src_uri.endswith(".md"):
        raise ValueError(
            f"src_uri must name a Markdown page (*.md), got {src_uri!r}"
        )
    cells = page_cells(markdown, src_uri, site_url)
    text = nbformat.writes(notebook(cells, src_uri))
    return text + "\n", script(cells)
