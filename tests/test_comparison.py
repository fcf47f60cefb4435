"""The side-by-side table of BN, LN, IN, GN, WN and WS, and the index-set diagram."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bnnotes.comparison import (
    EXPECTED,
    METHODS,
    PROPERTIES,
    comparison_table,
    normalize,
)
from bnnotes.diagrams import INDEX_SETS_FIGURE, index_sets_svg
from bnnotes.groupnorm import normalization_mask


def verdicts(table):
    return {
        m: (table[m][PROPERTIES[0]],)
        + tuple(table[m][p].holds for p in PROPERTIES[1:])
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
    """BN evaluated with its running estimates of the same batch is off by sqrt((m-1)/m), m = N*H*W."""
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
    """num_groups that is not a positive integer (a bool or float included) is a named ValueError."""
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
    """Each panel's shaded squares are the True entries of normalization_mask, pivot drawn darker."""
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


def test_committed_diagram_is_current():
    """docs/assets/figures/index-sets.svg is byte for byte what index_sets_svg() renders."""
    assert INDEX_SETS_FIGURE.read_text(encoding="utf-8") == index_sets_svg()


@pytest.mark.parametrize("shape", [(4, 6, 2), (4, 6, 2, 0), (4, 17, 2, 2)])
def test_diagram_refuses_bad_shapes(shape):
    """The diagram takes four sizes in [1, 16] and says so otherwise."""
    with pytest.raises(ValueError, match="sizes in"):
        index_sets_svg(shape, (0, 0, 0, 0))


DOCS = Path(__file__).resolve().parents[1] / "docs"


def _prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return re.sub(r"```.*?```", "", text, flags=re.S)


@pytest.mark.parametrize("lang", ["en", "ko", "zh"])
def test_printed_property_table_is_the_checked_one(lang):
    """The table printed on comparison.md is, byte for byte, the SHOWN table its code block checks."""
    text = (DOCS / lang / "comparison.md").read_text(encoding="utf-8")
    shown = re.search(r'SHOWN = """\\\n(.*?)"""', text, flags=re.S).group(1)
    assert shown in _prose(text)


def test_printed_batch_size_table_is_the_stored_run():
    """The rows 'BN, GN, LN, ours' printed on comparison.md are the committed batch_size results."""
    from bnnotes.experiments import RESULTS_DIR

    results = json.loads((RESULTS_DIR / "batch_size.json").read_text())
    prose = _prose((DOCS / "en" / "comparison.md").read_text(encoding="utf-8"))
    for method, label in (
        ("batch", "BN, ours (digits)"),
        ("group", "GN, ours"),
        ("layer", "LN, ours"),
    ):
        row = re.search(
            rf"^\| {re.escape(label)} \|(.*)\|$", prose, flags=re.M
        ).group(1)
        printed = [float(v) for v in row.split("|")]
        stored = [
            round(results["runs"][method][str(b)]["final_error"], 1)
            for b in (64, 32, 16, 8, 4, 2)
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
