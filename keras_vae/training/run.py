"""A training run as `keras-vae train` makes it: fresh or resumed from its
checkpoints, stopped cleanly by a signal or a diverged loss."""

import concurrent.futures
import contextlib
import dataclasses
import functools
import os
import re

import keras
import numpy as np
import tensorflow as tf

from keras_vae.data.batches import load_mnist
from keras_vae.data.sources import default_split, image_pixels, is_npz
from keras_vae.distribute.strategies import gatherer, is_chief, is_multi_worker, lost_workers
from keras_vae.execution import warm_up
from keras_vae.model import VAE
from keras_vae.optimizers import TF1Adam
from keras_vae.saving.atomic import sha256
from keras_vae.saving.keras_file import save_model
from keras_vae.training.callbacks import (CallBoundaries, Checkpointer, SampleGrid,
                                          StopOnDivergence, StopOnSignal)
from keras_vae.training.checkpoints import list_checkpoints, load_latest, tidy
from keras_vae.training.config import RunConfig
from keras_vae.training.logs import TrainingLog, prepare_log_dir

STEPS_PER_EXECUTION = 100
_GRID = re.compile(r"\d{3,}\.png$")
# Run settings kept out of the model's `trained_with` record: its own config holds them.
_NOT_TRAINED_WITH = ("h_dim", "z_dim", "sample_every")

__all__ = ["Outcome", "RunConfig", "UsageError", "train"]


class UsageError(ValueError):
    """The run cannot start as asked: a flag, a directory or a checkpoint is wrong."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a run ended: `status` is "completed", "interrupted" or "diverged"."""

    status: str
    step: int  # steps done
    model: object = None
    checkpoint: str | None = None  # the checkpoint to resume from
    signal: int | None = None  # for "interrupted"
    diverged_at: int | None = None  # for "diverged": the step whose loss was not finite


@dataclasses.dataclass(frozen=True)
class _Place:
    """Where this process stands: its strategy (None: one device), whether it
    writes the run's files, and the workers' one all-gather."""

    strategy: object = None
    chief: bool = True
    gather: object = None

    @classmethod
    def of(cls, strategy):
        if strategy is None:
            return cls()
        return cls(strategy, is_chief(strategy), gatherer(strategy))

    @property
    def multi_worker(self):
        return self.strategy is not None and is_multi_worker(self.strategy)

    @property
    def replicas(self):
        """The replicas the model's steps run on."""
        return 1 if self.strategy is None else self.strategy.num_replicas_in_sync

    def scope(self):
        """Where the model is made: the strategy's scope, but for a strategy
        of one replica, which would only add the cost of its distributed
        variables to each step (benchmarks/RESULTS.md): the model is then
        one device's, and trains with its bits."""
        if self.replicas == 1:
            return contextlib.nullcontext()
        return self.strategy.scope()


def train(config=None, *, callbacks=(), strategy=None, **settings):
    """Trains to `config.iters` steps, resuming from `config.checkpoint_dir`
    when it holds a run; saves (`save`) and exports (`export`) at the end.

    Turns on TensorFlow's op determinism for the process, so that the same
    seed gives the same run.

    Args:
        config: a `RunConfig`. Defaults to `RunConfig()`.
        callbacks: Keras callbacks to run beside the run's own (grids,
            checkpoints, clean stops), e.g. to record it.
        strategy: a `tf.distribute.Strategy` or None (one device), e.g. from
            `keras_vae.distribute.strategies.make_strategy`. Only its chief
            writes grids, logs, checkpoints and the model; every worker reads
            the same `checkpoint_dir`, which must be shared.
        **settings: fields of `RunConfig`, replacing `config`'s.

    Returns:
        An `Outcome`.

    Raises:
        UsageError: a directory is unusable, `out` holds another run's grids,
            or the checkpoints belong to a different run.
    """
    config = dataclasses.replace(config or RunConfig(), **settings)
    place = _Place.of(strategy)
    _check_invocation(config, place)
    resumed = _load_checkpoint(config, place)
    config, start = _run_settings(config, resumed, place)
    if resumed is None and place.chief:
        _clear_or_refuse_grids(config.out, config.overwrite)
    if config.log_dir is not None and place.chief:
        try:
            prepare_log_dir(config.log_dir, start, config.overwrite)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if resumed is None:
        keras.utils.set_random_seed(config.seed)
    else:
        print(f"Resuming from {resumed[0].model_path} at step {start}.", flush=True)
    if start >= config.iters:
        print(f"The run is at step {start} already (--iters {config.iters}): nothing to train.")
        outcome = Outcome("completed", start, None if resumed is None else resumed[1])
    else:
        model, data, grid = _model_data_and_grid(config, resumed, start, place)
        tf.config.experimental.enable_op_determinism()
        outcome = _fit(model, data, config, start, grid, place, callbacks)
    if outcome.status == "completed" and outcome.model is not None and place.chief:
        _save_and_export(outcome.model, config)
    return outcome


