"""The notebook and the script of every chapter page (tools/notebooks.py, hooks/notebooks.py).

The code of a notebook is the code that pytest runs on the page: the regions that the
page-snippet parsers of the root ``conftest.py`` (Sybil) find, in order. The English
notebooks are executed top to bottom, each in a fresh IPython shell of this interpreter (the
project's ``.venv``) in a process of its own, forked from one that imported the common
packages once (tests/notebook_runner.py: a Jupyter kernel would import torch again for every
notebook), from the repository root as pytest runs the pages, two at a time; every
``pycon`` example's output is then checked against the page as doctest checks it (ELLIPSIS,
NORMALIZE_WHITESPACE). Two chapters also run in Jupyter kernels (nbclient), which must
record the same outputs as the forked shells. The ko and zh pages have the same code
(tests/test_docs_parity.py), so their notebooks run the same cells.
"""

from __future__ import annotations

import asyncio
import copy
import doctest
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from helpers import load_module
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from sitebuild import ROOT, SUBPATH
from sybil import Document
from traitlets import default

from tools import notebooks

DOCS = ROOT / "docs"
LANGS = notebooks.LANGS
CHAPTERS = sorted(
    p.relative_to(DOCS / "en").as_posix()
    for p in (DOCS / "en").rglob("*.md")
    if notebooks.is_chapter(p.relative_to(DOCS / "en").as_posix())
)
PAGES = [(lang, page) for lang in LANGS for page in CHAPTERS]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
SITE = "https://example.org/bnnotes/"
VENV_KERNELS = Path(sys.prefix) / "share" / "jupyter" / "kernels"
RUNNER = Path(__file__).with_name("notebook_runner.py")
#: The chapters that a Jupyter kernel runs too: printed text, expression values, torch
#: and NumPy results, an expected exception.
KERNEL_PAGES = (
    "normalization-in-the-gradient.md",
    "internal-covariate-shift.md",
)
#: Seconds the runner may take for all the notebooks (each cell: CELL_TIMEOUT there).
RUNNER_TIMEOUT = 900


def _page_parsers():
    module = load_module(ROOT / "conftest.py", "page_snippets_conftest")
    return module.page_snippets.parsers


PARSERS = _page_parsers()


def _hook_labels() -> dict:
    module = load_module(ROOT / "hooks" / "notebooks.py", "notebooks_hook")
    return module.LABELS


LABELS = _hook_labels()


def page_code(path: Path) -> list[tuple[str, doctest.Example | None]]:
    """The code that pytest runs on a page, in order: (source, doctest example or None)."""
    out = []
    for example in Document.parse(str(path), *PARSERS):
        parsed = example.parsed
        if isinstance(parsed, doctest.Example):
            out.append((parsed.source.rstrip("\n"), parsed))
        elif isinstance(parsed, str):
            out.append((str(parsed).rstrip("\n"), None))
    return out


def converted(lang: str, page: str, site_url: str | None = SITE):
    """(notebook node, notebook text, script) of a page."""
    text, script = notebooks.convert(
        (DOCS / lang / page).read_text("utf-8"), f"{lang}/{page}", site_url
    )
    return nbformat.reads(text, as_version=4), text, script


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def cell_text(outputs: list) -> str:
    """What a cell printed and returned, as doctest would see it (stderr left out)."""
    parts = []
    for out in outputs:
        if out.output_type == "stream" and out.name == "stdout":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", "") + "\n")
    return "".join(parts)


class _DownloadLinks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "a" and "bn-download" in classes and "download" in attrs:
            self.hrefs.append(attrs["href"])


def download_links(html: str) -> list[str]:
    """The href of every download link (class bn-download, download attribute) of a page."""
    parser = _DownloadLinks()
    parser.feed(html)
    return parser.hrefs


def _ids(params):
    return [f"{lang}-{page}" for lang, page in params]


# ---------------------------------------------------------------- (a) structure


