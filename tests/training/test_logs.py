"""TrainingLog and prepare_log_dir: the points at the right steps in the event
files and the CSV, training unchanged, and a resumed run's logs holding each
point once."""

import csv
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import SampleGrid, VAE, load_mnist
from keras_vae.evaluation.estimates import evaluate
from keras_vae.saving.keras_file import load_model, save_model
from keras_vae.training.logs import TrainingLog, prepare_log_dir

EVERY, EVAL_EVERY = 50, 100
U = 2.0**-24  # float32's unit roundoff: one rounding errs by at most U times the value
SCALARS = ("loss", "recon_loss", "kl_loss")


def _model(steps_per_execution=100):
    keras.utils.set_random_seed(0)
    model = VAE(h_dim=16, z_dim=4, seed=0)
    model.compile(steps_per_execution=steps_per_execution)
    return model


def _fit(model, data_dir, steps, callbacks, initial_step=0):
    model.fit(load_mnist(data_dir=data_dir, seed=0, initial_step=initial_step),
              steps_per_epoch=steps, callbacks=callbacks, verbose=0)


def _test_data(data_dir):
    return load_mnist("test", batch_size=500, data_dir=data_dir, shuffle=False, repeat=False)


def _log(log_dir, data_dir, grid_dir):
    grid = SampleGrid(grid_dir, every=EVERY, seed=1, verbose=False)
    log = TrainingLog(log_dir, every=EVERY, grid=grid, eval_every=EVAL_EVERY,
                      test_data=_test_data(data_dir), eval_seed=2)
    return [grid, log]


def _events(log_dir):
    """`{tag: [(step, value), ...]}` in the order of the files (by name) and
    their records; images as arrays."""
    found = {}
    for name in sorted(n for n in os.listdir(log_dir) if "tfevents" in n):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
            for value in event.summary.value:
                if value.tag == "samples":  # width, height, PNG
                    data = tf.io.decode_png(value.tensor.string_val[2]).numpy()
                else:
                    data = float(tf.make_ndarray(value.tensor))
                found.setdefault(value.tag, []).append((event.step, data))
    return found


def _csv_rows(log_dir):
    with open(os.path.join(log_dir, "metrics.csv"), newline="") as f:
        lines = f.read().splitlines()
    assert lines[0] == "step,loss,recon_loss,kl_loss,test_neg_elbo"
    return list(csv.DictReader(lines))


def _check_csv_matches_events(log_dir):
    """The CSV's rows are the events' scalars, row for event, in order."""
    rows, events = _csv_rows(log_dir), _events(log_dir)
    for tag in (*SCALARS, "test_neg_elbo"):
        from_csv = [(int(r["step"]), np.float32(float(r[tag]))) for r in rows if r[tag]]
        assert from_csv == [(step, np.float32(value)) for step, value in events[tag]], tag
    return rows, events


class _StepLosses(keras.callbacks.Callback):
    """Each step's loss (with steps_per_execution=1), and the test negative
    ELBO measured here at the evaluation steps."""

    def __init__(self, test_data):
        super().__init__()
        self.losses, self.neg_elbo, self.test_data = [], {}, test_data

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy()) - 1
        assert step == len(self.losses)
        self.losses.append(float(logs["step_loss"]))
        if step % EVAL_EVERY == 0:
            self.neg_elbo[step] = evaluate(self.model, self.test_data, k=[1], seed=2)["neg_elbo"]


def test_points_in_events_and_csv(tmp_path, synthetic_mnist_dir):
    log_dir = tmp_path / "logs"
    prepare_log_dir(log_dir, 0)
    recorder = _StepLosses(_test_data(synthetic_mnist_dir))
    _fit(_model(steps_per_execution=1), synthetic_mnist_dir, 260,
         [*_log(log_dir, synthetic_mnist_dir, tmp_path / "out"), recorder])

    points = [0, 50, 100, 150, 200, 250, 259]  # and the last step
    rows, events = _check_csv_matches_events(log_dir)
    assert [int(r["step"]) for r in rows] == points
    for tag in SCALARS:
        assert [step for step, _ in events[tag]] == points
    assert [step for step, _ in events["test_neg_elbo"]] == [0, 100, 200]
    assert [int(r["step"]) for r in rows if r["test_neg_elbo"]] == [0, 100, 200]
    assert [step for step, _ in events["samples"]] == [0, 50, 100, 150, 200, 250]
    for _, image in events["samples"]:
        assert image.shape == (112, 112, 1) and image.std() > 0

    # Each point's loss is the mean of its window of steps, in full precision
    # in the CSV. The trackers sum the epoch's float32 losses in float32: each
    # step's addition rounds by at most U of the running total, so a window's
    # n steps are within n U total of their sum, and their mean within U total
    # (total: of the epoch's losses up to the point; 2 U for total's own
    # rounding here).
    previous = -1
    for row in rows:
        step = int(row["step"])
        window = recorder.losses[previous + 1:step + 1]
        allowed = 2 * U * np.sum(recorder.losses[:step + 1])
        assert abs(float(row["loss"]) - np.mean(window)) <= allowed, step
        previous = step
    # One step's window: the total is its loss exactly (0 + loss rounds to loss).
    assert float(rows[0]["loss"]) == recorder.losses[0]
    for row in rows:
        if row["test_neg_elbo"]:
            # The same computation (per_image, its seed, the same weights) and
            # the same float64 mean of its values: 1e-12 is float64 slack.
            expected = recorder.neg_elbo[int(row["step"])]
            assert float(row["test_neg_elbo"]) == pytest.approx(expected, rel=1e-12)
    # The losses fall, so a window other than the point's would not match.
    assert float(rows[-1]["loss"]) < 0.9 * float(rows[1]["loss"])


