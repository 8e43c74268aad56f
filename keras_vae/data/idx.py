"""The original's MNIST files: gzip-compressed IDX arrays, read and scaled as
`read_data_sets` read them.

The images come from the four MNIST IDX `.gz` files, the layout
`read_data_sets('MNIST_data')` downloaded: 28x28 uint8 pixels, flattened to
784 and scaled to [0, 1] by multiplying with 1/255. Split strings are the
ones TFDS understands for these cases: `"train"`, `"test"` and slices such
as `"train[5000:]"` or `"test[:1000]"`.
"""

import gzip
import os
import re
import zlib

import numpy as np

IMAGE_SIZE = 28
IMAGE_PIXELS = IMAGE_SIZE * IMAGE_SIZE

# The four files of MNIST, as `read_data_sets` and TFDS download them.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# IDX magic numbers: 0x0000 (zero bytes), 0x08 (uint8), then the number of
# dimensions: 3 for images [N, rows, cols], 1 for labels [N].
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049

# The original's pixel rule: `images.astype(float32) * (1.0 / 255.0)`. It
# differs from `/ 255` in the last bit for 126 of the 256 values.
_PIXEL_SCALE = 1.0 / 255.0

_SPLIT_RE = re.compile(r"(train|test)(?:\[(-?\d+)?:(-?\d+)?\])?")
_SPLIT_FORMS = '"train", "test", "train[a:b]" or "test[a:b]" (a, b optional integers)'

# How to point the port at the files, for error messages.
FILES_FIX = (
    "Point --data-dir (data_dir=) at a directory holding the four MNIST IDX "
    ".gz files: " + ", ".join(IDX_FILES["train"] + IDX_FILES["test"]) + " "
    "(`keras-vae download --data-dir MNIST_data` fetches them where there is a network)."
)


class DataError(ValueError):
    """MNIST could not be read: a missing or corrupt file, or a bad split."""


def require_directory(data_dir, fix=None):
    """The absolute path of `data_dir`; an error if it names a file.

    Without this check, a file given as `--data-dir` (say a `.txt` or `.npz`
    file) is read as a directory and its missing IDX files are reported as
    truncated or corrupt.

    Args:
        data_dir: str or `os.PathLike`, the directory of the IDX files.
        fix: str, what to pass instead, for the error. Defaults to `None`:
            the directory that holds the four files.

    Raises:
        DataError: `data_dir` is a file.
    """
    path = os.path.abspath(os.fspath(data_dir))
    if os.path.isfile(path):
        npz = " (a .npz file of images goes to --data instead)" if path.endswith(".npz") else ""
        fix = fix or ("Pass the directory that holds the four MNIST IDX .gz files: "
                      + ", ".join(IDX_FILES["train"] + IDX_FILES["test"]) + ".")
        raise DataError(
            f"--data-dir (data_dir=) names a file, not a directory: {path}.{npz} {fix}")
    return path


