"""The batches of `load_mnist`, drawn inside the training graph.

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


class BatchStream:
    """The endless batch stream of `load_mnist(..., repeat=True)`, step by step.

    Batch `s` holds stream positions `s * batch_size` to `(s + 1) * batch_size
    - 1`; position `p` is example `epoch_order(p // n)[p % n]`. The orders of
    the two epochs a batch can touch are kept in a variable and recomputed
    when the stream enters a new epoch.

    Args:
        pixels: uint8 tensor `(n, 784)`.
        batch_size: int, at most `n`.
        seed: int, the shuffle seed.
        shuffle: bool.
        initial_step: int, the first batch of the stream.
        scale: function from uint8 pixels to the float images.
    """

    def __init__(self, pixels, batch_size, seed, shuffle, initial_step, scale):
        self.pixels, self.batch_size, self.seed = pixels, batch_size, seed
        self.shuffle, self.initial_step, self.scale = shuffle, initial_step, scale
        self.n = int(pixels.shape[0])
        self._variables = None

    def start(self):
        """Rewinds to `initial_step`, as a fresh `tf.data` iterator would begin."""
        if self._variables is None:
            with tf.init_scope():
                self._variables = (
                    tf.Variable(self.initial_step, dtype=tf.int64, trainable=False),
                    tf.Variable(-1, dtype=tf.int64, trainable=False),  # epoch of orders[0]
                    tf.Variable(tf.zeros([2 * self.n], tf.int64), trainable=False),
                )
        step, epoch, _ = self._variables
        step.assign(self.initial_step)
        epoch.assign(-1)

    def next_batch(self):
        """The next batch, float `(batch_size, 784)`; advances the stream by one step."""
        step, epoch, orders = self._variables
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
            offsets = first - first_epoch * self.n + tf.range(self.batch_size, dtype=tf.int64)
            batch = tf.gather(self.pixels, tf.gather(orders, offsets))
        with tf.control_dependencies([batch]):
            advanced = step.assign_add(1)
        with tf.control_dependencies([advanced]):
            return self.scale(batch)
