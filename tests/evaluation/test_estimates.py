"""keras_vae.evaluation: the negative ELBO and importance-weighted -log p(x)."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_vae import parity

from keras_vae.data.batches import load_mnist
from keras_vae.evaluation import estimates as evaluation
from keras_vae.model import VAE
from legacy_tf1.vae_tf1 import build_graph
from tests.conftest import checkout_env, make_batch
from tests.evaluation.conftest import trained_vae


# float32's unit roundoff: one rounding errs by at most U times the value.
U = 2.0**-24


def _numpy_neg_elbo(weights, x, eps):
    """Each image's recon + KL terms at z = mu + sigma * eps, in float64 NumPy
    from the formulas."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    x = x.astype(np.float64)
    h = np.maximum(x @ w["Q_W1"] + w["Q_b1"], 0)
    mu, logvar = h @ w["Q_W2_mu"] + w["Q_b2_mu"], h @ w["Q_W2_sigma"] + w["Q_b2_sigma"]
    z = mu + np.exp(logvar / 2) * eps
    logits = np.maximum(z @ w["P_W1"] + w["P_b1"], 0) @ w["P_W2"] + w["P_b2"]
    recon = np.sum(np.maximum(logits, 0) - logits * x + np.log1p(np.exp(-np.abs(logits))), 1)
    return recon + 0.5 * np.sum(np.exp(logvar) + mu**2 - 1.0 - logvar, 1)


def _numpy_nll(model, x, ks, seed):
    """Each image's -log p(x) estimates for each k of `ks`, straight from the
    formulas in float64 NumPy, on the `IMPORTANCE` rows `draws` gives (TF's
    kernel): {k: (images,)}."""
    w = {name: getattr(model, name).numpy().astype(np.float64) for name in model.WEIGHTS}
    x = x.astype(np.float64)
    h = np.maximum(x @ w["Q_W1"] + w["Q_b1"], 0)
    mu, logvar = h @ w["Q_W2_mu"] + w["Q_b2_mu"], h @ w["Q_W2_sigma"] + w["Q_b2_sigma"]
    eps = evaluation.draws(seed, evaluation.IMPORTANCE, range(len(x)), 0, max(ks),
                           model.z_dim).numpy().astype(np.float64)  # (images, k, z_dim)
    z = mu[:, None] + np.exp(logvar[:, None] / 2) * eps
    logits = np.maximum(z @ w["P_W1"] + w["P_b1"], 0) @ w["P_W2"] + w["P_b2"]
    log_px_z = -np.sum(np.maximum(logits, 0) - logits * x[:, None]
                       + np.log1p(np.exp(-np.abs(logits))), -1)
    log_w = (log_px_z - 0.5 * np.sum(z**2, -1)
             + 0.5 * np.sum(eps**2 + logvar[:, None], -1))  # (images, k)
    return {k: math.log(k) - _log_sum_exp(log_w[:, :k]) for k in ks}


def _log_sum_exp(values):
    top = values.max(axis=-1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=-1))


@pytest.mark.parametrize("z_dim", [3, 8])
@pytest.mark.parametrize("draws_per_call", [None, 7, 250])
def test_the_estimates_are_the_formulas_in_float64(synthetic_mnist_dir, z_dim, draws_per_call,
                                                   monkeypatch):
    """Each image's estimate, whatever the calls' size (7 draws: each image's
    300 in 43 calls; 250: runs of 250 draws; by default, all 7 images' draws
    in one call), is within float32 rounding of the float64 formulas on the
    same draws (measured: 3e-7 relative; the issue allows 1e-4). A z_dim of 3
    starts rows inside Philox's groups of four numbers."""
    model = trained_vae(synthetic_mnist_dir, z_dim=z_dim, steps=100)
    x = np.asarray(next(iter(load_mnist("test[:7]", 7, synthetic_mnist_dir, shuffle=False))))
    if draws_per_call:
        monkeypatch.setattr(evaluation, "LOGITS_PER_CALL", draws_per_call * model.x_dim)
    ks = [1, 10, 300]
    estimates = evaluation.per_image(model, [x[:4], x[4:]], ks, seed=1)
    exact = _numpy_nll(model, x, ks, seed=1)
    for k in ks:
        np.testing.assert_allclose(estimates[k], exact[k], rtol=2e-6, atol=0, err_msg=str(k))


