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


def logs_for_keras(logs):
    """`logs` as Keras 3.15's `fit` and `evaluate` can reduce them across workers.

    Under `MultiWorkerMirroredStrategy` Keras reduces each log with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalars a
    step returns ("Invalid reduction dimension 0 for input with 0
    dimensions"; keras-team/keras#20585). Given shape `(1,)`, each reduces
    to the mean over the replicas, a scalar again. One device and
    `MirroredStrategy` reduce otherwise, and get the scalars unchanged.
    `tests/test_distribute.py` says when a Keras release no longer needs this.
    """
    strategy = tf.distribute.get_strategy()
    if not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()):
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}
