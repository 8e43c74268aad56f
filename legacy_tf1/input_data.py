"""Stand-in for TF1's removed ``tensorflow.examples.tutorials.mnist.input_data``.

TensorFlow 2 no longer ships the tutorial module the original script
imported. This module keeps the part of it the script used:
``read_data_sets(train_dir, one_hot=True)`` returning ``train``,
``validation`` and ``test`` data sets whose ``next_batch`` shuffles and wraps
around epochs exactly as TF1's did.

The IDX files are read by ``keras_vae.data`` (one reader for the project);
pixels are scaled with the original's rule, ``float32(pixel) * (1.0 / 255.0)``.

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

import numpy as np

from keras_vae.data import read_mnist, scale_pixels

NUM_CLASSES = 10

# TF1 returned this same namedtuple (tensorflow/contrib/learn/.../base.py).
Datasets = collections.namedtuple("Datasets", ["train", "validation", "test"])


class DataSet:
    """A set of examples served in shuffled minibatches, as TF1's ``DataSet``.

    Args:
        images: array, the examples, first axis the example index. Stored as
            given (``read_data_sets`` passes scaled float32 pixels).
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


def dense_to_one_hot(labels_dense, num_classes=NUM_CLASSES):
    """Converts class labels `(N,)` to one-hot rows `(N, num_classes)` (float64, as TF1)."""
    labels_dense = np.asarray(labels_dense)
    labels_one_hot = np.zeros((labels_dense.shape[0], num_classes))
    labels_one_hot[np.arange(labels_dense.shape[0]), labels_dense] = 1
    return labels_one_hot


def read_data_sets(train_dir, one_hot=False, validation_size=5000, seed=None):
    """Reads MNIST from `train_dir` into train, validation and test data sets.

    As TF1's: the first `validation_size` of the 60,000 training images form
    `validation`, the rest `train` (55,000 by default: TFDS' `train[5000:]`);
    `test` is the 10,000 test images. Images are float32 `(N, 784)` in
    `[0, 1]`; labels are uint8 `(N,)`, or float64 `(N, 10)` one-hot rows.

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
    train_images, train_labels = read_mnist(train_dir, "train")
    test_images, test_labels = read_mnist(train_dir, "test")
    if not 0 <= validation_size <= len(train_images):
        raise ValueError(
            f"validation_size must be between 0 and {len(train_images)}. "
            f"Received: validation_size={validation_size}"
        )
    if one_hot:
        train_labels = dense_to_one_hot(train_labels)
        test_labels = dense_to_one_hot(test_labels)

    train_images = scale_pixels(train_images)
    test_images = scale_pixels(test_images)

    validation = DataSet(train_images[:validation_size], train_labels[:validation_size], seed=seed)
    train = DataSet(train_images[validation_size:], train_labels[validation_size:], seed=seed)
    test = DataSet(test_images, test_labels, seed=seed)
    return Datasets(train=train, validation=validation, test=test)
