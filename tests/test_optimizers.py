"""TF1Adam against tf.compat.v1.train.AdamOptimizer, the optimizer it stands in for."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae.optimizers import TF1Adam

STEPS = 30


def _stream():
    rng = np.random.default_rng(0)
    start = rng.standard_normal((7, 13)).astype(np.float32)
    grads = rng.standard_normal((STEPS, 7, 13)).astype(np.float32)
    return start, grads


def _tf1_adam(start, grads):
    graph = tf.Graph()
    with graph.as_default():
        var = tf.compat.v1.Variable(start, use_resource=True)
        grad = tf.compat.v1.placeholder(tf.float32, start.shape)
        step = tf.compat.v1.train.AdamOptimizer().apply_gradients([(grad, var)])
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for g in grads:
                sess.run(step, {grad: g})
            return sess.run(var)


def _keras(optimizer, start, grads):
    var = keras.Variable(start)
    apply = tf.function(lambda g: optimizer.apply([g], [var]))
    for g in grads:
        apply(tf.constant(g))
    return var.numpy()


def test_tf1_adam_is_bit_identical_to_tf1():
    start, grads = _stream()
    np.testing.assert_array_equal(_keras(TF1Adam(), start, grads), _tf1_adam(start, grads))


def test_keras_adam_is_not_which_is_why_tf1_adam_exists():
    start, grads = _stream()
    keras_adam = _keras(keras.optimizers.Adam(epsilon=1e-8), start, grads)
    assert not np.array_equal(keras_adam, _tf1_adam(start, grads))


def test_config_round_trip():
    optimizer = TF1Adam(learning_rate=2e-3, beta_1=0.8, epsilon=1e-6)
    restored = TF1Adam.from_config(optimizer.get_config())
    assert (restored.beta_1, restored.beta_2, restored.epsilon) == (0.8, 0.999, 1e-6)
    assert float(restored.learning_rate) == np.float32(2e-3)
    assert TF1Adam().epsilon == 1e-8


def test_gradient_accumulation_is_refused_naming_the_argument():
    # Keras would advance the beta powers at every call but update every N calls.
    with pytest.raises(ValueError, match="gradient_accumulation_steps=2"):
        TF1Adam(gradient_accumulation_steps=2)
