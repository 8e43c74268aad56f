"""`fit` for 100 steps on load_mnist's batches, up to 100 steps per call into
TensorFlow, on one device, mirrored on 2 logical CPUs, or as one worker of a
MultiWorkerMirroredStrategy cluster; saves the weights, the steps at which
calls ended, the logged values, and the all-reduces in a call's graph
(inside its loop of steps, and after it), for
tests/distribute/test_many_steps_per_call.py.

    python tests/distributed_fit.py DATA_DIR OUT.npz one|mirrored|worker [INDEX PORTS]
"""

import sys

STEPS = 100
# A call ends after every 30th step, as a callback's boundaries ask.
BOUNDARIES = [(30, 0)]
LOGS = ("loss", "recon_loss", "kl_loss", "step_loss")


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
    history = model.fit(load_mnist(data_dir=data_dir, seed=0), steps_per_epoch=STEPS, verbose=0,
                        callbacks=[CallBoundaries(BOUNDARIES), record])
    in_loop, after = all_reduces(model)
    np.savez(out, ends=np.array(ends), replicas=strategy.num_replicas_in_sync,
             logs=np.array([history.history[name][-1] for name in LOGS]),
             all_reduces_in_loop=in_loop, all_reduces_after=after,
             **{name: getattr(model, name).numpy() for name in VAE.WEIGHTS})


def all_reduces(model):
    """The CollectiveReduceV2 ops of the in-graph loop's call: in the
    functions it calls (the loop's steps), and in its own graph (after them)."""
    import tensorflow as tf

    call = model.execution._runner._run_call.get_concrete_function(tf.TensorSpec([], tf.int32))
    graph = call.graph.as_graph_def()

    def count(nodes):
        return sum(node.op == "CollectiveReduceV2" for node in nodes)

    return sum(count(f.node_def) for f in graph.library.function), count(graph.node)


if __name__ == "__main__":
    main(*sys.argv[1:])
