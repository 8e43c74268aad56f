"""The VAE: the original's Q(z|X), sampler and P(X|z) as a `keras.Model`."""

import json

import keras
import tensorflow as tf

from keras_vae.checks import check_count
from keras_vae.losses import kl_divergence, reconstruction_loss
from keras_vae.metrics import LastValue
from keras_vae.optimizers import TF1Adam
from keras_vae.replicas import logs_for_keras, replica_share


def xavier_init(in_dim):
    """The original's init: N(0, 1/sqrt(in_dim/2)), untruncated (He normal)."""
    return keras.initializers.RandomNormal(stddev=1.0 / (in_dim / 2.0) ** 0.5)


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(keras.Model):
    """The original MNIST VAE, trained with `fit` through a custom `train_step`.

    The forward pass uses the original's ops (`matmul` then `+`, no fused
    `BiasAdd`) and the loss is the original's (`sigmoid_cross_entropy_with_logits`
    summed over pixels plus the closed-form KL, averaged over the batch), so
    that, with `compile()`'s default `TF1Adam`, training matches the TF1
    graph bit for bit given the same weights, batches and noise.

    `fit` and `evaluate` take images `x` (float32 `(batch, x_dim)` in [0, 1]),
    `(x, y)` or `(x, y, sample_weight)` (labels are ignored), or a dict
    `{"image": x, "noise": eps}` whose `eps` (`(batch, z_dim)`) replaces the
    sampler's noise for that step.

    Args:
        x_dim: int, pixels per image. Defaults to `784`.
        h_dim: int, hidden units of encoder and decoder. Defaults to `128`.
        z_dim: int, dimensions of the latent z. Defaults to `100`.
        seed: int or None, seeds the sampler's noise. Defaults to `None`
            (drawn from Keras' global seed, see `keras.utils.set_random_seed`).
        beta: float, the KL term's weight in the training loss (Higgins et
            al. 2017's beta-VAE). Defaults to `1.0`, the original's loss, the
            negative ELBO.
        trained_with: dict or None, what the model was trained on and how
            (data, batch size, learning rate, ...), kept in its config, its
            `.keras` files and SavedModels. `keras-vae train` fills it in.

    Example:

    >>> model = keras_vae.VAE()
    >>> model.compile()
    >>> model.fit(keras_vae.load_mnist(data_dir="MNIST_data"), steps_per_epoch=1000)
    """

    def __init__(self, x_dim=784, h_dim=128, z_dim=100, seed=None, beta=1.0,
                 trained_with=None, **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("x_dim", x_dim), ("h_dim", h_dim), ("z_dim", z_dim)):
            check_count(arg, value)
        if not (isinstance(beta, (int, float)) and beta >= 0 and beta != float("inf")):
            raise ValueError(f"Expected beta to be a finite number >= 0. Received: beta={beta!r}")
        self.x_dim, self.h_dim, self.z_dim, self.seed = x_dim, h_dim, z_dim, seed
        self.beta = float(beta)
        self.trained_with = trained_with or {}

        # =============================== Q(z|X) ===============================
        self.Q_W1 = self._weight("Q_W1", (x_dim, h_dim))
        self.Q_b1 = self._bias("Q_b1", h_dim)
        self.Q_W2_mu = self._weight("Q_W2_mu", (h_dim, z_dim))
        self.Q_b2_mu = self._bias("Q_b2_mu", z_dim)
        self.Q_W2_sigma = self._weight("Q_W2_sigma", (h_dim, z_dim))
        self.Q_b2_sigma = self._bias("Q_b2_sigma", z_dim)

        # =============================== P(X|z) ===============================
        self.P_W1 = self._weight("P_W1", (z_dim, h_dim))
        self.P_b1 = self._bias("P_b1", h_dim)
        self.P_W2 = self._weight("P_W2", (h_dim, x_dim))
        self.P_b2 = self._bias("P_b2", x_dim)

        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_loss_tracker = keras.metrics.Mean(name="recon_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.step_loss_tracker = LastValue(name="step_loss")
        self.fast = False  # compile(fast=True) sets it
        self.built = True

    @property
    def trained_with(self):
        """What the model was trained on and how: a dict (a copy)."""
        return json.loads(self._trained_with)

    @trained_with.setter
    def trained_with(self, value):
        # Kept as JSON: a dict attribute would become Keras' TrackedDict, and the
        # record must stay JSON for .keras files and SavedModels alike.
        self._trained_with = json.dumps(dict(value))

    def _weight(self, name, shape):
        return self.add_weight(shape=shape, initializer=xavier_init(shape[0]), name=name)

    def _bias(self, name, size):
        return self.add_weight(shape=(size,), initializer="zeros", name=name)

    @property
    def metrics(self):
        # Listed here so that Keras resets them at the start of each epoch.
        return [
            self.loss_tracker,
            self.recon_loss_tracker,
            self.kl_loss_tracker,
            self.step_loss_tracker,
        ]

    def compile(self, optimizer=None, fast=False, **kwargs):
        """Configures training; with no optimizer, the faithful `TF1Adam()`.

        Args:
            optimizer: a Keras optimizer or its name. Defaults to `TF1Adam()`,
                the original's `tf.train.AdamOptimizer()` with its arithmetic.
            fast: bool. `True`: fast mode, for training that is statistically
                the original's but not bit for bit: `steps_per_execution`
                defaults to 100, and on `load_mnist` data each execution's
                steps run as one XLA-compiled loop, their noise drawn at once.
                Defaults to `False`: faithful, the TF1 graph's bits.
            **kwargs: passed to `keras.Model.compile`. `jit_compile` defaults
                to `False`: XLA changes the arithmetic, and Keras' own XLA
                step, which draws the noise inside XLA, runs this model
                slower than without XLA (see the README). For speed with the
                same bits, pass `steps_per_execution=100`.
        """
        kwargs.setdefault("jit_compile", False)
        if fast:
            kwargs.setdefault("steps_per_execution", 100)
        self.fast = fast  # read by fit (keras_vae.execution)
        super().compile(optimizer=optimizer or TF1Adam(), **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for models with their own `compile`, which would
        # load a `.keras` file without its optimizer state.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        self.optimizer.build(self.trainable_variables)

    # Q(z|X)
    def encode(self, x):
        """Q(z|X): the posterior's mean and log-variance, each `(batch, z_dim)`."""
        x = _as_float(x, self.compute_dtype)
        h = tf.nn.relu(tf.matmul(x, self.Q_W1) + self.Q_b1)  # (batch, h_dim)
        z_mu = tf.matmul(h, self.Q_W2_mu) + self.Q_b2_mu  # (batch, z_dim)
        z_logvar = tf.matmul(h, self.Q_W2_sigma) + self.Q_b2_sigma  # (batch, z_dim)
        return z_mu, z_logvar

    def reparameterize(self, z_mu, z_logvar, eps=None):
        """The original's `sample_z`: z = mu + exp(logvar / 2) * eps, eps ~ N(0, I).

        Args:
            z_mu: tensor `(batch, z_dim)`.
            z_logvar: tensor `(batch, z_dim)`.
            eps: tensor `(batch, z_dim)` or None, the noise to use instead of
                a fresh draw from the model's seed generator.
        """
        if eps is None:
            eps = keras.random.normal(
                tf.shape(z_mu), dtype=z_mu.dtype, seed=self.seed_generator
            )
        return z_mu + tf.exp(z_logvar / 2) * eps

    # P(X|z)
    def decode(self, z):
        """P(X|z): pixel probabilities and logits, each `(batch, x_dim)`."""
        z = _as_float(z, self.compute_dtype)
        h = tf.nn.relu(tf.matmul(z, self.P_W1) + self.P_b1)  # (batch, h_dim)
        logits = tf.matmul(h, self.P_W2) + self.P_b2  # (batch, x_dim)
        prob = tf.nn.sigmoid(logits)
        return prob, logits

    def reconstruct(self, x):
        """Decodes the posterior's mean: deterministic, `(batch, x_dim)` probabilities."""
        z_mu, _ = self.encode(x)
        prob, _ = self.decode(z_mu)
        return prob

    def sample(self, n, seed=None):
        """Draws `n` images from z ~ N(0, I): `(n, x_dim)` probabilities.

        Args:
            n: int, how many images.
            seed: int or None. The same int gives the same images; None draws
                from Keras' global seed and leaves the training noise alone.
        """
        z = keras.random.normal((n, self.z_dim), seed=seed)
        prob, _ = self.decode(z)
        return prob

    def call(self, inputs, training=False):
        """`predict` and `model(x)` reconstruct: see `reconstruct`."""
        x, _, _ = _unpack(inputs)
        return self.reconstruct(x)

    def compute_vae_loss(self, x, noise=None, sample_weight=None):
        """The original's loss: (vae_loss, recon_loss, kl_loss), batch means;
        vae_loss weighs the KL term by `beta` (with beta 1, the original's sum).

        Without `sample_weight` the mean is `tf.reduce_mean`, the original's op;
        with it, each example's loss is weighted and summed, then divided by
        the batch size (Keras' `"sum_over_batch_size"`).
        """
        x = _as_float(x, self.compute_dtype)
        z_mu, z_logvar = self.encode(x)
        z_sample = self.reparameterize(z_mu, z_logvar, noise)
        _, logits = self.decode(z_sample)
        recon_loss = reconstruction_loss(x, logits)  # (batch,)
        kl_loss = kl_divergence(z_mu, z_logvar)  # (batch,)
        # beta 1 adds the terms as the original did, without a multiplication.
        vae_loss = recon_loss + (kl_loss if self.beta == 1.0 else self.beta * kl_loss)
        if sample_weight is None:
            return (
                tf.reduce_mean(vae_loss),
                tf.reduce_mean(recon_loss),
                tf.reduce_mean(kl_loss),
            )
        weight = tf.reshape(tf.cast(sample_weight, recon_loss.dtype), [-1])
        return tuple(
            _weighted_mean(value, weight)
            for value in (vae_loss, recon_loss, kl_loss)
        )

    def compute_gradients(self, x, noise=None, sample_weight=None):
        """(vae_loss, recon_loss, kl_loss) and the gradient of vae_loss per weight.

        What `train_step` applies. Traced (inside `fit` or a `tf.function`)
        the gradients are the TF1 graph's bit for bit; run eagerly they were
        measured to differ from it in the last bits.
        """
        share, noise = self._replica_share_and_noise(x, noise)
        with tf.GradientTape() as tape:
            losses = self.compute_vae_loss(x, noise, sample_weight)
            # Replicas: each one's part of the global batch mean, which the
            # strategy's sum of gradients adds up.
            scaled_loss = losses[0] if share is None else losses[0] * share.fraction
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        return (losses if share is None else share.as_replica_mean(losses)), gradients

    def _replica_share_and_noise(self, x, noise):
        """Under a strategy of several replicas: this replica's share of the
        batch, and its rows of the global noise unless `noise` is given.
        On one device: `(None, noise)`."""
        share = replica_share(x)
        if share is not None and noise is None:
            noise = self.global_noise_rows(share)
        return share, noise

    def global_noise_rows(self, share):
        """This replica's rows of the noise one device would draw for the
        whole batch: the same `(global batch, z_dim)` draw, split."""
        eps = keras.random.normal(tf.stack([share.total, self.z_dim]), seed=self.seed_generator)
        return eps[share.offset:share.offset + share.size]

    def fit(self, x=None, y=None, steps_per_epoch=None, **kwargs):
        """Keras' `fit`, running exactly `steps_per_epoch` steps whatever
        `steps_per_execution` is; given `load_mnist`'s dataset it draws the
        batches inside the training loop (see `keras_vae.execution`).
        """
        from keras_vae.execution import fit

        history = fit(self, super().fit, x, y, steps_per_epoch=steps_per_epoch, **kwargs)
        if not history.history:
            raise ValueError(
                "fit() ran no training step: the data is empty. Pass at least "
                "one batch of images, e.g. keras_vae.load_mnist()."
            )
        return history

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15, under a strategy, first reduces a batch across the
        # replicas to build the model on it: that fails for (x, y) batches
        # under MultiWorkerMirroredStrategy and for replicas of unequal
        # shares. This model is built when made and compiles no loss or
        # metric, so building its optimizer is all that step would do.
        # tests/test_distribute.py says when a Keras release no longer needs it.
        if self._distribute_strategy is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def train_step(self, data):
        x, noise, sample_weight = _unpack(data)
        # Nothing of the step runs on images that fail the check: not the
        # update, nor the optimizer's step counter or beta powers.
        with tf.control_dependencies([self._check_inputs(x, noise)]):
            return self.update_metrics(*self.optimizer_step(x, noise, sample_weight))

    def optimizer_step(self, x, noise=None, sample_weight=None):
        """One optimizer step on the loss of images already checked; returns
        (vae_loss, recon_loss, kl_loss), as `compute_gradients` does."""
        losses, gradients = self.compute_gradients(x, noise, sample_weight)
        self.optimizer.apply(gradients, self.trainable_weights)
        return losses

    def test_step(self, data):
        x, noise, sample_weight = _unpack(data)
        share, noise = self._replica_share_and_noise(x, noise)
        with tf.control_dependencies([self._check_inputs(x, noise)]):
            losses = self.compute_vae_loss(x, noise, sample_weight)
            return self.update_metrics(*(losses if share is None else share.as_replica_mean(losses)))

    def update_metrics(self, loss, recon_loss, kl_loss):
        """Adds one step's losses to the metrics; returns the metrics."""
        self.loss_tracker.update_state(loss)
        self.recon_loss_tracker.update_state(recon_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        self.step_loss_tracker.update_state(loss)
        return logs_for_keras(self.get_metrics_result())

    def _check_inputs(self, x, noise):
        """The op that checks `x`'s values; a clear error now for anything else.

        Dtype and shape are checked when the step is traced; the values (in
        [0, 1], no NaN) at run time, by the returned op, which the step's ops
        wait for.
        """
        if not x.dtype.is_floating:
            raise ValueError(
                f"Expected float images in [0, 1]. Received: x.dtype={x.dtype.name}. "
                "Scale uint8 pixels first, e.g. keras_vae.data.scale_pixels(x)."
            )
        if x.shape.rank != 2 or x.shape[-1] not in (None, self.x_dim):
            raise ValueError(
                f"Expected images of shape (batch, {self.x_dim}), flattened. "
                f"Received: x.shape={tuple(x.shape)}. Reshape 28x28 images with "
                f"x.reshape(-1, {self.x_dim})."
            )
        if noise is not None and (
            noise.shape.rank != 2 or noise.shape[-1] not in (None, self.z_dim)
        ):
            raise ValueError(
                f"Expected noise of shape (batch, {self.z_dim}). "
                f"Received: noise.shape={tuple(noise.shape)}."
            )
        in_range = tf.reduce_all(tf.logical_and(x >= 0, x <= 1))  # False for NaN
        return tf.debugging.Assert(
            in_range,
            [
                "Expected pixel values in [0, 1], without NaN: scale uint8 "
                "images with keras_vae.data.scale_pixels (x * 1/255). Received "
                "values from", tf.reduce_min(x), "to", tf.reduce_max(x),
            ],
        )

    def export(self, filepath, format="tf_saved_model", verbose=None, overwrite=False, **kwargs):
        """Exports a SavedModel with the signatures `encode`, `decode`,
        `reconstruct`, `sample` and `serving_default` (see
        `keras_vae.export.export_saved_model`), written atomically.

        Other formats, or Keras' own arguments, go to `keras.Model.export`.

        Args:
            filepath: str or `os.PathLike`, the directory to create.
            format: string. Defaults to `"tf_saved_model"`.
            verbose: bool, print the endpoints. Defaults to `None` (quiet).
            overwrite: bool, replace an existing directory. Defaults to `False`.
        """
        if format != "tf_saved_model" or kwargs:
            return super().export(filepath, format=format, verbose=verbose, **kwargs)
        from keras_vae.export import export_saved_model

        return export_saved_model(self, filepath, overwrite=overwrite, verbose=bool(verbose))

    def _saved_variables(self):
        # The sampler's state travels with the weights, so that training
        # continued after loading draws the noise it would have drawn.
        return [
            *self._trainable_variables,
            *self._non_trainable_variables,
            self.seed_generator.state,
        ]

    def save_own_variables(self, store):
        # The format version goes with the variables whose layout it names:
        # unlike the config, it asks nothing of `__init__` or `from_config`.
        from keras_vae.saving import FORMAT_VERSION

        store["format_version"] = FORMAT_VERSION
        for i, variable in enumerate(self._saved_variables()):
            store[str(i)] = variable

    def load_own_variables(self, store):
        from keras_vae.saving import check_format_version

        keys = set(store.keys())
        # Files from before the version was stored are version 1.
        version = int(store["format_version"]) if "format_version" in keys else 1
        check_format_version(version, "The saved VAE")
        keys.discard("format_version")
        variables = self._saved_variables()
        if len(keys) != len(variables):
            raise ValueError(
                f"Expected {len(variables)} saved variables (the ten weights and "
                f"the sampler's state). Received: {len(keys)}. The file "
                "was not saved by this version of keras_vae's VAE."
            )
        for i, variable in enumerate(variables):
            variable.assign(store[str(i)])

    def get_config(self):
        base_config = super().get_config()
        config = {
            "x_dim": self.x_dim,
            "h_dim": self.h_dim,
            "z_dim": self.z_dim,
            "seed": self.seed,
            "beta": self.beta,
            "trained_with": self.trained_with,
        }
        return {**base_config, **config}


def _unpack(data):
    """(images, noise or None, sample_weight or None) from any accepted batch form."""
    x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    noise = None
    if isinstance(x, dict):
        if "image" not in x:
            raise ValueError(
                'A dict batch needs the key "image" (and optionally "noise"). '
                f"Received keys: {sorted(x)}"
            )
        x, noise = x["image"], x.get("noise")
    return tf.convert_to_tensor(x), noise, sample_weight


def _as_float(x, dtype):
    """A tensor of `dtype` from an array, a list or a tensor."""
    return tf.cast(tf.convert_to_tensor(x), dtype)


def _weighted_mean(values, weight):
    return tf.reduce_sum(values * weight) / tf.cast(tf.size(values), values.dtype)
