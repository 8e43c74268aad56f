"""The original TF1 MNIST VAE script, kept under TensorFlow 2's ``tf.compat.v1``.

This is the seed's ``vae_tensorflow.py`` (wiseodd/generative-models), changed
only where TensorFlow 2 forces it or where the parity tests need a handle:

- TF1 names removed from TF2 are spelled ``tf1.<name>`` (``tf1 =
  tf.compat.v1``): ``placeholder``, ``random_normal``,
  ``train.AdamOptimizer``, ``Session``;
- ``tensorflow.examples.tutorials.mnist.input_data`` is gone from TF2;
  ``legacy_tf1.input_data`` stands in for it;
- the graph is built by ``build_graph`` inside an explicit ``tf.Graph``
  instead of at import into the default graph, its sections Q(z|X), P(X|z)
  and TRAINING in ``_encoder``, ``_decoder`` and ``_training``, and the
  training loop lives in ``main``. Eager execution is never switched off,
  so the same process can also run the eager Keras port;
- ``build_graph`` can start from given initial values and make the
  sampler's ``eps`` feedable, and it exposes the gradients Adam applies
  (``minimize`` split into ``compute_gradients`` + ``apply_gradients``,
  which is what ``minimize`` does).

Determinism: the variables are resource variables (``use_resource=True``,
TF2's default and what Keras uses), chosen deliberately. TF1 made ref
variables (``VariableV2``), whose ``read`` aliases the variable's buffer while
``ApplyAdam`` updates that buffer in place: a step is then deterministic only
as long as every read of a variable in the same ``sess.run`` is ordered
before its update. In this graph it is (``minimize``'s default
``GATE_OP`` makes each ``ApplyAdam`` wait for every gradient of the op that
read the variable, e.g. ``dh = dlogits @ P_W2^T`` before ``P_W2``'s update;
checked by walking the graph), but one extra fetch or a ``GATE_NONE``
would leave a read racing an update. A resource variable read is a
snapshot (an update copies a buffer that a read still holds), so no read
can see a half-applied update, whatever is fetched together.

Ref and resource variables run the same arithmetic, so the choice does not
change the numbers parity compares; ``build_graph(use_resource=False)``
builds the ref-variable graph TF1 made, to compare the two.

Run the original training loop (sample grids every 1000 iterations):

```
python -m legacy_tf1.vae_tf1 --data-dir MNIST_data --iters 1000000 --out out/
```
"""

import argparse
import dataclasses
import os
import sys

import numpy as np
import tensorflow as tf

from legacy_tf1 import input_data

tf1 = tf.compat.v1

# The original's sizes: X_dim 784 (28x28 pixels), h_dim 128, z_dim 100.
X_DIM = 784
H_DIM = 128
Z_DIM = 100
MB_SIZE = 64

# The ten variables, in the order the original makes them.
VARIABLE_NAMES = (
    "Q_W1", "Q_b1", "Q_W2_mu", "Q_b2_mu", "Q_W2_sigma", "Q_b2_sigma",
    "P_W1", "P_b1", "P_W2", "P_b2",
)


