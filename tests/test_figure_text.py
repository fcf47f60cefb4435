"""Figures in every language: the translation tables, and the words and fonts of the
committed figures of each language."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re

import pytest
import yaml

import bnnotes
from bnnotes.experiments import FIGURES_DIR, RESULTS_DIR
from bnnotes.figure_text import FONT_STACKS, LANGUAGES, FigureText

HANGUL = re.compile(r"[\uac00-\ud7a3]")
HAN = re.compile(r"[\u4e00-\u9fff]")


def figure_tables() -> dict[str, FigureText]:
    """Every FigureText table of the package's modules, by its name."""
    tables = {}
    for info in pkgutil.walk_packages(bnnotes.__path__, "bnnotes."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, FigureText):
                tables[value.name] = value
    return tables


def rejected_terms(lang: str) -> list[str]:
    """The variants glossary.yml rejects for ``lang``."""
    terms = yaml.safe_load(
        (FIGURES_DIR.parents[2] / "glossary.yml").read_text("utf-8")
    )["terms"]
    return [
        variant
        for entry in terms
        for variant in (entry.get("reject") or {}).get(lang, [])
    ]


def test_every_figure_set_has_a_table():
    """The experiments, the covariate-shift page and the diagrams each have a table."""
    assert set(figure_tables()) == {
        "batch_size",
        "covariate_shift",
        "deep_linear",
        "diagrams",
        "ics",
        "landscape",
        "lp_norm",
        "mnist_sigmoid",
        "noisy_bn",
    }


def test_a_table_without_a_language_is_refused():
    """A table entry that lacks the zh text raises ValueError naming the key and the language."""
    with pytest.raises(
        ValueError, match=r"demo\['step'\] has no zh translation"
    ):
        FigureText("demo", {"step": {"en": "step", "ko": "단계"}})


def test_a_table_whose_languages_format_differently_is_refused():
    """An entry whose languages use different {fields} raises ValueError."""
    with pytest.raises(ValueError, match="different fields"):
        FigureText(
            "demo",
            {"lr": {"en": "lr {lr}", "ko": "학습률", "zh": "学习率 {lr}"}},
        )


def test_an_unknown_key_or_language_is_refused():
    """Looking up a key the table lacks raises KeyError; a language the site lacks, ValueError."""
    text = FigureText("demo", {"step": {"en": "s", "ko": "단계", "zh": "步"}})
    with pytest.raises(KeyError, match="no entry 'loss'"):
        text("loss", "en")
    with pytest.raises(ValueError, match="lang must be one of"):
        text("step", "ja")


def test_a_missing_translation_fails_the_figure_run(monkeypatch):
    """Rendering with a table that lacks a word the figure needs raises, writes nothing."""
    from bnnotes.experiments import mnist_sigmoid

    table = mnist_sigmoid.TEXT.entries()
    del table["sigmoid_input"]
    monkeypatch.setattr(
        mnist_sigmoid, "TEXT", FigureText("mnist_sigmoid", table)
    )
    results = json.loads(
        (RESULTS_DIR / "mnist_sigmoid.json").read_text("utf-8")
    )
    with pytest.raises(KeyError, match="sigmoid_input"):
        mnist_sigmoid.figures(results, "ko")


@pytest.mark.parametrize("lang", ["ko", "zh"])
def test_figure_words_use_the_glossary_terms(lang):
    """No ko/zh figure text uses a variant that glossary.yml rejects."""
    rejected = rejected_terms(lang)
    for table in figure_tables().values():
        for key, entry in table.entries().items():
            used = [v for v in rejected if v in entry[lang]]
            assert not used, f"{table.name}[{key!r}][{lang}] uses {used}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_committed_figures_are_in_their_language(lang):
    """Each committed figure of a language has that script (Hangul for ko, Han and no
    Hangul for zh, neither for en) and names that language's font list."""
    files = sorted((FIGURES_DIR / lang).glob("*.svg"))
    assert len(files) == len(list((FIGURES_DIR / "en").glob("*.svg"))) > 20
    for path in files:
        svg = path.read_text("utf-8")
        assert FONT_STACKS[lang] in svg, path
        assert bool(HANGUL.search(svg)) == (lang == "ko"), path
        assert bool(HAN.search(svg)) == (lang == "zh"), path
