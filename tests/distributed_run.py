"""100 training steps on load_mnist's batches, on one device or as one worker of
a MultiWorkerMirroredStrategy cluster, recording each step's loss, for
tests/distribute/test_distribute.py to compare.

    python tests/distributed_run.py DATA_DIR OUT.npy one|worker [INDEX PORTS]

`one` also writes OUT.reference.npy: the losses of the same 100 steps in
float64 (from the same initial weights, on the same batches and noise),
against which the test measures float32 rounding.
"""

import json
import os
import sys
from pathlib import Path

STEPS = 100


def reference_path(out):
    """Where `one` writes the float64 reference of the losses saved at `out`."""
    return Path(out).with_suffix(".reference.npy")


def main(data_dir, out, mode, index=None, ports=None):
    if mode == "worker":
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"localhost:{port}" for port in ports.split(",")]},
            "task": {"type": "worker", "index": int(index)},
        })
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_vae import VAE, load_mnist

    strategy = (tf.distribute.MultiWorkerMirroredStrategy() if mode == "worker"
                else tf.distribute.get_strategy())
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = VAE(seed=0)
        model.compile()
    initial = [w.numpy() for w in model.trainable_weights]
    state = model.seed_generator.state.numpy()
    losses = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(float(logs["step_loss"])))
    # One step per call, so that every step's loss is seen.
    model.fit(load_mnist(data_dir=data_dir, seed=0), steps_per_epoch=STEPS, callbacks=[record],
              verbose=0)
    np.save(out, np.array(losses))
    if mode == "one":
        # The noise the steps drew: one (batch, z_dim) draw each, from `state`.
        model.seed_generator.state.assign(state)
        batches = list(load_mnist(data_dir=data_dir, seed=0).take(STEPS))
        noise = [model.draw_normal((len(x), model.z_dim)) for x in batches]
        np.save(reference_path(out), float64_losses(initial, batches, noise))


def float64_losses(weights, batches, noise):
    """The losses of the package's VAE trained in float64 from `weights`
    (float32 arrays, the model's order), a step on each batch with its noise.
    TF1Adam keeps its learning rate and beta powers in float32, as the float32
    runs do: those products have one order, the same in every run."""
    import numpy as np
    import tensorflow as tf

    from keras_vae import VAE

    model = VAE(seed=0, dtype="float64")
    model.compile()
    model.optimizer.build(model.trainable_variables)
    for variable, value in zip(model.trainable_weights, weights):
        variable.assign(value.astype(np.float64))
    step = tf.function(lambda x, eps: model.optimizer_step(x, eps)[0])
    losses = [step(tf.cast(x, tf.float64), tf.cast(eps, tf.float64))
              for x, eps in zip(batches, noise)]
    assert all(loss.dtype == tf.float64 for loss in losses)
    return np.array([float(loss) for loss in losses])


if __name__ == "__main__":
    main(*sys.argv[1:])
