"""VAE.reparameterize and compute_vae_loss against an independent float64
NumPy implementation of the original's forward pass and loss."""

import numpy as np

from keras_vae.model import VAE


def _numpy_losses(weights, x, eps):
    """The original's (vae_loss, recon_loss, kl_loss) batch means, in float64."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    x = x.astype(np.float64)
    h = np.maximum(x @ w["Q_W1"] + w["Q_b1"], 0)
    mu = h @ w["Q_W2_mu"] + w["Q_b2_mu"]
    logvar = h @ w["Q_W2_sigma"] + w["Q_b2_sigma"]
    z = mu + np.exp(logvar / 2) * eps.astype(np.float64)
    logits = np.maximum(z @ w["P_W1"] + w["P_b1"], 0) @ w["P_W2"] + w["P_b2"]
    recon = (np.maximum(logits, 0) - logits * x + np.log1p(np.exp(-np.abs(logits)))).sum(1)
    kl = 0.5 * (np.exp(logvar) + mu**2 - 1 - logvar).sum(1)
    return (recon + kl).mean(), recon.mean(), kl.mean()


def test_reparameterize_matches_numpy_for_large_log_variances():
    """z = mu + exp(logvar / 2) * eps exactly: a wrong divisor shows at |logvar| = 20."""
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(41, 3)).astype(np.float32)
    logvar = np.repeat(np.linspace(-20, 20, 41, dtype=np.float32)[:, None], 3, axis=1)
    eps = rng.normal(size=(41, 3)).astype(np.float32)
    z = VAE(h_dim=8, z_dim=3).reparameterize(mu, logvar, eps).numpy()
    expected = mu.astype(np.float64) + np.exp(logvar.astype(np.float64) / 2) * eps
    np.testing.assert_allclose(z, expected, rtol=1e-5)


def test_compute_vae_loss_matches_numpy_with_a_wide_posterior():
    """The loss terms must be the original's to float32 rounding; with logvar
    near 8 a sigma off by 0.01% moves the reconstruction loss some 20 times the
    tolerance."""
    rng = np.random.default_rng(1)
    model = VAE(h_dim=8, z_dim=2, seed=0)
    model.Q_b2_sigma.assign(np.full(2, 8.0, np.float32))
    x = rng.random((16, 784)).astype(np.float32)
    x[x < 0.5] = 0.0
    eps = rng.normal(size=(16, 2)).astype(np.float32)
    losses = [float(v) for v in model.compute_vae_loss(x, eps)]
    weights = {name: getattr(model, name).numpy() for name in VAE.WEIGHTS}
    np.testing.assert_allclose(losses, _numpy_losses(weights, x, eps), rtol=1e-5)
