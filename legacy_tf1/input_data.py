"""Stand-in for TF1's removed ``tensorflow.examples.tutorials.mnist.input_data``.

TensorFlow 2 no longer ships the tutorial module the original script
imported. This module keeps the part of it the script used:
``read_data_sets(train_dir, one_hot=True)`` returning ``train``,
``validation`` and ``test`` data sets whose ``next_batch`` shuffles and wraps
around epochs exactly as TF1's did.

It reads the four IDX `.gz` files and scales the pixels itself, the way
`read_data_sets` did (big-endian header words, `uint8` pixels, then
`float32(pixel) * (1.0 / 255.0)`), and imports nothing of `keras_vae`: it is
the reference the port is checked against, so it shares none of the port's
code.

One deliberate difference: TF1 shuffled with NumPy's global generator
(``numpy.random.shuffle``, seeded once from ``seed``). Here each data set owns
a ``numpy.random.RandomState(seed)``, so no global state is touched and the
batch order can be reproduced. As in TF1, each shuffle permutes the current
(already shuffled) order, so with ``rng = np.random.RandomState(seed)`` the
first epoch is ``order = rng.permutation(n)`` and each later epoch is
``order = order[rng.permutation(n)]`` (the data set draws each permutation
as ``rng.shuffle(np.arange(n))``, the same numbers).

Example:

```python
from legacy_tf1 import input_data

mnist = input_data.read_data_sets("MNIST_data", one_hot=True, seed=0)
X_mb, y_mb = mnist.train.next_batch(64)  # (64, 784) float32, (64, 10)
```
"""

import collections
import gzip
import os

import numpy as np

NUM_CLASSES = 10

# The files `read_data_sets` downloaded into `train_dir`.
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

# TF1 returned this same namedtuple (tensorflow/contrib/learn/.../base.py).
Datasets = collections.namedtuple("Datasets", ["train", "validation", "test"])


class DataSet:
    """A set of examples served in shuffled minibatches, as TF1's ``DataSet``.

    As TF1's, given uint8 images `[N, rows, cols, 1]` (what `extract_images`
    reads) it flattens them to `[N, rows * cols]` and scales them to float32
    in [0, 1]; other arrays are kept as given.

    Args:
        images: array, the examples, first axis the example index.
        labels: array, one label (or one-hot row) per example.
        seed: int or None, seed of this data set's own
            ``numpy.random.RandomState``. Defaults to None (fresh entropy).
    """

    def __init__(self, images, labels, seed=None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                "images and labels must hold the same number of examples. "
                f"Received: images.shape={images.shape}, labels.shape={labels.shape}"
            )
        if images.dtype == np.uint8 and images.ndim == 4:
            images = images.reshape(images.shape[0], images.shape[1] * images.shape[2])
            # From [0, 255] to [0.0, 1.0], multiplying as TF1 did (not / 255).
            images = np.multiply(images.astype(np.float32), 1.0 / 255.0)
        self._images = images
        self._labels = labels
        self._num_examples = images.shape[0]
        self._epochs_completed = 0
        self._index_in_epoch = 0
        self._rng = np.random.RandomState(seed)

    @property
    def images(self):
        return self._images

    @property
    def labels(self):
        return self._labels

    @property
    def num_examples(self):
        return self._num_examples

    @property
    def epochs_completed(self):
        return self._epochs_completed

    def _shuffle(self):
        perm = np.arange(self._num_examples)
        self._rng.shuffle(perm)
        self._images = self._images[perm]
        self._labels = self._labels[perm]

    def next_batch(self, batch_size, shuffle=True):
        """Returns the next `batch_size` examples as `(images, labels)`.

        The first call of the first epoch shuffles the data. A batch that
        would run past the end of an epoch takes the epoch's remaining
        examples, reshuffles, and completes itself from the start of the
        next epoch (so every batch has exactly `batch_size` examples).

        Args:
            batch_size: int, examples per batch, between 1 and
                `num_examples`.
            shuffle: bool, whether to shuffle at each epoch start.
                Defaults to True.
        """
        if not 1 <= batch_size <= self._num_examples:
            raise ValueError(
                f"batch_size must be between 1 and num_examples={self._num_examples}. "
                f"Received: batch_size={batch_size}"
            )
        start = self._index_in_epoch
        # Shuffle for the first epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._shuffle()
        # Go to the next epoch
        if start + batch_size > self._num_examples:
            # Finished epoch
            self._epochs_completed += 1
            # Get the rest examples in this epoch
            rest_num_examples = self._num_examples - start
            images_rest_part = self._images[start:self._num_examples]
            labels_rest_part = self._labels[start:self._num_examples]
            # Shuffle the data
            if shuffle:
                self._shuffle()
            # Start next epoch
            start = 0
            self._index_in_epoch = batch_size - rest_num_examples
            end = self._index_in_epoch
            images_new_part = self._images[start:end]
            labels_new_part = self._labels[start:end]
            return (
                np.concatenate((images_rest_part, images_new_part), axis=0),
                np.concatenate((labels_rest_part, labels_new_part), axis=0),
            )
        self._index_in_epoch += batch_size
        end = self._index_in_epoch
        return self._images[start:end], self._labels[start:end]


