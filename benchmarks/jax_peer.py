"""The VAE in plain JAX, as a JAX user would write it well: bench_train.py's peer.

The model, loss and optimizer are keras_vae's (the original's): 784-128-100-
128-784 in float32, weights drawn from N(0, 1/sqrt(fan_in / 2)) and zero
biases, the loss `sigmoid_cross_entropy_with_logits` summed over the pixels
plus the closed-form KL, each averaged over the batch of 64, and TF1's Adam
(learning rate 1e-3, betas 0.9 and 0.999, epsilon 1e-8 added to sqrt(v), the
bias correction folded into the step size), written out so that the `bench`
extra needs JAX alone.

The data is arranged as keras_vae's fast mode arranges a call's
(keras_vae/execution.py and keras_vae/stream.py): read_data_sets' training
images (the last 55,000) kept as uint8 on the device, shuffled anew each
epoch, the batches running on across an epoch's end; each call's 100 batches
gathered at once and scaled by 1/255, and their noise drawn at once, before
its steps. Fast mode sets no XLA option (its loop is a `tf.function` with
`jit_compile=True`, nothing more), so neither does this: both run XLA's CPU
defaults.

Two loops, both `jax.jit` with the parameters and Adam's state donated:
- step: one jitted step per Python iteration over the call's batches;
- scan: one jitted call per 100 steps, a `lax.scan` over its batches and noise.
"""

import functools
import gzip
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

X_DIM, H_DIM, Z_DIM = 784, 128, 100
BATCH = 64
CALL_STEPS = 100  # steps per call: fast mode's steps_per_execution
VALIDATION = 5000  # read_data_sets keeps the first 5,000 training images apart
LEARNING_RATE, BETA_1, BETA_2, EPSILON = 1e-3, 0.9, 0.999, 1e-8
WEIGHTS = {  # the original's names and shapes; each bias is named as its weight, b for W
    "Q_W1": (X_DIM, H_DIM), "Q_W2_mu": (H_DIM, Z_DIM), "Q_W2_sigma": (H_DIM, Z_DIM),
    "P_W1": (Z_DIM, H_DIM), "P_W2": (H_DIM, X_DIM),
}


def read_train_images(data_dir):
    """read_data_sets' training images, uint8 `(n, 784)`: all but the file's first 5,000."""
    with gzip.open(os.path.join(data_dir, "train-images-idx3-ubyte.gz")) as f:
        data = f.read()
    count, rows, cols = (int(n) for n in np.frombuffer(data, ">u4", 3, offset=4))
    images = np.frombuffer(data, np.uint8, count * rows * cols, offset=16)
    return images.reshape(count, rows * cols)[VALIDATION:]


@jax.jit
def init_params(key):
    """The original's initial values: weights N(0, 1/sqrt(fan_in / 2)), biases zero."""
    params = {}
    for weight_key, (name, shape) in zip(jax.random.split(key, len(WEIGHTS)), WEIGHTS.items()):
        params[name] = jax.random.normal(weight_key, shape) / (shape[0] / 2) ** 0.5
        params[name.replace("W", "b")] = jnp.zeros(shape[1])
    return params


def vae_loss(params, x, eps):
    """The original's loss on one batch, given the sampler's noise `eps`."""
    h = jax.nn.relu(x @ params["Q_W1"] + params["Q_b1"])
    z_mu = h @ params["Q_W2_mu"] + params["Q_b2_mu"]
    z_logvar = h @ params["Q_W2_sigma"] + params["Q_b2_sigma"]
    z = z_mu + jnp.exp(z_logvar / 2) * eps
    logits = jax.nn.relu(z @ params["P_W1"] + params["P_b1"]) @ params["P_W2"] + params["P_b2"]
    # sigmoid_cross_entropy_with_logits, in TensorFlow's stable form.
    cross_entropy = jnp.maximum(logits, 0) - logits * x + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    kl = 0.5 * jnp.sum(jnp.exp(z_logvar) + z_mu**2 - 1.0 - z_logvar, axis=1)
    return jnp.mean(jnp.sum(cross_entropy, axis=1) + kl)


@jax.jit
def adam_init(params):
    """Adam's state as TF1 keeps it: zero moments and the beta powers of step 1."""
    zeros = functools.partial(jax.tree.map, jnp.zeros_like)
    return {"m": zeros(params), "v": zeros(params),
            "beta_1_power": jnp.float32(BETA_1), "beta_2_power": jnp.float32(BETA_2)}


