"""Parity with the original TF1 graph (legacy_tf1), bit for bit."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import parity
from keras_vae.model import VAE
from legacy_tf1.vae_tf1 import build_graph
from tests.conftest import REPO, make_batch, run_keras_vae


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


@pytest.mark.slow
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


# The path `keras-vae train` runs. Each run is a process of its own: `train`
# turns on TensorFlow's op determinism for the whole process.


@pytest.mark.slow
def test_keras_vae_train_is_bit_identical_after_every_call(synthetic_mnist_dir):
    run = run_keras_vae("parity", "--data-dir", synthetic_mnist_dir, "--steps", 500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # Grids every 150 steps and checkpoints every 220 cut the calls of 100
    # steps: after steps 1, 101, 151, 220, 301, 401, 440, 451 and 500.
    assert ("verdict: BIT-IDENTICAL: all 10 variables after every one of 9 calls "
            "(500 steps), and every loss") in run.stdout
    assert run.stdout.count("  -\n") == 10  # no variable ever differed


# One named op swapped in the port, the harness unchanged.
SWAPS = {
    "bias_add in decode": """
        def decode(self, z):
            z = tf.cast(z, self.compute_dtype)
            h = tf.nn.relu(tf.nn.bias_add(tf.matmul(z, self.P_W1), self.P_b1))
            logits = tf.nn.bias_add(tf.matmul(h, self.P_W2), self.P_b2)
            return tf.nn.sigmoid(logits), logits

        model.VAE.decode = decode
    """,
    "Keras' Adam": """
        from keras_vae import optimizers

        # What keras_vae.training builds for keras-vae train.
        optimizers.TF1Adam = lambda learning_rate: keras.optimizers.Adam(
            learning_rate, epsilon=1e-8)
    """,
}


@pytest.mark.slow
@pytest.mark.parametrize("swap", SWAPS)
def test_the_train_path_check_sees_one_swapped_op(synthetic_mnist_dir, swap):
    code = "\n".join([
        "import sys, keras, tensorflow as tf",
        "from keras_vae import model",
        textwrap.dedent(SWAPS[swap]),
        "from keras_vae.cli import main",
        "sys.exit(main(sys.argv[1:]))",
    ])
    run = subprocess.run(
        [sys.executable, "-c", code, "parity", "--data-dir", str(synthetic_mnist_dir),
         "--steps", "500"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "verdict: DIFFERENT" in run.stdout
