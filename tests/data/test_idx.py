"""Tests for keras_vae.data: IDX reading, splits, pixel scaling, batching, TFDS."""

import gzip
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_vae.data.batches import load_mnist

from keras_vae.data.idx import DataError, read_idx, read_mnist, scale_pixels
from tests.mnist_files import FILES, idx_bytes, write_gz

REPO = Path(__file__).resolve().parents[2]


def tiny_mnist(directory, n=10, split="train"):
    """`n` 28x28 images, image i filled with the value i, labels i % 10."""
    images = np.repeat(np.arange(n, dtype=np.uint8), 28 * 28).reshape(n, 28, 28)
    write_gz(directory / FILES[f"{split}_images"], idx_bytes(images))
    write_gz(directory / FILES[f"{split}_labels"], idx_bytes(np.arange(n) % 10))
    return directory


def example_ids(batch):
    """Which tiny_mnist image each row of a scaled batch is."""
    batch = np.asarray(batch)
    assert (batch == batch[:, :1]).all()  # each row is one constant image
    return [int(i) for i in np.rint(batch[:, 0] * 255)]


# Real MNIST


@pytest.fixture(scope="module")
def train(real_mnist_dir):
    return read_mnist(real_mnist_dir, "train")


@pytest.mark.real_mnist(reason="checks the published files: their sizes and shapes")
def test_reads_all_four_real_files(real_mnist_dir):
    for name in FILES.values():
        array = read_idx(real_mnist_dir / name)
        assert array.dtype == np.uint8
        n = 60000 if name.startswith("train") else 10000
        assert array.shape == ((n, 28, 28) if "images" in name else (n,))


@pytest.mark.real_mnist(reason="checks the real splits' sizes and the original's 55,000")
def test_real_split_sizes(real_mnist_dir, train):
    images, labels = train
    assert images.shape == (60000, 784) and labels.shape == (60000,)
    assert images.dtype == labels.dtype == np.uint8
    test_images, test_labels = read_mnist(real_mnist_dir, "test")
    assert test_images.shape == (10000, 784) and test_labels.shape == (10000,)
    assert len(read_mnist(real_mnist_dir, "train[:5000]")[0]) == 5000

    # The default split is the original's: the last 55,000 training images.
    images_5000, labels_5000 = read_mnist(real_mnist_dir)
    assert images_5000.shape == (55000, 784)
    np.testing.assert_array_equal(images_5000, images[5000:])
    np.testing.assert_array_equal(labels_5000, labels[5000:])

    last, last_labels = read_mnist(real_mnist_dir, "test[-1000:]")
    np.testing.assert_array_equal(last, test_images[9000:])
    np.testing.assert_array_equal(last_labels, test_labels[9000:])


@pytest.mark.real_mnist(reason="checks MNIST's published pixel mean, deviation and label counts")
def test_real_train_statistics(train):
    images, labels = train
    pixels = scale_pixels(images)
    assert pixels.dtype == np.float32
    # The published 0.1307 and 0.3081 are to 4 decimals (within 5e-5); NumPy's
    # float32 sums of 47M pixels err by far less than the rest of 1e-4.
    assert pixels.mean() == pytest.approx(0.1307, abs=1e-4)
    assert pixels.std() == pytest.approx(0.3081, abs=1e-4)
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(labels, minlength=10).tolist() == counts


@pytest.mark.real_mnist(reason="checks that batches are the real training images")
def test_real_batches(real_mnist_dir, train):
    batch = next(iter(load_mnist(data_dir=real_mnist_dir, seed=0)))
    assert batch.shape == (64, 784) and batch.dtype.name == "float32"
    # Every row is one of the 55,000 training images, scaled.
    rows = {row.tobytes() for row in scale_pixels(train[0][5000:])}
    assert all(row.tobytes() in rows for row in batch.numpy())


# Pixel scaling


def test_scale_pixels_numpy_bits():
    values = np.arange(256, dtype=np.uint8)
    scaled = scale_pixels(values)
    assert scaled.dtype == np.float32
    expected = values.astype(np.float32) * np.float32(1.0 / 255.0)
    # One correctly rounded multiplication per pixel, no sum: the same bits on every CPU.
    np.testing.assert_array_equal(scaled.view(np.uint32), expected.view(np.uint32))
    assert scaled[0] == 0.0 and scaled[255] == 1.0
    # Multiplying by 1/255 is not dividing by 255: the original multiplied.
    divided = values.astype(np.float32) / np.float32(255.0)
    assert (scaled.view(np.uint32) != divided.view(np.uint32)).sum() == 126


