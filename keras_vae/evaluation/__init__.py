"""Measuring and looking at a trained VAE.

- `estimates`: `evaluate`, the negative ELBO and importance-weighted -log p(x);
- `plots`: reconstructions, interpolation, manifold, latent space, curves;
- `grid`: the original's 4x4 plot of samples;
- `tiles`: images laid out as one picture, for the plots and TensorBoard.
"""

from keras_vae.evaluation.estimates import evaluate

__all__ = ["evaluate"]
