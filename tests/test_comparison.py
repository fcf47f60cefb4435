"""The side-by-side table of BN, LN, IN, GN, WN and WS, and the index-set diagram."""

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import markdown_rows, page_tables

from bnnotes.comparison import (
    EXPECTED,
    METHODS,
    PROPERTIES,
    TABLE_WORDS,
    comparison_markdown,
    comparison_table,
    normalize,
)
from bnnotes.diagrams import INDEX_SETS_FIGURES, index_sets_svg
from bnnotes.groupnorm import normalization_mask


def verdicts(table):
    return {
        m: (
            table[m][PROPERTIES[0]],
            *(table[m][p].holds for p in PROPERTIES[1:]),
        )
        for m in METHODS
    }


@pytest.mark.parametrize("seed", range(4))
def test_measured_table_matches_the_derived_one(seed):
    """Every cell of the measured table equals the verdict derived in the Notes, for any draw."""
    assert verdicts(comparison_table(seed=seed)) == EXPECTED


def test_verdicts_are_far_from_the_threshold():
    """Unchanged outputs agree to rounding; changed ones differ by more than 1e-3 relative."""
    table = comparison_table(seed=0)
    changes = [
        table[m][p].relative_change for m in METHODS for p in PROPERTIES[1:]
    ]
    assert all(c < 1e-14 or c > 1e-3 for c in changes)


def test_bn_train_eval_gap_is_the_bessel_factor():
    """BN evaluated with its running estimates of the same batch is off by
    sqrt((m-1)/m), m = N*H*W."""
    table = comparison_table(seed=0, shape=(6, 4, 3, 3))
    m = 6 * 3 * 3
    assert table["BN"][
        "same in training and inference"
    ].relative_change == pytest.approx(1 - np.sqrt((m - 1) / m), rel=1e-12)


@pytest.mark.parametrize(
    ("method", "torch_fn"),
    [
        (
            "BN",
            lambda a: F.batch_norm(a, None, None, training=True, eps=1e-30),
        ),
        ("LN", lambda a: F.layer_norm(a, a.shape[1:], eps=1e-30)),
        ("IN", lambda a: F.instance_norm(a, eps=1e-30)),
        ("GN", lambda a: F.group_norm(a, 3, eps=1e-30)),
    ],
)
def test_activation_normalizations_agree_with_torch(method, torch_fn):
    """normalize() equals PyTorch's functional op applied to the 1x1 convolution, in float64."""
    rng = np.random.default_rng(1)
    w, x = rng.normal(size=(6, 4)), rng.normal(size=(5, 4, 3, 3))
    a = F.conv2d(torch.from_numpy(x), torch.from_numpy(w)[:, :, None, None])
    expected = torch_fn(a).numpy()
    assert (
        np.max(np.abs(normalize(method, w, x, num_groups=3) - expected))
        <= 1e-12
    )


def test_statistics_axes_follow_the_masks():
    """The 'statistics over' column names exactly the axes the normalization mask spans."""
    table = comparison_table(seed=0)
    assert [table[m]["statistics over"] for m in ("BN", "LN", "IN", "GN")] == [
        "(N, H, W)",
        "(C, H, W)",
        "(H, W)",
        "(C/G, H, W)",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": (1, 4, 3, 3)}, "N >= 2"),
        ({"shape": (4, 4, 1, 1)}, "H*W >= 2"),
        ({"num_groups": 4}, "num_groups"),
        ({"num_groups": 1}, "num_groups"),
        ({"tol": 0.0}, r"tol must be a finite number > 0"),
    ],
)
def test_bad_table_arguments_are_refused(kwargs, message):
    """Sizes that make a property meaningless, or a non-positive tolerance, raise ValueError."""
    with pytest.raises(ValueError, match=message):
        comparison_table(**kwargs)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((6, 4, 3), "4 entries"),
        ((6, 4, 3, 3, 1), "4 entries"),
        ((6.0, 4, 3, 3), r"shape\[0\] \(N\) must be a positive integer"),
        ((6, True, 3, 3), r"shape\[1\] \(K\) must be a positive integer"),
        ((6, 4, 3.5, 3), r"shape\[2\] \(H\) must be a positive integer"),
        ((6, 4, 3, 0), r"shape\[3\] \(W\) must be a positive integer"),
        ((6, 4, "3", 3), r"shape\[2\] \(H\) must be a positive integer"),
    ],
    ids=str,
)
def test_non_integer_or_non_positive_sizes_are_refused(shape, message):
    """Every size must be a positive integer (bool and float refused), and there must be four."""
    with pytest.raises(ValueError, match=message):
        comparison_table(shape=shape)


