"""keras-vae: the classic TF1 MNIST variational autoencoder, ported to Keras 3.

Names are imported on first use, so `import keras_vae` (and the CLI's
`--help`) stays quick and does not start TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "VAE": "keras_vae.model",
    "TF1Adam": "keras_vae.optimizers",
    "SampleGrid": "keras_vae.callbacks",
    "load_model": "keras_vae.saving",
    "save_model": "keras_vae.saving",
    "load_mnist": "keras_vae.data",
    "DataError": "keras_vae.data",
    "reconstruction_loss": "keras_vae.losses",
    "kl_divergence": "keras_vae.losses",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
