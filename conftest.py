"""Collect the page snippets and the docstring examples as tests.

Every ```python and ```pycon block in docs/**/*.md (inside tabs too) runs under pytest,
one namespace per page, so a page reads as one script; every Examples section in the
bnnotes docstrings runs as a doctest. Run one language with ``pytest docs/ko``.
"""

from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

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

pytest_collect_file = (page_snippets + docstring_examples).pytest()
