"""One training step of the VAE on 64 fixed examples, on one device or under a
strategy, saved for tests/distribute/test_distribute.py to compare: the loss `fit`
reports, the gradient summed over replicas, Adam's moments after the step (from
which the gradient `fit` applied and the update it made follow), and the
updated weights.

    python tests/distributed_step.py OUT_DIR one|mirrored|worker [INDEX PORTS]

For each form in which `fit` gets the batch (FORMS), it writes
OUT_DIR/FORM.npz. `worker` joins a MultiWorkerMirroredStrategy cluster of
localhost PORTS (comma-separated) as worker INDEX. `one` also writes
OUT_DIR/FORM.reference.npz: the same step's loss and gradient computed in
float64 (the weights, batch and noise of the float32 step, cast), against
which the test measures float32 rounding, and Adam's hyperparameters.
"""

# x; (x, y); (x, y, per-example weights); {"image", "noise"}; and 63
# examples, whose replicas' shares differ.
FORMS = ("x", "xy", "xyw", "dict", "odd")

import json
import os
import sys


def make_strategy(mode, index=None, ports=None):
    """The strategy of `mode`: one device, mirrored on 2 logical CPUs, or
    worker `index` of a cluster on the localhost `ports` (comma-separated)."""
    if mode == "worker":
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"localhost:{port}" for port in ports.split(",")]},
            "task": {"type": "worker", "index": int(index)},
        })
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return {
        "one": tf.distribute.get_strategy,
        "mirrored": lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
        "worker": tf.distribute.MultiWorkerMirroredStrategy,
    }[mode]()


def main(out_dir, mode, index=None, ports=None):
    strategy = make_strategy(mode, index, ports)
    import numpy as np

    for form in FORMS:
        result, reference = step(strategy, form, reference=mode == "one")
        np.savez(os.path.join(out_dir, f"{form}.npz"), **result)
        if reference is not None:
            np.savez(os.path.join(out_dir, f"{form}.reference.npz"), **reference)


def step(strategy, form, reference=False):
    """The step's loss, summed gradients, Adam's moments and updated weights,
    by name; and, if `reference`, the float64 reference of the step (else None)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_vae import _compat
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
    initial = [w.numpy() for w in model.trainable_weights]

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
    optimizer = model.optimizer
    result = {"loss": history.history["loss"][0]}
    for w, g in zip(model.trainable_weights, summed):
        index = _compat.variable_index(optimizer, w)
        result.update({f"gradient_{w.name}": g.numpy(), f"weight_{w.name}": w.numpy(),
                       f"adam_m_{w.name}": optimizer._m[index].numpy(),
                       f"adam_v_{w.name}": optimizer._v[index].numpy()})
    if not reference:
        return result, None
    if form != "dict":  # the noise the step drew: the whole batch's, from `state`
        model.seed_generator.state.assign(state)
        noise = model.draw_normal((n, model.z_dim)).numpy()
    loss, grads = float64_step(initial, x, noise, weight if form == "xyw" else None)
    return result, {
        "loss": loss, **{f"gradient_{w.name}": g for w, g in zip(model.trainable_weights, grads)},
        # As Adam's kernel gets them: float32.
        **{f"adam_{k}": np.float32(v) for k, v in (
            ("learning_rate", optimizer.learning_rate.numpy()), ("beta_1", optimizer.beta_1),
            ("beta_2", optimizer.beta_2), ("epsilon", optimizer.epsilon))},
    }


def float64_step(weights, x, noise, sample_weight):
    """The loss and gradients of the package's VAE in float64 at `weights`
    (float32 arrays, the model's order), on the batch `x` with `noise`."""
    import numpy as np
    import tensorflow as tf

    from keras_vae.model import VAE

    model = VAE(seed=0, dtype="float64")
    for variable, value in zip(model.trainable_weights, weights):
        variable.assign(value.astype(np.float64))
    args = [None if a is None else tf.constant(a, tf.float64) for a in (x, noise, sample_weight)]
    loss, gradients = model.compute_gradients(*args)
    assert loss[0].dtype == tf.float64 and all(g.dtype == tf.float64 for g in gradients)
    return float(loss[0]), [g.numpy() for g in gradients]


if __name__ == "__main__":
    main(*sys.argv[1:])
