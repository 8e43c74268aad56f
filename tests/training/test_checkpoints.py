"""keras_vae.training.checkpoints: a `.keras` file swapped after its record
was written is refused by its SHA-256, not resumed from."""

import numpy as np

from keras_vae.model import VAE
from keras_vae.saving.keras_file import save_model
from keras_vae.training.checkpoints import list_checkpoints, load_latest, save_checkpoint


def _small_vae(step, bias):
    """A compiled VAE(h_dim=8, z_dim=2) at optimizer step `step`, its P_b2 all `bias`."""
    model = VAE(h_dim=8, z_dim=2, seed=5)
    model.compile()
    model.optimizer.build(model.trainable_variables)  # as after a step: its state is saved
    model.optimizer.iterations.assign(step)
    model.P_b2.assign(np.full(784, bias, np.float32))
    return model


def test_a_swapped_keras_file_is_refused_by_its_hash(tmp_path):
    """A readable `.keras` file that is not the one the record hashed must be
    skipped (with a warning naming the hash) for the older checkpoint."""
    directory = str(tmp_path / "ck")
    save_checkpoint(_small_vae(step=1, bias=1.0), directory, {"seed": 5})
    save_checkpoint(_small_vae(step=2, bias=2.0), directory, {"seed": 5})
    newest = list_checkpoints(directory)[-1][2]
    save_model(_small_vae(step=3, bias=3.0), newest)  # loads fine, but is another model

    warnings = []
    checkpoint, model = load_latest(directory, warn=warnings.append)

    assert checkpoint.step == 1
    np.testing.assert_array_equal(model.P_b2.numpy(), np.full(784, 1.0, np.float32))
    assert int(model.optimizer.iterations.numpy()) == 1
    assert len(warnings) == 1 and "step 2" in warnings[0] and "hash" in warnings[0], warnings
