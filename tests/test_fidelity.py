"""Translation fidelity a machine can check, on every page of docs/en and its ko and zh
pages, the API pages and the glossary included.

Prose is what helpers.prose() keeps: sentences, headings, table cells, figure captions,
image alt texts and link texts. Fenced code blocks, inline code, math ($…$, \\(…\\), $$…$$,
\\[…\\]), link targets, HTML tags with their attributes, bare URLs, attribute lists (the
heading anchor ids { #… } among them), footnote labels, mkdocstrings directives and the
numbers of ordered lists are not prose.

1. Numbers. Every number in the prose of an English page appears at least as often in the
   prose of its ko and zh pages (more is fine: a translation may spell out a unit or a
   value). A number is a run of digits with an optional decimal part, written in digits:
   Korean and Chinese number words (세 배, 三倍) do not count. Digit groups are one number:
   "50,000", "50 000" and "50000" are the same (a comma, or an ordinary, no-break or thin
   space, followed by exactly three digits, separates a group). A range "6–8.5" is two
   numbers, and a sign is not part of its number.
   - Digits right after a Latin letter, a digit or a period are not a number of their own:
     they belong to a name or a version (Conv2d, BN-x5, F2, the ".0" of "2.13.0").
   - Years count like any other number: each language cites with the year
     ("Santurkar et al. (2018)", "Santurkar 외(2018)", "Santurkar 等人（2018）"), so a missing
     year is a missing citation.
   - Ordinals in digits count without their suffix: the English pages use them for
     percentiles ("the 95th percentile"), which Korean and Chinese write in digits as well
     (95번째 백분위수, 第 95 百分位数). Ordinals in words (first, second) have no digits.
   - The numbers of ordered lists ("1. " at the start of a line) are left out: they are
     markup that Markdown renumbers, and a translation may split or join the steps.
2. Citation and number style in ko and zh prose: no "et al." and no "§" (Korean cites
   "X 외(2018)" and "4.1절", Chinese "X 等人（2018）" and "第 4.1 节"). Korean groups
   thousands with commas: no digit group after a space ("50 000") and no ungrouped integer
   of five digits or more ("50000"); a year has four digits, so years pass. Chinese prose has
   full-width punctuation around Chinese text: no ASCII , ; : ( ) ? ! right before or after a
   Han character.
3. A link names the page it leads to. A Markdown link to another page of the site (a
   relative *.md target) without a #fragment points at the page as a whole, so its text is
   the page's name in the same language: its H1, or its title in the navigation (mkdocs.yml's
   nav, through the i18n plugin's nav_translations for ko and zh). In English a leading "the"
   and the case of the first letter are ignored, since titles are in sentence case and the
   link sits mid-sentence ("the [loss landscape](landscape.md) page"). Exempt, as not page
   names:
   - a link with a #fragment: it leads to a section and may name that section's subject in
     the sentence's own words;
   - a link whose whole text is inline code (`BatchNorm`, `bnnotes.fisher`): a code name;
   - a link to an API page (api/…): those pages are titled by module name, and a link to
     one names a function, a module or the API reference as a whole.
   A link on any other phrase, with a verb or without ("the landscape page", "the MNIST
   experiment"), is not exempt: the link moves onto the page's title, or it leads with a
   #fragment to the section it means. The rule is the same in en, ko and zh.
4. The rejected variants of glossary.yml: tests/test_glossary.py scans every ko and zh page
   outside code blocks, the API pages included (the glossary page, which names the variants,
   aside); the tests here check that it covers those pages and that the rejects of the
   survey chapters' former conventions are in glossary.yml.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter

import pytest
import test_glossary
from helpers import (
    DOCS,
    markdown_links,
    nav_titles,
    page_title,
    prose,
)

EN_PAGES = sorted(
    p.relative_to(DOCS / "en").as_posix() for p in (DOCS / "en").rglob("*.md")
)

# A digit group separator: a comma, an ordinary space, a no-break space, a thin space or a
# narrow no-break space.
_GROUP = "[, \u00a0\u2009\u202f]"
NUMBER = re.compile(
    rf"(?<![A-Za-z0-9_.])(?:\d{{1,3}}(?:{_GROUP}\d{{3}})+(?!\d)|\d+)(?:\.\d+)?"
)
HAN = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"


def text_of(lang: str, page: str) -> str:
    """The Markdown source of docs/LANG/PAGE."""
    return (DOCS / lang / page).read_text("utf-8")


def numbers(markdown: str) -> Counter[str]:
    """How often each number occurs in the prose of a page, digit groups removed."""
    return Counter(
        re.sub(_GROUP, "", match.group(0))
        for match in NUMBER.finditer(prose(markdown))
    )


def missing_numbers(
    english: str, translated: str
) -> dict[str, tuple[int, int]]:
    """The numbers of the English prose that the translated prose has fewer times:
    number -> (count in English, count in the translation)."""
    en, other = numbers(english), numbers(translated)
    return {n: (en[n], other[n]) for n in en if other[n] < en[n]}


def _around(text: str, match: re.Match, width: int = 25) -> str:
    start, end = max(match.start() - width, 0), match.end() + width
    return text[start:end].replace("\n", " ")


def citation_marks(markdown: str) -> list[str]:
    """Each "et al." or "§" in the prose, with its surroundings."""
    text = prose(markdown)
    return [_around(text, m) for m in re.finditer(r"et al\.|§", text)]


def ungrouped_korean_numbers(markdown: str) -> list[str]:
    """Each number in the prose grouped by spaces, or of five or more digits ungrouped."""
    text = prose(markdown)
    pattern = (
        r"(?<![A-Za-z0-9_.,])"
        r"(?:\d{1,3}(?:[ \u00a0\u2009\u202f]\d{3})+(?!\d)|\d{5,})"
    )
    return [_around(text, m) for m in re.finditer(pattern, text)]


def ascii_punctuation_by_han(markdown: str) -> list[str]:
    """Each ASCII , ; : ( ) ? ! in the prose right before or after a Han character."""
    text = prose(markdown)
    pattern = rf"{HAN}[,;:()?!]|[,;:()?!]{HAN}"
    return [_around(text, m, 12) for m in re.finditer(pattern, text)]


def _comparable(lang: str, name: str) -> str:
    name = name.strip()
    if lang == "en":
        name = re.sub(r"^the\s+", "", name, flags=re.I)
        name = name[:1].lower() + name[1:]
    return name


def names_page(lang: str, text: str, titles: set[str]) -> bool:
    """Whether a link text is one of a page's titles, by the rule of the module docstring."""
    return _comparable(lang, text) in {_comparable(lang, t) for t in titles}


