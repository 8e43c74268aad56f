"""Parity with the original TF1 graph (legacy_tf1), bit for bit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import parity
from keras_vae.model import VAE
from legacy_tf1.vae_tf1 import build_graph
from tests.conftest import make_batch


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    vae = VAE()
    vae.compile()
    return vae


def test_one_step_losses_and_gradients_are_bit_identical(model):
    x, eps = make_batch(0)
    vae = build_graph(initial_values=parity.get_tf1_weights(model), feed_eps=True)
    with tf.compat.v1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        tf1_losses, tf1_gradients = sess.run(
            [[vae.vae_loss, vae.recon_loss, vae.kl_loss], vae.gradients],
            {vae.X: x, vae.eps: eps},
        )
    losses, gradients = tf.function(model.compute_gradients)(x, eps)
    for name, keras_value, tf1_value in zip(("loss", "recon_loss", "kl_loss"), losses, tf1_losses):
        assert keras_value.numpy() == tf1_value, name
    for name, gradient in zip(parity.TF1_NAMES, gradients):
        np.testing.assert_array_equal(gradient.numpy(), tf1_gradients[name], err_msg=name)


def test_decoder_is_bit_identical(model):
    z = np.random.default_rng(1).standard_normal((16, 100)).astype(np.float32)
    vae = build_graph(initial_values=parity.get_tf1_weights(model))
    with tf.compat.v1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        tf1_prob, tf1_logits = sess.run([vae.X_samples, vae.X_logits], {vae.z: z})
    prob, logits = tf.function(model.decode)(z)  # traced, as the TF1 graph runs
    np.testing.assert_array_equal(logits.numpy(), tf1_logits)
    np.testing.assert_array_equal(prob.numpy(), tf1_prob)


def test_500_steps_through_fit_are_bit_identical(synthetic_mnist_dir):
    report = parity.compare_training(synthetic_mnist_dir, steps=500, seed=0)
    assert report.identical, report.format()
    assert all(v.max_abs == 0 for v in report.variables)
    assert "verdict: BIT-IDENTICAL" in report.format()


def test_the_comparison_sees_a_drift(synthetic_mnist_dir):
    # Keras' own Adam, even with TF1's epsilon: a different arithmetic.
    report = parity.compare_training(
        synthetic_mnist_dir, steps=20, seed=0,
        compile_kwargs={"optimizer": keras.optimizers.Adam(epsilon=1e-8)},
    )
    assert not report.identical
    assert report.loss_first_step is not None and report.loss_first_step >= 1
    assert all(v.first_step is not None and v.max_abs > 0 for v in report.variables)
    assert "verdict: DIFFERENT" in report.format()
