"""Files last: those written by earlier keras_vae versions load with their whole
state, and those of a newer format are refused with both versions named.

`tests/fixtures/format1/` was written by keras_vae 0.1.0, before files carried
a format version (see `tests/fixtures/make_fixtures.py`).
"""

import io
import json
import shutil
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import _compat
from keras_vae.losses import kl_divergence, reconstruction_loss
from keras_vae.model import VAE  # registers the VAE with Keras
from keras_vae.saving import formats
from keras_vae.saving.formats import FORMAT_VERSION, FormatVersionError
from keras_vae.saving.export import export
from keras_vae.training.checkpoints import load_latest, save_checkpoint
from tests.fixtures.make_fixtures import BATCH_SIZE, BIASES, images, one_more_step, state

FORMAT1 = Path(__file__).parents[1] / "fixtures" / "format1"
EXPECTED = json.loads((FORMAT1 / "expected.json").read_text())
CHECKPOINT = FORMAT1 / "checkpoints" / "ckpt-000000003"


def stored_variables(path):
    """{name: value} of the VAE's own entries in the `.keras` file at `path`."""
    with zipfile.ZipFile(path) as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights, "r") as store:
        return {name: store["vars"][name][()] for name in store["vars"]}


def assert_restored(model):
    """`model` holds the fixture's weights, optimizer state and sampler state."""
    assert isinstance(model, keras_vae.VAE)
    assert {name: getattr(model, name) for name in EXPECTED["config"]} == EXPECTED["config"]
    assert state(model) == {
        key: EXPECTED[key]
        for key in ("iterations", "beta_1_power", "beta_2_power", "seed_generator_state",
                    "fingerprints")
    }


def test_the_fixtures_predate_the_format_version():
    # What makes them test the reading of unversioned (version 1) files.
    assert sorted(stored_variables(FORMAT1 / "vae.keras"), key=int) == [str(i) for i in range(11)]
    assert "format_version" not in json.loads(CHECKPOINT.with_suffix(".json").read_text())


@pytest.mark.parametrize("load", [keras_vae.load_model, keras.models.load_model])
def test_a_format1_keras_file_loads_with_its_whole_state(load):
    assert_restored(load(FORMAT1 / "vae.keras"))


def test_a_format1_checkpoint_resumes():
    warnings = []
    checkpoint, model = load_latest(str(FORMAT1 / "checkpoints"), warn=warnings.append)
    assert warnings == []
    assert checkpoint.step == 3
    assert checkpoint.config == json.loads(CHECKPOINT.with_suffix(".json").read_text())["config"]
    assert_restored(model)


# float32's unit roundoff: one rounding errs by at most U times the value.
U = 2.0**-24


def _per_example_losses(model, x, noise):
    """Each example's loss, with the ops of `VAE.compute_vae_loss`, in the model's dtype."""
    z_mu, z_logvar = model.encode(x)
    _, logits = model.decode(model.reparameterize(z_mu, z_logvar, noise))
    return reconstruction_loss(x, logits) + kl_divergence(z_mu, z_logvar)


def _rounding(float32, exact, name):
    """`float32`'s distance from `exact` (its value in float64), in norm, checked
    to be float32 rounding: ~1e-7 relative (measured: 8e-8 for the losses, 2e-7
    for the gradients; those of another noise or batch are ~1e-1 away)."""
    error, scale = np.linalg.norm(float32 - exact), np.linalg.norm(exact)
    assert error <= 2**-16 * scale, (name, error / scale)
    return error


def _other_order(error, exact):
    """How far from `exact` a float32 computation of the same sums in another
    order (another CPU, oneDNN's kernels or Eigen's) may be, in norm, given
    `error`, this machine's (as tests/distribute/test_distribute.py's
    `_within_rounding`): the same terms are rounded, so its error is of the
    same size (0.6x to 1.2x measured: 4x), and 16 U of the value covers an
    error of this machine small by chance."""
    return 4 * error + 16 * U * np.linalg.norm(exact)


