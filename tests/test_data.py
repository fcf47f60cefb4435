"""Data loaders: IDX files (raw and gzip) as MNIST ships them, and the offline digits default."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from bnnotes.data import load_cifar10, load_digits, load_mnist, read_idx


def write_idx(path, array, compress=False):
    """Write ``array`` (uint8) as an IDX file, as the MNIST distribution does."""
    array = np.asarray(array, dtype=np.uint8)
    raw = (
        bytes([0, 0, 0x08, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_mnist(folder, n_train=24, n_test=12, compress=False, seed=0):
    """A tiny MNIST-shaped data set in the four-file IDX layout."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if compress else ""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress
        )
        write_idx(
            folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress
        )
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_raw_and_gzip(tmp_path, compress):
    """read_idx returns exactly the array written, with its shape, from raw and .gz files."""
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(
        tmp_path / ("a.idx.gz" if compress else "a.idx"), array, compress
    )
    np.testing.assert_array_equal(read_idx(path), array)


def test_read_idx_rejects_bad_magic_and_wrong_length(tmp_path):
    """A wrong magic number and a size that disagrees with the header are named errors."""
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(ValueError, match="declares shape"):
        read_idx(short)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_reads_the_four_files(tmp_path, compress):
    """load_mnist flattens 28x28 images to 784 features in [0, 1] and keeps the labels."""
    arrays = write_mnist(tmp_path, compress=compress)
    data = load_mnist(tmp_path)
    assert data.x_train.shape == (24, 784) and data.x_test.shape == (12, 784)
    assert (
        data.x_train.dtype == np.float32
        and data.x_train.min() >= 0.0
        and data.x_train.max() <= 1.0
    )
    np.testing.assert_array_equal(data.y_test, arrays["t10k"][1])
    np.testing.assert_allclose(
        data.x_train[0], arrays["train"][0][0].ravel() / 255.0, rtol=1e-6
    )


def test_load_mnist_names_a_missing_file(tmp_path):
    """A missing IDX file gives FileNotFoundError naming it."""
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_count_mismatch(tmp_path):
    """Images and labels of different counts are rejected."""
    write_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5))
    with pytest.raises(ValueError, match="do not match"):
        load_mnist(tmp_path)


def test_digits_default_is_a_stratified_offline_split():
    """The default data set is the 1797 bundled digits, 64 features in [0, 1],
    every class in both splits."""
    data = load_digits()
    assert len(data.x_train) + len(data.x_test) == 1797
    assert data.num_features == 64 and data.x_train.max() <= 1.0
    assert set(data.y_test.tolist()) == set(range(10))


CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar10(folder, n_per_batch=4, seed=0, protocol=2):
    """A tiny CIFAR-10-shaped data set: six pickled dicts with byte keys, as
    the python archive has them."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name in CIFAR_BATCHES:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n_per_batch).tolist()
        batch = {
            b"batch_label": name.encode(),
            b"data": data,
            b"labels": labels,
            b"filenames": [b"x.png"] * n_per_batch,
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        arrays[name] = (data, labels)
    return arrays


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_load_cifar10_reads_the_six_batches_in_order(tmp_path, protocol):
    """Training rows are batches 1..5 in order, scaled by 1/255 to float32; labels are kept."""
    arrays = write_cifar10(tmp_path, protocol=protocol)
    data = load_cifar10(tmp_path)
    assert data.x_train.shape == (20, 3072) and data.x_test.shape == (4, 3072)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    expected = (
        np.concatenate([arrays[name][0] for name in CIFAR_BATCHES[:5]]) / 255.0
    )
    np.testing.assert_allclose(data.x_train, expected, rtol=1e-6)
    assert data.y_train.tolist() == [
        label for name in CIFAR_BATCHES[:5] for label in arrays[name][1]
    ]
    assert data.y_test.tolist() == arrays["test_batch"][1]


def test_load_cifar10_accepts_the_archive_parent_folder(tmp_path):
    """A folder holding cifar-10-batches-py/ works as well as that folder itself."""
    write_cifar10(tmp_path / "cifar-10-batches-py")
    assert load_cifar10(tmp_path).x_test.shape == (4, 3072)


def test_load_cifar10_names_a_missing_batch(tmp_path):
    """A missing batch file gives FileNotFoundError naming it."""
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize(
    "batch, message",
    [
        (
            {b"data": np.zeros((2, 1024), dtype=np.uint8), b"labels": [0, 1]},
            "shape",
        ),
        (
            {
                b"data": np.zeros((2, 3072), dtype=np.float32),
                b"labels": [0, 1],
            },
            "uint8",
        ),
        (
            {
                b"data": np.zeros((2, 3072), dtype=np.uint8),
                b"labels": [0, 1, 2],
            },
            "do not match",
        ),
        (
            {b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 10]},
            "0..9",
        ),
        ({b"data": np.zeros((2, 3072), dtype=np.uint8)}, "labels"),
        ([1, 2, 3], "dict"),
    ],
)
def test_load_cifar10_rejects_malformed_batches(tmp_path, batch, message):
    """Wrong image shapes or dtypes, label counts or values, missing keys and
    non-dicts are named errors."""
    write_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=message):
        load_cifar10(tmp_path)


class _Payload:
    """Stands for an arbitrary object a foreign pickle might try to build."""

    def __reduce__(self):
        return (print, ("loaded",))


def test_load_cifar10_refuses_pickles_that_build_other_objects(
    tmp_path, capsys
):
    """A pickle that would call a function is rejected before the call runs."""
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_1").write_bytes(
        pickle.dumps({b"data": _Payload(), b"labels": []})
    )
    with pytest.raises(ValueError, match="refusing"):
        load_cifar10(tmp_path)
    assert "loaded" not in capsys.readouterr().out


def test_load_cifar10_rejects_a_file_that_is_not_a_pickle(tmp_path):
    """Truncated or foreign bytes are a ValueError naming the file."""
    write_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar10(tmp_path)
