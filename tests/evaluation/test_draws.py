"""keras_vae.evaluation.estimates: draw j of image i comes from (seed, i, j)
alone, so no estimate depends on the other k's, the batch size or how the
draws are split into calls, and the draws of a smaller k are the first of a
larger k's."""

import numpy as np
import pytest
import tensorflow as tf

from keras_vae.data.batches import load_mnist
from keras_vae.evaluation import estimates
from keras_vae.model import VAE

# float32's unit roundoff: one rounding errs by at most U times the value.
U = 2.0**-24


def _test_images(data_dir, batch_size, n=50):
    return load_mnist(f"test[:{n}]", batch_size, data_dir, shuffle=False)


def _assert_within_rounding(a, b, name):
    """Each image's value computed twice, in float32 by kernels of other
    shapes, which may order its sums differently: the longest, over 784
    pixels, errs by at most 784 U of its (positive) terms' total, about the
    value (measured: within 1 ulp). Other draws move an image's estimates by
    nats."""
    np.testing.assert_allclose(a, b, rtol=784 * U, atol=0, err_msg=str(name))


def test_an_estimate_does_not_depend_on_the_other_ks(trained, synthetic_mnist_dir):
    alone = estimates.per_image(trained, _test_images(synthetic_mnist_dir, 100), [100], seed=1)
    for ks in ([1, 100], [1, 10, 100], [1, 100, 300]):
        values = estimates.per_image(trained, _test_images(synthetic_mnist_dir, 100), ks, seed=1)
        _assert_within_rounding(values[100], alone[100], ks)


def test_the_elbo_does_not_depend_on_the_ks(trained, synthetic_mnist_dir):
    data = _test_images(synthetic_mnist_dir, 100)
    alone = estimates.per_image(trained, data, [], seed=1)
    assert set(alone) == {"neg_elbo", "recon_loss", "kl_loss"}
    values = estimates.per_image(trained, data, [1, 100], seed=1)
    for name in alone:
        _assert_within_rounding(values[name], alone[name], name)


@pytest.mark.parametrize("binarize", [False, True])
def test_the_estimates_do_not_depend_on_the_batch_size(trained, synthetic_mnist_dir, binarize):
    """The ELBO's draw, the importance draws and (binarized) each pixel's draw
    are the image's own: the same in batches of 7 as of 100."""
    values = [estimates.per_image(trained, _test_images(synthetic_mnist_dir, size), [1, 10, 100],
                                  seed=1, binarize=binarize)
              for size in (7, 100)]
    # The KL first: it moves only with the binarization's draws.
    for name in ("kl_loss", "recon_loss", "neg_elbo", 1, 10, 100):
        _assert_within_rounding(values[0][name], values[1][name], name)


@pytest.mark.parametrize("draws_per_call", [7, 250])
def test_the_estimates_do_not_depend_on_the_draws_per_call(
        trained, synthetic_mnist_dir, monkeypatch, draws_per_call):
    """7: each image's 100 draws in 15 calls; 250: two images a call."""
    data = _test_images(synthetic_mnist_dir, 100, n=20)
    whole = estimates.per_image(trained, data, [1, 10, 100], seed=1)
    monkeypatch.setattr(estimates, "DRAWS_PER_CALL", draws_per_call)
    split = estimates.per_image(trained, data, [1, 10, 100], seed=1)
    for k in (1, 10, 100):
        _assert_within_rounding(split[k], whole[k], k)


class _KeepsImportanceDraws(VAE):
    """A VAE that keeps each `eps` `(images, draws, z_dim)` (the importance
    draws) that `reparameterize` is given, in `kept`."""

    def reparameterize(self, z_mu, z_logvar, eps=None):
        if eps is not None and eps.shape.rank == 3:
            eps = tf.ensure_shape(tf.numpy_function(self._keep, [eps], tf.float32), eps.shape)
        return super().reparameterize(z_mu, z_logvar, eps)

    def _keep(self, eps):
        self.kept.append(eps.copy())
        return eps


def test_the_draws_of_a_smaller_k_are_the_first_of_a_larger_ks(synthetic_mnist_dir):
    model = _KeepsImportanceDraws(h_dim=8, z_dim=4, seed=0)
    data = _test_images(synthetic_mnist_dir, 5, n=5)
    draws = {}
    for k in (10, 100):  # 5 images of 100 draws: one call
        model.kept = []
        estimates.per_image(model, data, [k], seed=1)
        draws[k] = np.concatenate(model.kept, axis=1)  # (images, k, z_dim)
    assert draws[100].shape == (5, 100, 4)
    np.testing.assert_array_equal(draws[10], draws[100][:, :10])


@pytest.mark.parametrize("kernel", [tf.raw_ops.StatelessRandomNormalV2,
                                    tf.raw_ops.StatelessRandomUniformV2])
def test_a_streams_rows_are_the_same_however_they_are_drawn(kernel):
    """Alone, after others, or beside other streams, for widths that start a
    row inside Philox's groups of four numbers."""
    streams = [0, 3, 12345]
    for width in (1, 3, 8):
        full = estimates.draws(1, estimates.IMPORTANCE, streams, 0, 20, width, kernel).numpy()
        assert full.shape == (3, 20, width)
        for start, count in ((0, 5), (5, 9), (7, 13)):
            np.testing.assert_array_equal(
                estimates.draws(1, estimates.IMPORTANCE, streams, start, count, width, kernel),
                full[:, start:start + count])
        np.testing.assert_array_equal(
            estimates.draws(1, estimates.IMPORTANCE, streams[1:], 0, 20, width, kernel), full[1:])
        assert len(np.unique(full)) == full.size  # no stream repeats another


def test_each_purpose_and_seed_has_its_own_streams():
    rows = [estimates.draws(seed, purpose, [0, 1], 0, 4, 8).numpy()
            for seed in (0, 1) for purpose in (estimates.ELBO, estimates.IMPORTANCE)]
    assert len(np.unique(np.concatenate(rows))) == 4 * 2 * 4 * 8
