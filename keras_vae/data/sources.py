"""Where the images come from: the IDX files (a directory, or downloaded), a
`.npz` file of one's own, or TensorFlow Datasets.

`source="tfds"` reads TFDS's `mnist` (or `fashion_mnist`), which holds the
same images in TFDS's own order: its `train[5000:]` is not the original's
split, so the IDX files are the default.
"""

import os

import numpy as np

from keras_vae.data.download import MNIST_URL, check_reachable, download_mnist
from keras_vae.data.idx import (
    FILES_FIX, IDX_FILES, IMAGE_PIXELS, DataError, parse_split, read_mnist,
)

# The IDX datasets, by their TFDS names: the same file names, layout and sizes.
DATASETS = ("mnist", "fashion_mnist")


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
    name, rows = parse_split(split)
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
    downloads them from the same mirror as `keras_vae.data.download`).
    """
    check_reachable(MNIST_URL + IDX_FILES["test"][1])
    try:
        builder.download_and_prepare()
    except Exception as err:
        raise DataError(
            f"TensorFlow Datasets could not download and prepare MNIST in "
            f"{builder.data_dir}: {type(err).__name__}: {err}. {FILES_FIX}"
        ) from err
