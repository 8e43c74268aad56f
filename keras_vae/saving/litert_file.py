"""The LiteRT (TFLite) format: one `.tflite` file holding the random-free
signatures (`keras_vae.saving.signatures`), for phones and other devices.

Keras' `model.export(format="litert")` converts `call()` alone; this file
holds every signature, so it converts a SavedModel of them, the path that
export takes (Keras' `ExportArchive`, then `TFLiteConverter.from_saved_model`).
LiteRT's built-in ops hold no assertion: the runtime checks the shapes.
"""

import os
import shutil

import keras
import tensorflow as tf

from keras_vae.saving import signatures
from keras_vae.saving.extras import require

SUFFIX = ".tflite"


def check_path(path):
    if not os.fspath(path).endswith(SUFFIX):
        raise ValueError(f"A LiteRT export is one file whose name ends in {SUFFIX}; "
                         f"received {os.fspath(path)!r}. Name it, for example, vae{SUFFIX}.")


def require_runtime():
    """The interpreter that runs `.tflite` files, from the `litert` extra."""
    return require("ai_edge_litert.interpreter", "ai-edge-litert", "litert",
                   "The LiteRT export (to check itself)")


def write(model, path):
    """Writes `model`'s random-free signatures to the `.tflite` file `path`."""
    # The intermediate SavedModel sits beside `path`, named as a temporary
    # of `keras_vae.saving.atomic`, so a killed export's is cleared.
    saved = f"{path}.savedmodel"
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, function in signatures.random_free(model, checked=False).items():
            archive.add_endpoint(name, function, input_signature=signatures.input_specs(model, name))
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved, signature_keys=list(signatures.NAMES))
        flat = converter.convert()
    finally:
        shutil.rmtree(saved, ignore_errors=True)
    with open(path, "wb") as f:
        f.write(flat)


def runner(path, interpreter):
    """Calls the signatures of the `.tflite` file at `path` in LiteRT's
    `interpreter` module: `run(name, inputs)` takes and returns dicts of arrays."""
    loaded = interpreter.Interpreter(model_path=os.fspath(path))

    def run(name, inputs):
        return loaded.get_signature_runner(name)(**inputs)

    return run