@pytest.mark.parametrize("shape", [None, 6, "6433"], ids=str)
def test_a_shape_that_is_not_a_sequence_is_refused(shape):
    """shape must be a sequence of four integers."""
    with pytest.raises(
        TypeError, match="shape must be a sequence of 4 integers"
    ):
        comparison_table(shape=shape)


@pytest.mark.parametrize("channels", [6.0, True, 0, -6, "6"], ids=repr)
def test_channels_must_be_a_positive_integer(channels):
    """channels that is not a positive integer (a bool or float included) is a named ValueError."""
    with pytest.raises(
        ValueError, match="channels must be a positive integer"
    ):
        comparison_table(channels=channels)


@pytest.mark.parametrize("num_groups", [2.0, True, 0, "2"], ids=repr)
def test_num_groups_must_be_a_positive_integer(num_groups):
    """num_groups that is not a positive integer (a bool or float
    included) is a named ValueError."""
    with pytest.raises(
        ValueError, match="num_groups must be a positive integer"
    ):
        comparison_table(num_groups=num_groups)


@pytest.mark.parametrize(
    "tol", [-1e-9, float("nan"), float("inf"), True, "1e-9", None], ids=repr
)
def test_tol_must_be_a_finite_positive_real(tol):
    """tol that is not a finite real number > 0 is a named ValueError."""
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        comparison_table(tol=tol)


def test_numpy_integer_sizes_are_accepted():
    """NumPy integers are integers: shape, channels and num_groups may be np.int64."""
    table = comparison_table(
        shape=tuple(np.int64(s) for s in (6, 4, 3, 3)),
        channels=np.int64(6),
        num_groups=np.int64(2),
    )
    assert verdicts(table) == EXPECTED


def test_unknown_method_is_refused():
    """normalize() names the known methods when given another."""
    with pytest.raises(ValueError, match="method must be one of"):
        normalize("BatchNorm", np.ones((2, 2)), np.ones((2, 2, 2, 2)))


def test_normalize_rejects_mismatched_shapes():
    """A weight whose input size differs from the input's channels is refused with both shapes."""
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 5, 2, 2\)"):
        normalize("LN", np.ones((3, 4)), np.ones((2, 5, 2, 2)))


def test_diagram_shades_exactly_the_masks():
    """Each panel's shaded squares are the True entries of
    normalization_mask, pivot drawn darker."""
    shape, index = (3, 4, 2, 1), (1, 2, 1, 0)
    svg = index_sets_svg(shape, index, num_groups=2)
    fills = [
        part.split('fill="')[1].split('"')[0]
        for part in svg.split("<rect")[1:]
    ]
    size = int(np.prod(shape))
    assert len(fills) == 4 * size
    for p, method in enumerate(("batch", "layer", "instance", "group")):
        mask = normalization_mask(
            method, shape, index, 2 if method == "group" else None
        ).ravel()
        panel = fills[p * size : (p + 1) * size]
        assert [f != "#ffffff" for f in panel] == list(mask)
        assert (
            panel.count("#1f5fa8") == 1
            and panel[np.ravel_multi_index(index, shape)] == "#1f5fa8"
        )


@pytest.mark.parametrize("lang", ["en", "ko", "zh"])
def test_committed_diagram_is_current(lang):
    """docs/assets/figures/<lang>/index-sets.svg is byte for byte what
    index_sets_svg(lang=lang) renders."""
    committed = INDEX_SETS_FIGURES[lang].read_text(encoding="utf-8")
    assert committed == index_sets_svg(lang=lang)


def test_diagram_speaks_the_language_asked_for():
    """The Korean diagram titles its panels in Korean; an unknown language is refused."""
    assert ">그룹 정규화 (G=3)</text>" in index_sets_svg(lang="ko")
    with pytest.raises(ValueError, match="lang must be one of"):
        index_sets_svg(lang="fr")


@pytest.mark.parametrize("shape", [(4, 6, 2), (4, 6, 2, 0), (4, 17, 2, 2)])
def test_diagram_refuses_bad_shapes(shape):
    """The diagram takes four sizes in [1, 16] and says so otherwise."""
    with pytest.raises(ValueError, match="sizes in"):
        index_sets_svg(shape, (0, 0, 0, 0))


