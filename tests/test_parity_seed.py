"""An independent check: the seed's own graph, written out here as the seed
writes it (not legacy_tf1), against model.fit after a plain compile()."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import parity
from keras_vae.data.idx import read_mnist, scale_pixels
from keras_vae.model import VAE

STEPS = 500
mb_size = 64


def seed_graph(X_dim=784, z_dim=100, h_dim=128):
    """The seed's TF1 script from `X = tf.placeholder` to `solver`, with the
    `tf.` names TF2 moved spelled `tf.compat.v1.`; nothing else changed."""

    def xavier_init(size):
        in_dim = size[0]
        xavier_stddev = 1. / tf.sqrt(in_dim / 2.)
        return tf.compat.v1.random_normal(shape=size, stddev=xavier_stddev)

    X = tf.compat.v1.placeholder(tf.float32, shape=[None, X_dim])
    z = tf.compat.v1.placeholder(tf.float32, shape=[None, z_dim])

    Q_W1 = tf.Variable(xavier_init([X_dim, h_dim]))
    Q_b1 = tf.Variable(tf.zeros(shape=[h_dim]))

    Q_W2_mu = tf.Variable(xavier_init([h_dim, z_dim]))
    Q_b2_mu = tf.Variable(tf.zeros(shape=[z_dim]))

    Q_W2_sigma = tf.Variable(xavier_init([h_dim, z_dim]))
    Q_b2_sigma = tf.Variable(tf.zeros(shape=[z_dim]))

    def Q(X):
        h = tf.nn.relu(tf.matmul(X, Q_W1) + Q_b1)
        z_mu = tf.matmul(h, Q_W2_mu) + Q_b2_mu
        z_logvar = tf.matmul(h, Q_W2_sigma) + Q_b2_sigma
        return z_mu, z_logvar

    def sample_z(mu, log_var):
        eps = tf.compat.v1.random_normal(shape=tf.shape(mu))
        return mu + tf.exp(log_var / 2) * eps

    P_W1 = tf.Variable(xavier_init([z_dim, h_dim]))
    P_b1 = tf.Variable(tf.zeros(shape=[h_dim]))

    P_W2 = tf.Variable(xavier_init([h_dim, X_dim]))
    P_b2 = tf.Variable(tf.zeros(shape=[X_dim]))

    def P(z):
        h = tf.nn.relu(tf.matmul(z, P_W1) + P_b1)
        logits = tf.matmul(h, P_W2) + P_b2
        prob = tf.nn.sigmoid(logits)
        return prob, logits

    z_mu, z_logvar = Q(X)
    z_sample = sample_z(z_mu, z_logvar)
    _, logits = P(z_sample)

    X_samples, _ = P(z)

    recon_loss = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=X), 1)
    kl_loss = 0.5 * tf.reduce_sum(tf.exp(z_logvar) + z_mu**2 - 1. - z_logvar, 1)
    vae_loss = tf.reduce_mean(recon_loss + kl_loss)

    solver = tf.compat.v1.train.AdamOptimizer().minimize(vae_loss)

    # Handles for the check: eps is the random_normal inside sample_z, which
    # a feed_dict can replace like any tensor.
    eps = z_sample.op.inputs[1].op.inputs[1]
    variables = dict(zip(parity.TF1_NAMES, (
        Q_W1, Q_b1, Q_W2_mu, Q_b2_mu, Q_W2_sigma, Q_b2_sigma, P_W1, P_b1, P_W2, P_b2)))
    return X, eps, vae_loss, solver, variables


@pytest.mark.slow
def test_seed_graph_and_fit_are_bit_identical_after_500_steps(synthetic_mnist_dir):
    keras.utils.set_random_seed(1)
    model = VAE()
    model.compile()
    initial = parity.get_tf1_weights(model)

    images, _ = read_mnist(synthetic_mnist_dir, "train[5000:]")
    rng = np.random.default_rng(1)
    epochs = -(-STEPS * mb_size // len(images))
    order = np.concatenate([rng.permutation(len(images)) for _ in range(epochs)])[: STEPS * mb_size]
    X_mb = scale_pixels(images[order]).reshape(STEPS, mb_size, 784)
    noise = rng.standard_normal((STEPS, mb_size, 100), dtype=np.float32)

    graph = tf.Graph()
    with graph.as_default():
        X, eps, vae_loss, solver, variables = seed_graph()
        assert eps.name.startswith("random_normal"), eps.name
        sess = tf.compat.v1.Session()
        sess.run(tf.compat.v1.global_variables_initializer())
        for name, variable in variables.items():
            variable.load(initial[name], sess)
        tf1_losses = []
        for it in range(STEPS):
            feed = {X: X_mb[it], eps: noise[it]}
            tf1_losses.append(sess.run(vae_loss, feed))
            sess.run(solver, feed)
        tf1_weights = sess.run(variables)
        sess.close()

    losses = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(logs["step_loss"])
    )
    dataset = tf.data.Dataset.from_tensor_slices(
        {"image": X_mb.reshape(-1, 784), "noise": noise.reshape(-1, 100)}
    ).batch(mb_size)
    model.fit(dataset, epochs=1, steps_per_epoch=STEPS, verbose=0, callbacks=[record])

    np.testing.assert_array_equal(np.float32(losses), np.float32(tf1_losses))
    keras_weights = parity.get_tf1_weights(model)
    for name in parity.TF1_NAMES:
        np.testing.assert_array_equal(keras_weights[name], tf1_weights[name], err_msg=name)
    # The run trained: the weights moved well away from their start.
    assert np.abs(keras_weights["P_W2"] - initial["P_W2"]).max() > 0.05
