"""One term per concept: glossary.yml is complete, and no page uses a variant it rejects.

``glossary.yml`` maps each concept to its term in en, ko and zh; ``reject`` lists, per
language, variants that must not appear in that language's pages (docs/ko/** for ko,
docs/zh/** for zh). The glossary page itself is exempt: it names the rejected variants to
explain the choices.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from helpers import FENCE, load_module

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LANGS = ("en", "ko", "zh")
GLOSSARY = yaml.safe_load((ROOT / "glossary.yml").read_text("utf-8"))
TERMS = GLOSSARY["terms"]
EXEMPT = {"glossary.md"}


def _hook():
    module = load_module(ROOT / "hooks" / "glossary.py", "glossary_hook")
    return module


def _rejected(lang: str) -> dict[str, str]:
    """Rejected variant -> the term to use instead, for one language."""
    return {
        variant: entry[lang]
        for entry in TERMS
        for variant in (entry.get("reject") or {}).get(lang, [])
    }


def _pages(lang: str) -> list[Path]:
    return sorted(
        p
        for p in (DOCS / lang).rglob("*.md")
        if p.relative_to(DOCS / lang).as_posix() not in EXEMPT
    )


def scanned_lines(text: str) -> list[tuple[int, str]]:
    """(number, line) of the non-blank lines of a page outside fenced code blocks: the code is
    English and shared by the three languages (tests/test_docs_parity.py)."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return [
        (number, line)
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]


def test_every_entry_has_a_term_in_every_language():
    """Each entry names its concept in en, ko and zh, with no unknown keys."""
    assert len(TERMS) > 10
    for entry in TERMS:
        assert all(
            isinstance(entry.get(lang), str) and entry[lang].strip()
            for lang in LANGS
        ), entry
        assert set(entry) <= {*LANGS, "reject", "note"}, entry
        assert set(entry.get("reject") or {}) <= set(LANGS), entry


@pytest.mark.parametrize("lang", LANGS)
def test_one_term_per_concept(lang):
    """No two concepts share a term, and no chosen term is also a rejected variant."""
    terms = [entry[lang] for entry in TERMS]
    assert len(terms) == len(set(terms))
    assert set(terms) & set(_rejected(lang)) == set()


def test_glossary_records_the_two_hard_choices():
    """批量归一化 is the zh term for batch normalization (批量规范化 rejected); ko 규제 is
    regularization."""
    by_en = {entry["en"]: entry for entry in TERMS}
    assert by_en["batch normalization"]["zh"] == "批量归一化"
    assert "批量规范化" in by_en["batch normalization"]["reject"]["zh"]
    assert by_en["regularization"]["ko"] == "규제"
    assert by_en["normalization"]["ko"] == "정규화"


@pytest.mark.parametrize("lang", ["ko", "zh"])
def test_pages_use_no_rejected_variant(lang):
    """No page of docs/<lang> (glossary page aside) has a variant the glossary rejects outside
    its code blocks."""
    rejected = _rejected(lang)
    assert rejected, f"glossary.yml rejects no {lang} variant"
    found = [
        f"{page.relative_to(ROOT)}:{number}: {variant!r} (use {use!r})"
        for page in _pages(lang)
        for number, line in scanned_lines(page.read_text("utf-8"))
        for variant, use in rejected.items()
        if variant in line
    ]
    assert found == [], "rejected variants:\n" + "\n".join(found)


def test_rejected_variant_check_catches_a_variant():
    """The scan above finds rejected variants in a line (so a clean result means something)."""
    assert {"批量规范化", "规范化"} <= {
        v for v in _rejected("zh") if v in "这里讨论批量规范化的推导。"
    }
    assert [v for v in _rejected("ko") if v in "레이어 정규화를 쓴다"] == [
        "레이어 정규화"
    ]
    assert [v for v in _rejected("zh") if v in "批量归一化的推导"] == []


#: Words in a formula's ``\text{...}``: a run of two or more Latin letters.
FORMULA_WORD = re.compile(r"\\text\{([^{}]*)\}")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
#: Latin words that are notation, not English, in every language: a subscript label.
NOTATION_WORDS = {"eff"}


def english_in_formulas(line: str) -> list[str]:
    """The Latin words (other than NOTATION_WORDS) inside ``\\text{...}`` of a line."""
    return [
        word
        for text in FORMULA_WORD.findall(line)
        for word in LATIN_WORD.findall(text)
        if word not in NOTATION_WORDS
    ]


@pytest.mark.parametrize("lang", ["ko", "zh"])
def test_words_in_formulas_are_in_the_page_language(lang):
    """The words a ko/zh formula writes with ``\\text{}`` (labels such as "variation of
    loss" or "for all") are in that language, from the glossary; only notation is Latin."""
    found = [
        f"{page.relative_to(ROOT)}:{number}: {words}"
        for page in _pages(lang)
        for number, line in scanned_lines(page.read_text("utf-8"))
        if (words := english_in_formulas(line))
    ]
    assert found == [], "English in formulas:\n" + "\n".join(found)


def test_formula_word_check_finds_english_labels():
    """The scan above finds English words in ``\\text{}`` and lets notation and CJK pass."""
    assert english_in_formulas(
        r"$$G_t \qquad \text{(gradient predictiveness, the } \ell_2 \text{ change)}$$"
    ) == ["gradient", "predictiveness", "the", "change"]
    assert (
        english_in_formulas(r"$\beta_{\text{eff}} \text{(유효 } \beta)$") == []
    )


@pytest.mark.parametrize("lang", LANGS)
def test_glossary_page_exists_and_has_the_marker(lang):
    """docs/<lang>/glossary.md exists and contains the marker the hook replaces with the table."""
    page = DOCS / lang / "glossary.md"
    assert _hook().MARKER in page.read_text("utf-8")


@pytest.mark.parametrize("lang", LANGS)
def test_hook_renders_every_term(lang):
    """The hook's table has a header in the page's language and one row per
    entry, with all three terms."""
    hook = _hook()
    table = hook.table(hook.load(ROOT / "glossary.yml"), lang)
    rows = table.splitlines()
    assert rows[0].startswith("| " + hook.HEADERS[lang][0])
    assert len(rows) == 2 + len(TERMS)
    for entry, row in zip(TERMS, rows[2:], strict=True):
        cells = [
            re.sub(r"<[^>]+>", "", c.strip())  # a term's <span lang="..">
            for c in re.split(r"(?<!\\)\|", row)[1:-1]
        ]
        assert cells[:3] == [entry["en"], entry["ko"], entry["zh"]]


def test_hook_rejects_an_incomplete_entry(tmp_path):
    """An entry without a zh term fails the build with a message naming it."""
    from mkdocs.exceptions import PluginError

    bad = tmp_path / "glossary.yml"
    bad.write_text(
        "terms:\n  - en: batch normalization\n    ko: 배치 정규화\n", "utf-8"
    )
    with pytest.raises(PluginError, match="lacks zh"):
        _hook().load(bad)