def page_links(markdown: str, page: str) -> list[tuple[str, str]]:
    """(text, page) of the links of a page at docs/LANG/PAGE that must name their target:
    relative links to another *.md page of the site, with no #fragment, not to an API page,
    whose text is not all inline code. The target page is given relative to docs/LANG."""
    out = []
    for text, target in markdown_links(markdown):
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target) or "#" in target:
            continue
        if not target.endswith(".md"):
            continue
        resolved = posixpath.normpath(
            posixpath.join(posixpath.dirname(page), target)
        )
        if resolved in (page, "..") or resolved.startswith(("../", "api/")):
            continue
        if re.fullmatch(r"\s*(`+)[^`]+\1\s*", text):
            continue
        out.append((text, resolved))
    return out


def misnamed_links(lang: str, page: str) -> list[str]:
    """The links of docs/LANG/PAGE whose text is not their target page's H1 or nav title."""
    nav = nav_titles(lang)
    out = []
    for text, target in page_links(text_of(lang, page), page):
        titles = {page_title(DOCS / lang / target), nav.get(target, "")}
        if not names_page(lang, text, titles - {""}):
            out.append(f"[{text}]({target}), titles: {sorted(titles - {''})}")
    return out


SYNTHETIC = """\
# Title { #title }

In 2018, Smith et al. trained for 50,000 steps (§3.2, Fig. 4) and 12 000 more;
the ratio was 6–8.5, the 95th percentile −1.5, with `x = 7` and $\\beta = 9$.

1. First, at a rate of 0.1 ([see](page.md#part "11")).
2. Then Conv2d, BN-x5 and torch 2.13.0 <span data-n="13">here</span>.

```python
y = 14
```

$$
z = 15
$$
"""