def test_scale_pixels_tensorflow_matches_numpy():
    import tensorflow as tf

    values = np.arange(256, dtype=np.uint8)
    eager = scale_pixels(tf.constant(values))
    assert eager.dtype == tf.float32
    graph = tf.function(scale_pixels)(tf.constant(values))
    # Elementwise, no sum: the bits of one correctly rounded multiplication.
    for result in (eager, graph):
        np.testing.assert_array_equal(
            result.numpy().view(np.uint32), scale_pixels(values).view(np.uint32)
        )


# load_mnist from an IDX directory


def test_batches_in_order_without_shuffle(tmp_path):
    tiny_mnist(tmp_path)
    batches = list(load_mnist("train", 4, tmp_path, shuffle=False, repeat=False))
    assert [b.shape[0] for b in batches] == [4, 4, 2]
    assert all(b.dtype.name == "float32" for b in batches)
    pixels = np.concatenate([b.numpy() for b in batches])
    expected = scale_pixels(read_mnist(tmp_path, "train")[0])
    # The same one multiplication per pixel in tf.data: the same bits.
    np.testing.assert_array_equal(pixels.view(np.uint32), expected.view(np.uint32))
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0


def test_batches_run_across_epochs_and_reshuffle(tmp_path):
    tiny_mnist(tmp_path)
    ds = load_mnist("train", 4, tmp_path, seed=1)
    batches = [example_ids(b) for b in ds.take(10)]  # 40 examples, 4 epochs
    assert all(len(b) == 4 for b in batches)
    stream = sum(batches, [])
    epochs = [stream[i : i + 10] for i in range(0, 40, 10)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(10))
    # The 3rd batch ends epoch 1 and starts epoch 2.
    assert batches[2] == epochs[0][8:] + epochs[1][:2]
    assert epochs[0] != list(range(10))
    assert epochs[1] != epochs[0]
    assert len({tuple(e) for e in epochs}) > 1


def test_seed_makes_order_reproducible(tmp_path):
    tiny_mnist(tmp_path)

    def order(seed):
        ds = load_mnist("train", 4, tmp_path, seed=seed)
        return [example_ids(b) for b in ds.take(8)]

    assert order(3) == order(3)
    assert order(3) != order(4)


@pytest.mark.parametrize("initial_step", [1, 2, 5, 7])
def test_initial_step_resumes_the_same_stream(tmp_path, initial_step):
    # 10 examples, batch 4: steps 2, 5 and 7 start inside an epoch, across
    # one or more epoch ends.
    tiny_mnist(tmp_path)
    full = [example_ids(b) for b in load_mnist("train", 4, tmp_path, seed=3).take(12)]
    resumed = load_mnist("train", 4, tmp_path, seed=3, initial_step=initial_step)
    assert [example_ids(b) for b in resumed.take(12 - initial_step)] == full[initial_step:]


def test_length_is_known(tmp_path):
    tiny_mnist(tmp_path)
    assert load_mnist("train", 4, tmp_path, repeat=False).cardinality() == 3
    assert load_mnist("train", 4, tmp_path, repeat=False, initial_step=1).cardinality() == 2
    assert load_mnist("train", 4, tmp_path).cardinality() == tf.data.INFINITE_CARDINALITY


def test_evaluate_on_one_pass_averages_the_real_batches_only(synthetic_mnist_dir):
    # Keras' evaluate() on a dataset of unknown length averaged in an empty
    # step: 2/3 of the true loss for two batches.
    import keras

    from keras_vae.model import VAE

    keras.utils.set_random_seed(0)
    model = VAE()
    model.compile()
    ds = load_mnist("test[:2000]", 1000, synthetic_mnist_dir, shuffle=False, repeat=False)
    images = np.concatenate([b.numpy() for b in ds])
    want = np.mean([float(model.compute_vae_loss(images[i : i + 1000])[0]) for i in (0, 1000)])
    got = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
    # Statistical: each call draws its own noise, which moves the mean loss of
    # 2,000 images by ~0.3% (measured); the bug was 33% off.
    assert got == pytest.approx(want, rel=0.01)


