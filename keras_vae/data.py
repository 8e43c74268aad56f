"""MNIST for the VAE: the original's data, as `tf.data` batches.

The original TF1 script trained on `read_data_sets('MNIST_data')`' train
split: the last 55,000 of MNIST's 60,000 training images (the first 5,000
were its validation split), flattened to 784 pixels, scaled to [0, 1] by
multiplying with 1/255, and drawn with `mnist.train.next_batch(64)`, which
reshuffles every epoch and lets a batch run on across an epoch's end.
`load_mnist` gives the same batches as a `tf.data.Dataset`.

The images come from the four MNIST IDX `.gz` files, the layout
`read_data_sets` downloaded: a directory of them (`data_dir=`, the CLI's
`--data-dir`), or, by default, the files downloaded once into Keras' dataset
cache (`keras_vae.download`). `source="tfds"` reads TensorFlow Datasets'
`mnist` instead, which holds the same images in TFDS's own order (so its
`train[5000:]` is not the original's split).

Split strings are the ones TFDS understands for these cases: `"train"`,
`"test"` and slices such as `"train[5000:]"` or `"test[:1000]"`.

Example:

```python
ds = load_mnist(data_dir="MNIST_data", seed=0)
x = next(iter(ds))  # (64, 784) float32 in [0, 1]
```
"""

import gzip
import os
import re
import zlib

import numpy as np

from keras_vae.checks import check_count

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

# The IDX datasets, by their TFDS names: the same file names, layout and sizes.
DATASETS = ("mnist", "fashion_mnist")

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
        # At once, not streamed through gzip.open: one call into zlib, which
        # lets other threads run meanwhile (fast mode compiles beside it).
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


