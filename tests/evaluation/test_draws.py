"""keras_vae.evaluation.estimates: draw j of image i comes from (seed, i, j)
alone, so no estimate depends on the other k's, the batch size or how the
draws are split into calls, and the draws of a smaller k are the first of a
larger k's."""

import numpy as np
import pytest
import tensorflow as tf

from keras_vae.data.batches import load_mnist
from keras_vae.evaluation import estimates

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
    monkeypatch.setattr(estimates, "LOGITS_PER_CALL", draws_per_call * trained.x_dim)
    assert estimates.call_shapes(100, 20, trained.x_dim)[:2] == (
        [(0, 1, 0, 7), (0, 1, 7, 7)] if draws_per_call == 7 else [(0, 2, 0, 100), (2, 2, 0, 100)])
    split = estimates.per_image(trained, data, [1, 10, 100], seed=1)
    for k in (1, 10, 100):
        _assert_within_rounding(split[k], whole[k], k)


@pytest.mark.parametrize("k, images, calls", [
    (5000, 100, [(a, 2, 0, 5000) for a in range(0, 100, 2)]),  # 10,699 draws fit
    (5000, 3, [(0, 2, 0, 5000), (2, 1, 0, 5000)]),
    (25_000, 1, [(0, 1, 0, 10_699), (0, 1, 10_699, 10_699), (0, 1, 21_398, 3602)]),
    (1, 100, [(0, 100, 0, 1)]),
])
def test_each_call_decodes_at_most_logits_per_call(k, images, calls, monkeypatch):
    """Whole images while their draws fit, else runs of one image's draws."""
    monkeypatch.setattr(estimates, "LOGITS_PER_CALL", 2**23)
    assert estimates.call_shapes(k, images, 784) == calls
    assert max(size * length for _, size, _, length in calls) * 784 <= estimates.LOGITS_PER_CALL


@pytest.mark.parametrize("width", [1, 3, 8, 100])
def test_the_importance_draws_are_the_streams_rows_however_they_are_split(width):
    """The compiled loop's normals are the kernel's (`draws`) to within a few
    roundings: its own sin, cos and log (measured: at most 5 ulps of the
    draw's magnitude; 8 allowed, plus 8 float32 ulps of 1 for draws near 0);
    and the same bits for any split into calls, rows starting anywhere in
    Philox's groups of four numbers."""
    streams = [0, 7, 12345]
    full = estimates._importance_draws(1, streams, 0, 40, width).numpy()
    kernel = estimates.draws(1, estimates.IMPORTANCE, streams, 0, 40, width).numpy()
    assert full.shape == kernel.shape == (3, 40, width)
    np.testing.assert_allclose(full, kernel, rtol=8 * 2**-23, atol=8 * 2**-23)
    for start, count in ((0, 10), (5, 9), (7, 33)):
        np.testing.assert_array_equal(
            estimates._importance_draws(1, streams, start, count, width),
            full[:, start:start + count])


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