@pytest.mark.parametrize(("lang", "page"), PAGES, ids=_ids(PAGES))
def test_notebook_code_cells_are_the_pages_code_blocks(lang, page):
    """The notebook's code cells are the page's python blocks and pycon examples, in order."""
    nb, _, _ = converted(lang, page)
    expected = [source for source, _ in page_code(DOCS / lang / page)]
    assert [c.source for c in code_cells(nb)] == expected


@pytest.mark.parametrize(("lang", "page"), PAGES, ids=_ids(PAGES))
def test_pycon_cells_show_the_pages_outputs(lang, page):
    """Each pycon cell stores the output the page shows for it (an error for an exception)."""
    nb, _, _ = converted(lang, page)
    for cell, (_, example) in zip(
        code_cells(nb), page_code(DOCS / lang / page), strict=True
    ):
        if example is None:
            assert cell.outputs == []
        elif example.exc_msg is not None:
            (error,) = cell.outputs
            assert f"{error.ename}: {error.evalue}" == example.exc_msg.strip()
            assert "raises-exception" in cell.metadata.tags
        else:
            want = example.want.replace("<BLANKLINE>", "")
            assert cell_text(cell.outputs) == want


@pytest.mark.parametrize(("lang", "page"), PAGES, ids=_ids(PAGES))
def test_script_compiles(lang, page):
    """The page's script is valid Python."""
    _, _, script = converted(lang, page)
    compile(script, f"{lang}/{page[:-3]}.py", "exec")


@pytest.mark.parametrize(("lang", "page"), PAGES, ids=_ids(PAGES))
def test_script_has_the_pages_code_in_order(lang, page):
    """Every code block of the page occurs in the script, in the page's order."""
    _, _, script = converted(lang, page)
    at = 0
    for source, example in page_code(DOCS / lang / page):
        if example is not None and example.exc_msg is not None:
            source = "\n".join(
                "    " + x if x.strip() else "" for x in source.splitlines()
            )
        found = script.find(source, at)
        assert found >= 0, f"not found after offset {at}:\n{source}"
        at = found + len(source)


@pytest.mark.parametrize("lang", LANGS)
def test_notebook_prose_is_in_the_pages_language(lang):
    """The Markdown cells carry the page's own prose: the title is the page's h1."""
    nb, _, _ = converted(lang, "training-and-inference.md")
    source = (DOCS / lang / "training-and-inference.md").read_text("utf-8")
    title = re.match(r"# (.+?)\s*\{", source)[1]
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.splitlines()[0] == f"# {title}"
    assert nb.metadata.bnnotes.language == lang


def test_conversion_is_deterministic_across_processes():
    """A second conversion, in a process with another hash seed, gives identical bytes."""
    pages = [f"{lang}/training-and-inference.md" for lang in LANGS]
    code = (
        "import json, sys; from pathlib import Path; from tools import notebooks; "
        "print(json.dumps([notebooks.convert(Path('docs', p).read_text('utf-8'), p, "
        f"{SITE!r}) for p in {pages!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(os.environ, PYTHONHASHSEED="12345"),
        capture_output=True,
        text=True,
        check=True,
    )
    here = [
        list(notebooks.convert((DOCS / p).read_text("utf-8"), p, SITE))
        for p in pages
    ]
    assert json.loads(proc.stdout) == here


def test_cell_ids_come_from_the_page_and_the_index():
    """Cell ids are PAGE-NNN (page name, cell index): stable and unique."""
    nb, _, _ = converted("ko", "training-and-inference.md")
    assert [c.id for c in nb.cells] == [
        f"training-and-inference-{i:03d}" for i in range(len(nb.cells))
    ]


# ---------------------------------------------------------------- conversion rules


def _convert(markdown: str, src: str = "en/toolkit.md", site_url=SITE):
    text, script = notebooks.convert(markdown, src, site_url)
    return nbformat.reads(text, as_version=4), script