def _parse_split(split):
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
        DataError: a file is missing or corrupt, holds no 28x28 images, the
            two files disagree on the number of examples, or the split is
            unknown.
    """
    name, rows = _parse_split(split)
    images_path, labels_path = (
        os.path.join(os.path.abspath(os.fspath(data_dir)), f) for f in IDX_FILES[name]
    )
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


def load_mnist(
    split=None,
    batch_size=64,
    data_dir=None,
    shuffle=True,
    seed=None,
    repeat=None,
    tfds_data_dir=None,
    initial_step=0,
    source="idx",
    dataset="mnist",
    labels=False,
    binarize=False,
):
    """Batches of MNIST images as the original's `next_batch` drew them.

    The examples are reshuffled every epoch and, with `repeat=True`, a batch
    runs on across an epoch's end, as in `mnist.train.next_batch(64)`. Each
    epoch's order is a permutation keyed by `(seed, epoch)`, so the batch of
    any step follows from the seed alone, and a resumed run
    (`initial_step`) sees what the uninterrupted run saw. The pipeline holds
    the uint8 pixels and scales each batch.

    Args:
        split: str, which examples: `"train"`, `"test"`, or a slice of one
            such as `"test[:1000]"`. Defaults to `None`: `"train[5000:]"`,
            the original's 55,000 training images (for a `.npz` file,
            `"train"`).
        batch_size: int, examples per batch. Defaults to 64.
        data_dir: str or `os.PathLike`, a directory holding the four MNIST
            IDX `.gz` files. Defaults to `None`: the files downloaded on
            first use into `~/.keras/datasets/MNIST_data`, checked against
            their published SHA-256 (`keras_vae.download`).
        shuffle: bool, whether to reshuffle the examples every epoch.
            Defaults to `True`.
        seed: int, the shuffle seed, for a reproducible order. Defaults to
            `None`: one drawn from NumPy's global generator (so
            `keras.utils.set_random_seed` fixes it).
        repeat: bool, whether to repeat forever (training) or make one pass
            whose last batch may be smaller (evaluation). Defaults to `None`:
            repeat a `"train"` split, one pass over a `"test"` split.
        tfds_data_dir: str, where TFDS keeps its prepared datasets, with
            `source="tfds"`. Defaults to `None`, TFDS' own default
            (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        initial_step: int, start at this batch of the stream: a run resumed at
            step N gets the batches the uninterrupted run drew from step N.
            Defaults to `0`.
        source: `"idx"` (the IDX files: `data_dir`, or downloaded) or
            `"tfds"` (TensorFlow Datasets, in TFDS's order). Defaults to
            `"idx"`.
        dataset: `"mnist"`, `"fashion_mnist"` (the same layout and sizes;
            downloaded into `~/.keras/datasets/fashion_mnist_data`), or the
            path of a `.npz` file of your own images (see `read_npz`).
            Defaults to `"mnist"`.
        labels: bool, give `(images, labels)` batches instead of images
            (labels int64 `(batch,)`). Defaults to `False`: the VAE does not
            use them.
        binarize: bool, draw each pixel as Bernoulli(intensity) every time
            an image is used (dynamic binarization), keyed by `seed` and the
            step, so a resumed run draws what the uninterrupted one drew.
            Defaults to `False`.

    Returns:
        A `tf.data.Dataset` of float32 `(batch, x_dim)` batches in [0, 1]
        (`x_dim` is 784 for MNIST). With `repeat=True`, `VAE.fit` draws the
        same batches inside its training loop (`keras_vae.stream`); a
        dataset made from it by `.map`, `.prefetch` and the like goes
        through `tf.data` instead.

    Raises:
        ValueError: `batch_size` is not a positive integer.
        DataError: the data cannot be read or downloaded, or the split is
            unknown or empty.
    """
    check_count("batch_size", batch_size, minimum=1)
    check_count("initial_step", initial_step, minimum=0)
    split = default_split(dataset) if split is None else split
    if repeat is None:
        repeat = _parse_split(split)[0] == "train"
    images, label_values = read_images(dataset, split, data_dir, source, tfds_data_dir)
    if labels and label_values is None:
        raise DataError(f"{dataset} holds no labels: add y_train and y_test arrays to it.")

    import tensorflow as tf

    from keras_vae.stream import BatchStream, attach, binarized_batch, epoch_order

    if seed is None:
        seed = int(np.random.randint(2**31))  # follows keras.utils.set_random_seed
    n = len(images)
    pixels = tf.constant(images)  # (n, x_dim) uint8 (or float32), kept once in memory
    scale = scale_pixels if images.dtype == np.uint8 else tf.identity

    # The stream of example indices, epoch after epoch, from `initial_step`'s
    # first example: any step's batch is found without drawing the ones before.
    first_epoch, offset = divmod(initial_step * batch_size, n)
    epochs = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max if repeat else first_epoch + 1)
    # The functions given to tf.data skip AutoGraph (do_not_convert): they
    # have no Python control flow on tensors, and converting them was most
    # of load_mnist's time after reading the files.
    indices = epochs.flat_map(tf.autograph.experimental.do_not_convert(
        lambda epoch: tf.data.Dataset.from_tensor_slices(epoch_order(n, seed, shuffle, epoch))
    )).skip(offset)
    ds = indices.batch(batch_size).enumerate(initial_step)  # (step, (batch,) indices)
    # flat_map hides the length, and with an unknown length Keras'
    # evaluate() averaged one empty step into its metrics (measured: a test
    # loss of 103.2 where it was 113.6).
    batches = tf.data.INFINITE_CARDINALITY if repeat else -(-(n - offset) // batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))

    def batch_of(step, batch):
        x = scale(tf.gather(pixels, batch))  # (batch, x_dim) float32
        if binarize:
            x = binarized_batch(x, seed, step)
        return (x, tf.gather(label_values, batch)) if labels else x

    ds = ds.map(tf.autograph.experimental.do_not_convert(batch_of),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    if repeat and batch_size <= n and not labels:
        # The same batches, for `VAE.fit` to draw inside its training loop.
        attach(ds, BatchStream(pixels, batch_size, seed, shuffle, initial_step, scale,
                               binarize))
    return ds


def default_split(dataset="mnist"):
    """The training split of `dataset`: the original's `"train[5000:]"` for the
    IDX datasets (their first 5,000 were `read_data_sets`' validation
    images), all of `"train"` for a `.npz` file."""
    return "train" if is_npz(dataset) else "train[5000:]"


def image_pixels(dataset):
    """The pixels of each of `dataset`'s images, known without reading them:
    784 for the named datasets, None for a `.npz` file (or an unknown name)."""
    return IMAGE_PIXELS if dataset in DATASETS else None


def is_npz(dataset):
    """Whether `dataset` names a `.npz` file rather than a dataset."""
    return os.fspath(dataset).endswith(".npz")


def read_images(dataset="mnist", split=None, data_dir=None, source="idx",
                tfds_data_dir=None):
    """A split's images and labels: `(images, labels or None)`.

    Images are uint8 `(N, x_dim)` (or float32 in [0, 1] from a `.npz` file of
    floats). `dataset`, `data_dir`, `source` and `tfds_data_dir` are as in
    `load_mnist`.
    """
    split = default_split(dataset) if split is None else split
    if is_npz(dataset):
        images, labels = read_npz(dataset, split)
    elif dataset not in DATASETS:
        raise DataError(
            f"Unknown dataset {dataset!r}. Expected one of {', '.join(DATASETS)}, "
            "or the path of a .npz file.")
    elif source == "tfds":
        images, labels = _read_tfds(dataset, split, tfds_data_dir)
    elif source == "idx":
        if data_dir is None:
            from keras_vae.download import download_mnist

            data_dir = download_mnist(dataset=dataset)
        images, labels = read_mnist(data_dir, split)
        labels = labels.astype(np.int64)
    else:
        raise ValueError(f'Expected source "idx" or "tfds". Received: source={source!r}')
    if len(images) == 0:
        where = f" in {os.path.abspath(os.fspath(data_dir))}" if data_dir else ""
        name = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}.get(dataset, dataset)
        raise DataError(
            f"The {name} split {split!r} holds no examples{where}. Choose a "
            "non-empty split."
        )
    return images, labels


def read_npz(path, split="train"):
    """A split of a `.npz` file of images: `(images, labels or None)`.

    The file holds `x_train` and `x_test` (as `keras.datasets`' `mnist.npz`
    does), each `(N, ...)` images: uint8 pixels, or floats in [0, 1]. Each
    image is flattened; labels come from `y_train` and `y_test` if present.

    Raises:
        DataError: the file cannot be read, lacks the split's array, or holds
            images of another type or range.
    """
    name, rows = _parse_split(split)
    path = os.path.abspath(os.fspath(path))
    key = f"x_{name}"
    try:
        with np.load(path, allow_pickle=False) as data:
            if key not in data:
                raise DataError(
                    f"{path} has no array {key!r} (it has {sorted(data.files)}). Save the "
                    "images as x_train and x_test, e.g. np.savez(path, x_train=..., x_test=...).")
            images = data[key]
            labels = data.get(f"y_{name}")
    except (OSError, ValueError) as err:  # missing, not a zip, pickled arrays
        raise DataError(f"Could not read {path} as a .npz file of arrays: {err}") from None
    if images.ndim < 2:
        raise DataError(f"{path}: {key} has shape {images.shape}; expected (N, ...) images.")
    images = images.reshape(len(images), -1)
    if images.dtype != np.uint8:
        if images.dtype.kind != "f" or not (np.all(images >= 0) and np.all(images <= 1)):
            raise DataError(
                f"{path}: {key} must hold uint8 pixels or floats in [0, 1] without NaN; "
                f"it holds {images.dtype} values from {images.min()} to {images.max()}. "
                "Scale the images into [0, 1] first.")
        images = images.astype(np.float32)
    if labels is not None:
        labels = labels.reshape(-1).astype(np.int64)
        if len(labels) != len(images):
            raise DataError(f"{path}: y_{name} holds {len(labels)} labels for "
                            f"{len(images)} images in {key}.")
        labels = labels[rows]
    return images[rows], labels


def _read_tfds(name, split, tfds_data_dir):
    """Images (uint8 `(N, 784)`) and labels of a split of TFDS' `name`
    (`mnist` or `fashion_mnist`), prepared if need be."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=tfds_data_dir)
    try:
        ds = builder.as_dataset(split=split)
    except AssertionError:
        # TFDS' "could not find data ... call download_and_prepare()". Asked
        # of `as_dataset` rather than `is_prepared()` because
        # `tfds.testing.mock_data` fakes the former but not the latter.
        _download_and_prepare(builder)
        ds = builder.as_dataset(split=split)
    ds = ds.map(lambda example: (tf.reshape(example["image"], [IMAGE_PIXELS]),
                                 example["label"]))
    # Not `as_dataset(batch_size=-1)`: under `tfds.testing.mock_data` that
    # aborts the process (std::length_error).
    batches = list(ds.batch(10_000).as_numpy_iterator())
    if not batches:
        return np.zeros((0, IMAGE_PIXELS), np.uint8), np.zeros(0, np.int64)
    return (np.concatenate([b[0] for b in batches]),
            np.concatenate([b[1] for b in batches]).astype(np.int64))


def _download_and_prepare(builder):
    """Downloads and prepares TFDS' `mnist`, failing fast when offline.

    TFDS retries a failed download 10 times with exponential backoff, so
    offline it gives up only after minutes. One request without retries
    first tells within seconds whether the files can be reached (TFDS
    downloads them from the same mirror as `keras_vae.download`).
    """
    from keras_vae.download import MNIST_URL, check_reachable

    check_reachable(MNIST_URL + IDX_FILES["test"][1])
    try:
        builder.download_and_prepare()
    except Exception as err:
        raise DataError(
            f"TensorFlow Datasets could not download and prepare MNIST in "
            f"{builder.data_dir}: {type(err).__name__}: {err}. {FILES_FIX}"
        ) from err
