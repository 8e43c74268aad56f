"""Other data than MNIST: Fashion-MNIST, a user's .npz file; labels; and the
dynamic binarization of training images, keyed by seed and step."""

import numpy as np
import pytest
import tensorflow as tf

from keras_vae.data import download
from keras_vae.data.batches import load_mnist
from keras_vae.data.idx import DataError, read_mnist, scale_pixels
from keras_vae.data.sources import DATASETS, read_images
from tests.data.test_download import published_hashes, serving
from tests.mnist_files import FILES


def _pixels(dataset):
    return np.concatenate([np.asarray(batch) for batch in dataset])


def test_fashion_mnist_reads_an_idx_directory_in_its_order(synthetic_mnist_dir):
    # Fashion-MNIST has MNIST's file names and layout: any IDX directory serves.
    pixels = _pixels(load_mnist("test", 500, synthetic_mnist_dir, shuffle=False,
                                dataset="fashion_mnist"))
    images, _ = read_mnist(synthetic_mnist_dir, "test")
    assert pixels.tobytes() == scale_pixels(images).tobytes()


def test_fashion_mnist_downloads_with_its_own_hashes_and_directory(
        tmp_path, monkeypatch, synthetic_mnist_dir):
    hashes = published_hashes(synthetic_mnist_dir)
    monkeypatch.setattr(download, "FASHION_MNIST_SHA256", hashes)
    monkeypatch.setattr(download, "FASHION_MNIST_DIR", str(tmp_path / "fashion"))
    monkeypatch.setattr(download, "DEFAULT_DIR", str(tmp_path / "mnist"))
    with serving(synthetic_mnist_dir) as (url, requested):
        monkeypatch.setattr(download, "FASHION_MNIST_URL", url)
        pixels = _pixels(load_mnist("test", 1000, dataset="fashion_mnist", shuffle=False))
    assert len(requested) == 4
    assert sorted(p.name for p in (tmp_path / "fashion").iterdir()) == sorted(FILES.values())
    assert not (tmp_path / "mnist").exists()  # MNIST's cache untouched
    assert pixels.tobytes() == scale_pixels(read_mnist(synthetic_mnist_dir, "test")[0]).tobytes()
    monkeypatch.setitem(hashes, FILES["test_images"], "0" * 64)
    with pytest.raises(DataError, match="is not the published Fashion-MNIST file"):
        download.download_mnist(dataset="fashion_mnist")


def test_fashion_mnist_from_tfds_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        images, labels = read_images("fashion_mnist", "test", source="tfds")
    assert images.shape == (20, 784) and images.dtype == np.uint8 and images.max() > 0
    assert labels.shape == (20,) and set(labels) <= set(range(10))


def test_an_unknown_dataset_is_named():
    with pytest.raises(DataError, match=r"Unknown dataset 'cifar10'.*mnist, fashion_mnist"):
        load_mnist(dataset="cifar10")
    assert DATASETS == ("mnist", "fashion_mnist")


def test_labels_come_with_their_images_in_every_order(synthetic_mnist_dir):
    images, labels = read_mnist(synthetic_mnist_dir, "train[5000:]")
    by_image = {scale_pixels(image).tobytes(): label for image, label in zip(images, labels)}
    ds = load_mnist(batch_size=64, data_dir=synthetic_mnist_dir, seed=4, labels=True)
    for x, y in ds.take(3):
        assert y.dtype == tf.int64 and x.shape == (64, 784)
        assert [by_image[row.tobytes()] for row in x.numpy()] == list(y.numpy())
    assert ds.stream is None  # (images, labels) batches go through tf.data


@pytest.mark.parametrize("kind", ["uint8", "float"])
def test_a_npz_file_of_any_image_shape(tmp_path, kind):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (300, 12, 10), dtype=np.uint8)
    test = rng.integers(0, 256, (50, 12, 10), dtype=np.uint8)
    if kind == "float":
        train, test = train / 255.0, test / 255.0  # float64 in [0, 1]
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=train, x_test=test, y_test=np.arange(50) % 3)
    batch = next(iter(load_mnist(batch_size=300, dataset=str(path), shuffle=False)))
    expected = scale_pixels(train.reshape(300, 120)) if kind == "uint8" else train.reshape(300, 120)
    assert batch.shape == (300, 120)
    np.testing.assert_array_equal(batch.numpy(), expected.astype(np.float32))
    x, y = next(iter(load_mnist("test[10:]", 100, dataset=str(path), labels=True, shuffle=False)))
    assert x.shape == (40, 120) and list(y.numpy()) == list(np.arange(10, 50) % 3)
    with pytest.raises(DataError, match="holds no labels"):
        load_mnist(dataset=str(path), labels=True)


