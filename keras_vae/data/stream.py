"""Each epoch's order of the examples, and `load_mnist`'s batches drawn
inside the training graph.

A `tf.data` iterator costs a hand-off between threads at every step, and on
two cores its worker threads compete with the step's own. `BatchStream`
gives the same batches as `load_mnist`'s dataset, bit for bit, from ops that
run inside `VAE.fit`'s multi-step loop (see `keras_vae.execution`).
"""

import tensorflow as tf


def epoch_order(n, seed, shuffle, epoch):
    """Epoch `epoch`'s order of the `n` examples: a permutation keyed by (seed, epoch)."""
    if not shuffle:
        return tf.range(n, dtype=tf.int64)
    keys = tf.random.stateless_uniform(
        [n], seed=tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)]),
        minval=None, maxval=None, dtype=tf.int64,
    )
    return tf.cast(tf.argsort(keys, stable=True), tf.int64)


# Folded into the data seed for the binarization's draws, so that they are not
# the draws of `epoch_order`'s keys (ASCII "bin").
_BINARIZE_KEY = 0x62696E


def binarized_batch(x, seed, step):
    """Batch `step`'s images with each pixel drawn as Bernoulli(intensity),
    keyed by (`seed`, `step`) alone: dynamic binarization (Burda et al. 2016)
    that a resumed run repeats."""
    key = tf.random.experimental.stateless_fold_in(
        tf.constant([seed, _BINARIZE_KEY], tf.int64), tf.cast(step, tf.int64))
    return bernoulli_pixels(x, key)


def bernoulli_pixels(x, key):
    """Each pixel of `x` drawn as Bernoulli(intensity), from the stateless seed `key`."""
    return tf.cast(tf.random.stateless_uniform(tf.shape(x), seed=key) < x, x.dtype)


class BatchStream:
    """The endless batch stream of `load_mnist(..., repeat=True)`, in blocks.

    Batch `s` holds stream positions `s * batch_size` to `(s + 1) * batch_size
    - 1`; position `p` is example `epoch_order(p // n)[p % n]`. `next_block`
    gathers the images of several batches at once, so that a training loop
    spends one slice per step on its data. The orders of the two epochs a
    block can touch are kept in a variable, recomputed when the stream enters
    a new epoch.

    Args:
        pixels: uint8 tensor `(n, 784)`.
        batch_size: int, at most `n`.
        seed: int, the shuffle seed.
        shuffle: bool.
        initial_step: int, the first batch of the stream.
        scale: function from the stored pixels to the float images.
        binarize: bool, binarize each batch with `binarized_batch`.
    """

    def __init__(self, pixels, batch_size, seed, shuffle, initial_step, scale, binarize=False):
        self.pixels, self.batch_size, self.seed = pixels, batch_size, seed
        self.shuffle, self.initial_step, self.scale = shuffle, initial_step, scale
        self.binarize = binarize
        self.n = int(pixels.shape[0])
        self._variables = None

    def max_block(self):
        """The most batches one block can hold: they may span two epochs, no more."""
        return self.n // self.batch_size

    def start(self):
        """Rewinds to `initial_step`, as a fresh `tf.data` iterator would begin."""
        if self._variables is None:
            with tf.init_scope():
                self._variables = (
                    tf.Variable(self.initial_step, dtype=tf.int64, trainable=False),
                    tf.Variable(-1, dtype=tf.int64, trainable=False),  # epoch of orders[:n]
                    tf.Variable(tf.zeros([2 * self.n], tf.int64), trainable=False),
                )
        step, epoch, _ = self._variables
        step.assign(self.initial_step)
        epoch.assign(-1)

    def next_block(self, steps):
        """The next `steps` batches, float `(steps, batch_size, x_dim)`; advances the stream.

        `steps` (a scalar tensor) is at most `max_block()`.
        """
        step, epoch, orders = self._variables
        steps = tf.cast(steps, tf.int64)
        first = step * self.batch_size
        first_epoch = first // self.n

        def refill():
            orders.assign(tf.concat([
                epoch_order(self.n, self.seed, self.shuffle, first_epoch),
                epoch_order(self.n, self.seed, self.shuffle, first_epoch + 1),
            ], 0))
            return epoch.assign(first_epoch)

        held = tf.cond(tf.equal(epoch, first_epoch), lambda: tf.identity(epoch), refill)
        with tf.control_dependencies([held]):
            start = first - first_epoch * self.n
            examples = orders[start:start + steps * self.batch_size]
            block = tf.gather(self.pixels, examples)
            images = tf.reshape(self.scale(block), [steps, self.batch_size, -1])
            if self.binarize:
                images = tf.map_fn(
                    lambda i: binarized_batch(images[i], self.seed, first // self.batch_size
                                              + tf.cast(i, tf.int64)),
                    tf.range(tf.cast(steps, tf.int32)), fn_output_signature=images.dtype)
        with tf.control_dependencies([images]):
            advanced = step.assign_add(steps)
        with tf.control_dependencies([advanced]):
            return tf.identity(images)