def test_the_polynomials_are_within_float32_rounding():
    """log1p(t) for t in [0, 1], sin and cos of 2 pi r for |r| <= 1/8, in
    float32, against float64 NumPy (the fits' figures: 1.9e-7 relative, 9e-8
    absolute)."""
    t = np.linspace(0, 1, 100_001, dtype=np.float32)[1:]
    log1p = (t * evaluation._polynomial(evaluation._LOG1P, tf.constant(t))).numpy()
    np.testing.assert_allclose(log1p, np.log1p(t.astype(np.float64)), rtol=2.5e-7, atol=0)
    r = np.linspace(-1 / 8, 1 / 8, 100_001, dtype=np.float32)
    sin = (r * evaluation._polynomial(evaluation._SIN, tf.constant(r * r))).numpy()
    cos = evaluation._polynomial(evaluation._COS, tf.constant(r * r)).numpy()
    turn = 2 * np.pi * r.astype(np.float64)
    np.testing.assert_allclose(sin, np.sin(turn), rtol=0, atol=1e-7)
    np.testing.assert_allclose(cos, np.cos(turn), rtol=0, atol=1e-7)


def _paired_se(a, b):
    return evaluation.standard_error(np.asarray(a) - np.asarray(b))


@pytest.mark.slow
def test_the_estimates_tighten_with_k_and_k1_is_the_elbo(trained, synthetic_mnist_dir):
    test = load_mnist("test[:1000]", 100, synthetic_mnist_dir, shuffle=False)
    values = evaluation.per_image(trained, test, [1, 100, 1000], seed=1)
    assert len(values["neg_elbo"]) == 1000
    elbo = values["neg_elbo"]
    for k in (1, 100, 1000):
        assert values[k].mean() <= elbo.mean() + 3 * _paired_se(values[k], elbo), k
    for fewer, more in ((1, 100), (100, 1000)):
        drop = values[fewer].mean() - values[more].mean()
        assert drop > 3 * _paired_se(values[fewer], values[more]), (fewer, more)
    # k = 1 estimates the same expectation as the ELBO, over 1,000 draws.
    assert abs(values[1].mean() - elbo.mean()) < 3 * _paired_se(values[1], elbo)
    assert np.isfinite([values[k] for k in (1, 100, 1000)]).all()


@pytest.mark.slow
def test_k_5000_matches_numerical_integration_for_a_1d_latent(synthetic_mnist_dir):
    # Trained far enough that q(z|x) is close to the posterior: the bound is then tight.
    model = trained_vae(synthetic_mnist_dir, z_dim=1, steps=3000)
    x = next(iter(load_mnist("test[:20]", 20, synthetic_mnist_dir, shuffle=False)))
    estimate = evaluation.per_image(model, [x], [5000], seed=2)[5000]
    # -log p(x) = -log of the integral of p(x|z) N(z; 0, 1) over z, on a fine grid.
    z = np.linspace(-8, 8, 32001, dtype=np.float32)
    _, logits = model.decode(z[:, None])  # (grid, 784)
    log_px_z = np.stack([  # (images, grid)
        -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.broadcast_to(image, logits.shape), logits=logits), axis=1).numpy()
        for image in x])
    log_pz = -0.5 * z.astype(np.float64) ** 2 - 0.5 * math.log(2 * math.pi)
    step = float(z[1] - z[0])
    exact = -(tf.reduce_logsumexp(log_px_z + log_pz, axis=1).numpy() + math.log(step))
    # Statistical: the draws are fixed by the seed, and leave this estimate
    # within 0.02 of the integral (other seeds: up to 0.04); float32 rounding
    # moves either by < 1e-5 (measured against float64), the grid by < 1e-9.
    np.testing.assert_allclose(estimate, exact, rtol=0, atol=0.05)


def test_neg_elbo_is_the_tf1_graphs_on_the_same_weights_and_noise(trained):
    x, _ = make_batch(3)
    eps = np.random.default_rng(4).standard_normal((64, trained.z_dim)).astype(np.float32)
    recon, kl = evaluation._elbo_terms(trained, tf.constant(x), tf.constant(eps))
    vae = build_graph(initial_values=parity.get_tf1_weights(trained), feed_eps=True,
                      h_dim=32, z_dim=trained.z_dim, seed=0)
    with tf.compat.v1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        tf1_loss = sess.run(vae.vae_loss, {vae.X: x, vae.eps: eps})
    # Both within float32 rounding of the float64 value. Each image's terms
    # here, checked to be rounding (~1e-7 relative in norm; a wrong term is
    # ~1e-2 off), measure it; a batch mean is within the RMS of its images'
    # errors, which another order of the same float32 sums (the TF1 graph's
    # kernels) leaves of the same size (0.6x to 1.2x measured,
    # tests/distribute/test_distribute.py's `_within_rounding`: 4x, and 16 U
    # of the values for an error small by chance); and its own sum and
    # division add B roundings of the mean of B positive values.
    float32 = (recon + kl).numpy()
    exact = _numpy_neg_elbo(parity.get_tf1_weights(trained), x, eps)
    error, scale = np.linalg.norm(float32 - exact), np.linalg.norm(exact)
    assert error <= 2**-16 * scale, error / scale
    allowed = (4 * error + 16 * U * scale) / np.sqrt(len(x)) + len(x) * U * exact.mean()
    for loss in (float32.astype(np.float64).mean(), tf1_loss):
        assert abs(loss - exact.mean()) <= allowed, (loss, exact.mean(), allowed)


