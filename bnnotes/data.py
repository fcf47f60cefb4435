r"""Datasets for the experiments: offline by default, the real files when given.

No function here downloads anything. By default the experiments use scikit-learn's
bundled handwritten digits (1797 images of 8x8 pixels), which ship with the package;
with a data directory they read the real MNIST IDX files or the CIFAR-10 python batches.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "load_cifar10", "load_digits", "load_mnist", "read_idx"]

_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class Dataset:
    """A train/test split of flattened images in $[0, 1]$ and integer labels.

    Attributes
    ----------
    x_train, x_test : numpy.ndarray
        float32 arrays of shape ``(n, d)``.
    y_train, y_test : numpy.ndarray
        int64 label arrays of shape ``(n,)``.
    name : str
        Where the data came from.

    Examples
    --------
    >>> from bnnotes.data import load_digits
    >>> data = load_digits()
    >>> data.num_features, data.y_train.dtype.name, data.name
    (64, 'int64', 'scikit-learn digits (8x8)')
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str

    @property
    def num_features(self) -> int:
        """Number of input features $d$."""
        return int(self.x_train.shape[1])


def read_idx(path: str | Path) -> np.ndarray:
    r"""Read an IDX file (the MNIST format), raw or gzip-compressed.

    Parameters
    ----------
    path : str or pathlib.Path
        The file. A name ending in ``.gz`` is decompressed.

    Returns
    -------
    numpy.ndarray
        The array with the shape and dtype the header declares.

    Raises
    ------
    ValueError
        If the magic number is wrong, the type code is unknown, or the file is shorter or
        longer than its header says.

    Notes
    -----
    The header is two zero bytes, a type code (``0x08`` for unsigned bytes), the number of
    dimensions, then one big-endian 32-bit size per dimension; the data follow in C order.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from bnnotes.data import read_idx
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(path).tolist()
    [7, 2, 1]
    """
    path = Path(path)
    raw = (
        gzip.decompress(path.read_bytes())
        if path.suffix == ".gz"
        else path.read_bytes()
    )
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: header declares shape {shape} ({expected} bytes of data), "
            f"file has {len(raw) - header} bytes"
        )
    return (
        np
        .frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _find(data_dir: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(
        f"{data_dir}: no {stem} or {stem}.gz (the MNIST IDX files)"
    )


def load_mnist(data_dir: str | Path) -> Dataset:
    r"""Load MNIST from its four IDX files in ``data_dir`` (raw or ``.gz``).

    Parameters
    ----------
    data_dir : str or pathlib.Path
        Folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``).

    Returns
    -------
    Dataset
        Images flattened to 784 features scaled to $[0, 1]$.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If a file is malformed, or images and labels disagree in count or labels are not 0–9.

    Examples
    --------
    Four tiny IDX files of one 2x2 image each stand in for MNIST's:

    >>> import tempfile, pathlib
    >>> from bnnotes.data import load_mnist
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> image = bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2])
    >>> label = bytes([0, 0, 8, 1, 0, 0, 0, 1])
    >>> for prefix in ("train", "t10k"):
    ...     _ = (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
    ...         image + bytes([0, 51, 102, 255])
    ...     )
    ...     _ = (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
    ...         label + bytes([7])
    ...     )
    >>> data = load_mnist(folder)
    >>> data.x_train.dtype.name, data.y_test.tolist()
    ('float32', [7])
    >>> data.x_train.astype(float).round(1).tolist()  # bytes / 255
    [[0.0, 0.2, 0.4, 1.0]]
    """
    data_dir = Path(data_dir)
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find(data_dir, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(data_dir, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{data_dir}: {prefix} images {images.shape} and labels {labels.shape} do not match"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(f"{data_dir}: {prefix} labels must be in 0..9")
        parts[split] = (
            images.reshape(len(images), -1).astype(np.float32) / 255.0,
            labels.astype(np.int64),
        )
    return Dataset(*parts["train"], *parts["test"], name=f"MNIST ({data_dir})")


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    r"""scikit-learn's bundled 8x8 handwritten digits, split into train and test.

    Parameters
    ----------
    test_fraction : float, optional
        Fraction of the 1797 images held out, stratified by class. Default 0.25.
    seed : int, optional
        Seed of the split. Default 0.

    Returns
    -------
    Dataset
        64 features scaled from $0..16$ to $[0, 1]$.

    Examples
    --------
    >>> from bnnotes.data import load_digits
    >>> data = load_digits()
    >>> data.x_train.shape, data.x_test.shape
    ((1347, 64), (450, 64))
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"test_fraction must be in (0, 1), got {test_fraction}"
        )
    bunch = sk_load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return Dataset(
        x_train, y_train, x_test, y_test, name="scikit-learn digits (8x8)"
    )


CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
_CIFAR10_FEATURES = 3 * 32 * 32

# The globals a CIFAR-10 python batch may name: what NumPy needs to rebuild an array
# (in protocol-2 pickles written by Python 3, _codecs.encode for bytes; with protocol 5,
# numpy's _frombuffer).
_CIFAR10_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
    ("_codecs", "encode"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds dicts, lists, bytes and NumPy arrays,
    and refuses any other class."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR10_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays"
            )
        return super().find_class(module, name)


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path.parent}: no {path.name} (a CIFAR-10 python batch)"
        )
    with path.open("rb") as f:
        try:
            batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
        except (
            pickle.UnpicklingError,
            EOFError,
            ValueError,
            TypeError,
            AttributeError,
        ) as error:
            raise ValueError(
                f"{path}: not a CIFAR-10 python batch ({error})"
            ) from None
    if not isinstance(batch, dict):
        raise ValueError(
            f"{path}: expected a dict, got {type(batch).__name__}"
        )  # a malformed file, hence ValueError rather than TypeError
    batch = {
        k.decode("latin1") if isinstance(k, bytes) else k: v
        for k, v in batch.items()
    }
    if "data" not in batch or "labels" not in batch:
        raise ValueError(
            f"{path}: a CIFAR-10 batch needs the keys 'data' and 'labels', has "
            f"{sorted(map(str, batch))}"
        )
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if (
        data.ndim != 2
        or data.shape[1] != _CIFAR10_FEATURES
        or data.dtype != np.uint8
    ):
        raise ValueError(
            f"{path}: data must be uint8 of shape (n, {_CIFAR10_FEATURES}), got {data.dtype} "
            f"{data.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(data):
        raise ValueError(
            f"{path}: {len(data)} images but labels of shape {labels.shape}: they do not match"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (
        labels.size and (labels.min() < 0 or labels.max() > 9)
    ):
        raise ValueError(f"{path}: labels must be integers in 0..9")
    return data, labels


def load_cifar10(data_dir: str | Path) -> Dataset:
    r"""Load CIFAR-10 from its python batches (``data_batch_1`` ...
    ``data_batch_5``, ``test_batch``).

    Parameters
    ----------
    data_dir : str or pathlib.Path
        The folder with the six batch files, or its parent holding ``cifar-10-batches-py/``
        (the folder the CIFAR-10 python archive unpacks to). Nothing is downloaded.

    Returns
    -------
    Dataset
        50,000 training and 10,000 test images (for the real files) as float32 rows of
        3072 values in $[0, 1]$ (the bytes divided by 255), channel-major as CIFAR-10
        stores them: red $32 \times 32$, then green, then blue. Labels are int64 in 0..9.

    Raises
    ------
    FileNotFoundError
        If a batch file is missing.
    ValueError
        If a file is not a pickled dict with ``data`` (uint8, shape ``(n, 3072)``) and
        ``labels`` (``n`` integers in 0..9).

    Notes
    -----
    The batches are pickles. They are read with an unpickler that rebuilds only dicts,
    lists, bytes and NumPy arrays and refuses every other class, so a foreign file cannot
    run code on loading.

    Examples
    --------
    >>> import pickle, tempfile, pathlib, numpy as np
    >>> from bnnotes.data import load_cifar10
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    ...     batch = {
    ...         b"data": np.full((2, 3072), 255, dtype=np.uint8),
    ...         b"labels": [3, 7],
    ...     }
    ...     _ = (folder / name).write_bytes(pickle.dumps(batch))
    >>> data = load_cifar10(folder)
    >>> (
    ...     data.x_train.shape,
    ...     data.x_test.shape,
    ...     float(data.x_train.max()),
    ...     data.y_test.tolist(),
    ... )
    ((10, 3072), (2, 3072), 1.0, [3, 7])
    """
    data_dir = Path(data_dir)
    if (
        not (data_dir / CIFAR10_TEST_BATCH).is_file()
        and (data_dir / "cifar-10-batches-py").is_dir()
    ):
        data_dir = data_dir / "cifar-10-batches-py"
    train = [
        _read_cifar10_batch(data_dir / name) for name in CIFAR10_TRAIN_BATCHES
    ]
    x_test, y_test = _read_cifar10_batch(data_dir / CIFAR10_TEST_BATCH)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return Dataset(
        x_train.astype(np.float32) / np.float32(255.0),
        y_train.astype(np.int64),
        x_test.astype(np.float32) / np.float32(255.0),
        y_test.astype(np.int64),
        name=f"CIFAR-10 ({data_dir})",
    )