def _check_invocation(config, place):
    """Refuses settings that cannot go together, and directories this process
    cannot write to, before anything is read or trained."""
    if not place.chief:
        return
    for path, flag in ((config.out, "--out"), (config.log_dir, "--log-dir"),
                       (config.checkpoint_dir, "--checkpoint-dir")):
        if path is not None:
            _writable_dir(path, flag)
    if config.export and os.path.exists(config.export) and not config.overwrite:
        raise UsageError(f"{config.export} already exists. Choose another directory, or "
                         "pass --overwrite to replace it.")


def _load_checkpoint(config, place):
    """`(Checkpoint, model)` of the newest usable checkpoint, or None."""
    if config.checkpoint_dir is None:
        return None
    if place.strategy is not None:  # before loading, which runs collectives
        newest = _newest_checkpoint(config.checkpoint_dir)
        _check_same_start(place.gather, newest[0] if newest else 0, config.checkpoint_dir)
    if place.chief:  # the one writer: what a killed run half-wrote goes now
        tidy(config.checkpoint_dir)
    with place.scope():
        try:
            return load_latest(config.checkpoint_dir)
        except tf.errors.UnavailableError as error:  # loading runs collectives too
            raise _lost(place, error) from None


def _run_settings(config, resumed, place):
    """The config with every run setting resolved, and the first step: a
    fresh run's defaults, or the checkpointed run's own, checked against
    the settings given."""
    if config.dataset is not None:
        config = dataclasses.replace(config, dataset=os.fspath(config.dataset))
    if resumed is None:
        config, start = _fresh_settings(config, place), 0
    else:
        checkpoint, _ = resumed
        conflict = config.conflict(checkpoint.config)
        if conflict is not None:
            raise UsageError(_refusal(*conflict, config.checkpoint_dir))
        config, start = config.resumed(checkpoint.config), checkpoint.step
        if _data_sha256(config.dataset) != config.data_sha256:
            raise UsageError(_refusal("data_sha256", None, None, config.checkpoint_dir))
    if config.eval_every is not None and (config.log_dir is None
                                          or config.eval_every % config.sample_every):
        raise UsageError(
            f"--eval-every {config.eval_every} needs --log-dir and a multiple of "
            f"--sample-every ({config.sample_every}): the test negative ELBO goes into the "
            "logs, at their steps.")
    return config, start


def _fresh_settings(config, place):
    """A fresh run's settings: those given, else the defaults (a seed drawn)."""
    if config.seed is None and place.multi_worker:
        raise UsageError("--strategy multi-worker needs --seed on a fresh run: every "
                         "worker must draw the same batches and noise.")
    config = config.fresh()
    return dataclasses.replace(
        config, data_sha256=_data_sha256(config.dataset),
        seed=int(np.random.SeedSequence().entropy % 2**31) if config.seed is None else config.seed,
        split=default_split(config.dataset) if config.split is None else config.split)


