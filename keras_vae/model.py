"""The VAE: the original's Q(z|X), sampler and P(X|z) as a `keras.Model`."""

import keras
import tensorflow as tf

from keras_vae import _compat, replicas
from keras_vae.checks import check_beta, check_count, checked_images
from keras_vae.keras_model import KerasModel
from keras_vae.losses import kl_divergence, reconstruction_loss
from keras_vae.metrics import LastValue


def xavier_init(in_dim):
    """The original's init: N(0, 1/sqrt(in_dim/2)), untruncated (He normal)."""
    return keras.initializers.RandomNormal(stddev=1.0 / (in_dim / 2.0) ** 0.5)


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(KerasModel):
    """The original MNIST VAE, trained with `fit` through a custom `train_step`.

    The forward pass uses the original's ops (`matmul` then `+`, no fused
    `BiasAdd`), the loss is the original's (`sigmoid_cross_entropy_with_logits`
    summed over pixels plus the closed-form KL, a batch mean): with `compile()`'s
    `TF1Adam`, training is the TF1 graph's bit for bit (same weights, batches, noise).

    `fit` and `evaluate` take images `x` (float32 `(batch, x_dim)` in [0, 1]),
    `(x, y)` or `(x, y, sample_weight)` (labels ignored), a dict `{"image":
    x, "noise": eps}` whose `eps` replaces the sampler's noise, and
    `load_mnist`'s `MnistBatches`. `compile`, `fit`, `summary`, saving and
    `export` are `keras_vae.keras_model.KerasModel`'s.

    Args:
        x_dim: int, pixels per image. Defaults to `784`.
        h_dim: int, hidden units of encoder and decoder. Defaults to `128`.
        z_dim: int, dimensions of the latent z. Defaults to `100`.
        seed: int or None, seeds the sampler's noise. Defaults to `None`
            (drawn from Keras' global seed, see `keras.utils.set_random_seed`).
        beta: float, the KL term's weight in the training loss (Higgins et
            al. 2017's beta-VAE). Defaults to `1.0`, the original's loss.
        trained_with: dict or None, what the model was trained on and how,
            kept in its config, `.keras` files and SavedModels.

    Example:

    >>> model = keras_vae.VAE()
    >>> model.compile()
    >>> model.fit(keras_vae.load_mnist(data_dir="MNIST_data"), steps_per_epoch=1000)
    """

    # The ten variables, in the order the original makes them.
    WEIGHTS = ("Q_W1", "Q_b1", "Q_W2_mu", "Q_b2_mu", "Q_W2_sigma", "Q_b2_sigma",
               "P_W1", "P_b1", "P_W2", "P_b2")

    def __init__(self, x_dim=784, h_dim=128, z_dim=100, seed=None, beta=1.0,
                 trained_with=None, **kwargs):
        super().__init__(trained_with=trained_with, **kwargs)
        for arg, value in (("x_dim", x_dim), ("h_dim", h_dim), ("z_dim", z_dim)):
            check_count(arg, value)
        check_beta(beta)
        self.x_dim, self.h_dim, self.z_dim, self.seed = x_dim, h_dim, z_dim, seed
        self.beta = float(beta)

        # =============================== Q(z|X) ===============================
        self.Q_W1 = self._weight("Q_W1", (x_dim, h_dim))
        self.Q_b1 = self._weight("Q_b1", (h_dim,), "zeros")
        self.Q_W2_mu = self._weight("Q_W2_mu", (h_dim, z_dim))
        self.Q_b2_mu = self._weight("Q_b2_mu", (z_dim,), "zeros")
        self.Q_W2_sigma = self._weight("Q_W2_sigma", (h_dim, z_dim))
        self.Q_b2_sigma = self._weight("Q_b2_sigma", (z_dim,), "zeros")

        # =============================== P(X|z) ===============================
        self.P_W1 = self._weight("P_W1", (z_dim, h_dim))
        self.P_b1 = self._weight("P_b1", (h_dim,), "zeros")
        self.P_W2 = self._weight("P_W2", (h_dim, x_dim))
        self.P_b2 = self._weight("P_b2", (x_dim,), "zeros")

        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_loss_tracker = keras.metrics.Mean(name="recon_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.step_loss_tracker = LastValue(name="step_loss")
        self.built = True

    def _weight(self, name, shape, initializer=None):
        """A variable of the original's: Xavier-initialized, or zeros for a bias."""
        return self.add_weight(shape=shape, initializer=initializer or xavier_init(shape[0]),
                               name=name)

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

        `eps` (`(batch, z_dim)`), if given, is used instead of a fresh draw
        from the model's seed generator.
        """
        if eps is None:
            eps = self.draw_normal(tf.shape(z_mu), z_mu.dtype)
        return z_mu + tf.exp(z_logvar / 2) * eps

    # P(X|z)
    def decode(self, z):
        """P(X|z): pixel probabilities and logits, each `(batch, x_dim)`."""
        z = _as_float(z, self.compute_dtype)
        h = tf.nn.relu(tf.matmul(z, self.P_W1) + self.P_b1)  # (batch, h_dim)
        logits = tf.matmul(h, self.P_W2) + self.P_b2  # (batch, x_dim)
        prob = tf.nn.sigmoid(logits)
        return prob, logits

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
            return tf.reduce_mean(vae_loss), tf.reduce_mean(recon_loss), tf.reduce_mean(kl_loss)
        weight = tf.reshape(tf.cast(sample_weight, recon_loss.dtype), [-1])
        return tuple(_weighted_mean(v, weight) for v in (vae_loss, recon_loss, kl_loss))

    def compute_gradients(self, x, noise=None, sample_weight=None, share=None):
        """(vae_loss, recon_loss, kl_loss) and the gradient of vae_loss per weight.

        Traced (inside `fit` or a `tf.function`) the gradients are the TF1
        graph's bit for bit. Under a strategy of several replicas, each
        replica's loss is its share of the global batch mean (`share`, if
        known), which the strategy's sum of gradients adds up
        (`keras_vae.replicas`).
        """
        share, noise = replicas.share_and_noise(x, noise, self.draw_normal, self.z_dim, share)
        with tf.GradientTape() as tape:
            losses = self.compute_vae_loss(x, noise, sample_weight)
            scaled_loss = losses[0] if share is None else losses[0] * share.fraction
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        return (losses if share is None else share.as_replica_mean(losses)), gradients

    def optimizer_step(self, x, noise=None, sample_weight=None, share=None):
        """One optimizer step on the loss of images already checked; returns
        (vae_loss, recon_loss, kl_loss), as `compute_gradients` does."""
        losses, gradients = self.compute_gradients(x, noise, sample_weight, share)
        self.optimizer.apply(gradients, self.trainable_weights)
        return losses

    def train_step(self, data):
        x, noise, sample_weight = _unpack(data)
        with tf.control_dependencies([checked_images(x, noise, self.x_dim, self.z_dim)]):
            return self.update_metrics(*self.optimizer_step(x, noise, sample_weight))

    def test_step(self, data):
        x, noise, sample_weight = _unpack(data)
        share, noise = replicas.share_and_noise(x, noise, self.draw_normal, self.z_dim)
        with tf.control_dependencies([checked_images(x, noise, self.x_dim, self.z_dim)]):
            losses = self.compute_vae_loss(x, noise, sample_weight)
            return self.update_metrics(*(losses if share is None else share.as_replica_mean(losses)))

    def draw_normal(self, shape, dtype="float32"):
        """N(0, I) noise of `shape` from the model's seed generator: the sampler's draws."""
        return keras.random.normal(shape, dtype=dtype, seed=self.seed_generator)

    def reconstruct(self, x):
        """Decodes the posterior's mean: deterministic, `(batch, x_dim)` probabilities."""
        return self.decode(self.encode(x)[0])[0]  # z_mu to the probabilities

    def sample(self, n, seed=None):
        """Draws `n` images from z ~ N(0, I): `(n, x_dim)` probabilities. The
        same int `seed` gives the same images; None draws from Keras' global
        seed and leaves the training noise alone."""
        return self.decode(keras.random.normal((n, self.z_dim), seed=seed))[0]

    def call(self, inputs, training=False):
        """`predict` and `model(x)` reconstruct: see `reconstruct`."""
        x, _, _ = _unpack(inputs)
        return self.reconstruct(x)

    def parts(self):
        """The paper's parts, as `summary()` lists them: (name, output, weight names)."""
        z, x = self.z_dim, self.x_dim
        return (("Q(z|X), the encoder", f"z_mu, z_logvar: (None, {z})", self.WEIGHTS[:6]),
                ("sampler: z_mu + exp(z_logvar / 2) * eps", f"z: (None, {z})", ()),
                ("P(X|z), the decoder", f"prob, logits: (None, {x})", self.WEIGHTS[6:]))

    @property
    def metrics(self):
        # Listed here so that Keras resets them at the start of each epoch.
        return [self.loss_tracker, self.recon_loss_tracker, self.kl_loss_tracker,
                self.step_loss_tracker]

    def update_metrics(self, loss, recon_loss, kl_loss):
        """Adds one step's losses to the metrics; returns the metrics."""
        self.loss_tracker.update_state(loss)
        self.recon_loss_tracker.update_state(recon_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        self.step_loss_tracker.update_state(loss)
        return _compat.logs_for_keras(self.get_metrics_result())

    def get_config(self):
        config = {"x_dim": self.x_dim, "h_dim": self.h_dim, "z_dim": self.z_dim,
                  "seed": self.seed, "beta": self.beta, "trained_with": self.trained_with}
        return {**super().get_config(), **config}


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
