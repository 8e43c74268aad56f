"""Checks of what users pass in: counts, the KL weight, and the batches a step gets."""

import numpy as np
import tensorflow as tf


def check_count(name, value, minimum=1):
    """Raises a ValueError naming `name` unless `value` is an int >= `minimum`."""
    if (
        not isinstance(value, (int, np.integer))
        or isinstance(value, bool)
        or value < minimum
    ):
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"Expected {name} to be {kind}. Received: {name}={value!r}")


def check_beta(beta):
    """Raises a ValueError unless `beta` (the KL term's weight) is a finite number >= 0."""
    if not (isinstance(beta, (int, float)) and beta >= 0 and beta != float("inf")):
        raise ValueError(f"Expected beta to be a finite number >= 0. Received: beta={beta!r}")


def checked_images(x, noise, x_dim, z_dim):
    """The op that checks a training or test batch when the step runs; a
    clear error now for a wrong dtype or shape.

    Dtype and shape are checked when the step is traced (a shape of unknown
    rank when it runs); the values (in [0, 1], no NaN) at run time, by the
    returned op, which the step's ops wait for: nothing of a step runs on
    images that fail it.
    """
    if not x.dtype.is_floating:
        raise ValueError(
            f"Expected float images in [0, 1]. Received: x.dtype={x.dtype.name}. "
            "Scale uint8 pixels first, e.g. keras_vae.data.scale_pixels(x)."
        )
    reshape = f"Reshape 28x28 images with x.reshape(-1, {x_dim})."
    checks = [_shape_check(x, "x", f"Expected images of shape (batch, {x_dim}), flattened.",
                           x_dim, reshape)]
    if noise is not None:
        checks.append(_shape_check(noise, "noise", f"Expected noise of shape (batch, {z_dim}).",
                                   z_dim))
    in_range = tf.reduce_all(tf.logical_and(x >= 0, x <= 1))  # False for NaN
    checks.append(tf.debugging.Assert(
        in_range,
        [
            "Expected pixel values in [0, 1], without NaN: scale uint8 "
            "images with keras_vae.data.scale_pixels (x * 1/255). Received "
            "values from", tf.reduce_min(x), "to", tf.reduce_max(x),
        ],
    ))
    return tf.group(*checks)


def _shape_check(tensor, name, expected, width, fix=""):
    """Raises a ValueError now if `tensor`'s known shape is not `(batch,
    width)`. Of unknown rank (a generator's data, a retraced step), the
    shape is checked when the step runs, by the returned op."""
    if tensor.shape.rank is None:
        return tf.debugging.Assert(fits_width(tensor, width),
                                   [f"{expected} Received: {name} of shape", tf.shape(tensor), fix])
    if tensor.shape.rank != 2 or tensor.shape[-1] not in (None, width):
        raise ValueError(f"{expected} Received: {name}.shape={tuple(tensor.shape)}. {fix}".rstrip())
    return tf.no_op()


def fits_width(tensor, width):
    """Whether `tensor` is `(batch, width)`, as a boolean tensor: for shapes
    known only when the graph runs."""
    dims = tf.shape(tensor)
    return tf.logical_and(tf.equal(tf.size(dims), 2), tf.reduce_all(tf.equal(dims[1:], width)))
