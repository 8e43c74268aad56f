"""Measuring a trained VAE: the negative ELBO, and the importance-weighted
estimate of -log p(x) (Burda et al., 2016) for several numbers of samples.

For an image x and k draws z_i ~ q(z|x), with the weights
w_i = p(x|z_i) p(z_i) / q(z_i|x),

    -log p(x) ~= -log (1/k sum_i w_i),

a bound that tightens as k grows; k = 1 is the ELBO's own estimate. The
draws for smaller k are the first of those for the largest, so the estimates
of one image are paired. All noise comes from `seed` through stateless ops:
evaluating never touches the model's own seed generator, so it does not
shift the noise of a training run it interrupts.
"""

import math

import numpy as np
import tensorflow as tf

from keras_vae.data.stream import bernoulli_pixels
from keras_vae.losses import kl_divergence, reconstruction_loss

# Draws decoded at once per image batch: bounds the memory of large k
# (batch x draws x 784 logits).
DRAWS_PER_CALL = 500


def evaluate(model, dataset, k=(1, 100, 5000), seed=0, binarize=False, split=None,
             verbose=0):
    """The negative ELBO and -log p(x) estimates of `model` over `dataset`.

    Args:
        model: a `keras_vae.VAE`.
        dataset: an iterable of float image batches `(batch, x_dim)` in
            [0, 1], one pass (e.g. `load_mnist("test", data_dir=...)`).
        k: ints, the numbers of importance samples. Defaults to
            `(1, 100, 5000)`.
        seed: int, seeds every draw (and the binarization). Defaults to `0`.
        binarize: bool, draw each pixel as Bernoulli(intensity) first
            (dynamic binarization). Defaults to `False`.
        split: str or None, recorded in the result. Defaults to `None`.
        verbose: int, 1 shows a progress bar. Defaults to `0`.

    Returns:
        A dict: `split`, `images`, `neg_elbo`, `recon_loss`, `kl_loss`
        (means over images, in nats), `nll` and `nll_se` (`{str(k): ...}`,
        each estimate's mean and its standard error over images),
        `bits_per_dim` (from the largest k) and `binarized`.
    """
    ks = sorted({int(v) for v in k})
    if not ks or ks[0] < 1:
        raise ValueError(f"Expected k to be positive integers. Received: k={k!r}")
    values = per_image(model, dataset, ks, seed, binarize, verbose)
    images = len(values["neg_elbo"])
    if images == 0:
        raise ValueError("evaluate() got no images: the data is empty.")
    nll = {str(v): float(values[v].mean()) for v in ks}
    return {
        "split": split,
        "images": images,
        "neg_elbo": float(values["neg_elbo"].mean()),
        "recon_loss": float(values["recon_loss"].mean()),
        "kl_loss": float(values["kl_loss"].mean()),
        "nll": nll,
        "nll_se": {str(v): standard_error(values[v]) for v in ks},
        "bits_per_dim": nll[str(ks[-1])] / (model.x_dim * math.log(2)),
        "binarized": bool(binarize),
    }


def per_image(model, dataset, ks, seed=0, binarize=False, verbose=0):
    """Each image's estimates, as float64 arrays over the images in order:
    `"neg_elbo"`, `"recon_loss"`, `"kl_loss"`, and -log p(x) for each k of the
    sorted `ks` (keyed by the int). What `evaluate` averages; the estimates
    of one image are paired (the same first draws)."""
    parts = {"neg_elbo": [], "recon_loss": [], "kl_loss": [], **{v: [] for v in ks}}
    progress = _progress(dataset, verbose)
    for index, x in enumerate(dataset):
        x = tf.convert_to_tensor(x, tf.float32)
        if x.shape[-1] != model.x_dim:
            raise ValueError(
                f"The model takes images of {model.x_dim} pixels; these have "
                f"{x.shape[-1]}. Evaluate on the data it was trained on.")
        if binarize:
            x = binarized(x, (seed, index))
        recon, kl = _elbo_terms(model, x, _normal(tf.shape(x)[0], model.z_dim, (seed, index, 0)))
        parts["recon_loss"].append(recon.numpy())
        parts["kl_loss"].append(kl.numpy())
        parts["neg_elbo"].append((recon + kl).numpy())
        for v, nll in zip(ks, _nll(model, x, ks, (seed, index))):
            parts[v].append(nll)
        if progress:
            progress.add(1)
    return {name: np.concatenate(values).astype(np.float64) if values else np.zeros(0)
            for name, values in parts.items()}


