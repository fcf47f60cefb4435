"""The fast paths of bnnotes/_kernels.py equal the plain NumPy forms they stand for.

Each kernel is compared with the formula written out with NumPy's reductions and
broadcasting, in float64, on shapes that take each of its branches: 2-D and 4-D arrays,
batch sizes that are and are not powers of two (rows_view groups whole samples into rows
of up to ROW_LENGTH values), arrays that are not C-ordered (no row view, no BLAS) and
integer arrays (no BLAS). Elementwise kernels must agree bit for bit; reductions, whose
summation order differs, within 1e-12 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

from bnnotes import _kernels as kernels

RTOL = 1e-12

SHAPES = [
    (7, 3),  # 2-D, odd batch
    (64, 5),  # 2-D, power-of-two batch
    (6, 4, 5, 3),  # 4-D, samples grouped in pairs
    (
        8,
        3,
        40,
        40,
    ),  # 4-D, rows longer than one sample, k limited by ROW_LENGTH
    (3, 2, 7),  # 3-D, odd batch
]


def _array(shape, seed=0, layout="C"):
    """Random float64 values with a per-channel offset; layout "F" is not C-ordered."""
    rng = np.random.default_rng(seed)
    offset = np.arange(shape[1]).reshape(kernels.channel_shape(len(shape)))
    a = rng.normal(size=shape) + 3.0 * offset
    return np.asfortranarray(a) if layout == "F" else a


def _axes(a):
    return (0, *range(2, a.ndim))


def _bshape(a):
    return (1, -1) + (1,) * (a.ndim - 2)


@pytest.fixture(params=[(s, lay) for s in SHAPES for lay in "CF"], ids=str)
def x(request):
    shape, layout = request.param
    return _array(shape, layout=layout)


def test_channel_sum_equals_the_sum_over_all_axes_but_one(x):
    """channel_sum(a) == a.sum(axis=(0, 2, ...)) within 1e-12."""
    np.testing.assert_allclose(
        kernels.channel_sum(x), x.sum(axis=_axes(x)), rtol=RTOL
    )


def test_channel_sum_of_integers_is_exact():
    """An integer array (no BLAS) is summed exactly, in its own dtype."""
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    out = kernels.channel_sum(a)
    assert out.dtype == a.dtype
    assert out.tolist() == a.sum(axis=(0, 2)).tolist()


def test_channel_dot_equals_the_sum_of_products(x):
    """channel_dot(a, b) == (a * b).sum(axis=(0, 2, ...)) within 1e-12."""
    b = _array(x.shape, seed=1)
    np.testing.assert_allclose(
        kernels.channel_dot(x, b), (x * b).sum(axis=_axes(x)), rtol=RTOL
    )


def test_scale_channels_equals_broadcast_product_bit_for_bit(x):
    """scale_channels(a, v) == a * v[None, :, None, ...], every bit, in place."""
    v = np.linspace(-2.0, 3.0, x.shape[1])
    expected = x * v.reshape(_bshape(x))
    out = kernels.scale_channels(x, v)
    assert out is x
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("with_gamma", [True, False])
@pytest.mark.parametrize("with_beta", [True, False])
def test_affine_channels_equals_gamma_x_plus_beta_bit_for_bit(
    x, with_gamma, with_beta
):
    """affine_channels(x, g, b) == g * x + b per channel, every bit, as a new array."""
    c = x.shape[1]
    gamma = np.linspace(0.5, 2.0, c) if with_gamma else None
    beta = np.linspace(-1.0, 1.0, c) if with_beta else None
    expected = x.copy()
    if gamma is not None:
        expected = expected * gamma.reshape(_bshape(x))
    if beta is not None:
        expected = expected + beta.reshape(_bshape(x))
    before = x.copy()
    out = kernels.affine_channels(x, gamma, beta)
    assert out is not x and out.shape == x.shape
    assert np.array_equal(out, expected)
    assert np.array_equal(x, before)


def test_centered_channels_gives_the_mean_and_the_deviations(x):
    """centered_channels(x, channel_sum(x)) == (mean, x - mean) within 1e-12."""
    mean = x.mean(axis=_axes(x))
    mu, dev = kernels.centered_channels(x, kernels.channel_sum(x))
    np.testing.assert_allclose(mu, mean, rtol=RTOL)
    np.testing.assert_allclose(
        dev, x - mean.reshape(_bshape(x)), rtol=RTOL, atol=RTOL * 10
    )


def test_centered_channels_without_a_total_is_centered(x):
    """Without the precomputed sum it is `centered` over the channel axes."""
    mu, dev = kernels.centered_channels(x)
    mu2, dev2 = kernels.centered(x, _axes(x), _bshape(x))
    assert np.array_equal(mu, mu2) and np.array_equal(dev, dev2)


def test_centered_float32_with_a_large_offset_keeps_float32_accuracy():
    """In float32 with a 1e4 offset, x - mean is within 2 ulp of 1e4 of the float64 value."""
    x64 = 1e4 + np.random.default_rng(2).normal(size=(256, 3, 4, 4))
    x32 = x64.astype(np.float32)
    exact = x32.astype(np.float64)
    exact = exact - exact.mean(axis=(0, 2, 3), keepdims=True)
    _, dev = kernels.centered_channels(x32, kernels.channel_sum(x32))
    ulp = np.spacing(np.float32(1e4))
    assert np.max(np.abs(dev - exact)) <= 2 * ulp
    # the deviations themselves are far more accurate than one ulp of the offset
    assert np.max(np.abs(dev - exact)) < 1e-3


def test_batch_norm_input_grad_equals_the_compact_formula(x):
    """batch_norm_input_grad == gamma/s (g - x_hat mean(g x_hat) - mean(g)), 1e-12."""
    g = _array(x.shape, seed=3)
    axes, bshape = _axes(x), _bshape(x)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    s = np.sqrt(var + 1e-5)
    x_hat = (x - mean) / s
    gamma = np.linspace(0.5, 1.5, x.shape[1]).reshape(bshape)
    mean_g = g.mean(axis=axes, keepdims=True)
    mean_gx = (g * x_hat).mean(axis=axes, keepdims=True)
    expected = gamma / s * (g - x_hat * mean_gx - mean_g)
    out = kernels.batch_norm_input_grad(
        g,
        x_hat,
        mean_gx.reshape(-1),
        mean_g.reshape(-1),
        (gamma / s).reshape(-1),
    )
    np.testing.assert_allclose(out, expected, rtol=RTOL, atol=1e-14)


def test_normalize_rows_equals_the_two_pass_formula():
    """normalize_rows == ((x - mean) / sqrt(var + eps), mean, var, 1/s) per row, 1e-12."""
    rows = 5.0 + np.random.default_rng(4).normal(size=(6, 50))
    mean = rows.mean(axis=1)
    var = ((rows - mean[:, None]) ** 2).mean(axis=1)
    inv_std = 1.0 / np.sqrt(var + 1e-5)
    x_hat, m, v, s = kernels.normalize_rows(rows, 1e-5)
    np.testing.assert_allclose(m, mean, rtol=RTOL)
    np.testing.assert_allclose(v, var, rtol=RTOL)
    np.testing.assert_allclose(s, inv_std, rtol=RTOL)
    np.testing.assert_allclose(
        x_hat, (rows - mean[:, None]) * inv_std[:, None], rtol=RTOL, atol=1e-14
    )


def test_rows_input_grad_equals_the_projection_formula():
    """rows_input_grad == (d - mean(d) - x_hat mean(d x_hat)) / s per row, 1e-12."""
    rng = np.random.default_rng(5)
    x_hat, _, _, inv_std = kernels.normalize_rows(
        rng.normal(size=(4, 30)), 1e-5
    )
    d = rng.normal(size=(4, 30))
    expected = (
        d
        - d.mean(axis=1, keepdims=True)
        - x_hat * (d * x_hat).mean(axis=1, keepdims=True)
    ) * inv_std[:, None]
    np.testing.assert_allclose(
        kernels.rows_input_grad(d, x_hat, inv_std),
        expected,
        rtol=RTOL,
        atol=1e-14,
    )


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_rows_view_lays_a_channel_vector_along_whole_samples(shape):
    """rows * along(v) is a * v[None, :, None, ...] seen as rows of whole samples."""
    a = _array(shape)
    rows, along = kernels.rows_view(a)
    assert rows.base is a or rows is a  # a view, not a copy
    assert rows.shape[1] % (a.size // a.shape[0]) == 0
    assert rows.shape[1] <= max(kernels.ROW_LENGTH, a.size // a.shape[0])
    v = np.arange(1.0, shape[1] + 1)
    assert np.array_equal(
        (rows * along(v)).reshape(shape), a * v.reshape(_bshape(a))
    )
