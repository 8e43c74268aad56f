"""keras-vae: the classic TF1 MNIST variational autoencoder, ported to Keras 3.

Importing the package registers its Keras classes (`VAE`, `TF1Adam`,
`LastValue`), so `keras.models.load_model` reads its `.keras` files.
"""

from keras_vae.data.batches import MnistBatches, load_mnist
from keras_vae.data.download import download_mnist
from keras_vae.data.idx import DataError
from keras_vae.evaluation import plots
from keras_vae.evaluation.estimates import evaluate
from keras_vae.losses import kl_divergence, reconstruction_loss
from keras_vae.metrics import LastValue
from keras_vae.model import VAE
from keras_vae.optimizers import TF1Adam
from keras_vae.saving.keras_file import load_model, save_model
from keras_vae.training.callbacks import SampleGrid
from keras_vae.training.logs import TrainingLog
from keras_vae.version import __version__

__all__ = [
    "__version__",
    "DataError",
    "LastValue",
    "MnistBatches",
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
