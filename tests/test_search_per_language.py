"""The text hooks behind search and line breaking: hooks/search_per_language.py, which turns
the TeX of the search snippets into plain text and indexes code names, and
hooks/korean_text.py, which marks Korean quoted on English and Chinese pages.

The browser tests (tests/test_browser_screens.py) check the same in the built site.
"""

from pathlib import Path

import pytest
from helpers import load_module

HOOKS = Path(__file__).resolve().parents[1] / "hooks"


def _hook(name: str):
    module = load_module(HOOKS / f"{name}.py", f"{name}_hook")
    return module


search = _hook("search_per_language")
korean = _hook("korean_text")


@pytest.mark.parametrize(
    "tex, text",
    [
        (r"\alpha", "α"),
        (r"m/(m-1)", "m/(m-1)"),
        (r"\frac{1}{m}\sum_{i=1}^{m} x_i", "1/m∑ᵢ₌₁ᵐ xᵢ"),
        (
            r"\hat x_i = (x_i - \mu)/\sqrt{\sigma^2 + \epsilon}",
            "x̂ᵢ = (xᵢ - μ)/√(σ² + ε)",
        ),
        (r"\lVert W\rVert_2 \le 1", "‖W‖₂ ≤ 1"),
        (r"\frac{\gamma}{m\sigma^2}", "γ/(mσ²)"),
        (r"\mathbb{E}[x] = \mathrm{Var}(x)^{1/2}", "𝔼[x] = Var(x)^(1/2)"),
        (r"\text{image\_size}/2^{S-1}", "image_size/2^(S-1)"),
        (r"A^\top \in \mathbb R^{n \times n}", "Aᵀ ∈ ℝ^(n × n)"),
    ],
)
def test_tex_reads_as_plain_text(tex, text):
    """A formula's TeX becomes text with Unicode symbols, sub- and superscripts."""
    assert search.tex_to_text(tex) == text


def test_math_in_snippets_is_replaced_and_escaped():
    """Every \\(...\\) and \\[...\\] of an index text is replaced, and < stays escaped HTML."""
    html = r"<p>\(\alpha\) = momentum (default \(0.1\)); \[a &lt; b\]</p>"
    assert (
        search.math_to_text(html)
        == "<p>α = momentum (default 0.1); a &lt; b</p>"
    )


def test_code_names_get_their_parts_and_the_anchor_match():
    """An entry's code names give a parts field (each part a word) and, for names that share
    a word with the entry's anchor, a names field."""
    doc = {
        "location": "training-and-inference/#running-averages",
        "title": "Running averages",
        "text": "<p><code>running_var</code> and <code>num_batches_tracked</code></p>",
    }
    assert search.name_fields(doc) == {
        "parts": "running var num batches tracked",
        "names": "running_var",
    }


def test_korean_outside_code_is_marked_as_korean():
    """Runs of Hangul words in text get <span lang="ko">; code and attributes are left."""
    html = '<p title="정규화">L2 규제 is <code>정규화</code>: 이동 평균.</p>'
    assert korean.mark_korean(html) == (
        '<p title="정규화">L2 <span lang="ko">규제</span> is '
        '<code>정규화</code>: <span lang="ko">이동 평균</span>.</p>'
    )
