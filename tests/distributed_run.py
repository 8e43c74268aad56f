"""100 training steps on load_mnist's batches, on one device or as one worker of
a MultiWorkerMirroredStrategy cluster, recording each step's loss, for
tests/distribute/test_distribute.py to compare.

    python tests/distributed_run.py DATA_DIR OUT.npy one|worker [INDEX PORTS]
"""

import json
import os
import sys

STEPS = 100


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
    losses = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(float(logs["step_loss"])))
    # One step per call, so that every step's loss is seen.
    model.fit(load_mnist(data_dir=data_dir, seed=0), steps_per_epoch=STEPS, callbacks=[record],
              verbose=0)
    np.save(out, np.array(losses))


if __name__ == "__main__":
    main(*sys.argv[1:])
