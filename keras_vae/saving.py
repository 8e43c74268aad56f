"""`.keras` files written atomically and read back with a clear error."""

import os

import keras

from keras_vae.model import VAE


def save_model(model, path):
    """`model.save(path)`, written under a temporary name and renamed into place.

    A crash mid-save leaves the previous file at `path` (or none), never a
    half-written one.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"A model file must end in .keras. Received: path={path!r}")
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{name}.tmp-{os.getpid()}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_model(path):
    """Loads a `VAE` saved by `save_model` or `model.save`, optimizer state included."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"No model file at {path}. Pass the .keras file written by "
            "`keras-vae train --save PATH` or `model.save(PATH)`."
        )
    try:
        model = keras.models.load_model(path)
    except Exception as error:  # Keras raises many kinds for a bad file
        raise ValueError(
            f"Cannot load {path} as a keras_vae model ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no details'}). "
            "Is it a complete .keras file written by keras-vae?"
        ) from error
    if not isinstance(model, VAE):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a keras_vae VAE."
        )
    return model