def standard_error(values):
    """The standard error of the mean of `values` (over images)."""
    values = np.asarray(values, np.float64)
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def binarized(x, seed):
    """Each pixel drawn as Bernoulli(intensity), keyed by `seed` (ints)."""
    return bernoulli_pixels(x, _seed(seed))


@tf.function(reduce_retracing=True, autograph=False)  # no Python control flow to convert
def _elbo_terms(model, x, eps):
    """Per image: the reconstruction loss at z = mu + sigma * eps, and the
    closed-form KL, as training computes them."""
    z_mu, z_logvar = model.encode(x)
    _, logits = model.decode(model.reparameterize(z_mu, z_logvar, eps))
    return reconstruction_loss(x, logits), kl_divergence(z_mu, z_logvar)


def _nll(model, x, ks, seed):
    """Per image, -log p(x) estimated with each k of `ks` (sorted), as arrays."""
    z_mu, z_logvar = model.encode(x)
    total = None  # log sum_i w_i over the draws so far, (batch,)
    estimates, done = [], 0
    for chunk, size in enumerate(_chunks(ks)):
        eps = _normal(tf.shape(x)[0] * size, model.z_dim, (*seed, 1 + chunk))
        log_w = _log_weights(model, x, z_mu, z_logvar, tf.reshape(eps, [-1, size, model.z_dim]))
        chunk_total = tf.reduce_logsumexp(log_w, axis=1)
        total = chunk_total if total is None else tf.reduce_logsumexp(
            tf.stack([total, chunk_total]), axis=0)
        done += size
        if done in ks:
            estimates.append((math.log(done) - total).numpy().astype(np.float64))
    return estimates


@tf.function(reduce_retracing=True, autograph=False)  # no Python control flow to convert
def _log_weights(model, x, z_mu, z_logvar, eps):
    """log w = log p(x|z) + log p(z) - log q(z|x) for draws z = mu + sigma * eps,
    `eps` `(batch, draws, z_dim)`; returns `(batch, draws)`. The log(2 pi)
    terms of p(z) and q(z|x) cancel."""
    batch, draws = tf.shape(eps)[0], tf.shape(eps)[1]
    z = model.reparameterize(z_mu[:, None], z_logvar[:, None], eps)  # (batch, draws, z_dim)
    _, logits = model.decode(tf.reshape(z, [batch * draws, -1]))
    repeated = tf.repeat(x, draws, axis=0)  # each image once per draw
    log_px_z = -tf.reshape(reconstruction_loss(repeated, logits), [batch, draws])
    log_pz = -0.5 * tf.reduce_sum(tf.square(z), axis=-1)
    log_qz_x = -0.5 * tf.reduce_sum(tf.square(eps) + z_logvar[:, None], axis=-1)
    return log_px_z + log_pz - log_qz_x


def _chunks(ks):
    """Sizes of the draws decoded at once: at most `DRAWS_PER_CALL`, ending at each k."""
    sizes, done = [], 0
    for v in ks:
        while done < v:
            sizes.append(min(DRAWS_PER_CALL, v - done))
            done += sizes[-1]
    return sizes


def _normal(rows, z_dim, seed):
    return tf.random.stateless_normal(tf.stack([rows, z_dim]), seed=_seed(seed))


def _seed(parts):
    """A stateless op's seed (two ints) from any tuple of ints, the same in every process."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2)
    return tf.constant(state.astype(np.int64))


def _progress(dataset, verbose):
    if not verbose:
        return None
    import keras

    batches = int(dataset.cardinality()) if hasattr(dataset, "cardinality") else None
    return keras.utils.Progbar(batches if batches and batches > 0 else None)
