"""The SavedModel format: signatures another program can call without
keras_vae, in TensorFlow or TF Serving (`keras_vae.saving.export` writes it)."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from keras_vae.saving import formats, signatures
from keras_vae.version import __version__

METADATA = os.path.join("assets.extra", "keras_vae.json")

# The default bound of one `sample` call: 10,000 images of 784 pixels are
# 31 MB of float32 per output, a server's request rather than its memory.
MAX_SAMPLES = 10_000


def write(model, path, max_samples=MAX_SAMPLES, verbose=False):
    """Writes `model` as a SavedModel at `path` (a new directory).

    Its signatures are `keras_vae.saving.signatures`' five, which refuse an
    input of the wrong width naming the expected shape, and two more:

    | signature | inputs | outputs |
    | --- | --- | --- |
    | `sample` | `n` int32 scalar, `seed` int64 scalar | `prob` `(n, x_dim)` |
    | `serving_default` | as `reconstruct` | as `reconstruct` |

    `sample` draws z with stateless random ops (the same seed gives the same
    images) and refuses `n` outside 1 to `max_samples`, naming the limit,
    before it allocates anything. `assets.extra/keras_vae.json` records the
    format version, x_dim, h_dim, z_dim, the package version, the training
    steps and `max_samples`, readable without TensorFlow.
    """
    _archive(model, max_samples).write_out(path, verbose=verbose)
    _write_metadata(model, os.path.join(path, METADATA), max_samples)


def check_path(path):
    if os.fspath(path).endswith((".tflite", ".onnx", ".keras")):
        raise ValueError(f"A SavedModel is a directory; received {os.fspath(path)!r}, the name "
                         "of another format's file. Name a directory, for example vae_savedmodel.")


def require_runtime():
    """TensorFlow, which loads SavedModels: always installed."""
    return tf


def runner(path, runtime):
    """Calls signatures of the SavedModel at `path` in TensorFlow (`runtime`),
    as a server would: `run(name, inputs)` takes and returns dicts of arrays."""
    loaded = runtime.saved_model.load(path)

    def run(name, inputs):
        outputs = loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    return run


def extra_cases(model, inputs, max_samples):
    """The self-check's cases of the two signatures beyond the random-free
    five: (signature, inputs, the Keras model's outputs)."""
    rows = min(len(inputs["x"]), max_samples)
    seed = np.int64(0)
    z = _codes(tf.stack([rows, model.z_dim]), tf.constant(seed))
    reconstruct = signatures.random_free(model, checked=False)["reconstruct"]
    return [("sample", {"n": np.int32(rows), "seed": seed}, {"prob": model.decode(z)[0]}),
            ("serving_default", {"x": inputs["x"]}, reconstruct(inputs["x"]))]


def _archive(model, max_samples):
    """The endpoints, with named inputs and named outputs."""

    def sample(n, seed):
        with tf.control_dependencies([_bounded(n, max_samples)]):
            shape = tf.stack([n, model.z_dim])
        return {"prob": model.decode(_codes(shape, seed))[0]}

    archive = keras.export.ExportArchive()
    archive.track(model)
    functions = signatures.random_free(model, checked=True)
    archive.add_endpoint("serving_default", functions["reconstruct"],
                         input_signature=signatures.input_specs(model, "reconstruct"))
    for name, function in functions.items():
        archive.add_endpoint(name, function, input_signature=signatures.input_specs(model, name))
    archive.add_endpoint(
        "sample",
        sample,
        input_signature=[
            tf.TensorSpec([], tf.int32, name="n"),
            tf.TensorSpec([], tf.int64, name="seed"),
        ],
    )
    return archive


def _codes(shape, seed):
    """`sample`'s z of `shape`, N(0, I), drawn statelessly from the int64 `seed`."""
    return tf.random.stateless_normal(shape, seed=tf.stack([seed, tf.zeros_like(seed)]))


def _bounded(n, max_samples):
    """The op that refuses `n` outside 1 to `max_samples`, naming the limit."""
    return tf.debugging.Assert(
        tf.logical_and(n >= 1, n <= max_samples),
        [f"`n` must be from 1 to {max_samples}, the limit this SavedModel was exported "
         "with (max_samples=, keras-vae export --max-samples). Received n:", n])


def _write_metadata(model, path, max_samples):
    optimizer = getattr(model, "optimizer", None)
    metadata = {
        "format_version": formats.FORMAT_VERSION,
        "x_dim": model.x_dim,
        "h_dim": model.h_dim,
        "z_dim": model.z_dim,
        "beta": model.beta,
        "trained_with": dict(model.trained_with),
        "keras_vae_version": __version__,
        "training_steps": int(optimizer.iterations.numpy()) if optimizer else 0,
        "max_samples": max_samples,
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
