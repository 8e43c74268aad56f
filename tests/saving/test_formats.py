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

import keras_vae
import keras_vae.model  # registers the VAE with Keras
from keras_vae.saving import formats
from keras_vae.training.checkpoints import load_latest, save_checkpoint
from keras_vae.saving.saved_model import export_saved_model
from keras_vae.saving.formats import FORMAT_VERSION, FormatVersionError
from tests.fixtures.make_fixtures import BIASES, one_more_step, state

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


def test_training_continues_from_a_format1_file():
    model = keras_vae.load_model(FORMAT1 / "vae.keras")
    loss = one_more_step(model)
    after = EXPECTED["after_one_more_step"]
    # The step ran on the loaded moments, beta powers and sampler state: were
    # any of them fresh, the biases would move by other amounts.
    np.testing.assert_allclose(loss, after["loss"], rtol=1e-5)
    for name in BIASES:
        np.testing.assert_allclose(getattr(model, name).numpy(), after[name],
                                   rtol=1e-4, atol=1e-7, err_msg=name)
    assert int(model.optimizer.iterations.numpy()) == EXPECTED["iterations"] + 1
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

    export_saved_model(model, tmp_path / "saved")
    metadata = json.loads((tmp_path / "saved" / "assets.extra" / "keras_vae.json").read_text())
    assert metadata["format_version"] == FORMAT_VERSION
