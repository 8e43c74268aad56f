"""What keras_vae.execution assumes of Keras and tf.data beyond their public
API (listed at the top of execution.py). Each test names the assumption it
checks, so a Keras or TensorFlow upgrade that breaks one says which."""

import numpy as np
import tensorflow as tf

from keras_vae.execution import _stand_in_dataset
from keras_vae.model import VAE


def _model(steps_per_execution):
    model = VAE(h_dim=8, z_dim=2)
    model.compile(steps_per_execution=steps_per_execution)
    return model


def test_fit_calls_a_replaced_train_function_once_per_call_and_logs_its_metrics():
    model = _model(steps_per_execution=5)
    calls = []

    def train_function(iterator):
        calls.append(len(calls))
        model.step_loss_tracker.update_state(float(len(calls)))
        return model.get_metrics_result()

    model.train_function = train_function
    history = model.fit(_stand_in_dataset(), steps_per_epoch=15, epochs=2, verbose=0)
    assert len(calls) == 6, (
        "Keras' fit no longer calls a replaced Model.train_function once per "
        f"steps_per_execution steps (6 calls expected, {len(calls)} made): "
        "keras_vae.execution.InGraphFit relies on it")
    assert history.history["step_loss"] == [3.0, 6.0], (
        "Keras' fit no longer takes the logs from what train_function returns: "
        "keras_vae.execution.InGraphFit relies on it")


def test_fit_rebuilds_a_train_function_set_to_none_for_the_new_steps_per_execution():
    model = _model(steps_per_execution=4)
    x = np.random.default_rng(0).random((64, 784)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(x).batch(8).repeat()
    model.fit(data, steps_per_epoch=4, verbose=0)  # builds Keras' train_function
    model.steps_per_execution, model.train_function = 1, None
    model.fit(data, steps_per_epoch=3, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 7, (
        "Keras' fit no longer rebuilds Model.train_function when it is None, "
        "reading steps_per_execution: keras_vae.execution's exact steps rely on it")