def test_training_is_bit_identical_with_and_without_the_log(tmp_path, synthetic_mnist_dir):
    runs = []
    for name in ("without", "with"):
        model = _model()
        callbacks = _log(tmp_path / "logs", synthetic_mnist_dir, tmp_path / name)
        _fit(model, synthetic_mnist_dir, 260, callbacks if name == "with" else callbacks[:1])
        runs.append([v.numpy() for v in (*model.weights, *model.optimizer.variables,
                                         model.seed_generator.state)])
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    assert [int(r["step"]) for r in _csv_rows(tmp_path / "logs")] == [
        0, 50, 100, 150, 200, 250, 259]


class _SaveAt(keras.callbacks.Callback):
    """Saves the model when the optimizer has made `step` steps."""

    def __init__(self, step, path):
        super().__init__()
        self.step, self.path = step, path
        self.execution_boundaries = [(step, 0)]

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            save_model(self.model, self.path)


def test_resumed_run_logs_every_point_once(tmp_path, synthetic_mnist_dir):
    log_dir, saved = tmp_path / "logs", tmp_path / "at200.keras"
    prepare_log_dir(log_dir, 0)
    # A run saved at step 200 goes on to step 259, then stops.
    _fit(_model(), synthetic_mnist_dir, 260,
         [*_log(log_dir, synthetic_mnist_dir, tmp_path / "out"), _SaveAt(200, saved)])
    before = _events(log_dir)
    # Resumed from the file of step 200, it runs to step 299.
    prepare_log_dir(log_dir, 200)
    assert [int(r["step"]) for r in _csv_rows(log_dir)] == [0, 50, 100, 150]
    _fit(load_model(saved), synthetic_mnist_dir, 100,
         _log(log_dir, synthetic_mnist_dir, tmp_path / "out"), initial_step=200)

    rows, events = _check_csv_matches_events(log_dir)
    points = [0, 50, 100, 150, 200, 250, 299]
    assert [int(r["step"]) for r in rows] == points
    for tag in SCALARS:
        assert [step for step, _ in events[tag]] == points
        assert events[tag][:4] == before[tag][:4]  # kept as they were
    assert [step for step, _ in events["test_neg_elbo"]] == [0, 100, 200]
    assert [step for step, _ in events["samples"]] == [0, 50, 100, 150, 200, 250]
    assert len([n for n in os.listdir(log_dir) if "tfevents" in n]) == 2


def _write_events(log_dir, steps):
    with tf.summary.create_file_writer(str(log_dir)).as_default() as writer:
        for step in steps:
            tf.summary.scalar("loss", float(step), step=step)
        writer.flush()


def test_prepare_repairs_an_interrupted_consolidation_and_cut_files(tmp_path):
    _write_events(tmp_path, range(6))
    (original,) = [n for n in os.listdir(tmp_path) if "tfevents" in n]
    # A crash after the new file's rename leaves the old one beside it; a
    # crash mid-write, a record cut short.
    shutil.copy(tmp_path / original, tmp_path / "events.out.tfevents.1.host.1.0.v2")
    data = (tmp_path / original).read_bytes()
    (tmp_path / "events.out.tfevents.2.host.1.0.v2").write_bytes(data[:-5])
    (tmp_path / "metrics.csv").write_text(
        "step,loss,recon_loss,kl_loss,test_neg_elbo\n0,1.5,1.0,0.5,\n3,1.25,1.0,0.25,2.5\n4,1.")

    prepare_log_dir(tmp_path, 5)

    files = [n for n in os.listdir(tmp_path) if "tfevents" in n]
    assert len(files) == 1
    events = list(tf.compat.v1.train.summary_iterator(str(tmp_path / files[0])))
    assert [e.file_version for e in events if e.file_version] == ["brain.Event:2"]
    assert _events(tmp_path) == {"loss": [(s, float(s)) for s in range(5)]}
    assert (tmp_path / "metrics.csv").read_text() == (
        "step,loss,recon_loss,kl_loss,test_neg_elbo\n0,1.5,1.0,0.5,\n3,1.25,1.0,0.25,2.5\n")
    assert sorted(os.listdir(tmp_path)) == sorted(["metrics.csv", files[0]])  # no temporary


def test_fresh_run_refuses_logs_unless_overwrite(tmp_path):
    prepare_log_dir(tmp_path / "new", 0)  # created
    assert os.listdir(tmp_path / "new") == []
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text("step\n")
    _write_events(tmp_path / "events", [0])
    for log_dir in (tmp_path / "csv", tmp_path / "events"):
        with pytest.raises(ValueError, match=r"already holds.*--overwrite.*--log-dir"):
            prepare_log_dir(log_dir, 0)
        (log_dir / "other.txt").write_text("kept")
        prepare_log_dir(log_dir, 0, overwrite=True)
        assert os.listdir(log_dir) == ["other.txt"]


def test_eval_every_must_be_a_multiple_of_every(tmp_path):
    with pytest.raises(ValueError, match="eval_every to be a multiple of every"):
        TrainingLog(tmp_path, every=50, eval_every=75, test_data=[])
    with pytest.raises(ValueError, match="eval_every needs test_data"):
        TrainingLog(tmp_path, every=50, eval_every=100)
    log = TrainingLog(tmp_path, every=50, eval_every=100, test_data=[])
    assert log.execution_boundaries == SampleGrid(every=50).execution_boundaries