@pytest.mark.parametrize("lang", ["en", "ko", "zh"])
def test_printed_property_table_is_the_measured_one(lang):
    """The property table in the prose of docs/LANG/comparison.md is, cell for cell, the
    measured table rendered in LANG."""
    rendered = comparison_markdown(comparison_table(seed=0), lang=lang)
    assert markdown_rows(rendered) in page_tables(lang, "comparison.md")


def test_rendered_table_has_one_row_per_method_and_one_column_per_property():
    """Each language's rendering has a header, a separator and 6 rows of 1 + 7 cells, whose
    verdicts follow the measurement."""
    table = comparison_table(seed=0)
    for lang, words in TABLE_WORDS.items():
        rows = markdown_rows(comparison_markdown(table, lang=lang))
        assert [len(row) for row in rows] == [8] * 8
        assert rows[0][1:] == list(words["columns"])
        for row, method in zip(rows[2:], METHODS, strict=True):
            assert row[0] == method
            assert row[2:] == [
                words["yes" if table[method][p].holds else "no"]
                for p in PROPERTIES[1:]
            ]


@pytest.mark.parametrize("lang", ["ko", "zh"])
def test_translated_table_words_have_no_latin_letters(lang):
    """The ko and zh headers, worded cells and yes/no are all in the page's language."""
    words = TABLE_WORDS[lang]
    for word in (
        *words["columns"],
        *words["statistics over"].values(),
        words["yes"],
        words["no"],
    ):
        assert not any("a" <= ch.lower() <= "z" for ch in word), word


def test_every_worded_statistics_cell_is_translated():
    """Every first-column entry with a word in it has a translation in every language;
    axis lists carry no words."""
    table = comparison_table(seed=0)
    for method in METHODS:
        axes = table[method][PROPERTIES[0]]
        if re.search(r"[a-z]{2}", axes):
            assert all(
                axes in w["statistics over"] for w in TABLE_WORDS.values()
            )


@pytest.mark.parametrize("lang", ["fr", "EN", None, ""])
def test_unknown_table_language_is_refused(lang):
    """A language without words in TABLE_WORDS raises a ValueError naming lang."""
    with pytest.raises(ValueError, match="lang must be one of"):
        comparison_markdown(comparison_table(), lang=lang)


def test_rendering_an_incomplete_table_is_refused():
    """A table missing a method row or a property cell raises a ValueError naming it."""
    table = comparison_table()
    with pytest.raises(ValueError, match="WS"):
        comparison_markdown({m: table[m] for m in METHODS[:-1]})
    partial = dict(table)
    partial["GN"] = {
        p: c for p, c in table["GN"].items() if p != "uses other examples"
    }
    with pytest.raises(ValueError, match="uses other examples"):
        comparison_markdown(partial)


@pytest.mark.parametrize("lang", ["en", "ko", "zh"])
def test_printed_batch_size_table_is_the_stored_run(lang):
    """The BN, GN and LN rows of our results on docs/LANG/comparison.md are the
    committed batch_size results."""
    from bnnotes.experiments import RESULTS_DIR

    results = json.loads((RESULTS_DIR / "batch_size.json").read_text())
    sizes = ["64", "32", "16", "8", "4", "2"]
    (table,) = [
        rows
        for rows in page_tables(lang, "comparison.md")
        if rows[0][1:] == sizes
    ]
    ours = (("batch", "BN"), ("group", "GN"), ("layer", "LN"))
    for row, (method, label) in zip(table[2:5], ours, strict=True):
        assert row[0].startswith(label)
        printed = [float(v) for v in row[1:]]
        stored = [
            round(results["runs"][method][b]["final_error"], 1) for b in sizes
        ]
        assert printed == stored


@pytest.mark.parametrize("method", ["WN", "WS"])
def test_weight_methods_agree_with_a_direct_computation(method):
    """normalize('WN'/'WS') is the 1x1 convolution with unit-norm / standardized weight rows."""
    rng = np.random.default_rng(2)
    w, x = rng.normal(1.0, 2.0, size=(5, 4)), rng.normal(size=(3, 4, 2, 2))
    if method == "WN":
        rows = w / np.linalg.norm(w, axis=1, keepdims=True)
    else:
        centred = w - w.mean(axis=1, keepdims=True)
        rows = centred / np.sqrt((centred**2).mean(axis=1, keepdims=True))
    expected = F.conv2d(
        torch.from_numpy(x), torch.from_numpy(rows)[:, :, None, None]
    ).numpy()
    assert np.max(
        np.abs(normalize(method, w, x) - expected)
    ) <= 1e-12 * np.max(np.abs(expected))
