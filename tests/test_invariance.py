"""Table 1 of the layer normalization paper, recomputed: each invariance of BN, WN and
LN tested on random layers."""

import inspect

import numpy as np
import pytest
from helpers import markdown_rows, page_tables
from hypothesis import given, settings
from hypothesis import strategies as st

import bnnotes.invariance as inv
from bnnotes.invariance import (
    METHODS,
    PAPER_TABLE,
    TABLE_WORDS,
    TRANSFORMATIONS,
    invariance_markdown,
    invariance_table,
    normalized_output,
)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_computed_table_equals_the_papers_table_1(seed):
    """For any random layer and batch, the measured invariances are exactly the paper's Table 1."""
    table = invariance_table(seed=seed)
    assert {
        m: {c: cell.invariant for c, cell in row.items()}
        for m, row in table.items()
    } == PAPER_TABLE


def test_invariant_and_non_invariant_cells_are_far_apart():
    """Invariant cells change by at most 1e-13 relative, the others by more than 1e-2: the verdicts
    do not hang on the tolerance."""
    table = invariance_table(seed=3, batch=32)
    for method, row in table.items():
        for name, cell in row.items():
            if PAPER_TABLE[method][name]:
                assert cell.relative_change <= 1e-13, (method, name)
            else:
                assert cell.relative_change > 1e-2, (method, name)


def test_table_has_the_papers_rows_and_columns_in_order():
    """Rows are batch, weight and layer norm and columns the six
    transformations, in the paper's order."""
    table = invariance_table()
    assert (
        tuple(table) == METHODS == ("batch norm", "weight norm", "layer norm")
    )
    assert all(tuple(row) == TRANSFORMATIONS for row in table.values())
    assert len(TRANSFORMATIONS) == 6


def test_with_positive_eps_rescalings_are_only_approximately_invariant():
    """With eps > 0, LN's single-case re-scaling changes the output, exactly as LN_eps(delta x) =
    LN_{eps/delta^2}(x) predicts."""
    table = invariance_table(seed=0, eps=1e-2)
    cell = table["layer norm"]["single training case re-scaling"]
    assert not cell.invariant and cell.relative_change < 0.1
    assert table["layer norm"][
        "weight matrix re-centering"
    ].invariant  # shifts are still exact


def test_negative_factors_break_the_scale_invariances():
    """Re-scaling a single case by -1 flips LN's output: the table's factors must be positive."""
    rng = np.random.default_rng(4)
    w, x = rng.normal(size=(5, 4)), rng.normal(size=(6, 4))
    flipped = x.copy()
    flipped[2] *= -1
    y, y_flipped = (
        normalized_output("layer norm", w, x),
        normalized_output("layer norm", w, flipped),
    )
    np.testing.assert_allclose(y_flipped[2], -y[2], rtol=1e-12)
    np.testing.assert_allclose(
        np.delete(y_flipped, 2, axis=0),
        np.delete(y, 2, axis=0),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            ("group norm", np.ones((2, 2)), np.ones((3, 2))),
            {},
            "method must be one of",
        ),
        (
            ("layer norm", np.ones((2, 2)), np.ones((3, 3))),
            {},
            "weight must be",
        ),
        (
            ("layer norm", np.ones((2, 2)), np.ones((3, 2))),
            {"eps": -1.0},
            "eps must be",
        ),
        (("weight norm", np.zeros((2, 2)), np.ones((3, 2))), {}, "non-zero"),
        (
            ("batch norm", np.eye(2), np.ones((3, 2))),
            {},
            "vary over the batch",
        ),
        (
            ("layer norm", np.ones((2, 2)), np.ones((3, 2))),
            {},
            "vary over the units",
        ),
    ],
)
def test_bad_input_raises_a_named_error(args, kwargs, message):
    """Unknown methods, mismatched shapes, negative eps, zero weights and zero variance at
    eps = 0 raise clear errors."""
    with pytest.raises(ValueError, match=message):
        normalized_output(*args, **kwargs)


def test_table_sizes_are_checked():
    """A batch or layer of one, or a zero tolerance, is refused."""
    with pytest.raises(ValueError, match="at least 2"):
        invariance_table(batch=1)
    with pytest.raises(ValueError, match="tol must be"):
        invariance_table(tol=0.0)


def test_every_public_function_has_a_running_example():
    """Each public function of bnnotes.invariance has an executed Examples section."""
    for name in inv.__all__:
        obj = getattr(inv, name)
        if inspect.isfunction(obj):
            assert "Examples\n--------\n>>>" in (inspect.getdoc(obj) or ""), (
                name
            )


@pytest.mark.parametrize("lang", ["en", "ko", "zh"])
def test_printed_invariance_table_is_the_measured_one(lang):
    """The invariance table in the prose of docs/LANG/layer-normalization.md is, cell for cell, the
    measured table rendered in LANG."""
    rendered = invariance_markdown(invariance_table(seed=0), lang=lang)
    assert markdown_rows(rendered) in page_tables(
        lang, "layer-normalization.md"
    )


def test_rendered_table_has_one_row_per_method_and_one_column_per_transformation():
    """Each language's rendering has a header, a separator and 3 rows of 1 + 6 cells, whose
    verdicts follow the measurement."""
    table = invariance_table(seed=0)
    for lang, words in TABLE_WORDS.items():
        rows = markdown_rows(invariance_markdown(table, lang=lang))
        assert [len(row) for row in rows] == [7] * 5
        assert rows[0][1:] == list(words["columns"])
        for row, method in zip(rows[2:], METHODS, strict=True):
            assert row[1:] == [
                words["invariant" if c.invariant else "not invariant"]
                for c in table[method].values()
            ]


@pytest.mark.parametrize("lang", ["ko", "zh"])
def test_translated_table_words_have_no_latin_letters(lang):
    """The ko and zh headers, row labels and verdicts are all in the page's language."""
    words = TABLE_WORDS[lang]
    for word in (
        *words["columns"],
        *words["rows"],
        words["invariant"],
        words["not invariant"],
    ):
        assert not any("a" <= ch.lower() <= "z" for ch in word), word


@pytest.mark.parametrize("lang", ["fr", "EN", None, ""])
def test_unknown_table_language_is_refused(lang):
    """A language without words in TABLE_WORDS raises a ValueError naming lang."""
    with pytest.raises(ValueError, match="lang must be one of"):
        invariance_markdown(invariance_table(), lang=lang)


def test_rendering_an_incomplete_table_is_refused():
    """A table missing a method row or a transformation cell raises a ValueError naming it."""
    table = invariance_table()
    with pytest.raises(ValueError, match="layer norm"):
        invariance_markdown({m: table[m] for m in METHODS[:2]})
    partial = dict(table)
    partial["weight norm"] = {
        t: c
        for t, c in table["weight norm"].items()
        if t != "dataset re-scaling"
    }
    with pytest.raises(ValueError, match="dataset re-scaling"):
        invariance_markdown(partial)
