"""`fit` for 100 steps on load_mnist's batches, up to 100 steps per call into
TensorFlow, on one device, mirrored on 2 logical CPUs, or as one worker of a
MultiWorkerMirroredStrategy cluster; saves the weights and the steps at
which calls ended, for tests/distribute/test_many_steps_per_call.py.

    python tests/distributed_fit.py DATA_DIR OUT.npz one|mirrored|worker [INDEX PORTS]
"""

import sys

STEPS = 100
# A call ends after every 30th step, as a callback's boundaries ask.
BOUNDARIES = [(30, 0)]


def main(data_dir, out, mode, index=None, ports=None):
    from tests.distributed_step import make_strategy

    strategy = make_strategy(mode, index, ports)
    import keras
    import numpy as np

    from keras_vae import VAE, load_mnist
    from keras_vae.training.callbacks import CallBoundaries

    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = VAE(seed=0)
        model.compile(steps_per_execution=STEPS)
    ends = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append(int(model.optimizer.iterations.numpy())))
    model.fit(load_mnist(data_dir=data_dir, seed=0), steps_per_epoch=STEPS, verbose=0,
              callbacks=[CallBoundaries(BOUNDARIES), record])
    np.savez(out, ends=np.array(ends), replicas=strategy.num_replicas_in_sync,
             **{name: getattr(model, name).numpy() for name in VAE.WEIGHTS})


if __name__ == "__main__":
    main(*sys.argv[1:])
