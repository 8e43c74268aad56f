"""The two terms of the VAE's loss, per example, written with the original's ops."""

import tensorflow as tf


def reconstruction_loss(x, logits):
    """-E[log P(X|z)] for Bernoulli pixels: cross-entropy summed over pixels.

    Args:
        x: float32 tensor `(batch, x_dim)`, the images in [0, 1].
        logits: float32 tensor `(batch, x_dim)`, the decoder's logits.

    Returns:
        float32 tensor `(batch,)`.
    """
    return tf.reduce_sum(
        tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=x), 1
    )


def kl_divergence(z_mu, z_logvar):
    """D_KL(Q(z|X) || N(0, I)) in closed form, as both are Gaussian.

    Kingma & Welling (2014), Appendix B:
    0.5 * sum(exp(logvar) + mu^2 - 1 - logvar).

    Args:
        z_mu: float32 tensor `(batch, z_dim)`, the posterior's mean.
        z_logvar: float32 tensor `(batch, z_dim)`, its log-variance.

    Returns:
        float32 tensor `(batch,)`.
    """
    # `z_mu**2` and the order of the terms are the original's: they fix the
    # ops, and so the bits, of the gradient.
    return 0.5 * tf.reduce_sum(tf.exp(z_logvar) + z_mu**2 - 1.0 - z_logvar, 1)
