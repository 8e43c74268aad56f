"""SampleGrid: the original's grids and Iter:/Loss: lines, at the original's steps."""

import io
import signal

import keras
import matplotlib.image
import numpy as np
import pytest

from keras_vae.evaluation.grid import GridPainter, plot, save_grid
from keras_vae.model import VAE
from keras_vae.training.callbacks import SampleGrid, StopOnSignal


def _fit(out_dir, steps, every, seed=3):
    keras.utils.set_random_seed(0)
    model = VAE()
    model.compile()
    x = np.random.default_rng(0).random((steps * 8, 784)).astype(np.float32)
    model.fit(
        x, batch_size=8, epochs=1, shuffle=False, verbose=0,
        callbacks=[SampleGrid(out_dir, every=every, seed=seed)],
    )
    return model


def test_grids_every_n_steps_from_step_zero(tmp_path, capsys):
    _fit(tmp_path / "out", steps=12, every=5)
    # Steps 0, 5 and 10 of 12.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "000.png", "001.png", "002.png"
    ]
    printed = capsys.readouterr().out
    assert [line for line in printed.splitlines() if line.startswith("Iter:")] == [
        "Iter: 0", "Iter: 5", "Iter: 10"
    ]
    losses = [line for line in printed.splitlines() if line.startswith("Loss:")]
    assert len(losses) == 3 and all(float(line.split()[1]) > 0 for line in losses)


def test_grid_is_the_originals_layout(tmp_path):
    _fit(tmp_path, steps=1, every=1000)
    image = matplotlib.image.imread(tmp_path / "000.png")
    # figsize 4x4 inches at 100 dpi, cropped by bbox_inches='tight': a square
    # a little under 400 px, gray (Greys_r gives equal channels).
    height, width = image.shape[:2]
    assert abs(height - width) <= 2 and 280 <= height <= 400
    np.testing.assert_array_equal(image[..., 0], image[..., 1])


def test_same_seed_same_grid_other_seed_other_grid(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        _fit(tmp_path / name, steps=1, every=1, seed=seed)
    read = lambda name: matplotlib.image.imread(tmp_path / name / "000.png")  # noqa: E731
    # The same computations, kernels and noise in one process: the same picture.
    np.testing.assert_array_equal(read("a"), read("b"))
    assert not np.array_equal(read("a"), read("c"))


def test_grid_noise_depends_on_seed_and_index_only():
    grid = SampleGrid(every=10, seed=5)
    assert grid.noise(3, 100).shape == (16, 100)
    np.testing.assert_array_equal(grid.noise(3, 100), SampleGrid(seed=5).noise(3, 100))
    assert not np.array_equal(grid.noise(3, 100), grid.noise(4, 100))


def test_resume_leaves_grids_on_disk_alone_and_default_overwrites(tmp_path):
    (tmp_path / "000.png").write_bytes(b"earlier")
    model = VAE()
    for resume, expected_same in ((True, True), (False, False)):
        grid = SampleGrid(tmp_path, every=10, seed=1, verbose=False, resume=resume)
        grid.set_model(model)
        grid._report(0, {})
        assert ((tmp_path / "000.png").read_bytes() == b"earlier") is expected_same


def test_a_kept_figure_saves_the_picture_the_original_would(tmp_path):
    rng = np.random.default_rng(0)
    painter = GridPainter()
    painter.prepare(16, 784)  # as a run does before its first grid
    for count, pixels, scale in ((16, 784, 1.0), (16, 784, 0.3), (9, 784, 1.0), (16, 784, 0.0)):
        samples = (rng.random((count, pixels)) * scale).astype(np.float32)
        original = io.BytesIO()  # the original's call
        plot(samples).savefig(original, bbox_inches="tight", format="png")
        original.seek(0)
        painter.save(samples, tmp_path / "g.png")
        np.testing.assert_array_equal(matplotlib.image.imread(tmp_path / "g.png"),
                                      matplotlib.image.imread(original))


def test_save_grid_leaves_no_temporary(tmp_path):
    save_grid(np.zeros((16, 784), np.float32), tmp_path / "g.png")
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]


@pytest.mark.parametrize("every", [0, -1, 1.5])
def test_every_must_be_a_positive_integer(every):
    with pytest.raises(ValueError, match="every"):
        SampleGrid(every=every)


def test_a_signal_caught_while_the_workers_agree_stops_at_the_next_agreement():
    # The handler runs while `agree` waits for the peers, after this worker
    # has sent 0: that agreement goes on, the next one carries the signal.
    sent = []

    def agree(signum):
        sent.append(signum)
        if len(sent) == 1:
            stopper._handle(signal.SIGINT, None)
        return signum

    stopper = StopOnSignal(agree=agree, every=1)
    stopper.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    stopper.model.stop_training = False
    stopper.on_train_batch_end(0)
    assert not stopper.model.stop_training and stopper.received is None
    stopper.on_train_batch_end(1)
    assert sent == [0, signal.SIGINT]
    assert stopper.model.stop_training and stopper.received == signal.SIGINT
