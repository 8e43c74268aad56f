"""A metric for the value of the latest step, as the original printed it."""

import keras


@keras.saving.register_keras_serializable(package="keras_vae")
class LastValue(keras.metrics.Metric):
    """Holds the value of the latest batch (the original printed that loss).

    Keras' `Mean` averages over the epoch, the right summary for `History`;
    the original's `Loss:` line shows one batch's loss, which this keeps.
    Across replicas the value is their mean.

    Args:
        name: string, the metric's name.
        dtype: the metric's dtype. Defaults to `"float32"`.
    """

    def __init__(self, name="last_value", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.value = self.add_variable(
            shape=(), initializer="zeros", name="value", aggregation="mean"
        )

    def update_state(self, value):
        self.value.assign(keras.ops.cast(value, self.dtype))

    def result(self):
        # A copy: the variable itself would be rewritten by the next update
        # (e.g. `evaluate`'s) in the logs that already hold it.
        return keras.ops.copy(self.value)
