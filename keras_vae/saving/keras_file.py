"""`.keras` files written atomically and read back with a clear error."""

import os

import keras

from keras_vae.model import VAE
from keras_vae.saving.atomic import atomic_path


def save_model(model, path):
    """`model.save(path)`, written under a temporary name and renamed into place.

    A crash mid-save leaves the previous file at `path` (or none), never a
    half-written one.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"A model file must end in .keras. Received: path={path!r}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


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
            f"{_cause(error)}). Is it a complete .keras file written by keras-vae?"
        ) from error
    if not isinstance(model, VAE):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a keras_vae VAE."
        )
    return model


def _cause(error):
    """The line of a loading error that says what went wrong.

    Keras reports an object's failed `load_own_variables` as "A total of N
    objects could not be loaded. Example error message for object ...:", then
    that error after a blank line: its first line is the one to show.
    """
    message = str(error)
    if message.startswith("A total of ") and "\n\n" in message:
        message = message.split("\n\n")[1]
    return message.strip().splitlines()[0] if message.strip() else "no details"