def adam_update(params, grads, state):
    """TF1's Adam step (its ApplyAdam kernel's arithmetic); the new params and state."""
    step_size = (LEARNING_RATE * jnp.sqrt(1 - state["beta_2_power"])
                 / (1 - state["beta_1_power"]))
    m = jax.tree.map(lambda m, g: m + (g - m) * (1 - BETA_1), state["m"], grads)
    v = jax.tree.map(lambda v, g: v + (g * g - v) * (1 - BETA_2), state["v"], grads)
    params = jax.tree.map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) + EPSILON),
                          params, m, v)
    return params, {"m": m, "v": v, "beta_1_power": state["beta_1_power"] * BETA_1,
                    "beta_2_power": state["beta_2_power"] * BETA_2}


def train_step(params, state, x, eps):
    """One optimizer step on a batch and its noise; the new params and state, and the loss."""
    loss, grads = jax.value_and_grad(vae_loss)(params, x, eps)
    params, state = adam_update(params, grads, state)
    return params, state, loss


def train_call(params, state, block, noise):
    """A call's steps, one `lax.scan` over its batches and noise; their losses."""
    def step(carry, batch):
        params, state, loss = train_step(*carry, *batch)
        return (params, state), loss

    (params, state), losses = jax.lax.scan(step, (params, state), (block, noise))
    return params, state, losses


jitted_step = jax.jit(train_step, donate_argnums=(0, 1))
jitted_call = jax.jit(train_call, donate_argnums=(0, 1))


@functools.partial(jax.jit, static_argnums=2)
def epoch_orders(key, epoch, n):
    """The example orders of `epoch` and the next, one after the other: a block may span both."""
    return jnp.concatenate([jax.random.permutation(jax.random.fold_in(key, e), n)
                            for e in (epoch, epoch + 1)])


@jax.jit
def gather_call(pixels, orders, start, key):
    """A call's batches, float32 `(100, 64, 784)` from `orders[start:]`, and their noise."""
    examples = jax.lax.dynamic_slice(orders, (start,), (CALL_STEPS * BATCH,))
    images = pixels[examples].astype(jnp.float32) * (1.0 / 255.0)
    noise = jax.random.normal(key, (CALL_STEPS, BATCH, Z_DIM))
    return images.reshape(CALL_STEPS, BATCH, X_DIM), noise


class Stream:
    """The endless stream of shuffled batches, a call's at a time, and their noise."""

    def __init__(self, images, key):
        if len(images) < CALL_STEPS * BATCH:
            raise ValueError(f"a call's {CALL_STEPS} batches of {BATCH} need at least "
                             f"{CALL_STEPS * BATCH} training images; there are {len(images)}")
        self.pixels, self.n = jnp.asarray(images), len(images)
        self.order_key, self.noise_key = jax.random.split(key)
        self.position, self.calls, self.epoch, self.orders = 0, 0, None, None

    def next_call(self):
        """The next call's batches and noise; advances the stream by them."""
        epoch = self.position // self.n
        if epoch != self.epoch:
            self.epoch, self.orders = epoch, epoch_orders(self.order_key, epoch, self.n)
        block = gather_call(self.pixels, self.orders, self.position - epoch * self.n,
                            jax.random.fold_in(self.noise_key, self.calls))
        self.position += CALL_STEPS * BATCH
        self.calls += 1
        return block


def run_steps(stream, params, state, calls):
    """`calls` calls' worth of steps, one jitted step per Python iteration; the last loss."""
    loss = None
    for _ in range(calls):
        block, noise = stream.next_call()
        for x, eps in zip(block, noise):
            params, state, loss = jitted_step(params, state, x, eps)
    return params, state, loss


def run_scan(stream, params, state, calls):
    """`calls` calls of 100 steps, each one jitted `lax.scan`; the last loss."""
    losses = None
    for _ in range(calls):
        params, state, losses = jitted_call(params, state, *stream.next_call())
    return params, state, None if losses is None else losses[-1]


def train(loop, data_dir, warmup, steps, seed=0):
    """Trains `warmup` untimed steps, then `steps` timed ones, with `loop`
    ("step" or "scan"); the timed steps' rate and the last step's loss."""
    if warmup % CALL_STEPS or steps % CALL_STEPS or steps <= 0:
        raise ValueError(f"warmup and steps must be multiples of {CALL_STEPS} (steps > 0). "
                         f"Received: warmup={warmup}, steps={steps}")
    init_key, data_key = jax.random.split(jax.random.key(seed))
    params = init_params(init_key)
    state = adam_init(params)
    stream = Stream(read_train_images(data_dir), data_key)
    run = {"step": run_steps, "scan": run_scan}[loop]
    params, state, _ = run(stream, params, state, warmup // CALL_STEPS)
    jax.block_until_ready((params, state))
    start = time.perf_counter()
    params, state, loss = run(stream, params, state, steps // CALL_STEPS)
    jax.block_until_ready((params, state))
    elapsed = time.perf_counter() - start
    return {"steps_per_s": steps / elapsed, "loss": float(loss), "jax": jax.__version__}