def test_a_test_split_makes_one_pass_by_default(synthetic_mnist_dir):
    import keras

    from keras_vae.model import VAE

    assert load_mnist("test", 500, synthetic_mnist_dir).cardinality() == 4  # 2,000 images
    assert load_mnist("test[:700]", 500, synthetic_mnist_dir).cardinality() == 2
    assert (load_mnist("train", 500, synthetic_mnist_dir).cardinality()
            == tf.data.INFINITE_CARDINALITY)
    keras.utils.set_random_seed(0)
    model = VAE(h_dim=8, z_dim=2)
    model.compile()
    result = model.evaluate(load_mnist("test", data_dir=synthetic_mnist_dir), verbose=0,
                            return_dict=True)
    assert np.isfinite(result["loss"])


def test_one_pass_shuffled(tmp_path):
    tiny_mnist(tmp_path)
    batches = [example_ids(b) for b in load_mnist("train", 4, tmp_path, repeat=False)]
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(sum(batches, [])) == list(range(10))


def test_split_slices_and_only_needed_files(tmp_path):
    tiny_mnist(tmp_path, split="test")  # no train files at all
    images, labels = read_mnist(tmp_path, "test[2:-3]")
    assert example_ids(scale_pixels(images)) == [2, 3, 4, 5, 6]
    assert labels.tolist() == [2, 3, 4, 5, 6]
    assert len(read_mnist(tmp_path, "test[:]")[0]) == 10
    batches = list(load_mnist("test[-4:]", 8, tmp_path, shuffle=False, repeat=False))
    assert [example_ids(b) for b in batches] == [[6, 7, 8, 9]]


# Data problems


def assert_data_error(call, *names):
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    for name in names:
        assert str(name) in message
    assert "--data-dir" in message and "data_dir=" in message
    return message


def test_missing_file(tmp_path):
    message = assert_data_error(
        lambda: read_mnist(tmp_path, "test"), tmp_path / FILES["test_images"]
    )
    assert "not found" in message
    tiny_mnist(tmp_path, split="test")
    (tmp_path / FILES["test_labels"]).unlink()
    assert_data_error(lambda: load_mnist("test", data_dir=tmp_path), tmp_path / FILES["test_labels"])


@pytest.mark.parametrize("name, hint", [("some_file.txt", False), ("mine.npz", True)])
def test_a_file_given_as_the_directory_is_named(tmp_path, name, hint):
    path = tmp_path / name
    path.write_text("not a directory")
    message = assert_data_error(lambda: read_mnist(path), path)
    assert f"--data-dir (data_dir=) names a file, not a directory: {path}." in message
    assert "truncated or corrupt" not in message
    assert ("a .npz file of images goes to --data" in message) == hint


def test_truncated_gzip(tmp_path):
    tiny_mnist(tmp_path, split="test")
    path = tmp_path / FILES["test_images"]
    path.write_bytes(path.read_bytes()[:-30])
    message = assert_data_error(lambda: read_mnist(tmp_path, "test"), path)
    assert "gzip" in message


def test_not_gzip(tmp_path):
    path = tmp_path / FILES["test_images"]
    path.write_bytes(idx_bytes(np.zeros((2, 28, 28))))  # IDX, but not compressed
    message = assert_data_error(lambda: read_idx(path), path)
    assert "gzip" in message


def test_corrupt_gzip_payload(tmp_path):
    path = tmp_path / FILES["test_images"]
    data = bytearray(gzip.compress(idx_bytes(np.arange(5000) % 256)))
    data[20:40] = bytes(20)  # inside the deflate stream
    path.write_bytes(bytes(data))
    assert_data_error(lambda: read_idx(path), path)


def test_wrong_magic(tmp_path):
    path = write_gz(tmp_path / "bad.gz", idx_bytes(np.zeros((2, 28, 28)), magic=2052))
    message = assert_data_error(lambda: read_idx(path), path)
    assert "2052" in message and "2051" in message and "2049" in message
    # A labels file where the images file belongs.
    tiny_mnist(tmp_path, split="test")
    images = tmp_path / FILES["test_images"]
    write_gz(images, idx_bytes(np.zeros(10)))
    assert_data_error(lambda: read_mnist(tmp_path, "test"), images)
    # An images file where the labels file belongs.
    tiny_mnist(tmp_path, split="test")
    labels = write_gz(tmp_path / FILES["test_labels"], idx_bytes(np.zeros((10, 28, 28))))
    assert_data_error(lambda: read_mnist(tmp_path, "test"), labels)