@dataclasses.dataclass(frozen=True)
class VAEGraph:
    """Handles on the original graph, as returned by `build_graph`.

    Attributes:
        graph: the `tf.Graph` holding everything below.
        X: float32 placeholder `(batch, X_dim)`, the images.
        z: float32 placeholder `(n, z_dim)`, latent codes to decode.
        eps: `(batch, z_dim)` noise of the sampler (a `placeholder_with_default`
            when built with `feed_eps=True`).
        z_mu, z_logvar: `(batch, z_dim)` outputs of `Q(X)`.
        z_sample: `(batch, z_dim)`, `z_mu + exp(z_logvar / 2) * eps`.
        logits: `(batch, X_dim)` logits of `P(z_sample)`.
        recon_loss: scalar, reconstruction loss averaged over the batch.
        kl_loss: scalar, KL divergence averaged over the batch.
        vae_loss: scalar, the loss Adam minimises.
        solver: the Adam update op (one training step).
        X_samples: `(n, X_dim)` pixel probabilities of `P(z)`.
        X_logits: `(n, X_dim)` logits of `P(z)`.
        variables: dict, the ten variables by their original names.
        gradients: dict, gradient of `vae_loss` per variable name (the
            tensors `solver` applies).
        optimizer: the `tf1.train.AdamOptimizer` (its slots hold m and v).
        init: op initialising the variables and Adam's state.
    """

    graph: tf.Graph
    X: tf.Tensor
    z: tf.Tensor
    eps: tf.Tensor
    z_mu: tf.Tensor
    z_logvar: tf.Tensor
    z_sample: tf.Tensor
    logits: tf.Tensor
    recon_loss: tf.Tensor
    kl_loss: tf.Tensor
    vae_loss: tf.Tensor
    solver: tf.Operation
    X_samples: tf.Tensor
    X_logits: tf.Tensor
    variables: dict
    gradients: dict
    optimizer: object
    init: tf.Operation


def xavier_init(size):
    in_dim = size[0]
    xavier_stddev = 1. / tf.sqrt(in_dim / 2.)
    return tf1.random_normal(shape=size, stddev=xavier_stddev)


def zeros_init(size):
    return tf.zeros(shape=size)


def build_graph(graph=None, initial_values=None, feed_eps=False, X_dim=X_DIM,
                h_dim=H_DIM, z_dim=Z_DIM, seed=None, use_resource=True):
    """Builds the original VAE graph and returns handles on it.

    The original script's sections, in its order: the placeholders, Q(z|X)
    (`_encoder`), P(X|z) (`_decoder`), then the losses and Adam (`_training`).

    Args:
        graph: `tf.Graph` to build in. Defaults to None (a new graph).
        initial_values: dict or None, a NumPy array per variable name
            (`VARIABLE_NAMES`, all ten). Defaults to None: the original's
            `xavier_init` weights and zero biases.
        feed_eps: bool, whether the sampler's `eps` is a
            `placeholder_with_default` (default: the original's
            `random_normal`) so it can be fed. Defaults to False.
        X_dim, h_dim, z_dim: int, layer sizes. Default to 784, 128, 100.
        seed: int or None, graph-level seed (`tf1.set_random_seed`) for the
            initial weights and `eps`. Defaults to None.
        use_resource: bool, resource variables (deterministic; see the module
            docstring) or TF1's ref variables. Defaults to True.

    Returns:
        A `VAEGraph`.

    Example:

    ```python
    vae = build_graph(feed_eps=True)
    with tf1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        _, loss = sess.run([vae.solver, vae.vae_loss], feed_dict={vae.X: X_mb})
    ```
    """
    graph = tf.Graph() if graph is None else graph
    shapes = _shapes(X_dim, h_dim, z_dim)
    if initial_values is not None:
        initial_values = _check_initial_values(initial_values, shapes)
    variables = {}  # the ten variables by name, in the order made

    def Variable(name, init):
        # tf.Variable(xavier_init(size)) in the original; `initial_values` wins.
        if initial_values is not None:
            initial_value = initial_values[name]
        else:
            initial_value = init(shapes[name])
        variables[name] = tf1.Variable(initial_value, name=name, use_resource=use_resource)
        return variables[name]

    with graph.as_default():
        if seed is not None:
            tf1.set_random_seed(seed)

        X = tf1.placeholder(tf.float32, shape=[None, X_dim], name="X")  # (batch, 784)
        z = tf1.placeholder(tf.float32, shape=[None, z_dim], name="z")  # (n, 100)

        Q, sample_z = _encoder(Variable, z_dim, feed_eps)
        P = _decoder(Variable)
        return _training(graph, X, z, Q, sample_z, P, variables)


