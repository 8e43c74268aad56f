"""Measuring a trained VAE: the negative ELBO, and the importance-weighted
estimate of -log p(x) (Burda et al., 2016) for several numbers of samples.

For an image x and k draws z_j ~ q(z|x), with the weights
w_j = p(x|z_j) p(z_j) / q(z_j|x),

    -log p(x) ~= -log (1/k sum_j w_j),

a bound that tightens as k grows; k = 1 is the ELBO's own estimate.

How the draws are keyed: every number drawn comes from `seed`, a purpose,
and the image's index i in the split (its position in the evaluated data,
counting across batches) alone. A stream is the numbers TF's stateless
Philox kernel makes under the 64-bit key
`numpy.random.SeedSequence([seed, purpose]).generate_state(1, np.uint64)`
from the 128-bit counters of high word h and low word 0, 1, 2, ..., four
numbers per counter, read in rows of `width` numbers:

- the ELBO's noise for image i: row i of the `ELBO` stream h = 0, z_dim
  standard normals;
- the binarization of image i: row i of the `BINARIZATION` stream h = 0,
  x_dim uniforms u, pixel p on when u_p < x_p;
- importance draw j (from 0) of image i: row j of the `IMPORTANCE` stream
  h = i, z_dim standard normals.

So an estimate depends neither on the other k's, nor on the batch size, nor
on how the draws are split into calls, and the draws of a smaller k are the
first of a larger k's: the estimates of one image are paired. Evaluating
never touches the model's own seed generator, so it does not shift the
noise of a training run it interrupts.
"""

import math

import numpy as np
import tensorflow as tf

from keras_vae.losses import kl_divergence, reconstruction_loss
from keras_vae.progress import progress_bar

# Draws decoded at once, over the images of a call: bounds the memory of
# large k (draws x 784 logits). A call takes whole images while their draws
# fit, else a run of one image's draws.
DRAWS_PER_CALL = 50_000

# The purposes, each its own streams.
ELBO, IMPORTANCE, BINARIZATION = 1, 2, 3

# Philox makes four 32-bit numbers per counter; TF's float32 kernels turn
# them into four floats, in order.
_PER_COUNTER = 4


def evaluate(model, dataset, k=(1, 100, 5000), seed=0, binarize=False, split=None,
             verbose=0):
    """The negative ELBO and -log p(x) estimates of `model` over `dataset`.

    Args:
        model: a `keras_vae.VAE`.
        dataset: an iterable of float image batches `(batch, x_dim)` in
            [0, 1], one pass (e.g. `load_mnist("test", data_dir=...)`).
        k: ints, the numbers of importance samples. Defaults to
            `(1, 100, 5000)`.
        seed: int >= 0, keys every draw (and the binarization) with each
            image's index; see the module's docstring. Defaults to `0`.
        binarize: bool, draw each pixel as Bernoulli(intensity) first
            (dynamic binarization). Defaults to `False`.
        split: str or None, recorded in the result. Defaults to `None`.
        verbose: int, 0 silent, 1 a progress bar. Defaults to `0`.

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
    `"neg_elbo"`, `"recon_loss"`, `"kl_loss"`, and -log p(x) for each k of
    `ks` (keyed by the int; none for an empty `ks`). What `evaluate`
    averages. Image i's values come from its own draws, keyed by (`seed`, i)
    as the module's docstring says."""
    ks = sorted({int(v) for v in ks})
    parts = {"neg_elbo": [], "recon_loss": [], "kl_loss": [], **{v: [] for v in ks}}
    progress = _progress(dataset, verbose)
    first = 0  # the split index of the batch's first image
    for x in dataset:
        x = tf.convert_to_tensor(x, tf.float32)
        if x.shape[-1] != model.x_dim:
            raise ValueError(
                f"The model takes images of {model.x_dim} pixels; these have "
                f"{x.shape[-1]}. Evaluate on the data it was trained on.")
        images = tf.range(first, first + x.shape[0], dtype=tf.int64)
        if binarize:
            x = binarized(x, seed, first)
        eps = draws(seed, ELBO, [0], first, x.shape[0], model.z_dim)[0]  # (batch, z_dim)
        first += x.shape[0]
        recon, kl = _elbo_terms(model, x, eps)
        parts["recon_loss"].append(recon.numpy())
        parts["kl_loss"].append(kl.numpy())
        parts["neg_elbo"].append((recon + kl).numpy())
        if ks:
            for v, nll in zip(ks, _nll(model, x, images, ks, seed)):
                parts[v].append(nll)
        if progress:
            progress.add(1)
    return {name: np.concatenate(values).astype(np.float64) if values else np.zeros(0)
            for name, values in parts.items()}


def standard_error(values):
    """The standard error of the mean of `values` (over images)."""
    values = np.asarray(values, np.float64)
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def binarized(x, seed, first=0):
    """Each pixel of `x` `(batch, x_dim)`, images `first` to `first + batch
    - 1` of the split, drawn as Bernoulli(intensity) from their rows of the
    `BINARIZATION` stream under `seed` (int)."""
    u = draws(seed, BINARIZATION, [0], first, x.shape[0], x.shape[-1],
              tf.raw_ops.StatelessRandomUniformV2)[0]
    return tf.cast(u < x, x.dtype)