def _refusal(name, stored, value, checkpoint_dir):
    """Why a setting given contradicts the checkpointed run's, and the fix."""
    if name == "data_sha256":
        return (f"The data is not the file the checkpoints in {checkpoint_dir} were trained "
                "on: its SHA-256 differs. Resume with that file, or start a new run with "
                "another --checkpoint-dir.")
    flag = "--" + name.replace("_", "-")
    if isinstance(stored, bool):  # a switch: the run had it or not
        ran = flag if stored else f"no {flag}"
        fix = f"Resume {'with' if stored else 'without'} {flag}"
    else:
        ran, fix = f"{flag} {stored}, not {value}", f"Resume with {flag} {stored}"
    return (f"The checkpoints in {checkpoint_dir} are of a run with {ran}. {fix}, "
            "or start a new run with another --checkpoint-dir.")


def _model_data_and_grid(config, resumed, start, place):
    """The run's model (compiled), its training batches and its `SampleGrid`.

    Reading the data is mostly I/O and zlib, which release the GIL, and so
    does XLA's compile: the model is built (in fast mode, compiled) and the
    grids' figure drawn while a thread reads. The figure is drawn by
    whichever thread would otherwise wait: the reader once it has read while
    XLA compiles, else the main thread while the data is read.
    """
    read_data = functools.partial(
        load_mnist, config.split, batch_size=config.batch_size, data_dir=config.data_dir,
        seed=config.seed, initial_step=start, dataset=config.dataset, binarize=config.binarize)
    grid = SampleGrid(config.out, every=config.sample_every, seed=config.seed, resume=True)
    x_dim = resumed[1].x_dim if resumed is not None else image_pixels(config.dataset)
    if x_dim is None:  # known only from the data
        data = read_data()
        return _compiled_model(config, resumed, data.element_spec.shape[-1], place), data, grid

    def read_and_draw(draw):
        data = read_data()
        if draw:
            grid.prepare(x_dim)
        return data

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read_and_draw, place.chief and config.fast)
        model = _compiled_model(config, resumed, x_dim, place)
        if config.fast:
            warm_up(model, config.batch_size)
        elif place.chief:
            grid.prepare(x_dim)
        return model, reading.result(), grid


def _compiled_model(config, resumed, x_dim, place):
    """The run's model (built unless resumed), compiled for the run."""
    with place.scope():
        if resumed is None:
            model = VAE(x_dim=x_dim, h_dim=config.h_dim, z_dim=config.z_dim, seed=config.seed,
                        beta=config.beta)
        else:
            model = resumed[1]
        model.trained_with = {name: value for name, value in config.record().items()
                              if name not in _NOT_TRAINED_WITH and value is not None}
        # Several steps per call into TensorFlow, under a strategy too; the
        # callbacks' steps still end calls (keras_vae.execution), so the bits
        # are those of one step per call.
        optimizer = (getattr(model, "optimizer", None)
                     or TF1Adam(learning_rate=config.learning_rate))
        model.compile(optimizer=optimizer, fast=config.fast,
                      steps_per_execution=STEPS_PER_EXECUTION)
    return model


def _fit(model, data, config, start, grid, place, callbacks):
    """Trains `model` from step `start` to `config.iters`; the run's `Outcome`."""
    divergence = StopOnDivergence()
    agree = (lambda signum: max(place.gather(signum))) if place.multi_worker else None
    signals = StopOnSignal(agree=agree)
    checkpointer = None
    if config.checkpoint_dir is not None:
        checkpointer = Checkpointer(config.checkpoint_dir, every=config.checkpoint_every,
                                    config=config.record())
    if place.chief:
        own = [divergence, grid, *_training_log(config, grid), checkpointer]
    else:  # the chief's grids and checkpoints end its calls: they end this worker's too
        ends = [*grid.execution_boundaries, *(checkpointer.execution_boundaries
                                              if checkpointer else [])]
        own, checkpointer = [divergence, CallBoundaries(ends)], None
    try:
        model.fit(data, epochs=1, steps_per_epoch=config.iters - start,
                  callbacks=[*filter(None, own), signals, *callbacks], shuffle=False,
                  verbose=config.verbose if place.chief else 0)
    except tf.errors.UnavailableError as error:  # a collective lost a peer
        raise _lost(place, error) from None
    step = int(model.optimizer.iterations.numpy())
    if divergence.diverged_at is not None:
        newest = _newest_checkpoint(config.checkpoint_dir)
        return Outcome("diverged", step, model, newest[2] if newest else None,
                       diverged_at=divergence.diverged_at)
    saved = checkpointer.save() if checkpointer else None
    if signals.received is not None:
        return Outcome("interrupted", step, model, saved, signal=signals.received)
    return Outcome("completed", step, model, saved)


