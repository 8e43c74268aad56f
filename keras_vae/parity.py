"""Parity with the original TF1 graph: weights by the original's names, and a
side-by-side training run that compares the two bit for bit."""

import dataclasses
import hashlib

import numpy as np

# The ten variables of the original graph, in the order it creates them.
TF1_NAMES = (
    "Q_W1",
    "Q_b1",
    "Q_W2_mu",
    "Q_b2_mu",
    "Q_W2_sigma",
    "Q_b2_sigma",
    "P_W1",
    "P_b1",
    "P_W2",
    "P_b2",
)


def get_tf1_weights(model):
    """The model's ten variables as `{name: np.ndarray}`, keyed as in the original."""
    return {name: np.array(getattr(model, name).numpy()) for name in TF1_NAMES}


def check_tf1_weights(weights, shapes):
    """`weights` as float32 arrays, checked to be exactly `shapes`' names and shapes.

    Args:
        weights: dict, an array per variable name.
        shapes: dict, the expected shape per variable name.

    Raises:
        ValueError: a name is missing or unknown, or a shape differs.
    """
    missing = [name for name in shapes if name not in weights]
    unknown = sorted(set(weights) - set(shapes))
    if missing or unknown:
        raise ValueError(
            f"Expected exactly the variables {list(shapes)}. "
            f"Received: missing={missing}, unknown={unknown}"
        )
    values = {}
    for name, shape in shapes.items():
        values[name] = np.asarray(weights[name], dtype=np.float32)
        if values[name].shape != tuple(shape):
            raise ValueError(
                f"Variable {name} has shape {tuple(shape)}. "
                f"Received: {name}.shape={values[name].shape}"
            )
    return values


def set_tf1_weights(model, weights):
    """Assigns `{name: array}` (e.g. read from a TF1 session) to the model.

    All ten names must be present with the model's shapes; nothing is assigned
    unless all of them fit.
    """
    shapes = {name: tuple(getattr(model, name).shape) for name in TF1_NAMES}
    for name, value in check_tf1_weights(weights, shapes).items():
        getattr(model, name).assign(value)


@dataclasses.dataclass(frozen=True)
class VariableDiff:
    """How one variable differs between the two sides after the last step."""

    name: str
    max_abs: float  # max |keras - tf1|
    max_rel: float  # max |keras - tf1| / |tf1| (0 where both are 0)
    first_step: int | None  # the first step after which it differed; None: never


@dataclasses.dataclass(frozen=True)
class ParityReport:
    """The outcome of `compare_training`: per-variable and per-step differences."""

    steps: int
    seed: int
    variables: tuple
    loss_first_step: int | None  # the first step whose loss differed; None: never

    @property
    def identical(self):
        return self.loss_first_step is None and all(
            v.first_step is None for v in self.variables
        )

    def format(self):
        """The report as the `keras-vae parity` command prints it."""
        lines = [
            f"{'variable':<12}{'max abs diff':>14}{'max rel diff':>14}  first differing step",
        ]
        for v in self.variables:
            step = "-" if v.first_step is None else str(v.first_step)
            lines.append(f"{v.name:<12}{v.max_abs:>14.3g}{v.max_rel:>14.3g}  {step}")
        if self.loss_first_step is None:
            lines.append(f"loss: all {self.steps} per-step losses equal")
        else:
            lines.append(f"loss: first differs at step {self.loss_first_step}")
        if self.identical:
            lines.append(
                f"verdict: BIT-IDENTICAL: all {len(self.variables)} variables after "
                f"every one of {self.steps} steps, and every loss"
            )
        else:
            lines.append(
                "verdict: DIFFERENT: Keras and TF1 diverged (see the first "
                "differing step above)"
            )
        return "\n".join(lines)


def compare_training(data_dir, steps=500, seed=0, batch_size=64, compile_kwargs=None):
    """Trains the port and the original TF1 graph side by side and compares them.

    Both sides start from the same weights (the port's seeded init, copied
    into the TF1 graph), see the same batches (`legacy_tf1.input_data`'s
    `next_batch`, seeded) and the same noise (fed to TF1's `eps`, given to
    Keras as `{"image", "noise"}`). The Keras side trains through
    `model.fit` after a plain `compile()`; the TF1 side through
    `Session.run`. After every step each variable is compared bit for bit.

    Args:
        data_dir: path, a directory of the four MNIST IDX `.gz` files.
        steps: int, Adam steps on each side. Defaults to `500`.
        seed: int, seeds the weights, the batch order and the noise.
            Defaults to `0`.
        batch_size: int. Defaults to `64`, the original's.
        compile_kwargs: dict or None, passed to the port's `compile()`, e.g.
            another optimizer, to see how far it drifts. Defaults to `None`.

    Returns:
        A `ParityReport`.
    """
    import keras

    from keras_vae.model import VAE
    from legacy_tf1 import input_data

    keras.utils.set_random_seed(seed)
    model = VAE()
    model.compile(**(compile_kwargs or {}))
    initial = get_tf1_weights(model)
    train = input_data.read_data_sets(data_dir, seed=seed).train
    images = np.stack([train.next_batch(batch_size)[0] for _ in range(steps)])
    noise = np.random.default_rng(seed).standard_normal(
        (steps, batch_size, model.z_dim), dtype=np.float32
    )
    tf1_losses, tf1_digests, tf1_final = _train_tf1(initial, images, noise)
    keras_losses, keras_digests = _train_keras(model, images, noise)
    keras_final = get_tf1_weights(model)

    variables = []
    for name in TF1_NAMES:
        diff = np.abs(keras_final[name] - tf1_final[name])
        scale = np.abs(tf1_final[name])
        rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
        first = next(
            (step for step, (k, t) in enumerate(zip(keras_digests, tf1_digests))
             if k[name] != t[name]),
            None,
        )
        variables.append(
            VariableDiff(name, float(diff.max()), float(rel.max()), first)
        )
    unequal = np.flatnonzero(keras_losses != tf1_losses)
    return ParityReport(
        steps=steps,
        seed=seed,
        variables=tuple(variables),
        loss_first_step=int(unequal[0]) if unequal.size else None,
    )


def _digests(weights):
    """A hash of each variable's bytes, to compare every step without keeping copies."""
    return {name: hashlib.sha1(weights[name].tobytes()).hexdigest() for name in TF1_NAMES}


def _train_tf1(initial, images, noise):
    """The original graph through `Session.run`: per-step losses, digests, final weights."""
    import tensorflow as tf

    from legacy_tf1.vae_tf1 import build_graph

    vae = build_graph(initial_values=initial, feed_eps=True)
    losses, digests = [], []
    with tf.compat.v1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        for x, eps in zip(images, noise):
            feed = {vae.X: x, vae.eps: eps}
            # The loss, then the update, in two calls: nothing fetched beside
            # the update can race it.
            losses.append(sess.run(vae.vae_loss, feed))
            sess.run(vae.solver, feed)
            weights = sess.run(vae.variables)
            digests.append(_digests(weights))
    return np.array(losses, np.float32), digests, weights


def _train_keras(model, images, noise):
    """The port through `model.fit` on `{"image", "noise"}`: per-step losses and digests."""
    import keras
    import tensorflow as tf

    steps, batch_size = images.shape[:2]
    losses, digests = [], []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["step_loss"]))
            digests.append(_digests(get_tf1_weights(self.model)))

    dataset = tf.data.Dataset.from_tensor_slices(
        {"image": images.reshape(-1, images.shape[-1]), "noise": noise.reshape(-1, noise.shape[-1])}
    ).batch(batch_size)
    model.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=[Record()])
    return np.array(losses, np.float32), digests
