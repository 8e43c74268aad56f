"""The VAE: its math against NumPy, its init, every accepted data form, saving."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import parity
from keras_vae.losses import kl_divergence, reconstruction_loss
from keras_vae.model import VAE
from keras_vae.saving.keras_file import load_model, save_model
from tests.conftest import make_batch

BATCH = 64


# float32's unit roundoff: one rounding errs by at most U times the value.
U = 2.0**-24


def _numpy_forward(weights, x, eps=None):
    """The original's encoder and decoder in float64 NumPy from the formulas:
    z_mu, z_logvar, and the logits of z (z_mu without `eps`)."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    relu = lambda a: np.maximum(a, 0.0)  # noqa: E731
    h = relu(x @ w["Q_W1"] + w["Q_b1"])
    mu = h @ w["Q_W2_mu"] + w["Q_b2_mu"]
    logvar = h @ w["Q_W2_sigma"] + w["Q_b2_sigma"]
    z = mu if eps is None else mu + np.exp(logvar / 2) * eps
    logits = relu(z @ w["P_W1"] + w["P_b1"]) @ w["P_W2"] + w["P_b2"]
    return mu, logvar, logits


def _numpy_per_example(weights, x, eps):
    """The original's loss, recon and KL terms of each example, in float64."""
    mu, logvar, logits = _numpy_forward(weights, x, eps)
    # -[x log p + (1 - x) log(1 - p)] with p = sigmoid(logits)
    log_p = -np.logaddexp(0.0, -logits)
    log_1mp = -np.logaddexp(0.0, logits)
    recon = -(x * log_p + (1 - x) * log_1mp).sum(1)
    kl = 0.5 * (np.exp(logvar) + mu**2 - 1.0 - logvar).sum(1)
    return recon + kl, recon, kl


def _float32_per_example(model, x, eps):
    """The same three, each example's, with the ops of `VAE.compute_vae_loss`."""
    z_mu, z_logvar = model.encode(x)
    _, logits = model.decode(model.reparameterize(z_mu, z_logvar, eps))
    recon, kl = reconstruction_loss(x, logits), kl_divergence(z_mu, z_logvar)
    return (recon + kl).numpy(), recon.numpy(), kl.numpy()


def _rounding(float32, exact):
    """`float32`'s distance from `exact` (its value in float64), in norm, checked
    to be float32 rounding: ~1e-7 relative, where a wrong formula, weight or
    noise is ~1e-2 away or more."""
    error, scale = np.linalg.norm(float32 - exact), np.linalg.norm(exact)
    assert error <= 2**-16 * scale, error / scale
    return error


def _other_order(error, exact):
    """How far from `exact` (in norm) a float32 computation of the same sums in
    any order or kernels (eager or traced, oneDNN or Eigen) may be, given this
    machine's `error`: the same terms are rounded, so its error is of the same
    size (0.6x to 1.2x measured; tests/distribute/test_distribute.py's
    `_within_rounding`), 4x; and 16 U of the value for an `error` small by chance."""
    return 4 * error + 16 * U * np.linalg.norm(exact)


def _mean_error(float32, exact, terms=None):
    """How far a float32 mean of per-example values, with the float32
    per-example values `float32` measured here, may be from the exact mean: by
    the RMS of its examples' errors, plus the mean's own sum and division,
    within `terms` (the examples summed) roundings of the mean (the values are
    positive)."""
    terms = len(exact) if terms is None else terms
    rms = _other_order(_rounding(float32, exact), exact) / np.sqrt(len(exact))
    return rms + terms * U * abs(exact.mean())


@pytest.fixture
def model():
    keras.utils.set_random_seed(0)
    vae = VAE()
    vae.compile()
    return vae


def test_loss_and_kl_match_the_formulas(model):
    x, eps = make_batch(1)
    # Move the weights off their init so that the KL is not trivially small.
    rng = np.random.default_rng(2)
    weights = {
        k: v + 0.05 * rng.standard_normal(v.shape).astype(np.float32)
        for k, v in parity.get_tf1_weights(model).items()
    }
    parity.set_tf1_weights(model, weights)
    got = [float(v) for v in model.compute_vae_loss(x, eps)]
    # Each example's terms within float32 rounding of the formulas, and so
    # their batch means.
    per_example = _float32_per_example(model, x, eps)
    want = _numpy_per_example(weights, x, eps)
    for name, value, float32, exact in zip(("loss", "recon", "kl"), got, per_example, want):
        assert abs(value - exact.mean()) <= _mean_error(float32, exact), name
    assert want[2].mean() > 1.0  # the KL term really contributes