def _training_log(config, grid):
    """The run's `TrainingLog`, as a list of none or one."""
    if config.log_dir is None:
        return []
    test_data = None
    if config.eval_every is not None:
        test_data = load_mnist("test", batch_size=1000, data_dir=config.data_dir,
                               shuffle=False, dataset=config.dataset,
                               binarize=config.binarize, seed=config.seed)
    return [TrainingLog(config.log_dir, every=config.sample_every, grid=grid,
                        eval_every=config.eval_every, test_data=test_data,
                        eval_seed=config.seed)]


def _lost(place, error):
    """A collective's `error` as the `WorkerLostError` naming the lost
    workers, or `error` itself when it names none."""
    lost = lost_workers(place.strategy, error) if place.multi_worker else None
    return lost or error


def _save_and_export(model, config):
    """The trained model as `config.save` (.keras) and `config.export` (SavedModel)."""
    if config.save:
        save_model(model, config.save)
        print(f"Saved the model to {config.save}")
    if config.export:
        model.export(config.export, overwrite=config.overwrite)
        print(f"Exported a SavedModel to {config.export}")


def _writable_dir(path, flag):
    """Creates `path` if need be and proves it writable, or raises UsageError."""
    probe = os.path.join(path, f".keras-vae-probe-{os.getpid()}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise UsageError(
            f"Cannot write to {flag} {path}: {error.strerror or error}. Choose a "
            "directory you can write to."
        ) from None


def _clear_or_refuse_grids(out, overwrite):
    """A fresh run starts from an `out` without grids; `overwrite` removes them."""
    grids = sorted(name for name in os.listdir(out) if _GRID.fullmatch(name))
    if grids and not overwrite:
        raise UsageError(
            f"--out {out} already holds {len(grids)} sample grids ({grids[0]} ...) "
            "from another run. Pass --overwrite to replace them, choose another "
            "--out, or give --checkpoint-dir to resume the run that made them."
        )
    for name in grids:
        os.remove(os.path.join(out, name))


def _data_sha256(dataset):
    """A .npz file's SHA-256, which a resumed run must match; None for a named dataset."""
    if not is_npz(dataset):
        return None
    if not os.path.isfile(dataset):
        raise UsageError(f"--data {dataset}: no such file. Give the path of a .npz file of "
                         "images (x_train, x_test).")
    return sha256(dataset)


def _check_same_start(gather, start, checkpoint_dir):
    """Every worker must resume from the chief's checkpoint: refuses a
    `--checkpoint-dir` that is not the same directory on every worker.
    `gather`: `keras_vae.distribute.strategies.gatherer`'s function."""
    starts = gather(start)
    if len(set(starts)) > 1:
        raise UsageError(
            f"The workers found different checkpoints in --checkpoint-dir {checkpoint_dir}: "
            f"steps {sorted(set(starts))} (one per replica: {starts}). "
            "Every worker resumes from the chief's checkpoint, so --checkpoint-dir must be "
            "one directory all of them share (a network file system).")


def _newest_checkpoint(checkpoint_dir):
    """(step, record path, model path) of the newest checkpoint on disk, or None."""
    found = (list_checkpoints(checkpoint_dir)
             if checkpoint_dir and os.path.isdir(checkpoint_dir) else [])
    return found[-1] if found else None