def _shapes(X_dim, h_dim, z_dim):
    """The shape of each of the ten variables, by name."""
    return {
        "Q_W1": [X_dim, h_dim], "Q_b1": [h_dim],
        "Q_W2_mu": [h_dim, z_dim], "Q_b2_mu": [z_dim],
        "Q_W2_sigma": [h_dim, z_dim], "Q_b2_sigma": [z_dim],
        "P_W1": [z_dim, h_dim], "P_b1": [h_dim],
        "P_W2": [h_dim, X_dim], "P_b2": [X_dim],
    }


def _encoder(Variable, z_dim, feed_eps):
    """The original's Q(z|X) section: its six variables, made by `Variable`,
    and its functions `Q` and `sample_z` (which also returns `eps`)."""

    # =============================== Q(z|X) ======================================

    Q_W1 = Variable("Q_W1", xavier_init)  # (784, 128)
    Q_b1 = Variable("Q_b1", zeros_init)  # (128,)

    Q_W2_mu = Variable("Q_W2_mu", xavier_init)  # (128, 100)
    Q_b2_mu = Variable("Q_b2_mu", zeros_init)  # (100,)

    Q_W2_sigma = Variable("Q_W2_sigma", xavier_init)  # (128, 100)
    Q_b2_sigma = Variable("Q_b2_sigma", zeros_init)  # (100,)

    def Q(X):
        h = tf.nn.relu(tf.matmul(X, Q_W1) + Q_b1)  # (batch, 128)
        z_mu = tf.matmul(h, Q_W2_mu) + Q_b2_mu  # (batch, 100)
        z_logvar = tf.matmul(h, Q_W2_sigma) + Q_b2_sigma  # (batch, 100)
        return z_mu, z_logvar

    def sample_z(mu, log_var):
        eps = tf1.random_normal(shape=tf.shape(mu))
        if feed_eps:
            eps = tf1.placeholder_with_default(eps, shape=[None, z_dim], name="eps")
        return mu + tf.exp(log_var / 2) * eps, eps

    return Q, sample_z


def _decoder(Variable):
    """The original's P(X|z) section: its four variables, made by `Variable`,
    and its function `P`."""

    # =============================== P(X|z) ======================================

    P_W1 = Variable("P_W1", xavier_init)  # (100, 128)
    P_b1 = Variable("P_b1", zeros_init)  # (128,)

    P_W2 = Variable("P_W2", xavier_init)  # (128, 784)
    P_b2 = Variable("P_b2", zeros_init)  # (784,)

    def P(z):
        h = tf.nn.relu(tf.matmul(z, P_W1) + P_b1)  # (n, 128)
        logits = tf.matmul(h, P_W2) + P_b2  # (n, 784)
        prob = tf.nn.sigmoid(logits)
        return prob, logits

    return P


def _training(graph, X, z, Q, sample_z, P, variables):
    """The original's TRAINING section, from `Q(X)` to the Adam update and
    the initializer; returns the `VAEGraph`."""

    # =============================== TRAINING ====================================

    z_mu, z_logvar = Q(X)
    z_sample, eps = sample_z(z_mu, z_logvar)
    _, logits = P(z_sample)

    # Sampling from random z
    X_samples, X_logits = P(z)

    # E[log P(X|z)]
    recon_loss = tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=X), 1)
    # D_KL(Q(z|X) || P(z)); calculate in closed form as both dist. are Gaussian
    kl_loss = 0.5 * tf.reduce_sum(tf.exp(z_logvar) + z_mu**2 - 1. - z_logvar, 1)
    # VAE loss
    vae_loss = tf.reduce_mean(recon_loss + kl_loss)

    # solver = tf.train.AdamOptimizer().minimize(vae_loss), in its two steps.
    optimizer = tf1.train.AdamOptimizer()
    grads_and_vars = optimizer.compute_gradients(
        vae_loss, var_list=[variables[name] for name in VARIABLE_NAMES])
    solver = optimizer.apply_gradients(grads_and_vars)

    # The original's tf.global_variables_initializer(), limited to this
    # model's variables in case `graph` holds others.
    init = tf1.variables_initializer(list(variables.values()) + optimizer.variables())

    return VAEGraph(
        graph=graph, X=X, z=z, eps=eps, z_mu=z_mu, z_logvar=z_logvar,
        z_sample=z_sample, logits=logits,
        recon_loss=tf.reduce_mean(recon_loss), kl_loss=tf.reduce_mean(kl_loss),
        vae_loss=vae_loss, solver=solver, X_samples=X_samples, X_logits=X_logits,
        variables=variables,
        gradients={name: grad for name, (grad, _) in zip(VARIABLE_NAMES, grads_and_vars)},
        optimizer=optimizer, init=init,
    )