def test_init_is_the_originals_untruncated_normal(model):
    for name, value in parity.get_tf1_weights(model).items():
        if "_b" in name:
            assert not value.any(), name
            continue
        stddev = 1.0 / np.sqrt(value.shape[0] / 2.0)
        # Statistical: of n >= 12,800 draws, the mean is within stddev / sqrt(n)
        # (<= 0.009 stddev) and the std within 1 / sqrt(2 n) (0.6%) of theirs
        # at one standard error: 0.05 is 5.6 and 8 of them.
        assert abs(value.mean()) < 0.05 * stddev, name
        np.testing.assert_allclose(value.std(), stddev, rtol=0.05, err_msg=name)
    # Untruncated: a normal puts 4.6% of 100k draws beyond 2 stddev, a
    # truncated normal (Keras' HeNormal) none.
    q_w1 = model.Q_W1.numpy()
    assert (np.abs(q_w1) > 2 * np.sqrt(2 / 784)).mean() > 0.03


def test_variables_have_the_originals_names_and_shapes(model):
    assert [v.name for v in model.trainable_weights] == list(parity.TF1_NAMES)
    shapes = {v.name: tuple(v.shape) for v in model.trainable_weights}
    assert shapes["Q_W1"] == (784, 128) and shapes["Q_W2_sigma"] == (128, 100)
    assert shapes["P_W1"] == (100, 128) and shapes["P_b2"] == (784,)


def test_same_noise_gives_the_same_loss_and_other_noise_another(model):
    x, eps = make_batch(3)
    _, other = make_batch(4)
    first = model.evaluate({"image": x, "noise": eps}, batch_size=BATCH, verbose=0)
    second = model.evaluate({"image": x, "noise": eps}, batch_size=BATCH, verbose=0)
    third = model.evaluate({"image": x, "noise": other}, batch_size=BATCH, verbose=0)
    assert first == second  # the same graph on the same inputs: the same bits
    assert first != third
    # Traced and eager: each within float32 rounding of the loss of that noise.
    exact = _numpy_per_example(parity.get_tf1_weights(model), x, eps)[0]
    allowed = _mean_error(_float32_per_example(model, x, eps)[0], exact)
    for loss in (first[0], float(model.compute_vae_loss(x, eps)[0])):
        assert abs(loss - exact.mean()) <= allowed, (loss, exact.mean(), allowed)


@pytest.mark.parametrize("form", ["x", "x_y", "x_y_weight", "dict"])
def test_fit_accepts_each_data_form(model, form):
    x, eps = make_batch(5, n=4 * BATCH)
    y = np.arange(len(x)) % 10
    data = {
        "x": {"x": x},
        "x_y": {"x": x, "y": y},
        "x_y_weight": {"x": x, "y": y, "sample_weight": np.ones(len(x), np.float32)},
        "dict": {"x": {"image": x, "noise": eps}},
    }[form]
    before = model.Q_W1.numpy()
    history = model.fit(**data, batch_size=BATCH, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "recon_loss", "kl_loss", "step_loss"}
    assert np.isfinite(history.history["loss"][0])
    assert int(model.optimizer.iterations) == 4
    assert not np.array_equal(before, model.Q_W1.numpy())


