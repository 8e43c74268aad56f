"""A `.keras` file that cannot be read is named as such: damaged, cut short,
or not a Keras zip archive at all; never "File not found" for a file that is
there."""

import zipfile
from pathlib import Path

import numpy as np
import pytest

from keras_vae.saving.keras_file import load_model

MODEL = Path(__file__).parents[1] / "fixtures" / "format1" / "vae.keras"


def truncated(path):
    path.write_bytes(MODEL.read_bytes()[:5000])


def random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(5000))


def empty(path):
    path.write_bytes(b"")


def flipped_bytes(path):
    # The zip's directory intact, a stored member's bytes changed: its CRC fails.
    data = bytearray(MODEL.read_bytes())
    data[300:400] = bytes(100)
    path.write_bytes(bytes(data))


def another_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "a zip, but not a Keras model")


@pytest.mark.parametrize("damage, why", [
    (truncated, "not a zip archive"),
    (random_bytes, "not a zip archive"),
    (empty, "not a zip archive"),
    (flipped_bytes, "its member config.json fails its CRC check"),
    (another_zip, "a zip archive without config.json"),
])
def test_a_damaged_keras_file_is_named_not_missing(tmp_path, damage, why):
    path = tmp_path / "damaged.keras"
    damage(path)
    with pytest.raises(ValueError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"Cannot load {path}: it is not a readable .keras file "
                              f"({why}). It may be damaged or cut short, or not a Keras "
                              "zip archive at all. "), message
    assert "File not found" not in message
    assert "keras-vae train --save PATH" in message


def test_the_intact_file_still_loads():
    assert type(load_model(MODEL)).__name__ == "VAE"