def test_math_keeps_dollars_and_brackets_become_dollars():
    """$...$ and $$...$$ stay as written; \\(...\\) and \\[...\\] become dollars."""
    nb, _ = _convert(
        "A $x_{i} * y_{i}$ and \\(a_b\\).\n\n$$\\sum_i [x]_i$$\n\n\\[y = x\\]\n"
    )
    assert nb.cells[0].source == (
        "A $x_{i} * y_{i}$ and $a_b$.\n\n$$\\sum_i [x]_i$$\n\n$$y = x$$"
    )


def test_heading_anchor_and_attribute_lists_are_dropped():
    """`{ #id }` after a heading and `{ width=... }` after an image disappear."""
    nb, _ = _convert(
        "## The $\\gamma$ step { #gamma-step }\n\n![a plot](../assets/a.svg){ width=300 }\n"
    )
    assert nb.cells[0].source == (
        f"## The $\\gamma$ step\n\n![a plot]({SITE}assets/a.svg)"
    )


def test_relative_links_become_absolute_to_the_site():
    """Links to pages, anchors and assets point into the site, in the page's language."""
    nb, _ = _convert(
        "[BN](batch-normalizing-transform.md#backward), [here](#top), "
        "[home](index.md), [paper](https://arxiv.org/abs/1502.03167)",
        src="ko/toolkit.md",
    )
    assert nb.cells[0].source == (
        f"[BN]({SITE}ko/batch-normalizing-transform/#backward), "
        f"[here]({SITE}ko/toolkit/#top), [home]({SITE}ko/), "
        "[paper](https://arxiv.org/abs/1502.03167)"
    )


def test_relative_links_become_text_without_a_site_url():
    """Without site_url a relative link keeps its text only; absolute links stay."""
    nb, _ = _convert(
        "[BN](training-and-inference.md) and [paper](https://x.org/p) "
        "`[not](a.md)`\n\n![a plot](../assets/a.svg)",
        site_url=None,
    )
    assert nb.cells[0].source == (
        "BN and [paper](https://x.org/p) `[not](a.md)`\n\n*a plot*"
    )


def test_admonitions_and_tabs_become_readable_markdown():
    """An admonition becomes a quote under its title; a tab its bold label and content."""
    nb, _ = _convert(
        '!!! note "Why"\n    Because $a$.\n\n=== "NumPy"\n\n    ```python\n'
        "    x = 1\n    ```\n\nEnd.\n"
    )
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown"]
    assert nb.cells[0].source == "> **Why**\n>\n> Because $a$.\n\n**NumPy**"
    assert nb.cells[1].source == "x = 1"
    assert nb.cells[2].source == "End."


def test_figure_blocks_keep_their_image_and_caption():
    """A <figure markdown> block becomes its image and its caption as Markdown."""
    nb, _ = _convert(
        "<figure markdown>\n![a plot](../assets/a.svg)\n\n"
        '<figcaption markdown="span">**Figure 1.** A $b$.</figcaption>\n'
        "</figure>\n"
    )
    assert nb.cells[0].source == (
        f"![a plot]({SITE}assets/a.svg)\n\n**Figure 1.** A $b$."
    )


def test_other_fences_stay_in_the_markdown():
    """A ```bash or ```text block is shown as code in a Markdown cell, not run."""
    nb, script = _convert("Run:\n\n```bash\nmake test\n```\n")
    assert [c.cell_type for c in nb.cells] == ["markdown"]
    assert "```bash\nmake test\n```" in nb.cells[0].source
    assert "# make test" in script


def test_pycon_examples_become_cells_with_their_outputs():
    """Prompts are stripped; a value is an execute_result, printed text a stream."""
    nb, _ = _convert(
        "```pycon\n>>> x = 2\n>>> x + 1\n3\n>>> for i in range(2):\n"
        "...     print(i)\n0\n1\n```\n"
    )
    cells = code_cells(nb)
    assert [c.source for c in cells] == [
        "x = 2",
        "x + 1",
        "for i in range(2):\n    print(i)",
    ]
    assert cells[0].outputs == []
    assert cells[1].outputs[0].output_type == "execute_result"
    assert cells[1].outputs[0].data["text/plain"] == "3"
    assert cells[2].outputs[0].output_type == "stream"
    assert cells[2].outputs[0].text == "0\n1\n"


