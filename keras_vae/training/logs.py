"""A training run's logs: TensorBoard event files and `metrics.csv` in one
directory, keyed by optimizer step, that a resumed run continues (see
`prepare_log_dir`)."""

import os
import socket
import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae import _compat
from keras_vae.checks import check_count
from keras_vae.evaluation.estimates import per_image
from keras_vae.evaluation.grid import image_shape
from keras_vae.evaluation.plots import METRICS_COLUMNS, METRICS_CSV
from keras_vae.evaluation.tiles import tile
from keras_vae.saving.atomic import atomic_path

# The name of the file `prepare_log_dir` writes before renaming it: without
# "tfevents", so TensorBoard (and the next `prepare_log_dir`) skip it.
_CONSOLIDATING = ".consolidating-events"


class TrainingLog(keras.callbacks.Callback):
    """Logs the losses, test negative ELBO and sample grids at `SampleGrid`'s steps.

    A point is after step `s` (counted from 0, the `Iter:` number) with
    `s % every == 0`, plus the last step of a `fit` if it was not one. A
    point holds `loss`, `recon_loss` and `kl_loss`, each the mean over the
    steps since the previous point of this `fit` (the first point: since
    `fit` began); `test_neg_elbo`, the mean negative ELBO per test image
    (`keras_vae.evaluation.estimates.per_image`, noise keyed by `eval_seed`), at the
    steps `s % eval_every == 0`; and the image `samples`, `grid`'s 16 samples
    tiled 4x4, at `grid`'s steps. Each goes to TensorBoard event files (the
    step `s`) and a row of `log_dir/metrics.csv` (floats as `repr`), flushed.

    Keras' `TensorBoard` callback counts calls into TensorFlow (100 steps
    each here), restarting at 0 when training resumes, and `CSVLogger` writes
    once per epoch (a run is one epoch): hence this callback. Nothing here
    draws from the model's seed generator or changes its state, and the points
    fall at `SampleGrid`'s call boundaries, so training is the same bits with
    or without it. Call `prepare_log_dir` before training.

    Args:
        log_dir: str or `os.PathLike`, the directory of the logs.
        every: int, steps between points. Defaults to `1000`.
        grid: a `keras_vae.SampleGrid` or None, whose samples to log at the
            points that are its steps. Defaults to `None`.
        eval_every: int or None, steps between test evaluations, a multiple
            of `every` (so evaluating adds no call boundary). Defaults to
            `None`: none.
        test_data: an iterable of float image batches, one pass (e.g.
            `load_mnist("test", shuffle=False, repeat=False)`); needed with
            `eval_every`.
        eval_seed: int, seeds the evaluation's noise. Defaults to `0`.
    """

    def __init__(self, log_dir, every=1000, grid=None, eval_every=None, test_data=None,
                 eval_seed=0):
        super().__init__()
        check_count("every", every)
        if eval_every is not None:
            check_count("eval_every", eval_every)
            if eval_every % every:
                raise ValueError(
                    f"Expected eval_every to be a multiple of every ({every}), so that "
                    "evaluations fall on logged steps. Received: "
                    f"eval_every={eval_every!r}")
            if test_data is None:
                raise ValueError("eval_every needs test_data, the images to evaluate on.")
        self.log_dir = os.fspath(log_dir)
        self.every, self.grid = every, grid
        self.eval_every, self.test_data, self.eval_seed = eval_every, test_data, eval_seed

    @property
    def execution_boundaries(self):
        """`SampleGrid`'s: after step `i * every` (see `keras_vae.execution`)."""
        return [(self.every, 1 % self.every)]

    def on_train_begin(self, logs=None):
        os.makedirs(self.log_dir, exist_ok=True)
        self._writer = tf.summary.create_file_writer(self.log_dir)
        self._csv = open(os.path.join(self.log_dir, METRICS_CSV), "a", newline="")
        if self._csv.tell() == 0:
            self._csv.write(",".join(METRICS_COLUMNS) + "\n")
        self._start = self._done = self._iterations()
        self._last_point = None
        self._window = np.zeros((3, 2))  # (total, count) of each loss since the last point

    def on_epoch_begin(self, epoch, logs=None):
        self._seen = self._tracker_state()  # Keras has just reset the trackers

    def on_train_batch_end(self, batch, logs=None):
        # Only here: an evaluation at the epoch's end would reuse the trackers.
        state = self._tracker_state()
        self._window += state - self._seen
        self._seen = state
        first, self._done = self._done, self._iterations()
        # A point among the steps of this call: its last, on load_mnist's data.
        if (-first) % self.every < self._done - first:
            self._point(self._done - 1)

    def on_train_end(self, logs=None):
        if self._done > self._start and self._last_point != self._done - 1:
            self._point(self._done - 1)
        self._writer.close()
        self._csv.close()

    def _iterations(self):
        return int(self.model.optimizer.iterations.numpy())

    def _tracker_state(self):
        model = self.model
        trackers = (model.loss_tracker, model.recon_loss_tracker, model.kl_loss_tracker)
        return np.array([[float(v.numpy()) for v in _compat.mean_state(t)] for t in trackers])

    def _point(self, step):
        """Writes the point of step `step` and starts the next window."""
        total, count = self._window.T
        values = dict(zip(METRICS_COLUMNS[1:4], (total / count).tolist()))
        self._window[:] = 0
        self._last_point = step
        if self.eval_every and step % self.eval_every == 0:
            neg_elbo = per_image(self.model, self.test_data, [], seed=self.eval_seed)["neg_elbo"]
            values["test_neg_elbo"] = float(neg_elbo.mean())
        with self._writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
            if self.grid is not None and step % self.grid.every == 0:
                tf.summary.image("samples", self._samples(step // self.grid.every))
        self._writer.flush()
        row = [str(step), *(repr(values[name]) if name in values else ""
                            for name in METRICS_COLUMNS[1:])]
        self._csv.write(",".join(row) + "\n")
        self._csv.flush()

    def _samples(self, index):
        """Grid `index`'s 16 samples tiled 4x4 as the PNG shows them: `(1, 4*28, 4*28, 1)`."""
        prob, _ = self.model.decode(self.grid.noise(index, self.model.z_dim))
        picture = tile(prob, 4, 4, image_shape(self.model.x_dim))
        return picture.reshape(1, *picture.shape, 1)


def prepare_log_dir(log_dir, start_step, overwrite=False):
    """Readies `log_dir` (created if missing) for a run whose first step is `start_step`.

    A fresh run (`start_step == 0`) refuses a directory holding logs, or
    clears them with `overwrite=True`. A resumed run drops every point of
    step `start_step` or later, which it will log again: `metrics.csv` keeps
    its earlier rows, and the event files become one holding the earlier
    points once each.
    """
    check_count("start_step", start_step, minimum=0)
    log_dir = os.fspath(log_dir)
    os.makedirs(log_dir, exist_ok=True)
    csv_path = os.path.join(log_dir, METRICS_CSV)
    events = _event_files(log_dir)
    has_csv = os.path.exists(csv_path)
    if start_step == 0:
        if (events or has_csv) and not overwrite:
            raise ValueError(
                f"The log dir {log_dir} already holds a run's logs ({METRICS_CSV} or "
                "TensorBoard event files). Pass overwrite=True (--overwrite) to clear "
                "them, or choose another --log-dir.")
        for path in events + [csv_path] * has_csv:
            os.remove(path)
        return
    if has_csv:
        _truncate_csv(csv_path, start_step)
    if events:
        _consolidate_events(log_dir, events, start_step)


def _event_files(log_dir):
    """The event files in `log_dir`, by name, as TensorBoard finds them."""
    return sorted(os.path.join(log_dir, name) for name in os.listdir(log_dir)
                  if "tfevents" in name)


def _truncate_csv(path, start_step):
    """Rewrites `metrics.csv` with its rows of steps before `start_step`, atomically."""
    with open(path, newline="") as f:
        rows = f.readlines()[1:]
    # A row a crash cut short has no line end: dropped.
    kept = [row for row in rows
            if row.endswith("\n") and int(row.split(",", 1)[0]) < start_step]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        f.writelines([",".join(METRICS_COLUMNS) + "\n", *kept])


def _consolidate_events(log_dir, paths, start_step):
    """Replaces the event files `paths` by one: a `file_version` event and
    the summaries of steps before `start_step`, once per (tags, step)."""
    version, kept, seen = None, [], set()
    for path in paths:
        for record in _records(path):
            event = tf.compat.v1.Event.FromString(record)
            key = (tuple(value.tag for value in event.summary.value), event.step)
            if event.HasField("file_version"):
                version = version or (record, event.wall_time)
            elif event.HasField("summary") and event.step < start_step and key not in seen:
                seen.add(key)
                kept.append((record, event.wall_time))
    if version:
        kept.insert(0, version)
    # Named as a writer's file, dated a second before any writer this process
    # opens from now on: TensorBoard reads it before theirs, and none of them
    # can take its name.
    stamp = min([int(time.time()) - 1, *(int(wall_time) for _, wall_time in kept)])
    name = f"events.out.tfevents.{stamp:010d}.{socket.gethostname()}.{os.getpid()}.0.v2"
    final, tmp = os.path.join(log_dir, name), os.path.join(log_dir, _CONSOLIDATING)
    # Safe against a crash at any point: until the rename, the old files are
    # untouched and the temporary is ignored; after it, they only repeat
    # events the new file holds (or were replaced by it), and the next call
    # keeps each (tags, step) once.
    with tf.io.TFRecordWriter(tmp) as writer:
        for record, _ in kept:
            writer.write(record)
    os.replace(tmp, final)
    for path in paths:
        if path != final:
            os.remove(path)


def _records(path):
    """The records of an event file, up to one a crash left cut short."""
    try:
        for record in tf.data.TFRecordDataset(path):
            yield record.numpy()
    except tf.errors.DataLossError:
        return
