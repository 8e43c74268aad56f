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

How the importance draws are computed: TF's kernel makes the Philox numbers
of a call's rows (`StatelessRandomUniformFullIntV2`, the 32-bit numbers its
normal kernel starts from), and one XLA-compiled function turns them into
normals by the kernel's own Box-Muller transform (`_normals`), with sin and
cos as polynomials of its own: they are the kernel's normals to within a few
float32 roundings (at most 5 ulps measured; `draws` gives the kernel's). The
same function makes z and the decoder's hidden layer; TensorFlow's matmul
(oneDNN's, faster here than XLA's) makes the logits without their bias, and a
second compiled function adds it and sums log p(x|z) over the pixels in one
pass. A call decodes at most `LOGITS_PER_CALL` logits.
"""

import contextlib
import logging
import math

import numpy as np
import tensorflow as tf

from keras_vae import replicas
from keras_vae.losses import kl_divergence, reconstruction_loss
from keras_vae.progress import progress_bar

# Logits decoded at once, over the images of a call: 2**24 float32, so the
# logits of one call take at most 64 MiB, and its other per-draw tensors (the
# Philox numbers, eps, z, the hidden layer: z_dim or h_dim wide) about half
# as much again for the default 784-128-100 model. A call takes whole images
# while their draws fit (21,399 draws of 784 pixels: four images at k =
# 5,000), else a run of one image's draws. Larger calls spread each call's
# fixed cost: evaluate's importance sampling at k = 5,000 ran at 110, 134
# and 140 images/s on 2 cores with 2**22, 2**23 and 2**24 (one, two and four
# images a call; benchmarks/bench_evaluate.py, 500 images).
LOGITS_PER_CALL = 2**24

# The purposes, each its own streams.
ELBO, IMPORTANCE, BINARIZATION = 1, 2, 3

# Philox makes four 32-bit numbers per counter; TF's float32 kernels turn
# them into four floats, in order (its normals: Box-Muller on the pairs 0-1
# and 2-3).
_PER_COUNTER = 4

# Float32 polynomial coefficients (lowest power first), least-squares fits
# in float64 on 4,001 Chebyshev nodes, then rounded to float32; each
# evaluated in float32 errs by at most 1.2e-7 (sin, cos: 9e-8 absolute;
# log1p: 1.9e-7 relative) on its interval:
# sin(2 pi r) = r * _SIN(r^2) and cos(2 pi r) = _COS(r^2) for |r| <= 1/8,
# log1p(t) = t * _LOG1P(t) for t in [0, 1].
_SIN = (6.2831854820251465, -41.3416633605957, 81.59254455566406, -75.40167999267578)
_COS = (1.0, -19.739208221435547, 64.93931579589844, -85.4428482055664,
        59.220237731933594)
_LOG1P = (1.0, -0.49999502301216125, 0.33319273591041565, -0.24844388663768768,
          0.1911148577928543, -0.13674858212471008, 0.07836245745420456,
          -0.02958887256681919, 0.005253523122519255)


def evaluate(model, dataset, k=(1, 100, 5000), seed=0, binarize=False, split=None,
             verbose=0):
    """The negative ELBO and -log p(x) estimates of `model` over `dataset`.

    Args:
        model: a `keras_vae.VAE`. Made or loaded in the scope of a
            `tf.distribute.MirroredStrategy`, its replicas split each batch's
            images: the same estimates, each image's draws keyed by its index.
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
    names = ["neg_elbo", "recon_loss", "kl_loss", *ks]
    strategy = model.distribute_strategy
    gather = None  # under a strategy of several replicas: its gather, traced once
    if strategy.num_replicas_in_sync > 1:  # (run eagerly, it traces a function each time)
        gather = tf.function(lambda values: strategy.gather(values, axis=0), autograph=False)
    parts = []
    progress = _progress(dataset, verbose)
    first = 0  # the split index of the batch's first image
    for x in dataset:
        x = tf.convert_to_tensor(x, tf.float32)
        if x.shape[-1] != model.x_dim:
            raise ValueError(
                f"The model takes images of {model.x_dim} pixels; these have "
                f"{x.shape[-1]}. Evaluate on the data it was trained on.")
        if gather is not None:
            parts.append(_on_replicas(strategy, gather, model, x, first, ks, seed, binarize))
        else:
            parts.append(_batch_values(model, x, first, ks, seed, binarize))
        first += x.shape[0]
        if progress:
            progress.add(1)
    values = np.concatenate(parts, axis=1) if parts else np.zeros((len(names), 0))
    return dict(zip(names, values))


def _batch_values(model, x, first, ks, seed, binarize):
    """Per image of `x`, images `first` on of the split: the negative ELBO,
    its reconstruction and KL terms, and -log p(x) for each k of `ks`
    (sorted), as float64 rows `(3 + len(ks), batch)`."""
    images = tf.range(first, first + x.shape[0], dtype=tf.int64)
    if binarize:
        x = binarized(x, seed, first)
    eps = draws(seed, ELBO, [0], first, x.shape[0], model.z_dim)[0]  # (batch, z_dim)
    recon, kl = _elbo_terms(model, x, eps)
    nll = _nll(model, x, images, ks, seed) if ks else []
    return np.stack([(recon + kl).numpy(), recon.numpy(), kl.numpy(), *nll]).astype(np.float64)


def _on_replicas(strategy, gather, model, x, first, ks, seed, binarize):
    """`_batch_values` of the batch `x` under `strategy`: each replica
    estimates its rows (`replicas.rows_of`), keyed by their own indices, and
    `gather` (the strategy's, traced) brings every replica's, in order."""
    total, count = x.shape[0], strategy.num_replicas_in_sync
    sizes = [replicas.share_bounds(r, total, count)[1] for r in range(count)]
    widest = max(sizes)  # the gather takes shares of one size: each is padded to this

    def estimate():
        rows, share = replicas.rows_of(x, total, count)
        values = _batch_values(model, rows, first + int(share.offset), ks, seed, binarize)
        return tf.constant(np.pad(values, [(0, 0), (0, widest - values.shape[1])])[None])

    with _quiet(_EAGER_RUN_WARNINGS):
        gathered = gather(strategy.run(estimate)).numpy()
    return np.concatenate([values[:, :size] for values, size in zip(gathered, sizes)], axis=1)


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
    return _stream_rows(_key(seed, purpose), tf.convert_to_tensor(streams, tf.int64),
                        tf.constant(start, tf.int64), tf.constant(count, tf.int64), width, kernel)


def call_shapes(k, images, x_dim):
    """The calls that estimate -log p(x) with up to `k` draws for a batch of
    `images` images of `x_dim` pixels, in order: `(first image, images,
    first draw, draws)` each, all of them ints."""
    per_call = max(1, LOGITS_PER_CALL // x_dim)  # draws
    draws = min(k, per_call)
    group = max(1, per_call // k)  # images
    return [(a, min(group, images - a), start, min(draws, k - start))
            for a in range(0, images, group) for start in range(0, k, draws)]


# What TensorFlow warns of when a strategy runs a replica's Python eagerly:
# that is the design here (numpy between a replica's calls), and the
# per-call hand-off it warns of is small beside the draws' work; and the
# retracing of the draws' functions once for each replica's device.
_EAGER_RUN_WARNINGS = ("eagerly has significant overhead", "triggered tf.function retracing")


@contextlib.contextmanager
def _quiet(messages):
    """Drops TensorFlow's log records that hold one of `messages`, for the block."""
    def keep(record):
        return not any(message in record.getMessage() for message in messages)

    logger = logging.getLogger("tensorflow")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _key(seed, purpose):
    """The Philox key of `purpose`'s streams under `seed`: uint64 `(1,)`."""
    return tf.constant(np.random.SeedSequence([int(seed), purpose]).generate_state(1, np.uint64))


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
    arrays: -log (1/k sum_j w_j) over the first k of the largest k's draws,
    decoded in the calls `call_shapes` gives."""
    z_mu, z_logvar = model.encode(x)
    key = _key(seed, IMPORTANCE)
    nll = [[] for _ in ks]
    log_w = None  # (group's images, largest k): a group's log-weights
    for a, size, start, length in call_shapes(ks[-1], len(images), model.x_dim):
        if start == 0:
            log_w = np.empty((size, ks[-1]), np.float32)
        group = slice(a, a + size)
        log_w[:, start:start + length] = _log_weights(
            model, key, images[group], x[group], z_mu[group], z_logvar[group],
            tf.constant(start, tf.int64), length).numpy()
        if start + length == ks[-1]:  # the group's last call
            for v, values in zip(ks, nll):
                values.append(math.log(v) - _log_sum_exp(log_w[:, :v]))
    return [np.concatenate(values) if values else np.zeros(0) for values in nll]


def _log_sum_exp(values):
    """log sum exp over the last axis of float32 `values`, in float64."""
    values = values.astype(np.float64)
    top = values.max(axis=-1)
    return top + np.log(np.exp(values - top[..., None]).sum(axis=-1))


@tf.function(autograph=False)  # no Python control flow to convert
def _log_weights(model, key, streams, x, z_mu, z_logvar, start, count):
    """log w = log p(x|z) + log p(z) - log q(z|x) of draws `start` (int64) to
    `start + count - 1` (`count` an int) of the images `streams` (int64
    `(batch,)`, their indices in the split), z = mu + sigma * eps; returns
    `(batch, count)`. The log(2 pi) terms of p(z) and q(z|x) cancel."""
    numbers, skip = _philox_numbers(key, streams, start, count, model.z_dim)
    hidden, log_prior_ratio = _hidden_layer(model, numbers, skip, z_mu, z_logvar, count)
    # The decoder's last matmul, TensorFlow's: its logits, less their bias.
    products = tf.matmul(tf.reshape(hidden, [-1, model.h_dim]), model.P_W2)
    return _log_likelihood(model, x, tf.reshape(products, [-1, count, model.x_dim])) \
        + log_prior_ratio


def _importance_draws(seed, streams, start, count, width):
    """Rows `start` to `start + count - 1` of the `IMPORTANCE` streams
    `streams` (ints) under `seed`, as `_log_weights` makes them: float32
    `(len(streams), count, width)`, `draws`' to within a few roundings."""
    numbers, skip = _philox_numbers(_key(seed, IMPORTANCE), tf.constant(streams, tf.int64),
                                    tf.constant(start, tf.int64), count, width)
    return _compiled_rows(numbers, skip, count, width)


def _philox_numbers(key, streams, start, count, width):
    """TF's Philox numbers (uint32 `(batch, n)`, `key`'s streams `streams`)
    from the counter of the first number of row `start` (int64) on, enough
    for `count` rows of `width` (ints); and the numbers before that row's
    first, 0 to 3."""
    first = start * width // _PER_COUNTER
    skip = start * width - first * _PER_COUNTER
    counters = (count * width + 2 * _PER_COUNTER - 2) // _PER_COUNTER  # for any skip

    def numbers(stream):
        counter = tf.cast(tf.stack([first, stream]), tf.uint64)  # (low word, high word)
        return tf.raw_ops.StatelessRandomUniformFullIntV2(
            shape=[counters * _PER_COUNTER], key=key, counter=counter,
            alg=tf.random.Algorithm.PHILOX.value, dtype=tf.uint32)

    return tf.map_fn(numbers, streams, fn_output_signature=tf.uint32), skip


@tf.function(jit_compile=True, autograph=False)
def _compiled_rows(numbers, skip, count, width):
    """`_rows`, compiled alone."""
    return _rows(numbers, skip, count, width)


def _rows(numbers, skip, count, width):
    """`count` rows of `width` standard normals `(batch, count, width)` from
    Philox's `numbers` `(batch, n)`, the first `skip` left out."""
    normals = tf.slice(_normals(numbers), tf.stack([0, tf.cast(skip, tf.int32)]),
                       [-1, count * width])
    return tf.reshape(normals, [-1, count, width])


@tf.function(jit_compile=True, autograph=False)
def _hidden_layer(model, numbers, skip, z_mu, z_logvar, count):
    """From Philox's `numbers` (see `_rows`): z = mu + sigma * eps for `count`
    rows of eps each, the decoder's hidden layer at z `(batch, count,
    h_dim)`, as `VAE.decode` computes it, and log p(z) - log q(z|x)
    `(batch, count)`."""
    width = model.z_dim
    eps = _rows(numbers, skip, count, width)
    z = model.reparameterize(z_mu[:, None], z_logvar[:, None], eps)  # (batch, count, z_dim)
    hidden = tf.nn.relu(tf.matmul(tf.reshape(z, [-1, width]), model.P_W1) + model.P_b1)
    log_ratio = 0.5 * tf.reduce_sum(z_logvar, axis=-1)[:, None] \
        + 0.5 * _sum_rows(tf.square(eps) - tf.square(z))
    return tf.reshape(hidden, [-1, count, model.h_dim]), log_ratio


@tf.function(jit_compile=True, autograph=False)
def _log_likelihood(model, x, products):
    """log p(x|z) per draw `(batch, draws)`, from the decoder's `products`
    `(batch, draws, x_dim)` (its logits less their bias) and the images `x`
    `(batch, x_dim)`: minus the cross-entropy summed over pixels, max(l, 0) -
    l x + log1p(exp(-|l|)) at each logit l, as `reconstruction_loss` computes
    it, with log1p as a polynomial. The draws' logits are read once: the
    terms are summed as they are made (`_sum_rows`)."""
    logits = products + model.P_b2
    small = tf.exp(-tf.abs(logits))  # in (0, 1]
    return -_sum_rows(tf.maximum(logits, 0.0) - logits * x[:, None]
                      + small * _polynomial(_LOG1P, small))


def _sum_rows(terms):
    """The sums over the last axis of `terms` `(batch, draws, width)`, as a
    product with a vector of ones: XLA's CPU compiler makes that one pass
    that sums the terms as it makes them (a reduce_sum writes them out
    first)."""
    ones = tf.ones([terms.shape[-1], 1], terms.dtype)
    sums = tf.matmul(tf.reshape(terms, [-1, terms.shape[-1]]), ones)
    return tf.reshape(sums, tf.shape(terms)[:-1])


def _normals(bits):
    """TF's stateless normals from their Philox numbers `bits` `(batch, n)`
    (uint32, from a counter's first number, n even): each pair (a, b) makes
    sqrt(-2 log u(a)) times sin and cos of 2 pi u(b), u(a) at least 1e-7,
    with u the kernel's float of 23 random bits. The kernel rounds 2 pi u(b)
    to float32 before its sin and cos; here sin and cos of 2 pi u(b) itself,
    by polynomials, are moved by that rounding to first order."""
    pairs = tf.reshape(bits, [tf.shape(bits)[0], -1, 2])
    radius = tf.sqrt(-2.0 * tf.math.log(tf.maximum(_uniform(pairs[..., 0]), 1e-7)))
    u = _uniform(pairs[..., 1])
    quarters = tf.round(4.0 * u)  # 2 pi u is `quarters` quarter turns and 2 pi r
    r = u - 0.25 * quarters  # exact, in [-1/8, 1/8]
    sin, cos = r * _polynomial(_SIN, r * r), _polynomial(_COS, r * r)
    wide = tf.cast(u, tf.float64) * (2 * math.pi)
    rounding = tf.cast(tf.cast(tf.cast(wide, tf.float32), tf.float64) - wide, tf.float32)
    sin, cos = sin + rounding * cos, cos - rounding * sin
    quarter = tf.cast(quarters, tf.int32) % 4  # turn (sin, cos) by quarter turns
    odd, back = quarter % 2 == 1, quarter >= 2
    sin, cos = tf.where(odd, cos, sin), tf.where(odd, -sin, cos)
    sin, cos = tf.where(back, -sin, sin), tf.where(back, -cos, cos)
    return tf.reshape(tf.stack([sin * radius, cos * radius], -1), tf.shape(bits))


def _uniform(bits):
    """TF's float in [0, 1) of uint32 `bits`: 23 of them as the mantissa of 1.x, less 1."""
    mantissa = tf.bitwise.bitwise_and(bits, tf.constant(0x7FFFFF, tf.uint32))
    one = tf.bitwise.bitwise_or(mantissa, tf.constant(0x3F800000, tf.uint32))
    return tf.bitcast(one, tf.float32) - 1.0


def _polynomial(coefficients, t):
    """sum_i coefficients[i] t^i, by Horner's rule."""
    value = tf.fill(tf.shape(t), tf.constant(coefficients[-1], t.dtype))
    for c in coefficients[-2::-1]:
        value = value * t + c
    return value


def _progress(dataset, verbose):
    if not verbose:
        return None
    batches = int(dataset.cardinality()) if hasattr(dataset, "cardinality") else None
    return progress_bar(batches if batches and batches > 0 else None, verbose,
                        unit_name="batch")
