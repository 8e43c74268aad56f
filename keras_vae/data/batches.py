"""The original's batches: `load_mnist`, `next_batch(64)` as a dataset that
`VAE.fit` can also draw inside its training loop.

The original TF1 script trained on `read_data_sets('MNIST_data')`' train
split: the last 55,000 of MNIST's 60,000 training images (the first 5,000
were its validation split), drawn with `mnist.train.next_batch(64)`, which
reshuffles every epoch and lets a batch run on across an epoch's end.

Example:

```python
ds = load_mnist(data_dir="MNIST_data", seed=0)
x = next(iter(ds))  # (64, 784) float32 in [0, 1]
```
"""

import typing

import numpy as np
import tensorflow as tf

from keras_vae.checks import check_count
from keras_vae.data.idx import DataError, parse_split, scale_pixels
from keras_vae.data.sources import default_split, read_images
from keras_vae.data.stream import BatchStream, binarized_batch, epoch_order


def load_mnist(split=None, batch_size=64, data_dir=None, shuffle=True, seed=None, repeat=None,
               tfds_data_dir=None, initial_step=0, source="idx", dataset="mnist",
               labels=False, binarize=False):
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
            their published SHA-256 (`keras_vae.data.download`).
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
        A `MnistBatches`: float32 `(batch, x_dim)` batches in [0, 1] (`x_dim`
        is 784 for MNIST), a `tf.data.Dataset` to iterate, and, repeating
        images only, the same batches for `VAE.fit` to draw in-graph.

    Raises:
        ValueError: `batch_size` is not a positive integer.
        DataError: the data cannot be read or downloaded, or the split is
            unknown or empty.
    """
    # Longer: the docstring is the reference of the package's main entry point.
    check_count("batch_size", batch_size, minimum=1)
    check_count("initial_step", initial_step, minimum=0)
    split = default_split(dataset) if split is None else split
    if repeat is None:
        repeat = parse_split(split)[0] == "train"
    images, label_values = read_images(dataset, split, data_dir, source, tfds_data_dir)
    if labels and label_values is None:
        raise DataError(f"{dataset} holds no labels: add y_train and y_test arrays to it.")
    if seed is None:
        seed = int(np.random.randint(2**31))  # follows keras.utils.set_random_seed
    pixels = tf.constant(images)  # (n, x_dim) uint8 (or float32), kept once in memory
    scale = scale_pixels if images.dtype == np.uint8 else tf.identity
    order = _Order(len(images), batch_size, seed, shuffle, initial_step)
    ds = _dataset(pixels, scale, order, repeat, binarize, label_values if labels else None)
    stream = None
    if repeat and batch_size <= len(images) and not labels:
        stream = BatchStream(pixels, batch_size, seed, shuffle, initial_step, scale, binarize)
    return MnistBatches(ds, stream)


class _Order(typing.NamedTuple):
    """Which examples make the batches: `n` of them, `batch_size` a batch,
    shuffled by `seed` (if `shuffle`), from batch `initial_step` on."""

    n: int
    batch_size: int
    seed: int
    shuffle: bool
    initial_step: int


def _dataset(pixels, scale, order, repeat, binarize, labels):
    """The batches as a `tf.data.Dataset`; `(images, labels)` if `labels` is given."""
    n, batch_size, seed, shuffle, initial_step = order
    # The stream of example indices, epoch after epoch, from `initial_step`'s
    # first example: any step's batch is found without drawing the ones before.
    first_epoch, offset = divmod(initial_step * batch_size, n)
    epochs = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max if repeat else first_epoch + 1)
    # The functions given to tf.data skip AutoGraph (do_not_convert): they
    # have no Python control flow on tensors to convert.
    indices = epochs.flat_map(tf.autograph.experimental.do_not_convert(
        lambda epoch: tf.data.Dataset.from_tensor_slices(epoch_order(n, seed, shuffle, epoch))
    )).skip(offset)
    ds = indices.batch(batch_size).enumerate(initial_step)  # (step, (batch,) indices)
    # flat_map hides the length, and with an unknown length Keras' evaluate()
    # would average one empty step into its metrics.
    batches = tf.data.INFINITE_CARDINALITY if repeat else -(-(n - offset) // batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))

    def batch_of(step, batch):
        x = scale(tf.gather(pixels, batch))  # (batch, x_dim) float32
        if binarize:
            x = binarized_batch(x, seed, step)
        return x if labels is None else (x, tf.gather(labels, batch))

    ds = ds.map(tf.autograph.experimental.do_not_convert(batch_of),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


class MnistBatches:
    """What `load_mnist` returns: its batches as a `tf.data.Dataset`, and for a
    repeating stream of images the same batches drawn inside a training graph.

    It is used as its `dataset` is: iterated, or through `tf.data`'s methods
    (`take`, `map`, `element_spec`, `cardinality`, ...), which it hands to
    `dataset` and which return plain `tf.data.Dataset`s. `VAE.fit` given it
    (and `steps_per_epoch`) draws the batches from `stream` inside its
    training loop, many steps per call into TensorFlow; given a plain
    dataset, it takes Keras' own `tf.data` path. `VAE.evaluate` and
    `predict` read `dataset`; for any other Keras model, pass `.dataset`.

    Attributes:
        dataset: the `tf.data.Dataset` of the batches.
        stream: a `keras_vae.data.stream.BatchStream` of the same batches, or
            None (one pass, labelled batches, or a batch larger than the data).
    """

    def __init__(self, dataset, stream=None):
        self.dataset, self.stream = dataset, stream

    def __iter__(self):
        return iter(self.dataset)

    def __getattr__(self, name):
        # Only names not found on this object: tf.data's methods and properties.
        # Read from __dict__: an object being copied has no `dataset` yet.
        dataset = self.__dict__.get("dataset")
        if dataset is None:
            raise AttributeError(name)
        return getattr(dataset, name)

    def __repr__(self):
        return f"<MnistBatches in_graph={self.stream is not None} dataset={self.dataset!r}>"


def as_dataset(data):
    """`data`'s `tf.data.Dataset` if it is `MnistBatches`, else `data` as it is."""
    return data.dataset if isinstance(data, MnistBatches) else data
