"""keras-vae: the classic TF1 MNIST variational autoencoder, ported to Keras 3.

Importing the package registers its Keras classes (`VAE`, `TF1Adam`,
`LastValue`), so `keras.models.load_model` reads its `.keras` files.
"""

__version__ = "0.1.0"

from keras_vae import plots
from keras_vae.callbacks import SampleGrid
from keras_vae.data import DataError, load_mnist
from keras_vae.download import download_mnist
from keras_vae.evaluation import evaluate
from keras_vae.logs import TrainingLog
from keras_vae.losses import kl_divergence, reconstruction_loss
from keras_vae.metrics import LastValue
from keras_vae.model import VAE
from keras_vae.optimizers import TF1Adam
from keras_vae.saving import load_model, save_model

__all__ = [
    "__version__",
    "DataError",
    "LastValue",
    "SampleGrid",
    "TF1Adam",
    "TrainingLog",
    "VAE",
    "download_mnist",
    "evaluate",
    "kl_divergence",
    "load_mnist",
    "load_model",
    "plots",
    "reconstruction_loss",
    "save_model",
]