def test_sample_weight_weights_each_example(model):
    x, eps = make_batch(6)
    inputs = {"image": x, "noise": eps}
    labels = np.zeros(BATCH)  # Keras passes sample_weight on only beside labels
    plain = model.evaluate(inputs, batch_size=BATCH, verbose=0, return_dict=True)
    doubled = model.evaluate(
        inputs, labels, sample_weight=np.full(BATCH, 2.0, np.float32),
        batch_size=BATCH, verbose=0, return_dict=True,
    )
    half = np.r_[np.ones(BATCH // 2), np.zeros(BATCH // 2)].astype(np.float32)
    masked = model.evaluate(
        inputs, labels, sample_weight=half, batch_size=BATCH, verbose=0, return_dict=True
    )
    first_half = model.evaluate(
        {"image": x[: BATCH // 2], "noise": eps[: BATCH // 2]},
        batch_size=BATCH, verbose=0, return_dict=True,
    )
    # Each within float32 rounding of its exact value: weights of 2 double
    # every term, and weights of 0 drop the second half but keep dividing by
    # the batch size (Keras' "sum_over_batch_size").
    float32 = _float32_per_example(model, x, eps)[0]
    exact = _numpy_per_example(parity.get_tf1_weights(model), x, eps)[0]
    half = BATCH // 2
    plain_error, half_error = (_mean_error(float32, exact),
                               _mean_error(float32[:half], exact[:half], terms=BATCH))
    for loss, want, allowed in (
        (plain["loss"], exact.mean(), plain_error),
        (doubled["loss"], 2 * exact.mean(), 2 * plain_error),
        (masked["loss"], exact[:half].mean() / 2, half_error / 2),
        (first_half["loss"], exact[:half].mean(), _mean_error(float32[:half], exact[:half])),
    ):
        assert abs(loss - want) <= allowed, (loss, want, allowed)


def test_history_with_validation_keeps_each_metrics_own_value():
    x, _ = make_batch(11, n=4 * BATCH)
    last = []  # each epoch's last training step_loss, as logged then
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: batch == 3 and last.append(float(logs["step_loss"])))
    keras.utils.set_random_seed(0)
    vae = VAE(h_dim=8, z_dim=2)
    vae.compile()
    history = vae.fit(x, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
                      validation_data=(x[:BATCH],), callbacks=[record])
    assert history.history["step_loss"] == last
    for train, val in zip(history.history["step_loss"], history.history["val_step_loss"]):
        assert train != val


def test_sampled_noise_differs_between_steps(model):
    x, _ = make_batch(7)
    losses = [float(model.test_step(x)["step_loss"]) for _ in range(3)]
    assert len(set(losses)) == 3


def test_seed_makes_init_and_noise_reproducible():
    x, _ = make_batch(8)

    def run():
        keras.utils.set_random_seed(42)
        vae = VAE()
        vae.compile()
        vae.fit(np.concatenate([x] * 3), batch_size=BATCH, shuffle=False, verbose=0)
        return vae.Q_W1.numpy()

    np.testing.assert_array_equal(run(), run())  # the same traced steps: the same bits


def test_methods_shapes_and_determinism(model):
    x, _ = make_batch(9, n=5)
    z_mu, z_logvar = model.encode(x)
    assert z_mu.shape == (5, 100) and z_logvar.shape == (5, 100)
    prob, logits = model.decode(z_mu)
    assert prob.shape == logits.shape == (5, 784)
    # predict runs traced, the methods eagerly: kernels may differ in the
    # last bits (1.8e-7 measured), so not bits: both within float32 rounding
    # of the float64 reconstruction.
    exact = 1 / (1 + np.exp(-_numpy_forward(parity.get_tf1_weights(model), x)[2]))
    eager_error = _rounding(model.reconstruct(x).numpy(), exact)
    traced_error = np.linalg.norm(model.predict(x, verbose=0) - exact)
    assert traced_error <= _other_order(eager_error, exact), (traced_error, eager_error)
    a, b = model.sample(3, seed=7), model.sample(3, seed=7)
    assert a.shape == (3, 784)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.sample(3, seed=8))


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((BATCH, 28, 28), np.float32), "(batch, 784)"),
        (np.zeros((BATCH, 100), np.float32), "(batch, 784)"),
        (np.zeros((BATCH, 784), np.uint8), "Scale uint8"),
    ],
)
def test_wrong_inputs_get_a_clear_error(model, bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.fit(bad, batch_size=BATCH, verbose=0)


@pytest.mark.parametrize("value", [255.0, -0.5, np.nan])
def test_pixel_values_outside_0_1_raise_invalid_argument_as_the_step_runs(model, value):
    x = np.zeros((BATCH, 784), np.float32)
    x[3, 7] = value  # one bad pixel in the batch
    for call in (lambda: model.fit(x, batch_size=BATCH, verbose=0),
                 lambda: model.evaluate(tf.data.Dataset.from_tensors(x), verbose=0)):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"Expected pixel values in \[0, 1\], without NaN") as info:
            call()
        assert type(info.value) is tf.errors.InvalidArgumentError
    assert int(model.optimizer.iterations) == 0  # no step was taken on them


def test_bad_dimensions_are_refused():
    with pytest.raises(ValueError, match="z_dim=0"):
        VAE(z_dim=0)


def test_set_tf1_weights_refuses_wrong_names_and_shapes(model):
    weights = parity.get_tf1_weights(model)
    with pytest.raises(ValueError, match="missing=\\['P_b2'\\]"):
        parity.set_tf1_weights(model, {k: v for k, v in weights.items() if k != "P_b2"})
    weights["Q_b1"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="Q_b1"):
        parity.set_tf1_weights(model, weights)


def test_keras_file_round_trips_weights_optimizer_and_noise(model, tmp_path):
    x, _ = make_batch(10, n=4 * BATCH)
    model.fit(x, batch_size=BATCH, verbose=0)
    path = tmp_path / "vae.keras"
    save_model(model, path)
    assert [p.name for p in tmp_path.iterdir()] == ["vae.keras"]  # no temporary left
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_model(path)
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    assert loaded.get_config()["z_dim"] == 100
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables) == 24
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Training on, in memory and from the file, stays bit-identical
    # (same optimizer state, same noise stream).
    model.fit(x, batch_size=BATCH, shuffle=False, verbose=0)
    loaded.fit(x, batch_size=BATCH, shuffle=False, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_load_model_names_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="No model file"):
        load_model(tmp_path / "absent.keras")
