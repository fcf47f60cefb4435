"""The search separator of mkdocs.yml, on the words it must and must not split.

Material's search splits both the indexed text and the query with this regular expression
(in the browser; the constructs used behave the same in Python's ``re``). Korean has no word
segmentation, so the separator splits a particle (조사) off the word it ends: 정규화를 and
정규화는 both yield the token 정규화, and a query with one particle finds pages with another.
The browser tests (test_browser.py::test_search) check the same in Chromium.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor(
    "!", lambda loader, suffix, node: None
)  # !ENV and friends


def _separator() -> re.Pattern:
    config = yaml.load(
        (ROOT / "mkdocs.yml").read_text("utf-8"), Loader=_Loader
    )
    search = next(
        p["search"]
        for p in config["plugins"]
        if isinstance(p, dict) and "search" in p
    )
    return re.compile(search["separator"])


SEPARATOR = _separator()


def tokens(text: str) -> list[str]:
    return [t for t in SEPARATOR.split(text) if t]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("running average", ["running", "average"]),
        # a code name is one token (its parts are indexed separately, see
        # hooks/search_per_language.py)
        ("batch_norm_forward", ["batch_norm_forward"]),
        (
            "批量\u200b归一化",
            ["批量", "归一化"],
        ),  # jieba's segmentation, joined with U+200B
        ("배치 정규화", ["배치", "정규화"]),
        ("정규화를", ["정규화", "를"]),
        ("정규화는", ["정규화", "는"]),
        (
            "정규화에는",
            ["정규화", "에", "는"],
        ),  # a two-syllable particle may split in two: harmless
        ("모집단의 분산이", ["모집단", "의", "분산", "이"]),
        ("알고리즘으로", ["알고리즘", "으로"]),
        ("조건으로서", ["조건", "으로서"]),
        ("기준으로는", ["기준", "으로", "는"]),
        ("BN을", ["BN", "을"]),
        # a final syllable that looks like a particle is kept after a one-syllable stem
        ("차이", ["차이"]),
        ("평가", ["평가"]),
        ("결과", ["결과"]),
        # and a particle syllable inside a word is no particle
        ("데이터", ["데이터"]),
        ("이동 평균", ["이동", "평균"]),
    ],
)
def test_tokens(text, expected):
    assert tokens(text) == expected


@pytest.mark.parametrize(
    "query, text",
    [
        ("정규화를", "정규화는 평균과 분산을 쓴다"),
        ("역전파를", "역전파에 필요한 값"),
        ("분산은", "분산의 추정"),
    ],
)
def test_query_with_one_particle_shares_its_stem_with_text_with_another(
    query, text
):
    """The query's first token (the stem) is a token of the text."""
    assert tokens(query)[0] in tokens(text)