def _check_initial_values(values, shapes):
    """`values` as float32 arrays, once they are exactly `shapes`' names and shapes."""
    missing = [name for name in shapes if name not in values]
    unknown = sorted(set(values) - set(shapes))
    if missing or unknown:
        raise ValueError(
            f"initial_values must hold exactly {list(shapes)}. "
            f"Received: missing={missing}, unknown={unknown}"
        )
    arrays = {name: np.asarray(values[name], dtype=np.float32) for name in shapes}
    for name, shape in shapes.items():
        if arrays[name].shape != tuple(shape):
            raise ValueError(
                f"initial_values[{name!r}] must have shape {tuple(shape)}. "
                f"Received: {arrays[name].shape}"
            )
    return arrays


def plot(samples):
    """The original's 4x4 grid of 28x28 samples; returns the figure."""
    import matplotlib.gridspec as gridspec
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4, 4))
    gs = gridspec.GridSpec(4, 4)
    gs.update(wspace=0.05, hspace=0.05)

    for i, sample in enumerate(samples):
        ax = plt.subplot(gs[i])
        plt.axis('off')
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_aspect('equal')
        plt.imshow(sample.reshape(28, 28), cmap='Greys_r')

    return fig


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m legacy_tf1.vae_tf1",
        description="Train the original TF1 MNIST VAE (under tf.compat.v1).")
    parser.add_argument("--data-dir", required=True,
                        help="directory of the four MNIST IDX .gz files")
    parser.add_argument("--iters", type=int, default=1000000,
                        help="training iterations (default: 1000000, the original's)")
    parser.add_argument("--out", default="out/",
                        help="directory for the sample grids 000.png, 001.png, ... (default: out/)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed for weights, eps, batch order and sampled z (default: unseeded)")
    return parser.parse_args(argv)


def main(argv=None):
    """Runs the original training loop; see `parse_args` for the options."""
    args = parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        mnist = input_data.read_data_sets(args.data_dir, one_hot=True, seed=args.seed)
    except (OSError, EOFError, ValueError) as err:  # a missing, corrupt or foreign file
        print(f"error: {err}", file=sys.stderr)
        return 2
    mb_size = MB_SIZE
    z_dim = Z_DIM
    X_dim = mnist.train.images.shape[1]
    h_dim = H_DIM
    rng = np.random.RandomState(args.seed)  # the original drew z from np.random

    vae = build_graph(X_dim=X_dim, h_dim=h_dim, z_dim=z_dim, seed=args.seed)

    with tf1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)

        if not os.path.exists(args.out):
            os.makedirs(args.out)

        i = 0

        for it in range(args.iters):
            X_mb, _ = mnist.train.next_batch(mb_size)

            _, loss = sess.run([vae.solver, vae.vae_loss], feed_dict={vae.X: X_mb})

            if it % 1000 == 0:
                print('Iter: {}'.format(it))
                print('Loss: {:.4}'.format(loss))
                print()

                samples = sess.run(vae.X_samples, feed_dict={vae.z: rng.randn(16, z_dim)})

                fig = plot(samples)
                plt.savefig(os.path.join(args.out, '{}.png'.format(str(i).zfill(3))),
                            bbox_inches='tight')
                i += 1
                plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
