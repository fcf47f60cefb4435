"""The public API: every public name is in __all__, documented with an example, and on an API page.

The examples themselves run as tests where the docstrings are collected (``pytest bnnotes``);
here their presence is checked, and that every module they document is rendered on an API
page of every language. The modules of the experiments themselves (each trains networks
and draws a figure set) need a docstring for every public function and class but no
example: their running examples are the tiny seeded runs of ``tests/test_exp_*.py``.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("en", "ko", "zh")


def _public_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "bnnotes").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] == "__main__" or any(p.startswith("_") for p in parts):
            continue
        names.append(".".join(parts))
    return names


MODULES = _public_modules()

#: The experiment runs: docstrings required, examples in tests/test_exp_*.py instead.
EXPERIMENT_RUNS = {
    name
    for name in MODULES
    if name.startswith("bnnotes.experiments.")
    and name.rsplit(".", 1)[1] not in ("plotting", "progress")
}


def _api_directives(lang: str) -> set[str]:
    """The modules rendered by a ``::: module`` directive on the API pages of one language."""
    text = "\n".join(
        p.read_text(encoding="utf-8")
        for p in sorted((ROOT / "docs" / lang / "api").glob("*.md"))
    )
    return set(re.findall(r"^::: (\S+)", text, flags=re.M))


def _own_public_objects(module) -> dict[str, object]:
    """The public functions and classes defined in ``module`` itself (not imported into it)."""
    return {
        name: obj
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    }


def _attribute_docstrings(module) -> set[str]:
    """Module-level names assigned and followed by a string literal (an attribute docstring)."""
    tree = ast.parse(inspect.getsource(module))
    found = set()
    for node, after in zip(tree.body, tree.body[1:], strict=False):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            found |= {t.id for t in targets if isinstance(t, ast.Name)}
    return found


def _has_example(obj) -> bool:
    docstring = inspect.getdoc(obj) or ""
    return "Examples" in docstring and bool(
        doctest.DocTestParser().get_examples(docstring)
    )


@pytest.mark.parametrize("name", MODULES)
def test_every_public_module_declares_all(name):
    """Each public module lists its API in __all__."""
    assert isinstance(
        getattr(importlib.import_module(name), "__all__", None), list
    )


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_and_class_is_in_all(name):
    """A public function or class defined in a module is listed in its
    __all__ (or renamed private)."""
    module = importlib.import_module(name)
    missing = set(_own_public_objects(module)) - set(module.__all__)
    assert not missing, f"{name}: not in __all__: {sorted(missing)}"


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_has_a_docstring_with_an_example(name):
    """Functions and classes in __all__ carry an Examples section with a doctest;
    constants an attribute docstring."""
    module = importlib.import_module(name)
    documented = _attribute_docstrings(module)
    problems = []
    for public in module.__all__:
        obj = getattr(module, public)
        if inspect.ismodule(obj):
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if obj.__module__ != name:
                continue  # a re-export: documented where it is defined
            if name in EXPERIMENT_RUNS:
                if not inspect.getdoc(obj):
                    problems.append(f"{public}: no docstring")
            elif not _has_example(obj):
                problems.append(
                    f"{public}: no Examples section with a doctest"
                )
        elif name in EXPERIMENT_RUNS:
            continue
        elif public not in documented and not _defined_elsewhere(
            module, public
        ):
            problems.append(f"{public}: no docstring after its assignment")
    assert not problems, f"{name}: " + "; ".join(problems)


def _defined_elsewhere(module, public: str) -> bool:
    """True for a constant imported from another bnnotes module (documented there)."""
    source = inspect.getsource(module)
    return bool(
        re.search(
            rf"^from bnnotes[\w.]* import [^\n]*\b{public}\b|^\s+{public},$",
            source,
            flags=re.M,
        )
    ) and not re.search(rf"^{public}\s*[:=]", source, flags=re.M)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", MODULES)
def test_every_public_module_is_rendered_on_an_api_page(name, lang):
    """Each module's API (or, for a re-exporting package, each name's home module) has a :::
    directive in docs/LANG/api/."""
    module = importlib.import_module(name)
    directives = _api_directives(lang)
    homes = {
        obj.__module__
        for obj in (getattr(module, public) for public in module.__all__)
        if inspect.isfunction(obj) or inspect.isclass(obj)
    }
    if name not in directives:
        assert homes and homes != {name}, f"{name} has no ::: directive"
        missing = homes - directives
        assert not missing, f"{name} re-exports from undocumented {missing}"


def test_the_api_pages_have_the_same_directives_in_every_language():
    """docs/ko/api and docs/zh/api render exactly the modules docs/en/api renders."""
    en = _api_directives("en")
    assert all(_api_directives(lang) == en for lang in LANGUAGES[1:])


def test_the_checks_see_a_missing_example_and_a_missing_name():
    """The example and __all__ checks fail on a function without an example and a name left out."""

    def documented():
        """Do nothing.

        Examples
        --------
        >>> documented()
        """

    def undocumented():
        """Do nothing."""

    assert _has_example(documented) and not _has_example(undocumented)
    fake = type(importlib)("bnnotes_fake")
    fake.f = undocumented
    undocumented.__module__ = "bnnotes_fake"
    fake.__all__ = []
    assert set(_own_public_objects(fake)) - set(fake.__all__) == {"f"}