def test_prose_drops_code_math_link_targets_and_markup():
    """prose() keeps sentences and link texts and drops code, math, targets, tags and ids."""
    text = prose(SYNTHETIC)
    assert "Smith et al. trained for 50,000 steps (§3.2, Fig. 4)" in text
    assert "(see)" in text and "here." in text
    for gone in (
        "x = 7",
        "beta",
        "y = 14",
        "z = 15",
        "page.md",
        "#title",
        "data-n",
    ):
        assert gone not in text
    assert not re.search(r"^\s*\d\.", text, re.M)


def test_numbers_of_a_synthetic_page():
    """numbers() reads groups, ranges, decimals and ordinals, and skips names and markup."""
    assert numbers(SYNTHETIC) == Counter({
        "2018": 1,
        "50000": 1,
        "3.2": 1,
        "4": 1,
        "12000": 1,
        "6": 1,
        "8.5": 1,
        "95": 1,
        "1.5": 1,
        "0.1": 1,
        "2.13": 1,
    })


def test_digit_groups_are_one_number():
    """ "50,000", "50 000" (also with a no-break or thin space) and "50000" are the same number."""
    for written in ("50,000", "50 000", "50\u00a0000", "50\u2009000", "50000"):
        assert numbers(f"after {written} steps") == Counter({"50000": 1})


def test_a_dropped_or_spelled_out_number_is_missing():
    """A translation without a number, or with it only in words, misses it."""
    english = "About 100 to 400 times smaller, in 3 seeds."
    assert missing_numbers(english, "약 100–400배 작다, 시드 3개.") == {}
    assert missing_numbers(english, "약 100배 작다, 시드 3개.") == {
        "400": (1, 0)
    }
    assert missing_numbers(english, "约为 1/100 到 1/400，三个种子。") == {
        "3": (1, 0)
    }


@pytest.mark.parametrize("lang", ["ko", "zh"])
@pytest.mark.parametrize("page", EN_PAGES)
def test_translation_has_every_english_number(lang, page):
    """Every number of the English prose occurs at least as often in the ko/zh prose."""
    missing = missing_numbers(text_of("en", page), text_of(lang, page))
    assert missing == {}, "number: (times in en, times in " + lang + ")"


def test_style_checks_catch_violations():
    """Each style check finds its violation and passes the correct form."""
    assert citation_marks("He et al. (2015, §3) and $\\S$") == [
        "He et al. (2015, §3) and ￼",
        "He et al. (2015, §3) and ￼",
    ]
    assert citation_marks("He 외(2015, 3절), `et al.`") == []
    assert len(ungrouped_korean_numbers("50 000단계와 120000개")) == 2
    assert (
        ungrouped_korean_numbers("50,000단계, 2018년, 0.00001, x12345") == []
    )
    assert len(ascii_punctuation_by_han("批量(BN),其中:是否?是!")) == 5
    assert ascii_punctuation_by_han("批量（BN），`f(x)`; (a) 与 (b)") == []


@pytest.mark.parametrize("lang", ["ko", "zh"])
@pytest.mark.parametrize("page", EN_PAGES)
def test_no_et_al_or_section_sign(lang, page):
    """ko/zh prose cites in its own language: no "et al." and no "§"."""
    assert citation_marks(text_of(lang, page)) == []


