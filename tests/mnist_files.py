"""MNIST files made up for the tests: the IDX layout, synthetic images.

Most tests need files that read like MNIST, not real digits: these are
written in the layout of `read_data_sets('MNIST_data')`, so every clone can
run them without the real data set.
"""

import gzip

import numpy as np

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def idx_bytes(array, magic=None, shape=None):
    """An IDX file's bytes for a uint8 array; `magic`/`shape` override the header."""
    array = np.asarray(array, np.uint8)
    shape = array.shape if shape is None else shape
    magic = 0x800 + len(shape) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    return header + array.tobytes()


def write_gz(path, data):
    path.write_bytes(gzip.compress(data))
    return path


def blob_images(n, seed):
    """`n` uint8 28x28 images of a few soft strokes on black, about as dark as
    MNIST's (some 78% of the pixels zero), so training on them behaves."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:28, 0:28]
    images = np.zeros((n, 28, 28), np.float32)
    for _ in range(4):
        centre_row, centre_col = (rng.uniform(6, 22, (n, 1, 1)) for _ in range(2))
        width = rng.uniform(1.5, 3.0, (n, 1, 1))
        blob = np.exp(-((rows - centre_row) ** 2 + (cols - centre_col) ** 2) / (2 * width**2))
        images = np.maximum(images, blob)
    return np.clip(images * 320 - 60, 0, 255).astype(np.uint8)


def write_synthetic_mnist(directory, n_train=12000, n_test=2000, seed=0):
    """The four MNIST files of synthetic images in `directory`; returns it.

    12,000 training images leave 7,000 in the original's `train[5000:]`:
    more than 100 batches of 64, so executions of 100 steps fit in an epoch.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images = blob_images(n, seed=(seed, n))
        write_gz(directory / FILES[f"{split}_images"], idx_bytes(images))
        write_gz(directory / FILES[f"{split}_labels"], idx_bytes(np.arange(n) % 10))
    return directory
