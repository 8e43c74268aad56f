"""Parity with the original TF1 graph: weights by the original's names, and a
side-by-side training run that compares the two bit for bit."""

import contextlib
import dataclasses
import hashlib
import io
import os
import tempfile

import keras
import numpy as np

from legacy_tf1.vae_tf1 import VARIABLE_NAMES

# The ten variables of the original graph, in the order it creates them: the
# reference's own list, so the two sides cannot disagree on a name.
TF1_NAMES = VARIABLE_NAMES


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
    first_step: int | None  # the first checked step after which it differed; None: never


@dataclasses.dataclass(frozen=True)
class ParityReport:
    """The outcome of a comparison: per-variable and per-step differences.

    `calls` is None when the variables were compared after every step, else
    the number of calls into TensorFlow after each of which they were.
    """

    steps: int
    seed: int
    variables: tuple
    loss_first_step: int | None  # the first checked step whose loss differed; None: never
    calls: int | None = None

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
        checked = (f"every one of {self.steps} steps" if self.calls is None else
                   f"every one of {self.calls} calls ({self.steps} steps)")
        losses = "per-step losses" if self.calls is None else "losses at the calls' ends"
        if self.loss_first_step is None:
            count = self.steps if self.calls is None else self.calls
            lines.append(f"loss: all {count} {losses} equal")
        else:
            lines.append(f"loss: first differs at step {self.loss_first_step}")
        if self.identical:
            lines.append(
                f"verdict: BIT-IDENTICAL: all {len(self.variables)} variables after "
                f"{checked}, and every loss"
            )
        else:
            lines.append(
                "verdict: DIFFERENT: Keras and TF1 diverged (see the first "
                "differing step above)"
            )
        return "\n".join(lines)


def compare_training(data_dir, steps=500, seed=0, batch_size=64, compile_kwargs=None):
    """Trains the port through Keras' own `fit` path beside the original TF1
    graph, one step per call, and compares them after every step.

    Both sides start from the same weights (the port's seeded init, copied
    into the TF1 graph), see the same batches (`legacy_tf1.input_data`'s
    `next_batch`, seeded) and the same noise (fed to TF1's `eps`, given to
    Keras as `{"image", "noise"}`). The Keras side trains through
    `model.fit` after a plain `compile()`; the TF1 side through
    `Session.run`.

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
    tf1 = _train_tf1(initial, images, noise)
    record = _Record()
    dataset = _fed_batches(images, noise)
    model.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0,
              callbacks=[record])
    return _report(record, tf1, get_tf1_weights(model), steps, seed, calls=None)


def compare_train_run(data_dir, steps=500, seed=0, sample_every=150, checkpoint_every=220):
    """Runs `keras-vae train`'s own training beside the original TF1 graph and
    compares them after every call into TensorFlow.

    The port trains as `keras_vae.training.run.train` does (default dimensions,
    batches drawn in-graph from `load_mnist`'s stream, 100 steps per call,
    cut by the sample grids and checkpoints, written to a temporary
    directory), with the noise its sampler draws. The TF1 graph starts from
    the port's initial weights and is fed the same batches (`load_mnist`'s
    `tf.data` path) and the same noise (drawn outside, from the sampler's
    initial state, the way the sampler draws it). Like `train`, it turns on
    TensorFlow's op determinism for the process.

    Args:
        data_dir: path, a directory of the four MNIST IDX `.gz` files.
        steps: int, training steps. Defaults to `500`.
        seed: int, the run's `--seed`. Defaults to `0`.
        sample_every, checkpoint_every: ints, the run's grid and checkpoint
            periods, which end calls early. Default to `150` and `220`.

    Returns:
        A `ParityReport`.
    """
    from keras_vae.data.batches import load_mnist
    from keras_vae.data.sources import default_split
    from keras_vae.training.config import RunConfig
    from keras_vae.training.run import train

    record = _Record()
    with tempfile.TemporaryDirectory(prefix="keras-vae-parity-") as work, \
            contextlib.redirect_stdout(io.StringIO()):  # the run's Iter:/Loss: lines
        outcome = train(
            iters=steps, out=os.path.join(work, "out"), data_dir=data_dir, seed=seed,
            sample_every=sample_every, checkpoint_dir=os.path.join(work, "checkpoints"),
            checkpoint_every=checkpoint_every, verbose=0, callbacks=[record],
        )
    if outcome.status != "completed":
        raise RuntimeError(f"The port's training did not complete: {outcome.status}")
    config = RunConfig(seed=seed).fresh()  # the run's defaults
    batches = load_mnist(default_split(config.dataset), config.batch_size, data_dir, seed=seed)
    images = np.stack([x.numpy() for x in batches.take(steps)])
    sampler = keras.random.SeedGenerator()
    sampler.state.assign(record.sampler_state)
    noise = np.stack([
        keras.ops.convert_to_numpy(
            keras.random.normal((config.batch_size, config.z_dim), seed=sampler))
        for _ in range(steps)
    ])
    tf1 = _train_tf1(record.initial, images, noise)
    return _report(record, tf1, get_tf1_weights(outcome.model), steps, seed,
                   calls=len(record.checks))


def _digests(weights):
    """A hash of each variable's bytes, to compare every step without keeping copies."""
    return {name: hashlib.sha1(weights[name].tobytes()).hexdigest() for name in TF1_NAMES}


def _fed_batches(images, noise):
    """`{"image", "noise"}` batches, one per step, as a `tf.data.Dataset`."""
    import tensorflow as tf

    batch_size = images.shape[1]
    return tf.data.Dataset.from_tensor_slices(
        {"image": images.reshape(-1, images.shape[-1]), "noise": noise.reshape(-1, noise.shape[-1])}
    ).batch(batch_size)


def _train_tf1(initial, images, noise):
    """The original graph through `Session.run`, one step per batch.

    Returns `(losses, digests, final_weights)`: per-step losses and digests.
    """
    import tensorflow as tf

    from legacy_tf1.vae_tf1 import build_graph

    # A graph seed, though eps is fed and the weights given: with op
    # determinism on (as `train` leaves it), TensorFlow refuses unseeded
    # random ops.
    vae = build_graph(initial_values=initial, feed_eps=True, seed=0)
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


class _Record(keras.callbacks.Callback):
    """What the port holds at the start and after every call into TensorFlow:
    `(step, digests, loss of the call's last step)` in `checks`."""

    def on_train_begin(self, logs=None):
        self.initial = get_tf1_weights(self.model)
        self.sampler_state = self.model.seed_generator.state.numpy()
        self.checks = []

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.checks.append((step, _digests(get_tf1_weights(self.model)),
                            np.float32(logs["step_loss"])))


def _report(record, tf1, keras_final, steps, seed, calls):
    """Compares the port's checks with the TF1 run at the same steps."""
    tf1_losses, tf1_digests, tf1_final = tf1
    ran = record.checks[-1][0] if record.checks else 0
    if ran != steps:
        raise RuntimeError(f"The port ran {ran} steps, not {steps}.")
    variables = []
    for name in TF1_NAMES:
        diff = np.abs(keras_final[name] - tf1_final[name])
        scale = np.abs(tf1_final[name])
        rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
        first = next((step - 1 for step, digests, _ in record.checks
                      if digests[name] != tf1_digests[step - 1][name]), None)
        variables.append(VariableDiff(name, float(diff.max()), float(rel.max()), first))
    loss_first = next((step - 1 for step, _, loss in record.checks
                       if loss != tf1_losses[step - 1]), None)
    return ParityReport(steps=steps, seed=seed, variables=tuple(variables),
                        loss_first_step=loss_first, calls=calls)
