"""A replica's share of the global batch under `tf.distribute`, so that a
step on several replicas is the step one device takes on the same batch.

`tf.distribute` splits each global batch into consecutive rows per replica
and sums the replicas' gradients. The original's loss is the global batch's
mean, so each replica weighs its own batch mean by its share of the rows
(the shares may differ, e.g. for the last batch of an epoch), and draws its
rows of the noise one device would draw for the whole batch.
"""

import typing

import tensorflow as tf


class ReplicaShare(typing.NamedTuple):
    """Rows `offset` to `offset + size` of a global batch of `total` rows, on
    one of `replicas` replicas (tensors, but for `replicas`)."""

    offset: tf.Tensor
    size: tf.Tensor
    total: tf.Tensor
    replicas: int

    @property
    def fraction(self):
        """This replica's share of the rows: weighs its batch mean in the global one."""
        return tf.cast(self.size, tf.float32) / tf.cast(self.total, tf.float32)

    def as_replica_mean(self, losses):
        """`losses` (batch means) rescaled so that their mean over the replicas,
        which is how the strategy reads a metric, is the global batch mean."""
        return tuple(loss * (self.fraction * self.replicas) for loss in losses)


def replica_share(x):
    """The share of this replica's batch `x`, or None outside a strategy of
    several replicas. Gathers the batch sizes of all replicas (one collective)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    context = tf.distribute.get_replica_context()
    if replicas == 1 or context is None:
        return None
    size = tf.shape(x)[0]
    sizes = context.all_gather(tf.reshape(size, [1]), axis=0)  # (replicas,)
    offset = tf.reduce_sum(sizes[:context.replica_id_in_sync_group])
    return ReplicaShare(offset, size, tf.reduce_sum(sizes), replicas)


def rows_of(batch, total, replicas):
    """This replica's rows of a global `batch` of `total` rows (a Python int),
    consecutive and as many on each replica as can be, and its share: known
    when the step is traced, so no collective is needed to find it."""
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    offset, size = share_bounds(replica, total, replicas)
    return batch[offset:offset + size], ReplicaShare(offset, size, tf.constant(total), replicas)


def share_bounds(replica, total, replicas):
    """The first row and the rows of `replica`'s share of `total` rows, as
    `rows_of` splits them (ints, or tensors for a tensor `replica`)."""
    offset = replica * total // replicas
    return offset, (replica + 1) * total // replicas - offset


def share_and_noise(x, noise, draw_normal, z_dim, share=None):
    """Under a strategy of several replicas: this replica's share of the batch
    `x` (`share`, if known already), and its rows of the noise one device
    would draw for the whole batch (`draw_normal(shape)`) unless `noise` is
    given. On one device: `(None, noise)`."""
    if share is None:
        share = replica_share(x)
    if share is not None and noise is None:
        eps = draw_normal(tf.stack([share.total, z_dim]))  # (global batch, z_dim)
        noise = eps[share.offset:share.offset + share.size]
    return share, noise
