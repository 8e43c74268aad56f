"""`.keras` files written atomically and read back with a clear error."""

import os
import zipfile
import zlib

import keras
import tensorflow as tf

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


# What to pass instead of a file that is not a model, for error messages.
_FILE_FIX = ("Pass the .keras file written by `keras-vae train --save PATH` or "
             "`model.save(PATH)`.")


def load_model(path):
    """Loads a `VAE` saved by `save_model` or `model.save`, optimizer state included."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"No model file at {path}. {_FILE_FIX}")
    _check_archive(path)
    try:
        model = keras.models.load_model(path)
    except tf.errors.UnavailableError:
        raise  # under a strategy, a collective's failure (a lost peer), not the file's
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


def _check_archive(path):
    """Refuses a `.keras` file that is not a whole zip archive with a model's
    `config.json`, naming what is wrong.

    Keras reports a file that is no zip archive as "File not found", and a
    damaged one with zipfile's bare error: both are said here instead. The
    archive is read through (a model's weights are a few megabytes) so that
    a damaged member is found too.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        why = "not a zip archive"
    else:
        with archive:
            why = _archive_problem(archive)
    if why:
        raise ValueError(
            f"Cannot load {path}: it is not a readable .keras file ({why}). It may be "
            f"damaged or cut short, or not a Keras zip archive at all. {_FILE_FIX}")


def _archive_problem(archive):
    """What keeps the zip `archive` from being a `.keras` file; None if nothing."""
    try:
        damaged = archive.testzip()  # the first member whose CRC fails
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        return f"its contents cannot be read: {error}"
    if damaged:
        return f"its member {damaged} fails its CRC check"
    if "config.json" not in archive.namelist():
        return "a zip archive without config.json"
    return None


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