def test_header_payload_mismatch(tmp_path):
    path = write_gz(
        tmp_path / FILES["test_images"], idx_bytes(np.zeros((9, 28, 28)), shape=(10, 28, 28))
    )
    message = assert_data_error(lambda: read_idx(path), path)
    assert str(9 * 784) in message and str(10 * 784) in message
    short = write_gz(tmp_path / "short.gz", (2051).to_bytes(4, "big") + bytes(5))
    assert_data_error(lambda: read_idx(short), short)


def test_not_28x28(tmp_path):
    tiny_mnist(tmp_path, split="test")
    images = write_gz(tmp_path / FILES["test_images"], idx_bytes(np.zeros((10, 14, 14))))
    assert_data_error(lambda: read_mnist(tmp_path, "test"), images)


def test_image_label_count_mismatch(tmp_path):
    tiny_mnist(tmp_path, split="test")
    write_gz(tmp_path / FILES["test_labels"], idx_bytes(np.zeros(9)))
    message = assert_data_error(
        lambda: read_mnist(tmp_path, "test"),
        tmp_path / FILES["test_images"],
        tmp_path / FILES["test_labels"],
    )
    assert "10" in message and "9" in message


@pytest.mark.parametrize(
    "split", ["validation", "train[:10%]", "train[1:2:3]", "train[a:]", "test[5]", "", None]
)
def test_bad_split(tmp_path, split):
    tiny_mnist(tmp_path)
    calls = [lambda: read_mnist(tmp_path, split)]
    if split is not None:  # load_mnist's None is its default split
        calls.append(lambda: load_mnist(split, data_dir=tmp_path))
    for call in calls:
        with pytest.raises(DataError, match=r'"train", "test", "train\[a:b\]"') as info:
            call()
        assert f"split={split!r}" in str(info.value)


def test_empty_split(tmp_path):
    tiny_mnist(tmp_path)
    with pytest.raises(DataError, match="no examples"):
        load_mnist("train[5:5]", data_dir=tmp_path)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "64", None])
def test_bad_batch_size(tmp_path, batch_size):
    tiny_mnist(tmp_path)
    with pytest.raises(ValueError, match=rf"Received: batch_size={batch_size!r}"):
        load_mnist("train", batch_size, tmp_path)


@pytest.mark.parametrize("initial_step", [-1, 1.5, "3"])
def test_bad_initial_step(tmp_path, initial_step):
    tiny_mnist(tmp_path)
    with pytest.raises(ValueError, match=rf"Received: initial_step={initial_step!r}"):
        load_mnist("train", 4, tmp_path, initial_step=initial_step)


# TensorFlow Datasets


def test_tfds_mock_data():
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=20):
        ds = load_mnist(batch_size=8, seed=0, source="tfds")
        batches = list(ds.take(3))  # runs across the end of the 20 examples
        one_pass = list(load_mnist(batch_size=8, repeat=False, source="tfds"))
    for batch in batches:
        assert batch.shape == (8, 784) and batch.dtype.name == "float32"
        assert 0.0 <= batch.numpy().min() and batch.numpy().max() <= 1.0
    assert [b.shape[0] for b in one_pass] == [8, 8, 4]
    pixels = np.concatenate([b.numpy() for b in one_pass])
    assert pixels.max() > 0.5  # fake images, but not all zeros


def test_tfds_offline_fails_fast(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # offline, even on a machine that is not
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_mnist(source="tfds", tfds_data_dir=str(tmp_path))
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert "Could not download MNIST (offline?)" in message
    assert "--data-dir" in message and "data_dir=" in message
    assert all(name in message for name in FILES.values())
    assert elapsed < 30, f"offline TFDS took {elapsed:.0f} s to fail"
    assert not any(tmp_path.rglob("*.tfrecord*"))


def test_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match="source='tfds2'"):
        load_mnist(source="tfds2")