def draws(seed, purpose, streams, start, count, width, kernel=tf.raw_ops.StatelessRandomNormalV2):
    """Rows `start` to `start + count - 1` of the streams for `purpose` under
    `seed` (the module's docstring says which): float32 `(len(streams),
    count, width)`. Standard normals, or with `kernel`
    `tf.raw_ops.StatelessRandomUniformV2`, uniforms in [0, 1).

    Args:
        seed: int >= 0.
        purpose: `ELBO`, `IMPORTANCE` or `BINARIZATION`.
        streams: ints, or an int64 tensor `(n,)`: the streams' high words.
        start, count, width: ints.
    """
    key = np.random.SeedSequence([int(seed), purpose]).generate_state(1, np.uint64)
    return _stream_rows(tf.constant(key), tf.convert_to_tensor(streams, tf.int64),
                        tf.constant(start, tf.int64), tf.constant(count, tf.int64), width, kernel)


@tf.function(reduce_retracing=True, autograph=False)  # no Python control flow to convert
def _stream_rows(key, streams, start, count, width, kernel):
    """`draws`, from the Philox `key` (uint64 `(1,)`): one kernel call per stream."""
    first = start * width // _PER_COUNTER  # the counter of the row's first number
    skip = start * width - first * _PER_COUNTER  # numbers of that counter before it

    def rows(stream):  # (count, width)
        counter = tf.cast(tf.stack([first, stream]), tf.uint64)  # (low word, high word)
        numbers = kernel(shape=tf.reshape(skip + count * width, [1]), key=key, counter=counter,
                         alg=tf.random.Algorithm.PHILOX.value)
        return tf.reshape(numbers[skip:], tf.stack([count, width]))

    return tf.map_fn(rows, streams, fn_output_signature=tf.float32)


@tf.function(reduce_retracing=True, autograph=False)  # no Python control flow to convert
def _elbo_terms(model, x, eps):
    """Per image: the reconstruction loss at z = mu + sigma * eps, and the
    closed-form KL, as training computes them."""
    z_mu, z_logvar = model.encode(x)
    _, logits = model.decode(model.reparameterize(z_mu, z_logvar, eps))
    return reconstruction_loss(x, logits), kl_divergence(z_mu, z_logvar)


def _nll(model, x, images, ks, seed):
    """Per image, -log p(x) estimated with each k of `ks` (sorted), as float64
    arrays: from log sum_j w_j over the first k of the largest k's draws,
    decoded at most `DRAWS_PER_CALL` at a time."""
    z_mu, z_logvar = model.encode(x)
    draws_per_call = min(ks[-1], DRAWS_PER_CALL)
    images_per_call = max(1, DRAWS_PER_CALL // ks[-1])
    sums = []  # per group of images: log sum_j w_j for each k, (images, len(ks))
    for a in range(0, len(images), images_per_call):
        group = slice(a, a + images_per_call)
        partial = [[] for _ in ks]  # per k: log sum_j w_j of each call's draws j < k
        for start in range(0, ks[-1], draws_per_call):
            eps = draws(seed, IMPORTANCE, images[group], start,
                        min(draws_per_call, ks[-1] - start), model.z_dim)
            log_w = _log_weights(model, x[group], z_mu[group], z_logvar[group], eps)
            for v, part in zip(ks, partial):
                if start < v:
                    part.append(tf.reduce_logsumexp(log_w[:, :v - start], axis=1))
        sums.append(tf.stack([tf.reduce_logsumexp(tf.stack(part), axis=0)
                              for part in partial], axis=1))
    sums = tf.concat(sums, axis=0).numpy().astype(np.float64)
    return [math.log(v) - sums[:, c] for c, v in enumerate(ks)]


@tf.function(reduce_retracing=True, autograph=False)  # no Python control flow to convert
def _log_weights(model, x, z_mu, z_logvar, eps):
    """log w = log p(x|z) + log p(z) - log q(z|x) for draws z = mu + sigma * eps,
    `eps` `(batch, draws, z_dim)`; returns `(batch, draws)`. The log(2 pi)
    terms of p(z) and q(z|x) cancel."""
    batch, count = tf.shape(eps)[0], tf.shape(eps)[1]
    z = model.reparameterize(z_mu[:, None], z_logvar[:, None], eps)  # (batch, draws, z_dim)
    _, logits = model.decode(tf.reshape(z, [batch * count, -1]))
    repeated = tf.repeat(x, count, axis=0)  # each image once per draw
    log_px_z = -tf.reshape(reconstruction_loss(repeated, logits), [batch, count])
    log_pz = -0.5 * tf.reduce_sum(tf.square(z), axis=-1)
    log_qz_x = -0.5 * tf.reduce_sum(tf.square(eps) + z_logvar[:, None], axis=-1)
    return log_px_z + log_pz - log_qz_x


def _progress(dataset, verbose):
    if not verbose:
        return None
    batches = int(dataset.cardinality()) if hasattr(dataset, "cardinality") else None
    return progress_bar(batches if batches and batches > 0 else None, verbose,
                        unit_name="batch")
