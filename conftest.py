"""Collect the page snippets and the docstring examples as tests.

Every ```python and ```pycon block in docs/**/*.md (inside tabs too) runs under pytest,
one namespace per page, so a page reads as one script; every Examples section in the
bnnotes docstrings runs as a doctest. Run one language with ``pytest docs/ko``.

A Korean or Chinese page whose checks are those of its English page (the same code
blocks, with the outputs they show, and the same skip directives, in the same order) is
not run a second and third time: it would run the same code and compare the same
outputs. tests/test_docs_parity.py proves the blocks identical, so normally every
translation is left out; a page whose blocks differ runs. Naming the folder or the page
(``pytest docs/ko``, ``pytest docs/zh/toolkit.md``) runs it anyway.
"""

import doctest
import functools
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE
from pathlib import Path

from sybil import Sybil
from sybil.evaluators.doctest import DocTestEvaluator
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.abstract.codeblock import PythonDocTestOrCodeBlockParser
from sybil.parsers.abstract.doctest import DocTestStringParser
from sybil.parsers.markdown import (
    CodeBlockParser,
    PythonCodeBlockParser,
    SkipParser,
)
from sybil.parsers.rest import DocTestParser

FLAGS = ELLIPSIS | NORMALIZE_WHITESPACE


class PyconCodeBlockParser(PythonDocTestOrCodeBlockParser):
    """```pycon blocks: interactive sessions checked like doctests."""

    codeblock_parser_class = CodeBlockParser

    def __init__(self, doctest_optionflags: int = 0) -> None:
        self.doctest_parser = DocTestStringParser(
            DocTestEvaluator(doctest_optionflags)
        )
        self.codeblock_parser = CodeBlockParser("pycon", PythonEvaluator(()))


def _save_print_options(namespace: dict) -> None:
    """A page may call np.set_printoptions once; it must not leak into other pages."""
    import numpy as np

    namespace["__np_printoptions__"] = np.get_printoptions()


def _restore_print_options(namespace: dict) -> None:
    import numpy as np

    np.set_printoptions(**namespace["__np_printoptions__"])


page_snippets = Sybil(
    parsers=[
        PythonCodeBlockParser(doctest_optionflags=FLAGS),
        PyconCodeBlockParser(doctest_optionflags=FLAGS),
        SkipParser(),
    ],
    path="docs",
    patterns=["*.md"],
    name="docs",
    setup=_save_print_options,
    teardown=_restore_print_options,
)
docstring_examples = Sybil(
    parsers=[DocTestParser(optionflags=FLAGS)],
    path="bnnotes",
    patterns=["*.py"],
    name="docstrings",
)

_collect_file = (page_snippets + docstring_examples).pytest()

DOCS = Path(__file__).resolve().parent / "docs"
TRANSLATIONS = ("ko", "zh")
_left_out: set[Path] = set()


def _parsed(parsed) -> object:
    """What a parsed region checks: a doctest example's source, shown output and options;
    anything else (a code block's text, a skip directive) as its repr."""
    if isinstance(parsed, doctest.Example):
        return (
            parsed.source,
            parsed.want,
            parsed.exc_msg,
            sorted(parsed.options.items()),
        )
    return repr(parsed)


@functools.cache
def page_checks(path: Path) -> tuple[tuple[str, object], ...]:
    """What pytest runs for a page: each example Sybil parses in it (a code block, a doctest
    example with the output it shows, a skip directive) with the evaluator that runs it,
    in order."""
    document = page_snippets.parse(path)
    return tuple(
        (type(example.region.evaluator).__name__, _parsed(example.parsed))
        for example in document
    )


def _targets(config) -> list[Path]:
    """The paths the command line (or testpaths) asks pytest to collect."""
    here = Path(config.invocation_params.dir)
    return [(here / arg.split("::", 1)[0]).resolve() for arg in config.args]


def _named(path: Path, config) -> bool:
    """Whether the command line names the page or a folder inside docs/ko or docs/zh."""
    return any(
        path.is_relative_to(target)
        and any(target.is_relative_to(DOCS / lang) for lang in TRANSLATIONS)
        for target in _targets(config)
    )


def same_checks_as_english(path: Path) -> bool:
    """A docs/ko or docs/zh page whose checks are exactly those of its docs/en page."""
    path = path.resolve()
    if path.suffix != ".md" or not path.is_relative_to(DOCS):
        return False
    lang, *rest = path.relative_to(DOCS).parts
    english = DOCS.joinpath("en", *rest)
    return (
        lang in TRANSLATIONS
        and english.is_file()
        and page_checks(path) == page_checks(english)
    )


def pytest_collect_file(file_path, parent):
    path = file_path.resolve()
    if same_checks_as_english(path) and not _named(path, parent.config):
        if any(path.is_relative_to(t) for t in _targets(parent.config)):
            _left_out.add(path)
        return None
    return _collect_file(file_path, parent)


def pytest_terminal_summary(terminalreporter, config):
    left_out = _left_out
    if not left_out and config.pluginmanager.has_plugin("dsession"):
        # pytest-xdist: the workers collect, so this process finds the pages itself
        left_out = {
            page
            for lang in TRANSLATIONS
            for page in (DOCS / lang).rglob("*.md")
            if any(page.resolve().is_relative_to(t) for t in _targets(config))
            and same_checks_as_english(page)
            and not _named(page.resolve(), config)
        }
    if left_out:
        terminalreporter.write_line(
            f"{len(left_out)} ko/zh pages not run: their code blocks and outputs are "
            "those of the English pages (tests/test_docs_parity.py); "
            "`pytest docs/ko` runs them"
        )
