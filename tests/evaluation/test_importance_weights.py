"""keras_vae.evaluation.estimates: the importance-weighted -log p(x) is
exact, for every k, when all the importance weights are equal."""

import numpy as np

from keras_vae.evaluation.estimates import per_image
from keras_vae.model import VAE


def test_equal_importance_weights_give_the_reconstruction_loss_for_every_k():
    """With q(z|x) = N(0, I) = p(z) and a decoder that ignores z, every weight
    is p(x|z), so -log(1/k sum w) is the reconstruction loss for any k: the
    1/k (log k) must be exact, not off by one draw."""
    rng = np.random.default_rng(0)
    model = VAE(x_dim=20, h_dim=8, z_dim=3, seed=0)
    for name in ("Q_W2_mu", "Q_b2_mu", "Q_W2_sigma", "Q_b2_sigma", "P_W1"):
        getattr(model, name).assign(np.zeros(getattr(model, name).shape, np.float32))
    model.P_b1.assign(rng.normal(size=8).astype(np.float32))
    model.P_b2.assign(rng.normal(size=20).astype(np.float32))
    x = rng.random((5, 20)).astype(np.float32)

    # The reconstruction loss in float64, from the weights alone.
    h = np.maximum(model.P_b1.numpy().astype(np.float64), 0.0)
    logits = h @ model.P_W2.numpy().astype(np.float64) + model.P_b2.numpy()
    x64 = x.astype(np.float64)
    cross_entropy = np.maximum(logits, 0) - logits * x64 + np.log1p(np.exp(-np.abs(logits)))
    expected = cross_entropy.sum(axis=1)  # (5,)

    values = per_image(model, [x], [1, 2, 7], seed=3)
    for k in (1, 2, 7):
        np.testing.assert_allclose(values[k], expected, rtol=0, atol=1e-4, err_msg=f"k={k}")