def test_script_runs_and_keeps_outputs_as_comments(tmp_path):
    """The script runs with python to the end, an expected exception included."""
    _, script = _convert(
        "Text.\n\n```pycon\n>>> 1 + 1\n2\n>>> int('x')\n"
        "Traceback (most recent call last):\n    ...\n"
        "ValueError: invalid literal for int() with base 10: 'x'\n```\n\n"
        "```python\nprint('done')\n```\n"
    )
    assert "# Text." in script and "1 + 1\n#> 2" in script
    path = tmp_path / "page.py"
    path.write_text(script, "utf-8")
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, check=True
    )
    assert proc.stdout == (
        "ValueError: invalid literal for int() with base 10: 'x'\ndone\n"
    )


def test_convert_rejects_a_path_that_is_not_a_page():
    """convert() names the bad argument."""
    with pytest.raises(ValueError, match="src_uri"):
        notebooks.convert("# x", "en/x.txt")
    with pytest.raises(TypeError, match="markdown"):
        notebooks.convert(b"# x", "en/x.md")


# ---------------------------------------------------------------- (b) execution


class VenvKernelManager(AsyncKernelManager):
    """Starts the python3 kernel of this interpreter's environment (the project's .venv),
    whatever kernels the user has registered elsewhere."""

    @default("kernel_spec_manager")
    def _kernel_spec_manager_default(self):
        return KernelSpecManager(kernel_dirs=[str(VENV_KERNELS)])


async def _run_all(nbs: dict, workers: int) -> dict:
    """Run the notebooks, ``workers`` kernels at a time: page -> (nb, error, seconds)."""
    gate = asyncio.Semaphore(workers)

    async def run(page, nb):
        async with gate:
            client = NotebookClient(
                nb,
                kernel_name="python3",
                kernel_manager_class=VenvKernelManager,
                timeout=300,
                coalesce_streams=True,
                resources={"metadata": {"path": str(ROOT)}},
            )
            start = time.perf_counter()
            try:
                await client.async_execute()
                error = None
            except Exception as exc:  # reported by the test of that page
                error = exc
            return page, (nb, error, time.perf_counter() - start)

    return dict(await asyncio.gather(*(run(p, nb) for p, nb in nbs.items())))


