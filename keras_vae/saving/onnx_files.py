"""The ONNX format: a directory of `<signature>.onnx` files, one per
random-free signature (`keras_vae.saving.signatures`), for ONNX Runtime.

Keras' `model.export(format="onnx")` converts `call()` alone; here tf2onnx,
the converter that export uses, converts each signature's function. ONNX
holds no assertion: the runtime checks the shapes.
"""

import logging
import os

import tensorflow as tf

from keras_vae.saving import signatures
from keras_vae.saving.extras import require


def check_path(path):
    if os.fspath(path).endswith((".onnx", ".tflite")):
        raise ValueError(f"An ONNX export is a directory of one .onnx file per signature; "
                         f"received {os.fspath(path)!r}. Name a directory, for example vae_onnx.")


def require_runtime():
    """The converter and the runtime, from the `onnx` extra."""
    require("tf2onnx", "tf2onnx", "onnx", "The ONNX export")
    return require("onnxruntime", "onnxruntime", "onnx", "The ONNX export (to check itself)")


def write(model, path):
    """Writes one `.onnx` file per random-free signature of `model` into the new directory `path`."""
    tf2onnx = require("tf2onnx", "tf2onnx", "onnx", "The ONNX export")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # its INFO lines say nothing to a user
    os.makedirs(path)
    for name, function in signatures.random_free(model, checked=False).items():
        specs = signatures.input_specs(model, name)
        tf2onnx.convert.from_function(tf.function(function, input_signature=specs),
                                      input_signature=specs,
                                      output_path=os.path.join(path, f"{name}.onnx"))


def runner(path, onnxruntime):
    """Calls the signatures in the directory `path` in `onnxruntime`, one
    session per file: `run(name, inputs)` takes and returns dicts of arrays."""
    sessions = {}

    def run(name, inputs):
        if name not in sessions:
            sessions[name] = onnxruntime.InferenceSession(
                os.path.join(path, f"{name}.onnx"), providers=["CPUExecutionProvider"])
        session = sessions[name]
        outputs = session.run(None, inputs)
        return {spec.name: value for spec, value in zip(session.get_outputs(), outputs)}

    return run
