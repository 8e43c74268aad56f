"""Exports in three formats, each written under a temporary name, checked
in its own runtime against the Keras model, then renamed into place: the
target is either absent, the previous export, or a checked new one.

| format | target | runtime |
| --- | --- | --- |
| `saved_model` | a directory | TensorFlow, TF Serving |
| `litert` | a `.tflite` file | LiteRT (`pip install 'keras-vae[litert]'`) |
| `onnx` | a directory of `<signature>.onnx` | ONNX Runtime (`pip install 'keras-vae[onnx]'`) |
"""

import os
import warnings

from keras_vae.checks import check_count
from keras_vae.saving import litert_file, onnx_files, saved_model, self_check
from keras_vae.saving.atomic import atomic_path, clear_leftovers

FORMATS = {"saved_model": saved_model, "litert": litert_file, "onnx": onnx_files}
# Keras' names of the formats, as `keras.Model.export` takes them.
KERAS_NAMES = {"tf_saved_model": "saved_model"}
TITLES = {"saved_model": "the SavedModel", "litert": "the LiteRT export", "onnx": "the ONNX export"}


def export(model, path, format="saved_model", overwrite=False, verbose=False, max_samples=None):
    """Writes `model` at `path` in `format`, checks it, and returns `path`.

    Every format holds the random-free signatures `encode`, `decode`,
    `reconstruct`, `sample_from_z` and `reconstruct_sampled`
    (`keras_vae.saving.signatures`); the SavedModel adds `sample` and
    `serving_default` (`keras_vae.saving.saved_model`). Before the rename
    into place, the written export is loaded in its own runtime and each
    signature compared with the Keras model on 256 inputs made here
    (`keras_vae.saving.self_check`).

    Args:
        model: a `keras_vae.VAE`.
        path: str or `os.PathLike`: a directory for `saved_model` and
            `onnx`, a `.tflite` file for `litert`.
        format: `"saved_model"` (Keras' `"tf_saved_model"` too), `"litert"`
            or `"onnx"`. Defaults to `"saved_model"`.
        overwrite: bool, replace an existing `path`. Defaults to `False`:
            an existing `path` is an error and is left untouched.
        verbose: bool, print Keras' list of the SavedModel's endpoints.
        max_samples: int, the most images one call of the SavedModel's
            `sample` draws. Defaults to `saved_model.MAX_SAMPLES`, 10,000.

    Raises:
        FileExistsError: `path` exists and `overwrite` is `False`.
        ValueError: an unknown format, or a path or `max_samples` it cannot take.
        keras_vae.saving.extras.MissingExtraError: the format's packages
            are not installed; the message names the extra that installs them.
        keras_vae.saving.self_check.ExportCheckError: the export's runtime
            computes something else than the model; nothing is written.
    """
    name = KERAS_NAMES.get(format, format)
    if name not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; choose one of "
                         f"{', '.join(FORMATS)}.")
    writer = FORMATS[name]
    options = _options(name, max_samples, verbose)
    writer.check_path(path)
    runtime = writer.require_runtime()  # before anything is written
    path = os.path.abspath(os.fspath(path))
    _clear_for(path, overwrite)
    with atomic_path(path) as tmp:
        writer.write(model, tmp, **options)
        given = self_check.inputs(model)
        cases = self_check.cases(model, given)
        if name == "saved_model":
            cases += saved_model.extra_cases(model, given, options["max_samples"])
        self_check.check(writer.runner(tmp, runtime), cases, TITLES[name])
    return path


def _options(name, max_samples, verbose):
    """The writer's keyword arguments: the SavedModel's `sample` bound and listing."""
    if name != "saved_model":
        if max_samples is not None:
            raise ValueError(f"max_samples bounds the SavedModel's `sample` signature; the {name} "
                             "format has none (its `sample_from_z` takes the caller's noise).")
        return {}
    max_samples = saved_model.MAX_SAMPLES if max_samples is None else max_samples
    check_count("max_samples", max_samples)
    return {"max_samples": max_samples, "verbose": verbose}


def _clear_for(path, overwrite):
    """Clears what killed exports to `path` left, then refuses an existing
    `path` unless `overwrite`; makes its parent directory."""
    parent, name = os.path.split(path)
    # A killed export's temporary goes; a killed --overwrite's old export
    # comes back first, if its replacement never arrived.
    for kept in clear_leftovers(parent, name):
        warnings.warn(f"{kept} may be another running export's; left in place.")
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(
            f"{path} already exists. Choose another path, or pass "
            "overwrite=True (--overwrite) to replace it."
        )
    os.makedirs(parent, exist_ok=True)