def _jupyter_env(tmp: Path) -> dict[str, str]:
    """The environment of the notebooks' processes: their own IPython and Jupyter folders,
    the Agg backend, one thread each (several share the cores)."""
    tmp.mkdir(parents=True, exist_ok=True)
    return {
        "IPYTHONDIR": str(tmp / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
    }


def _blank(nb):
    """A copy of a converted notebook without the page's outputs (the conversion writes
    them into the cells), so that every output checked is one the run recorded."""
    nb = copy.deepcopy(nb)
    for cell in code_cells(nb):
        cell.outputs, cell.execution_count = [], None
    return nb


def _run_in_kernels(nbs: dict, tmp: Path) -> dict:
    """Run the notebooks in Jupyter kernels (nbclient): page -> (nb, error, seconds)."""
    env = _jupyter_env(tmp)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        blank = {page: _blank(nb) for page, nb in nbs.items()}
        return asyncio.run(_run_all(blank, max(2, os.cpu_count() or 2)))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_forked(nbs: dict, tmp: Path) -> dict:
    """Run the notebooks with tests/notebook_runner.py, each in a fresh IPython shell of a
    process forked from one that imported the common packages:
    page -> (nb, error, seconds)."""
    jobs = []
    for page, nb in nbs.items():
        stem = tmp / page.replace("/", "-").removesuffix(".md")
        # as converted: the runner clears the page's outputs itself
        nbformat.write(nb, f"{stem}.ipynb")
        jobs.append([f"{stem}.ipynb", f"{stem}.out.ipynb", f"{stem}.json"])
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    # A session of its own: on a timeout the runner and the notebooks it forked end together.
    runner = subprocess.Popen(
        [sys.executable, str(RUNNER), str(tmp / "jobs.json")],
        cwd=ROOT,
        env=dict(os.environ, **_jupyter_env(tmp)),
        start_new_session=True,
    )
    try:
        runner.wait(timeout=RUNNER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()
    results = {}
    for page, (_, out, report) in zip(nbs, jobs, strict=True):
        if not Path(report).is_file() or not Path(out).is_file():
            why = (
                json.loads(Path(report).read_text())["error"]
                if Path(report).is_file()
                else f"no report (the runner's exit status: {runner.returncode})"
            )
            results[page] = (_blank(nbs[page]), why, 0)
            continue
        done = json.loads(Path(report).read_text())
        results[page] = (
            nbformat.read(out, as_version=4),
            done["error"],
            done["seconds"],
        )
    return results


def _outputs(nb) -> list[list[tuple]]:
    """What each code cell recorded, as the tests read it: kind, stream, text, error."""
    return [
        [
            (
                o.output_type,
                o.get("name"),
                o.get("text") or o.get("data", {}).get("text/plain"),
                o.get("ename"),
                o.get("evalue"),
            )
            for o in cell.outputs
        ]
        for cell in code_cells(nb)
    ]


@pytest.fixture(scope="module")
def executed(request, tmp_path_factory):
    """The en notebooks of the selected tests, run top to bottom (_run_forked):
    page -> (executed notebook, error or None, seconds, the page's code when converted)."""
    wanted = sorted({
        item.callspec.params["page"]
        for item in request.session.items
        if getattr(item, "module", None) is request.module
        and "executed" in getattr(item, "fixturenames", ())
        and hasattr(item, "callspec")
    })
    # The page's code is read with its notebook, so both come from one version.
    code = {page: page_code(DOCS / "en" / page) for page in wanted}
    nbs = {page: converted("en", page, None)[0] for page in wanted}
    start = time.perf_counter()
    results = _run_forked(nbs, tmp_path_factory.mktemp("jupyter"))
    total = time.perf_counter() - start
    slowest = sorted(results.items(), key=lambda kv: -kv[1][2])[:3]
    print(
        f"\nnotebooks: {len(results)} executed in {total:.1f} s; slowest: "
        + ", ".join(f"{p} {r[2]:.1f} s" for p, r in slowest)
    )
    return {page: (*results[page], code[page]) for page in wanted}


@pytest.mark.parametrize("page", CHAPTERS)
def test_notebook_runs_top_to_bottom(executed, page):
    """The en notebook runs in a fresh shell with no error but the expected ones."""
    nb, error, _, _ = executed[page]
    assert error is None, str(error)[-3000:]
    assert all(c.execution_count is not None for c in code_cells(nb))


@pytest.mark.parametrize("page", CHAPTERS)
def test_executed_pycon_outputs_match_the_page(executed, page):
    """Run top to bottom, every pycon cell gives the page's shown output (doctest's check)."""
    nb, _, _, code = executed[page]
    checker = doctest.OutputChecker()
    for cell, (source, example) in zip(code_cells(nb), code, strict=True):
        if example is None:
            continue
        if example.exc_msg is not None:
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert errors, f"{source!r} raised nothing"
            got = f"{errors[0].ename}: {errors[0].evalue}\n"
            assert checker.check_output(example.exc_msg, got, FLAGS), (
                f"{source!r}\nwant: {example.exc_msg}\ngot:  {got}"
            )
        else:
            got = cell_text(cell.outputs)
            assert checker.check_output(example.want, got, FLAGS), (
                f"{source!r}\nwant:\n{example.want}\ngot:\n{got}"
            )


def test_kernel_is_the_projects_python():
    """The notebooks' kernel is started from this environment's kernel spec, with this
    interpreter (the project's .venv)."""
    km = VenvKernelManager(kernel_name="python3")
    assert km.kernel_spec.resource_dir == str(VENV_KERNELS / "python3")
    assert km.format_kernel_cmd()[0] == sys.executable


def test_forked_shell_records_what_a_jupyter_kernel_records(tmp_path):
    """Two chapters' notebooks run in Jupyter kernels (nbclient) and by the forked shells of
    the other tests (tests/notebook_runner.py) record the same outputs in every cell:
    printed text, expression values (NumPy arrays, torch results), the expected exception."""
    nbs = {page: converted("en", page, None)[0] for page in KERNEL_PAGES}
    kernel = _run_in_kernels(nbs, tmp_path / "kernel")
    forked = _run_forked(nbs, tmp_path)
    assert {p: r[1] for p, r in kernel.items()} == dict.fromkeys(KERNEL_PAGES)
    assert {p: r[1] for p, r in forked.items()} == dict.fromkeys(KERNEL_PAGES)
    recorded = {page: _outputs(kernel[page][0]) for page in KERNEL_PAGES}
    kinds = {
        o[:2] for cells in recorded.values() for cell in cells for o in cell
    }
    assert {
        ("error", None),
        ("execute_result", None),
        ("stream", "stdout"),
    } <= kinds
    assert {
        page: _outputs(forked[page][0]) for page in KERNEL_PAGES
    } == recorded


# ---------------------------------------------------------------- the build


def test_build_writes_each_pages_files_and_links_them(site_server):
    """The built site holds every chapter's notebook and script, byte for byte the
    conversion of its page, and each page links both with a download attribute."""
    result = site_server.builds["/"]
    assert result.rc == 0, result.output[-3000:]
    site_url = site_server.url("/")
    for lang, page in PAGES:
        nb_path, py_path = notebooks.download_paths(f"{lang}/{page}")
        text, script = notebooks.convert(
            (DOCS / lang / page).read_text("utf-8"), f"{lang}/{page}", site_url
        )
        assert (result.site / nb_path).read_text("utf-8") == text, nb_path
        assert (result.site / py_path).read_text("utf-8") == script, py_path
        html = (
            result.site / notebooks.page_url(f"{lang}/{page}") / "index.html"
        ).read_text("utf-8")
        names = [Path(p).name for p in (nb_path, py_path)]
        assert [Path(x).name for x in download_links(html)] == names, (
            f"{lang}/{page}"
        )


def test_api_pages_and_glossary_have_no_notebook(site_server):
    """Only chapter pages get the files and the links."""
    result = site_server.builds[SUBPATH]
    assert result.rc == 0, result.output[-3000:]
    assert not (result.site / "glossary.ipynb").exists()
    assert not list((result.site / "api").glob("*.ipynb"))
    html = (result.site / "glossary" / "index.html").read_text("utf-8")
    assert "bn-download" not in html


def test_download_labels_stay_out_of_the_search_index(site_server):
    """Search finds the pages by their text, not by the download labels on every page."""
    site = site_server.builds["/"].site
    for index in site.rglob("search_index.json"):
        text = index.read_text("utf-8")
        for notebook_label, script_label in LABELS.values():
            assert notebook_label not in text and script_label not in text, (
                index
            )


def test_server_sends_notebooks_and_scripts_with_their_types(site_server):
    """tools/sitehttp.py serves a notebook as application/x-ipynb+json and a script as
    UTF-8 Python text, byte for byte the built files."""
    site = site_server.builds["/"].site
    for name, content_type in (
        ("ko/index.ipynb", "application/x-ipynb+json"),
        ("ko/index.py", "text/x-python; charset=utf-8"),
    ):
        with urllib.request.urlopen(site_server.url("/") + name) as response:
            assert response.headers["Content-Type"] == content_type
            assert response.read() == (site / name).read_bytes()