def read_idx(path):
    """Reads one gzip-compressed IDX file of MNIST.

    Args:
        path: str or `os.PathLike`, the `.gz` file to read.

    Returns:
        A uint8 array: images `[N, rows, cols]` (IDX magic 2051) or labels
        `[N]` (magic 2049).

    Raises:
        DataError: the file is missing, not a complete gzip file, not an IDX
            file of uint8 images or labels, or shorter or longer than its
            header says.
    """
    path = os.path.abspath(os.fspath(path))
    try:
        with open(path, "rb") as f:
            compressed = f.read()
        # Inflated in one call rather than streamed through gzip.open: zlib
        # lets other threads run for the whole call (fast mode compiles
        # beside it).
        data = gzip.decompress(compressed)
    except FileNotFoundError:
        raise DataError(f"MNIST file not found: {path}. {FILES_FIX}") from None
    except (OSError, EOFError, zlib.error) as err:
        # gzip.BadGzipFile is an OSError; a truncated file ends in EOFError.
        raise DataError(
            f"Could not decompress the MNIST file {path}: it is not a complete "
            f"gzip file (truncated or corrupt download?): {err}. Download it "
            f"again, or: {FILES_FIX}"
        ) from err

    magic = int.from_bytes(data[:4], "big")
    if magic not in (_IMAGES_MAGIC, _LABELS_MAGIC):
        raise DataError(
            f"{path} is not an MNIST IDX file: its magic number is {magic}, "
            f"expected {_IMAGES_MAGIC} (images) or {_LABELS_MAGIC} (labels). {FILES_FIX}"
        )
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(
            f"{path} ends inside its IDX header ({len(data)} bytes, the header "
            f"needs {header_size}). {FILES_FIX}"
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    expected = int(np.prod(shape))
    actual = len(data) - header_size
    if actual != expected:
        raise DataError(
            f"{path} holds {actual} bytes of data but its IDX header announces "
            f"shape {shape}, that is {expected} bytes (truncated or corrupt "
            f"file?). {FILES_FIX}"
        )
    # bytearray: a writable array, not a read-only view of `bytes`.
    return np.frombuffer(bytearray(data), np.uint8, offset=header_size).reshape(shape)


def parse_split(split):
    """Splits a split string into its part and row slice.

    Args:
        split: str, `"train"`, `"test"`, or a slice of one such as
            `"train[5000:]"` or `"test[-1000:]"` (Python slice semantics).

    Returns:
        A tuple `(name, slice)` such as `("train", slice(5000, None))`.

    Raises:
        DataError: the string is none of these forms.
    """
    match = _SPLIT_RE.fullmatch(split) if isinstance(split, str) else None
    if match is None:
        raise DataError(
            f"Unknown MNIST split. Expected {_SPLIT_FORMS}. Received: split={split!r}"
        )
    name, start, stop = match.groups()
    return name, slice(
        None if start is None else int(start), None if stop is None else int(stop)
    )


def read_mnist(data_dir, split="train[5000:]"):
    """Reads a split of MNIST from a directory of IDX `.gz` files.

    Only the two files the split needs are read.

    Args:
        data_dir: str or `os.PathLike`, the directory holding the MNIST IDX
            `.gz` files.
        split: str, which examples: `"train"`, `"test"`, or a slice of one
            such as `"train[:5000]"`. Defaults to `"train[5000:]"`, the
            original's training set.

    Returns:
        A tuple `(images, labels)`: uint8 arrays `(N, 784)` and `(N,)`.

    Raises:
        DataError: `data_dir` is a file, a file is missing or corrupt, holds
            no 28x28 images, the two files disagree on the number of
            examples, or the split is unknown.
    """
    name, rows = parse_split(split)
    data_dir = require_directory(data_dir)
    images_path, labels_path = (os.path.join(data_dir, f) for f in IDX_FILES[name])
    images = read_idx(images_path)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"{images_path} does not hold 28x28 MNIST images: its IDX array has "
            f"shape {images.shape}, expected (N, 28, 28). {FILES_FIX}"
        )
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(
            f"{labels_path} does not hold MNIST labels: its IDX array has shape "
            f"{labels.shape}, expected (N,). {FILES_FIX}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"The MNIST files disagree: {images_path} holds {len(images)} images "
            f"but {labels_path} holds {len(labels)} labels. {FILES_FIX}"
        )
    return images.reshape(-1, IMAGE_PIXELS)[rows], labels[rows]


def scale_pixels(images):
    """Scales uint8 pixels to float32 in [0, 1], as the original did.

    `read_data_sets` computed `images.astype(float32) * (1.0 / 255.0)`. That
    is not `images / 255` in the last bit for 126 of the 256 values, so the
    port multiplies too, on NumPy arrays and on tensors alike.

    Args:
        images: uint8 `np.ndarray` or `tf.Tensor`, pixel values 0..255.

    Returns:
        float32 values in [0, 1]: a NumPy array for a NumPy array, otherwise
        a `tf.Tensor`.
    """
    if isinstance(images, (np.ndarray, np.generic)):
        return images.astype(np.float32) * np.float32(_PIXEL_SCALE)
    import tensorflow as tf

    # The Python float becomes float32(1/255): the same bits as NumPy's.
    return tf.cast(images, tf.float32) * _PIXEL_SCALE