def _float64_step(model, x, noise):
    """The step `model` is about to take, in float64 from its float32 state
    (weights, Adam's moments, the beta powers, all exact in float64): the
    per-example losses, the gradients, and what TF1's Adam makes of them, with
    its float32 hyperparameters as its kernel gets them."""
    exact = VAE(h_dim=model.h_dim, z_dim=model.z_dim, seed=0, dtype="float64")
    for name in VAE.WEIGHTS:
        getattr(exact, name).assign(getattr(model, name).numpy().astype(np.float64))
    x64, noise64 = tf.constant(x, tf.float64), tf.constant(noise, tf.float64)
    per_example = _per_example_losses(exact, x64, noise64).numpy()
    _, gradients = exact.compute_gradients(x64, noise64)
    optimizer = model.optimizer
    lr, beta_1, beta_2, epsilon = (np.float64(np.float32(value)) for value in (
        optimizer.learning_rate.numpy(), optimizer.beta_1, optimizer.beta_2, optimizer.epsilon))
    beta_1_power, beta_2_power = (np.float64(p.numpy())
                                  for p in (optimizer._beta_1_power, optimizer._beta_2_power))
    alpha = lr * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    step = {"per_example": per_example, "alpha": alpha, "beta_1": beta_1, "beta_2": beta_2,
            "epsilon": epsilon}
    for name, gradient in zip(VAE.WEIGHTS, gradients):
        index = _compat.variable_index(optimizer, getattr(model, name))
        g = gradient.numpy()
        m0, v0 = (np.float64(s[index].numpy()) for s in (optimizer._m, optimizer._v))
        m, v = beta_1 * m0 + (1 - beta_1) * g, beta_2 * v0 + (1 - beta_2) * g * g
        w0 = getattr(model, name).numpy().astype(np.float64)
        step[name] = {"gradient": g, "m0": m0, "v0": v0, "w0": w0,
                      "weight": w0 - alpha * m / (np.sqrt(v) + epsilon)}
    return step


def _weight_bound(step, name, gradient_error, weight):
    """How far `weight`, `name` after a float32 step of TF1's Adam, may be from
    the float64 step's, for a gradient within `gradient_error` (in norm, so
    of each element) of the exact one.

    The update alpha m / (sqrt(v) + eps) moves with the gradient g by at most
    alpha [(1 - beta_1) + |m| sqrt(1 - beta_2) / (sqrt(v) + eps)] / (sqrt(v) + eps)
    (as (1 - beta_2) |g| <= sqrt(1 - beta_2) sqrt(v)), taken at the largest |m|
    and smallest v over the gradients allowed: where v is small, as in Adam's
    first step, a rounding of the gradient moves the weight far, and the bound
    says so. Then the kernel's float32 roundings, 13 U of
    alpha (b1 |m0| + (1 - b1) |g|) / (sqrt(v) + eps): 3 in m, 4 in sqrt(v) + eps
    (v's 4, of terms of one sign, halved by the root; the root's; the sum's), 4
    in alpha and 2 in the update; counted twice over (for kernels of
    approximate sqrt or division). And the weight's own rounding, half an ulp,
    counted twice."""
    s = step[name]
    alpha, beta_1, beta_2, eps = (step[k] for k in ("alpha", "beta_1", "beta_2", "epsilon"))
    g, m0, v0 = s["gradient"], s["m0"], s["v0"]
    g_small = np.maximum(np.abs(g) - gradient_error, 0)
    m_large = beta_1 * np.abs(m0) + (1 - beta_1) * (np.abs(g) + gradient_error)
    denominator = np.sqrt(beta_2 * v0 + (1 - beta_2) * g_small**2) + eps
    slope = alpha / denominator * ((1 - beta_1) + m_large * np.sqrt(1 - beta_2) / denominator)
    ulp = np.spacing(np.maximum(np.abs(s["w0"]), np.abs(weight)).astype(np.float32))
    return slope * gradient_error + 26 * U * alpha * m_large / denominator + ulp