@pytest.mark.parametrize("page", EN_PAGES)
def test_korean_thousands_have_commas(page):
    """Korean prose groups thousands with commas: no "50 000", no ungrouped "50000"."""
    assert ungrouped_korean_numbers(text_of("ko", page)) == []


@pytest.mark.parametrize("page", EN_PAGES)
def test_chinese_punctuation_is_full_width_by_han(page):
    """Chinese prose has no ASCII , ; : ( ) ? ! right next to a Han character."""
    assert ascii_punctuation_by_han(text_of("zh", page)) == []


def test_link_rule_on_synthetic_links():
    """Which links must name their page, and what counts as naming it."""
    page = (
        "See [the loss landscape](landscape.md), [the landscape page](landscape.md),"
        " [a section](landscape.md#results), [`probe`](api/landscape.md),"
        " [`BatchNorm`](toolkit.md), [paper](https://arxiv.org/abs/1502.03167),"
        " [home](../index.md) and ![a figure](../assets/a.svg)."
    )
    assert page_links(page, "api/x.md") == [("home", "index.md")]
    assert page_links(page, "evidence.md") == [
        ("the loss landscape", "landscape.md"),
        ("the landscape page", "landscape.md"),
    ]
    titles = {"The loss landscape", "The loss landscape along the gradient"}
    assert names_page("en", "the loss landscape", titles)
    assert names_page("en", "Loss landscape along the gradient", titles)
    assert not names_page("en", "the landscape page", titles)
    assert names_page("ko", "손실 지형", {"손실 지형"})
    assert not names_page("ko", "손실 지형 페이지", {"손실 지형"})
    assert not names_page("zh", "损失曲面", {"沿梯度方向的损失曲面"})


def test_every_page_has_a_title_in_every_language():
    """Each page of every language has an H1 and an entry in the navigation."""
    for lang in ("en", "ko", "zh"):
        nav = nav_titles(lang)
        for page in EN_PAGES:
            assert page_title(DOCS / lang / page)
            assert page in nav


@pytest.mark.parametrize("lang", ["en", "ko", "zh"])
@pytest.mark.parametrize("page", EN_PAGES)
def test_link_texts_name_their_pages(lang, page):
    """A link to a whole page (no #fragment, not an API page, not code) carries its title."""
    assert misnamed_links(lang, page) == []


@pytest.mark.parametrize("lang", ["ko", "zh"])
def test_glossary_scan_covers_every_page_with_the_api_pages(lang):
    """test_glossary scans every page of docs/LANG but the glossary page, API pages included."""
    scanned = {
        p.relative_to(DOCS / lang).as_posix()
        for p in test_glossary._pages(lang)
    }
    assert scanned == set(EN_PAGES) - {"glossary.md"}
    assert any(page.startswith("api/") for page in scanned)


def test_glossary_rejects_the_korean_survey_variants():
    """glossary.yml rejects (ko) 훈련, et al., 등(, 탐침, 사전 활성화, 예제 and 파라미터 forms."""
    rejected = set(test_glossary._rejected("ko"))
    assert {"훈련", "et al.", "등(", "탐침", "사전 활성화"} <= rejected
    assert any("예제" in variant for variant in rejected)
    assert any("파라미터" in variant for variant in rejected)


def test_glossary_rejects_the_chinese_variants():
    """glossary.yml rejects 批次, Fisher 信息, 平滑性, Lipschitz 常数, et al. and § in zh."""
    rejected = set(test_glossary._rejected("zh"))
    assert {
        "批次",
        "Fisher 信息",
        "平滑性",
        "Lipschitz 常数",
        "et al.",
        "§",
    } <= rejected


def test_glossary_scan_ignores_code_blocks_only():
    """The glossary scan skips fenced code (English, shared by all languages) and keeps the
    line numbers of the prose it reads."""
    page = "훈련 전\n```python\n# et al.\n```\nHe et al.\n"
    assert test_glossary.scanned_lines(page) == [
        (1, "훈련 전"),
        (5, "He et al."),
    ]