def test_evaluating_leaves_the_training_noise_alone(trained, synthetic_mnist_dir):
    before = trained.seed_generator.state.numpy().copy()
    test = load_mnist("test[:200]", 100, synthetic_mnist_dir, shuffle=False)
    first = evaluation.evaluate(trained, test, k=(1, 10), seed=5)
    np.testing.assert_array_equal(trained.seed_generator.state.numpy(), before)
    # Seeded: the same computation on the same draws, the same bits.
    assert evaluation.evaluate(trained, test, k=(1, 10), seed=5) == first
    assert evaluation.evaluate(trained, test, k=(1, 10), seed=6) != first


def test_binarized_pixels_are_bernoulli_draws_of_the_intensities():
    x = tf.fill([200, 784], 0.3)
    a, b = evaluation.binarized(x, 1), evaluation.binarized(x, 1)
    assert set(np.unique(a.numpy())) == {0.0, 1.0}
    # Statistical: the mean of 156,800 draws is within 0.0012 of 0.3 at one
    # standard error: 0.01 is 8 of them.
    assert abs(float(tf.reduce_mean(a)) - 0.3) < 0.01
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, evaluation.binarized(x, 2))
    # Each image its own draws (two rows alike by chance: 2^-784), the same
    # in another batch.
    assert len(np.unique(a.numpy(), axis=0)) == 200
    np.testing.assert_array_equal(evaluation.binarized(x[150:], 1, first=150), a[150:])


def test_images_of_another_size_are_refused_by_name(synthetic_mnist_dir):
    model = VAE(x_dim=144, h_dim=8, z_dim=2)
    data = load_mnist("test[:10]", 10, synthetic_mnist_dir, shuffle=False)
    with pytest.raises(ValueError, match="takes images of 144 pixels; these have 784"):
        evaluation.evaluate(model, data, k=(1,))


@pytest.mark.slow
def test_each_image_has_one_devices_estimates_on_two_mirrored_replicas(
        synthetic_mnist_dir, tmp_path):
    # The replicas run in a process of their own: logical CPUs must be set
    # before TensorFlow starts. Batches of 25: the shares differ (12 and 13).
    model = trained_vae(synthetic_mnist_dir)
    model.save(tmp_path / "m.keras")
    script = textwrap.dedent(f"""
        import numpy as np
        from keras_vae.data.batches import load_mnist
        from keras_vae.distribute.strategies import make_strategy
        from keras_vae.evaluation import estimates
        from keras_vae.saving.keras_file import load_model

        shares, batch_values = [], estimates._batch_values

        def recorded(model, x, first, *args):  # the images each replica estimates
            shares.append((first, x.shape[0]))
            return batch_values(model, x, first, *args)

        estimates._batch_values = recorded
        with make_strategy("mirrored", 2).scope():
            model = load_model({str(tmp_path / "m.keras")!r})
        data = load_mnist("test[:200]", 25, {str(synthetic_mnist_dir)!r}, shuffle=False,
                          repeat=False)
        values = estimates.per_image(model, data, [1, 10, 300], seed=4, binarize=True)
        np.savez({str(tmp_path / "mirrored.npz")!r}, shares=np.array(sorted(shares)),
                 **{{str(k): v for k, v in values.items()}})
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=checkout_env(), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    mirrored = np.load(tmp_path / "mirrored.npz")
    assert mirrored["shares"].tolist() == [[first + offset, size] for first in range(0, 200, 25)
                                           for offset, size in ((0, 12), (12, 13))]
    one = evaluation.per_image(model, load_mnist("test[:200]", 25, synthetic_mnist_dir,
                                                 shuffle=False, repeat=False),
                               [1, 10, 300], seed=4, binarize=True)
    for name, values in one.items():
        assert len(values) == 200, name
        np.testing.assert_allclose(mirrored[str(name)], values, rtol=1e-4, err_msg=str(name))
