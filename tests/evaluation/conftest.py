"""The evaluation tests' model: a small VAE trained briefly on the synthetic
files, far enough that its estimates depend on the draws."""

import keras
import pytest

from keras_vae.data.batches import load_mnist
from keras_vae.model import VAE


def trained_vae(data_dir, z_dim=8, steps=300, seed=3):
    """A 784-32-`z_dim` VAE after `steps` steps on the images in `data_dir`."""
    keras.utils.set_random_seed(seed)
    model = VAE(h_dim=32, z_dim=z_dim, seed=seed)
    model.compile(steps_per_execution=100)
    model.fit(load_mnist(data_dir=data_dir, seed=seed), steps_per_epoch=steps, verbose=0)
    return model


@pytest.fixture(scope="session")
def trained(synthetic_mnist_dir):
    """`trained_vae` with an 8-dimensional z, shared: a test must not change it."""
    return trained_vae(synthetic_mnist_dir)
