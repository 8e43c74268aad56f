"""SavedModel export: signatures another program can call without keras_vae.

The directory is written under a temporary name beside the target and
renamed into place when complete, so the target is either absent or whole.
"""

import json
import os
import warnings

import keras
import tensorflow as tf

from keras_vae.checks import check_count, fits_width
from keras_vae.saving import formats
from keras_vae.saving.atomic import atomic_path, clear_leftovers
from keras_vae.version import __version__

METADATA = os.path.join("assets.extra", "keras_vae.json")

# The default bound of one `sample` call: 10,000 images of 784 pixels are
# 31 MB of float32 per output, a server's request rather than its memory.
MAX_SAMPLES = 10_000


def export_saved_model(model, path, overwrite=False, verbose=False, max_samples=MAX_SAMPLES):
    """Writes `model` as a SavedModel with the signatures below.

    | signature | inputs | outputs |
    | --- | --- | --- |
    | `encode` | `x` float32 `(None, x_dim)` | `z_mu`, `z_logvar` |
    | `decode` | `z` float32 `(None, z_dim)` | `prob`, `logits` |
    | `reconstruct` | `x` | `prob`, `logits` of the decoded `z_mu` |
    | `sample_from_z` | `z` drawn by the caller from N(0, I) | `prob` |
    | `reconstruct_sampled` | `x`, `eps` float32 `(None, z_dim)` | `prob`, `logits` of z = z_mu + exp(z_logvar / 2) * eps |
    | `sample` | `n` int32 scalar, `seed` int64 scalar | `prob` `(n, x_dim)` |
    | `serving_default` | as `reconstruct` | as `reconstruct` |

    All but `sample` are free of random ops, so that any runtime can run
    them, the caller drawing the noise. `sample` uses stateless random ops
    (the same seed gives the same images) and refuses `n` outside 1 to
    `max_samples`, naming the limit, before it allocates anything. Every
    signature refuses inputs of the wrong width, naming the expected shape.
    `assets.extra/keras_vae.json` records the format version, x_dim, h_dim,
    z_dim, the package version, the training steps and `max_samples`,
    readable without TensorFlow.

    Args:
        model: a `keras_vae.VAE`.
        path: str or `os.PathLike`, the directory to create.
        overwrite: bool, replace an existing `path`. Defaults to `False`:
            an existing `path` is an error and is left untouched.
        verbose: bool, print Keras' list of endpoints. Defaults to `False`.
        max_samples: int, the most images one `sample` call draws (`keras-vae
            export --max-samples`). Defaults to `MAX_SAMPLES`, 10,000.

    Raises:
        FileExistsError: `path` exists and `overwrite` is `False`.
    """
    check_count("max_samples", max_samples)
    path = os.path.abspath(os.fspath(path))
    # A killed export's temporary goes; a killed --overwrite's old export
    # comes back first, if its replacement never arrived.
    for kept in clear_leftovers(os.path.dirname(path), os.path.basename(path)):
        warnings.warn(f"{kept} may be another running export's; left in place.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path} already exists. Choose another directory, or pass "
            "overwrite=True (--overwrite) to replace it."
        )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp:
        _archive(model, max_samples).write_out(tmp, verbose=verbose)
        _write_metadata(model, os.path.join(tmp, METADATA), max_samples)
    return path


def _archive(model, max_samples):
    """The endpoints, with named inputs and named outputs."""
    x_spec = tf.TensorSpec([None, model.x_dim], tf.float32, name="x")
    z_spec = tf.TensorSpec([None, model.z_dim], tf.float32, name="z")
    eps_spec = tf.TensorSpec([None, model.z_dim], tf.float32, name="eps")

    def encode(x):
        z_mu, z_logvar = model.encode(_checked(x, "x", model.x_dim))
        return {"z_mu": z_mu, "z_logvar": z_logvar}

    def decode(z):
        prob, logits = model.decode(_checked(z, "z", model.z_dim))
        return {"prob": prob, "logits": logits}

    def reconstruct(x):
        z_mu, _ = model.encode(_checked(x, "x", model.x_dim))
        prob, logits = model.decode(z_mu)
        return {"prob": prob, "logits": logits}

    def sample_from_z(z):
        return {"prob": model.decode(_checked(z, "z", model.z_dim))[0]}

    def reconstruct_sampled(x, eps):
        x, eps = _same_batch(_checked(x, "x", model.x_dim), _checked(eps, "eps", model.z_dim))
        z_mu, z_logvar = model.encode(x)
        prob, logits = model.decode(model.reparameterize(z_mu, z_logvar, eps))
        return {"prob": prob, "logits": logits}

    def sample(n, seed):
        with tf.control_dependencies([_bounded(n, max_samples)]):
            shape = tf.stack([n, model.z_dim])
        z = tf.random.stateless_normal(shape, seed=tf.stack([seed, tf.zeros_like(seed)]))
        return {"prob": model.decode(z)[0]}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", reconstruct, input_signature=[x_spec])
    archive.add_endpoint("encode", encode, input_signature=[x_spec])
    archive.add_endpoint("decode", decode, input_signature=[z_spec])
    archive.add_endpoint("reconstruct", reconstruct, input_signature=[x_spec])
    archive.add_endpoint("sample_from_z", sample_from_z, input_signature=[z_spec])
    archive.add_endpoint("reconstruct_sampled", reconstruct_sampled,
                         input_signature=[x_spec, eps_spec])
    archive.add_endpoint(
        "sample",
        sample,
        input_signature=[
            tf.TensorSpec([], tf.int32, name="n"),
            tf.TensorSpec([], tf.int64, name="seed"),
        ],
    )
    return archive


def _bounded(n, max_samples):
    """The op that refuses `n` outside 1 to `max_samples`, naming the limit."""
    return tf.debugging.Assert(
        tf.logical_and(n >= 1, n <= max_samples),
        [f"`n` must be from 1 to {max_samples}, the limit this SavedModel was exported "
         "with (max_samples=, keras-vae export --max-samples). Received n:", n])


def _same_batch(x, eps):
    """`x` and `eps`, once they are known at run time to have as many rows."""
    rows_x, rows_eps = tf.shape(x)[0], tf.shape(eps)[0]
    check = tf.debugging.Assert(
        tf.equal(rows_x, rows_eps),
        ["`eps` must have a row per image of `x`. Received rows:", rows_x, rows_eps])
    with tf.control_dependencies([check]):
        return tf.identity(x), tf.identity(eps)


def _checked(tensor, name, size):
    """`tensor`, once it is known at run time to be `(batch, size)`.

    A signature call does not check the shape it is fed; without this, a
    wrong one fails deep inside a MatMul without naming the expected shape.
    The check is dynamic, since the traced shape is the signature's.
    """
    check = tf.debugging.Assert(
        fits_width(tensor, size),
        [f"`{name}` must be float32 of shape (None, {size}). Received shape:", tf.shape(tensor)],
    )
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


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