def _read32(stream):
    """One big-endian uint32 word of an IDX header."""
    word = stream.read(4)
    if len(word) != 4:
        raise ValueError(f"{stream.name}: the IDX header ends early")
    return int(np.frombuffer(word, dtype=">u4")[0])


def _read_payload(stream, size):
    data = stream.read(size)
    if len(data) != size:
        raise ValueError(
            f"{stream.name}: the header announces {size} bytes of data, the file "
            f"holds {len(data)} (truncated?)"
        )
    return np.frombuffer(data, dtype=np.uint8)


def extract_images(path):
    """The images of an IDX `.gz` file as uint8 `[N, rows, cols, 1]`, as TF1 read them."""
    with gzip.open(path, "rb") as stream:
        magic = _read32(stream)
        if magic != 2051:
            raise ValueError(f"Invalid magic number {magic} in MNIST image file: {path}")
        num_images, rows, cols = _read32(stream), _read32(stream), _read32(stream)
        pixels = _read_payload(stream, num_images * rows * cols)
    return pixels.reshape(num_images, rows, cols, 1)


def extract_labels(path, one_hot=False, num_classes=NUM_CLASSES):
    """The labels of an IDX `.gz` file: uint8 `[N]`, or one-hot rows."""
    with gzip.open(path, "rb") as stream:
        magic = _read32(stream)
        if magic != 2049:
            raise ValueError(f"Invalid magic number {magic} in MNIST label file: {path}")
        labels = _read_payload(stream, _read32(stream))
    return dense_to_one_hot(labels, num_classes) if one_hot else labels


def dense_to_one_hot(labels_dense, num_classes=NUM_CLASSES):
    """Converts class labels `(N,)` to one-hot rows `(N, num_classes)` (float64, as TF1)."""
    labels_dense = np.asarray(labels_dense)
    labels_one_hot = np.zeros((labels_dense.shape[0], num_classes))
    labels_one_hot[np.arange(labels_dense.shape[0]), labels_dense] = 1
    return labels_one_hot


def read_data_sets(train_dir, one_hot=False, validation_size=5000, seed=None):
    """Reads MNIST from `train_dir` into train, validation and test data sets.

    As TF1's: the first `validation_size` of the 60,000 training images form
    `validation`, the rest `train` (the last 55,000 by default); `test` is the
    10,000 test images. Images are float32 `(N, 784)` in `[0, 1]`; labels are
    uint8 `(N,)`, or float64 `(N, 10)` one-hot rows.

    Args:
        train_dir: str or path, directory holding the four MNIST IDX `.gz`
            files.
        one_hot: bool, whether labels are one-hot rows. Defaults to False.
        validation_size: int, training images kept for `validation`.
            Defaults to 5000.
        seed: int or None, seed of each data set's shuffling generator.
            Defaults to None.

    Returns:
        A `Datasets(train, validation, test)` namedtuple of `DataSet`s.
    """
    def path(name):
        return os.path.join(os.fspath(train_dir), name)

    train_images = extract_images(path(TRAIN_IMAGES))
    train_labels = extract_labels(path(TRAIN_LABELS), one_hot=one_hot)
    test_images = extract_images(path(TEST_IMAGES))
    test_labels = extract_labels(path(TEST_LABELS), one_hot=one_hot)
    if not 0 <= validation_size <= len(train_images):
        raise ValueError(
            f"validation_size must be between 0 and {len(train_images)}. "
            f"Received: validation_size={validation_size}"
        )

    validation = DataSet(train_images[:validation_size], train_labels[:validation_size], seed=seed)
    train = DataSet(train_images[validation_size:], train_labels[validation_size:], seed=seed)
    test = DataSet(test_images, test_labels, seed=seed)
    return Datasets(train=train, validation=validation, test=test)
