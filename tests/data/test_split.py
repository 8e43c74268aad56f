"""load_mnist's default split: the original's training images, the last
55,000 of MNIST's train file (its first 5,000 were the validation split)."""

import numpy as np

from keras_vae.data.batches import load_mnist
from keras_vae.data.sources import default_split
from tests.mnist_files import FILES, idx_bytes, write_gz


def _indexed_mnist(directory, n_train=6000, n_test=10):
    """MNIST files whose image i has pixel 0 = i % 256 and pixel 1 = i // 256."""
    directory.mkdir()
    for split, n in (("train", n_train), ("test", n_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 0, 0] = np.arange(n) % 256
        images[:, 0, 1] = np.arange(n) // 256
        write_gz(directory / FILES[f"{split}_images"], idx_bytes(images))
        write_gz(directory / FILES[f"{split}_labels"], idx_bytes(np.arange(n) % 10))
    return directory


def test_the_default_split_is_train_from_image_5000(tmp_path):
    """Images 5000..5999 of 6,000, in order, neither one more nor one fewer."""
    assert default_split("mnist") == "train[5000:]"
    data_dir = _indexed_mnist(tmp_path / "mnist")
    batches = load_mnist(data_dir=data_dir, shuffle=False, batch_size=100)
    pixels = np.concatenate([x.numpy() for x in batches.take(10)])
    indices = np.round(pixels[:, 0] * 255) + 256 * np.round(pixels[:, 1] * 255)
    np.testing.assert_array_equal(indices, np.arange(5000, 6000))
