r"""Datasets for the experiments: offline by default, the real files when given.

No function here downloads anything. By default the experiments use scikit-learn's
bundled handwritten digits (1797 images of 8x8 pixels), which ship with the package;
with a data directory they read the real MNIST IDX files.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "load_digits", "load_mnist", "read_idx"]

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
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
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
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"{data_dir}: no {stem} or {stem}.gz (the MNIST IDX files)")


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
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = sk_load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return Dataset(x_train, y_train, x_test, y_test, name="scikit-learn digits (8x8)")
