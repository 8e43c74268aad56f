"""The Keras side of the VAE as a user meets it: compile's arguments, data of
unknown shape or length, fitting again after an input error, summary()."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae


def _images(n=32, seed=0):
    return np.random.default_rng(seed).random((n, 784), dtype=np.float32)


def _generated(batches, shape=None):
    """A dataset of `batches` from a generator whose element shape is `shape` (None: unknown rank)."""
    return tf.data.Dataset.from_generator(
        lambda: iter(batches), output_signature=tf.TensorSpec(shape=shape, dtype=tf.float32))


def test_images_of_unknown_rank_train_and_evaluate():
    model = keras_vae.VAE(seed=0)
    model.compile()
    data = _generated([_images(16, seed) for seed in range(3)])
    model.fit(data, verbose=0)
    assert int(model.optimizer.iterations) == 3
    assert np.isfinite(model.evaluate(data, verbose=0, return_dict=True)["loss"])


def test_images_of_unknown_rank_and_the_wrong_shape_are_refused_with_the_expected_shape():
    model = keras_vae.VAE(seed=0)
    model.compile()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images of shape \(batch, 784\)"):
        model.fit(_generated([np.zeros((4, 28, 28), np.float32)]), verbose=0)
    assert int(model.optimizer.iterations) == 0


def test_fit_after_an_input_error_trains_without_compiling_again():
    model = keras_vae.VAE(seed=0)
    model.compile()
    with pytest.raises(ValueError, match="flattened"):
        model.fit(np.zeros((32, 28, 28), np.float32), batch_size=16, verbose=0)
    model.fit(_images(), batch_size=16, verbose=0)
    assert int(model.optimizer.iterations) == 2


class _StopAfter(keras.callbacks.Callback):
    """Stops a fit that would otherwise never end."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 >= self.steps:
            self.model.stop_training = True


def test_fit_refuses_endless_data_without_steps_per_epoch(synthetic_mnist_dir):
    model = keras_vae.VAE(seed=0)
    model.compile()
    endless = [keras_vae.load_mnist(batch_size=8, data_dir=synthetic_mnist_dir),
               tf.data.Dataset.from_tensors(_images(8)).repeat()]
    for data in endless:
        with pytest.raises(ValueError, match="steps_per_epoch=N"):
            model.fit(data, verbose=0, callbacks=[_StopAfter(3)])
    for method in (model.evaluate, model.predict):
        with pytest.raises(ValueError, match="steps=N"):
            method(endless[1], verbose=0)
    model.fit(endless[0], steps_per_epoch=3, verbose=0)  # bounded, it trains
    assert int(model.optimizer.iterations) == 3


@pytest.mark.parametrize("argument", [{"loss": "mse"}, {"metrics": ["mae"]},
                                      {"weighted_metrics": ["mae"]}, {"loss_weights": [1.0]}])
def test_compile_refuses_a_loss_or_metrics_naming_what_the_vae_trains_on(argument):
    model = keras_vae.VAE(seed=0)
    with pytest.raises(ValueError, match=f"trains on its own loss.*Remove {next(iter(argument))}"):
        model.compile(**argument)


@pytest.mark.parametrize("dims", [(784, 128, 100), (144, 32, 2)])
def test_summary_lists_the_encoder_the_sampler_and_the_decoder_with_their_parameters(dims):
    x, h, z = dims
    model = keras_vae.VAE(x_dim=x, h_dim=h, z_dim=z, seed=0)
    lines = []
    model.summary(print_fn=lines.append)
    rows = {line.split("  ")[0]: line for line in lines}
    encoder, decoder = x * h + h + 2 * (h * z + z), z * h + h + h * x + x
    assert rows["Q(z|X), the encoder"].endswith(f"{encoder:,}")
    assert f"(None, {z})" in rows["Q(z|X), the encoder"]
    assert rows["sampler: z_mu + exp(z_logvar / 2) * eps"].endswith(" 0")
    assert rows["P(X|z), the decoder"].endswith(f"{decoder:,}")
    assert f"(None, {x})" in rows["P(X|z), the decoder"]
    assert f"Trainable params: {encoder + decoder:,} " in "\n".join(lines)
    model.compile()
    lines.clear()
    model.summary(print_fn=lines.append)
    optimizer = sum(int(np.prod(v.shape)) for v in model.optimizer.variables)
    assert f"Optimizer params: {optimizer:,} " in "\n".join(lines)
    assert f"Total params: {encoder + decoder + optimizer:,} " in "\n".join(lines)
