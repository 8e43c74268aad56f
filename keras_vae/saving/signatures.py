"""The signatures every export format holds: the paper's Q(z|X) and P(X|z)
with named inputs and outputs, free of random ops so that any runtime runs
them, the caller drawing the noise.

| signature | inputs | outputs |
| --- | --- | --- |
| `encode` | `x` float32 `(None, x_dim)` | `z_mu`, `z_logvar` |
| `decode` | `z` float32 `(None, z_dim)` | `prob`, `logits` |
| `reconstruct` | `x` | `prob`, `logits` of the decoded `z_mu` |
| `sample_from_z` | `z` drawn by the caller from N(0, I) | `prob` |
| `reconstruct_sampled` | `x`, `eps` float32 `(None, z_dim)` | `prob`, `logits` of z = z_mu + exp(z_logvar / 2) * eps |
"""

import tensorflow as tf

from keras_vae.checks import fits_width

# Each signature's inputs, by name: the width is the model's attribute named.
INPUTS = {
    "encode": (("x", "x_dim"),),
    "decode": (("z", "z_dim"),),
    "reconstruct": (("x", "x_dim"),),
    "sample_from_z": (("z", "z_dim"),),
    "reconstruct_sampled": (("x", "x_dim"), ("eps", "z_dim")),
}
NAMES = tuple(INPUTS)


def input_specs(model, name):
    """The `tf.TensorSpec`s of signature `name`'s inputs: float32 `(None, width)`."""
    return [tf.TensorSpec([None, getattr(model, width)], tf.float32, name=arg)
            for arg, width in INPUTS[name]]


def random_free(model, checked=True):
    """The signatures of `model` by name: functions of their named inputs
    returning a dict of named outputs.

    `checked` adds ops that refuse an input of the wrong width, or an `eps`
    with another row count than `x`, naming what is expected: the
    SavedModel keeps them. LiteRT's built-in ops and ONNX have no assertion,
    so those formats leave the shapes to their runtime (`checked=False`).
    """
    check = _checked if checked else (lambda tensor, name, size: tensor)

    def encode(x):
        z_mu, z_logvar = model.encode(check(x, "x", model.x_dim))
        return {"z_mu": z_mu, "z_logvar": z_logvar}

    def decode(z):
        prob, logits = model.decode(check(z, "z", model.z_dim))
        return {"prob": prob, "logits": logits}

    def reconstruct(x):
        z_mu, _ = model.encode(check(x, "x", model.x_dim))
        prob, logits = model.decode(z_mu)
        return {"prob": prob, "logits": logits}

    def sample_from_z(z):
        return {"prob": model.decode(check(z, "z", model.z_dim))[0]}

    def reconstruct_sampled(x, eps):
        x, eps = check(x, "x", model.x_dim), check(eps, "eps", model.z_dim)
        if checked:
            x, eps = _same_batch(x, eps)
        z_mu, z_logvar = model.encode(x)
        prob, logits = model.decode(model.reparameterize(z_mu, z_logvar, eps))
        return {"prob": prob, "logits": logits}

    functions = {"encode": encode, "decode": decode, "reconstruct": reconstruct,
                 "sample_from_z": sample_from_z, "reconstruct_sampled": reconstruct_sampled}
    return {name: functions[name] for name in NAMES}


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