@pytest.mark.parametrize("arrays, message", [
    ({"x_test": np.zeros((5, 4), np.uint8)}, r"has no array 'x_train' \(it has \['x_test'\]\)"),
    ({"x_train": np.full((5, 4), 1.5)}, r"uint8 pixels or floats in \[0, 1\].* 1.5"),
    ({"x_train": np.full((5, 4), np.nan)}, r"floats in \[0, 1\] without NaN"),
    ({"x_train": np.zeros((5, 4), np.int32)}, r"holds int32 values"),
    ({"x_train": np.zeros(5, np.uint8)}, r"expected \(N, \.\.\.\) images"),
    ({"x_train": np.zeros((5, 4), np.uint8), "y_train": np.zeros(4)}, r"4 labels for 5 images"),
])
def test_a_bad_npz_file_is_named_with_the_fix(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as info:
        read_images(str(path), "train")
    assert str(path) in str(info.value)
    (tmp_path / "notzip.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="Could not read .*notzip.npz"):
        read_images(str(tmp_path / "notzip.npz"))


def test_binarized_batches_are_bernoulli_draws_of_the_intensities(synthetic_mnist_dir):
    plain = load_mnist(batch_size=1000, data_dir=synthetic_mnist_dir, seed=1)
    binary = load_mnist(batch_size=1000, data_dir=synthetic_mnist_dir, seed=1, binarize=True)
    x, b = (np.stack([np.asarray(batch) for batch in ds.take(6)]) for ds in (plain, binary))
    assert set(np.unique(b)) == {0.0, 1.0}
    assert not b[x == 0].any() and b[x == 1].all()  # certain pixels stay as they were
    # A pixel of intensity p is 1 with probability p: over the uncertain
    # pixels, the count of ones is within 5 standard deviations of sum(p).
    p = x[(x > 0) & (x < 1)].astype(np.float64)
    ones = b[(x > 0) & (x < 1)].sum()
    assert abs(ones - p.sum()) < 5 * np.sqrt((p * (1 - p)).sum())
    # Each use of an image draws anew: the same image in two epochs differs.
    again = load_mnist("test", 2000, synthetic_mnist_dir, shuffle=False, binarize=True,
                       repeat=True, seed=1)
    first, second = (np.asarray(batch) for batch in again.take(2))
    assert not np.array_equal(first, second)


def test_binarization_is_keyed_by_seed_and_step(synthetic_mnist_dir):
    def batches(seed, initial_step=0, count=4):
        ds = load_mnist(batch_size=64, data_dir=synthetic_mnist_dir, seed=seed, binarize=True,
                        initial_step=initial_step)
        return [np.asarray(batch) for batch in ds.take(count)]

    run = batches(seed=2, count=120)  # past the end of the 7,000-image epoch
    resumed = batches(seed=2, initial_step=100, count=20)
    assert all(np.array_equal(a, b) for a, b in zip(run[100:], resumed))
    assert not np.array_equal(run[0], batches(seed=3, count=1)[0])
    # The stream fit draws in-graph gives the same bits as tf.data.
    stream = load_mnist(batch_size=64, data_dir=synthetic_mnist_dir, seed=2,
                        binarize=True, initial_step=100).stream
    stream.start()
    block = tf.function(stream.next_block)(tf.constant(20)).numpy()
    assert np.array_equal(block, np.stack(resumed))


def test_mnist_batches_are_used_as_their_dataset_and_copy(synthetic_mnist_dir):
    import copy

    batches = load_mnist(batch_size=8, data_dir=synthetic_mnist_dir, seed=1)
    first = next(iter(batches))
    assert batches.element_spec.shape.as_list() == [None, 784]  # tf.data's, handed over
    assert np.array_equal(batches.take(1).get_single_element(), first)
    copied = copy.copy(batches)  # no recursion through the attributes it hands over
    assert copied.stream is batches.stream and copied.dataset is batches.dataset