def test_training_continues_from_a_format1_file():
    """One more step from the fixture, here and when it was made (on another
    machine, whose float32 sums may have run in another order): both within
    float32 rounding of the step in float64 from the restored state. The
    step ran on the loaded moments, beta powers and sampler state: were any
    of them fresh, the loss or the weights would be far from it."""
    model = keras_vae.load_model(FORMAT1 / "vae.keras")
    assert_restored(model)  # bit for bit the state the recorded step started from
    x = images(2, BATCH_SIZE)
    state = model.seed_generator.state.numpy()
    noise = model.draw_normal((BATCH_SIZE, model.z_dim)).numpy()  # the noise the step draws
    model.seed_generator.state.assign(state)
    exact = _float64_step(model, x, noise)

    # This machine's rounding of the step's loss and gradients (traced, as in fit).
    per_example = tf.function(lambda x, eps: _per_example_losses(model, x, eps))(x, noise)
    per_example_error = _rounding(per_example.numpy(), exact["per_example"], "losses")
    _, gradients = tf.function(model.compute_gradients)(x, noise)
    gradient_errors = {
        name: _other_order(_rounding(g.numpy(), exact[name]["gradient"], name),
                           exact[name]["gradient"])
        for name, g in zip(VAE.WEIGHTS, gradients)}

    loss = one_more_step(model)
    after = EXPECTED["after_one_more_step"]
    # A batch mean is within the RMS of its examples' errors of the exact one,
    # and its own sum and division add B roundings (B = BATCH_SIZE).
    exact_loss = exact["per_example"].mean()
    allowed = (_other_order(per_example_error, exact["per_example"]) / np.sqrt(BATCH_SIZE)
               + BATCH_SIZE * U * exact_loss)
    for name, value in (("this loss", loss), ("recorded loss", after["loss"])):
        assert abs(value - exact_loss) <= allowed, (name, value, exact_loss, allowed)
    # Each weight here, and the biases recorded then, within the bound of their update.
    weights = [("this", name, getattr(model, name).numpy()) for name in VAE.WEIGHTS]
    weights += [("recorded", name, np.array(after[name], np.float32)) for name in BIASES]
    for run, name, weight in weights:
        apart = np.abs(weight - exact[name]["weight"])
        excess = apart - _weight_bound(exact, name, gradient_errors[name], weight)
        assert excess.max() <= 0, (run, name, apart.max(), excess.max())
    assert int(model.optimizer.iterations.numpy()) == EXPECTED["iterations"] + 1
    # One float32 multiplication, correctly rounded: the same bits on every CPU.
    assert model.optimizer._beta_1_power.numpy() == (
        np.float32(EXPECTED["beta_1_power"]) * np.float32(0.9)
    )


def newer_format(monkeypatch):
    """Makes the `.keras` files and checkpoint records written until
    `monkeypatch.undo()` claim the next format version."""
    monkeypatch.setattr(formats, "FORMAT_VERSION", FORMAT_VERSION + 1)


@pytest.mark.parametrize("load", [keras_vae.load_model, keras.models.load_model])
def test_a_keras_file_of_a_newer_format_is_refused_with_both_versions(load, tmp_path,
                                                                      monkeypatch):
    model = keras_vae.load_model(FORMAT1 / "vae.keras")
    newer_format(monkeypatch)
    keras_vae.save_model(model, tmp_path / "newer.keras")
    monkeypatch.undo()
    with pytest.raises(ValueError) as error:
        load(tmp_path / "newer.keras")
    assert f"format_version={FORMAT_VERSION + 1}" in str(error.value)
    assert f"reads format version {FORMAT_VERSION} and older" in str(error.value)


def test_a_checkpoint_of_a_newer_format_is_refused_not_skipped(tmp_path, monkeypatch):
    directory = tmp_path / "checkpoints"
    shutil.copytree(FORMAT1 / "checkpoints", directory)
    model = keras_vae.load_model(FORMAT1 / "vae.keras")
    model.optimizer.iterations.assign_add(1)
    newer_format(monkeypatch)
    save_checkpoint(model, str(directory), EXPECTED["config"])
    monkeypatch.undo()
    warnings = []
    with pytest.raises(FormatVersionError,
                       match=rf"ckpt-000000004\.json .*format_version={FORMAT_VERSION + 1}"):
        load_latest(str(directory), warn=warnings.append)
    assert warnings == []  # not taken for a damaged one, with step 3's resumed instead


def test_files_written_now_carry_the_format_version(tmp_path):
    model = keras_vae.load_model(FORMAT1 / "vae.keras")
    keras_vae.save_model(model, tmp_path / "vae.keras")
    assert stored_variables(tmp_path / "vae.keras")["format_version"] == FORMAT_VERSION

    save_checkpoint(model, str(tmp_path / "checkpoints"), EXPECTED["config"])
    record = json.loads((tmp_path / "checkpoints" / "ckpt-000000003.json").read_text())
    assert record["format_version"] == FORMAT_VERSION

    export(model, tmp_path / "saved")
    metadata = json.loads((tmp_path / "saved" / "assets.extra" / "keras_vae.json").read_text())
    assert metadata["format_version"] == FORMAT_VERSION
