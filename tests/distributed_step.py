"""One training step of the VAE on 64 fixed examples, on one device or under a
strategy, saved for tests/distribute/test_distribute.py to compare: the loss `fit`
reports, the gradient summed over replicas, and the updated weights.

    python tests/distributed_step.py OUT_DIR one|mirrored|worker [INDEX PORTS]

For each form in which `fit` gets the batch (FORMS), it writes
OUT_DIR/FORM.npz. `worker` joins a MultiWorkerMirroredStrategy cluster of
localhost PORTS (comma-separated) as worker INDEX.
"""

# x; (x, y); (x, y, per-example weights); {"image", "noise"}; and 63
# examples, whose replicas' shares differ.
FORMS = ("x", "xy", "xyw", "dict", "odd")

import json
import os
import sys


def main(out_dir, mode, index=None, ports=None):
    if mode == "worker":
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"localhost:{port}" for port in ports.split(",")]},
            "task": {"type": "worker", "index": int(index)},
        })
    import numpy as np
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = {
        "one": tf.distribute.get_strategy,
        "mirrored": lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
        "worker": tf.distribute.MultiWorkerMirroredStrategy,
    }[mode]()
    for form in FORMS:
        np.savez(os.path.join(out_dir, f"{form}.npz"), **step(strategy, form))


def step(strategy, form):
    """The step's loss, summed gradients and updated weights, by name."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_vae.model import VAE, _unpack

    rng = np.random.default_rng(0)
    n = 63 if form == "odd" else 64
    x = (rng.random((n, 784)) < 0.3) * rng.random((n, 784)).astype(np.float32)
    x = x.astype(np.float32)
    noise = rng.standard_normal((n, 100)).astype(np.float32)
    weight = rng.random(n).astype(np.float32)
    batch = {
        "x": (x,), "odd": (x,), "xy": (x, np.zeros(n)), "xyw": (x, np.zeros(n), weight),
        "dict": ({"image": x, "noise": noise},),
    }[form]
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = VAE(seed=0)
        model.compile()

    # The gradient, summed over the replicas as the optimizer receives it.
    dataset = tf.data.Dataset.from_tensors(batch if len(batch) > 1 else batch[0])
    options = tf.data.Options()  # the rows of the one batch, split between workers
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)
    state = model.seed_generator.state.numpy()
    elements = next(iter(strategy.experimental_distribute_dataset(dataset)))

    @tf.function
    def gradients(data):
        x, noise, sample_weight = _unpack(data)
        return model.compute_gradients(x, noise, sample_weight)[1]

    summed = [strategy.reduce("SUM", g, axis=None)
              for g in strategy.run(gradients, args=(elements,))]
    model.seed_generator.state.assign(state)  # fit draws the same noise
    history = model.fit(*batch[:2], sample_weight=batch[2] if len(batch) > 2 else None,
                        batch_size=n, epochs=1, verbose=0, shuffle=False)
    return {"loss": history.history["loss"][0],
            **{f"gradient_{w.name}": g.numpy() for w, g in zip(model.trainable_weights, summed)},
            **{f"weight_{w.name}": w.numpy() for w in model.trainable_weights}}


if __name__ == "__main__":
    main(*sys.argv[1:])
