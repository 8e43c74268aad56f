"""A training run as `keras-vae train` makes it: fresh or resumed from its
checkpoints, stopped cleanly by a signal or a diverged loss."""

import concurrent.futures
import contextlib
import dataclasses
import functools
import os
import re

TRAIN_SPLIT = "train[5000:]"  # read_data_sets' train split: the last 55,000
STEPS_PER_EXECUTION = 100
_GRID = re.compile(r"\d{3,}\.png$")


class UsageError(ValueError):
    """The run cannot start as asked: a flag, a directory or a checkpoint is wrong."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What defines a run; a resumed run must match it. Checkpoints from before
    a field existed take its default, which was then the only choice."""

    seed: int
    batch_size: int = 64
    h_dim: int = 128
    z_dim: int = 100
    sample_every: int = 1000
    split: str = TRAIN_SPLIT
    dataset: str = "mnist"  # or a .npz file's path
    data_sha256: str | None = None  # a .npz file's
    binarize: bool = False
    learning_rate: float = 1e-3
    beta: float = 1.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a run ended: `status` is "completed", "interrupted" or "diverged"."""

    status: str
    step: int  # steps done
    model: object = None
    checkpoint: str | None = None  # the checkpoint to resume from
    signal: int | None = None  # for "interrupted"
    diverged_at: int | None = None  # for "diverged": the step whose loss was not finite


def train(
    iters,
    out="out",
    data_dir=None,
    seed=None,
    batch_size=64,
    h_dim=128,
    z_dim=100,
    sample_every=1000,
    checkpoint_dir=None,
    checkpoint_every=1000,
    overwrite=False,
    verbose=1,
    fast=False,
    callbacks=(),
    dataset=None,
    binarize=None,
    learning_rate=None,
    beta=None,
    log_dir=None,
    eval_every=None,
    strategy=None,
):
    """Trains to `iters` steps, resuming from `checkpoint_dir` when it holds a run.

    Args:
        iters: int, the run's total steps (a resumed run trains the rest).
        out: str, the sample grids' directory.
        data_dir: str or None, the MNIST IDX files; None: TFDS.
        seed: int or None. None: a fresh run draws one (and stores it with
            its checkpoints); a resumed run uses its own.
        batch_size, h_dim, z_dim, sample_every: ints, as in the CLI.
        checkpoint_dir: str or None, where checkpoints are kept.
        checkpoint_every: int, steps between checkpoints.
        overwrite: bool, a fresh run may replace the grids already in `out`.
        verbose: int, Keras' `fit` verbosity.
        fast: bool, fast mode (`VAE.compile(fast=True)`): statistically the
            original's training, not bit for bit.
        callbacks: Keras callbacks to run beside the run's own (grids,
            checkpoints, clean stops), e.g. to record it.
        dataset: `"mnist"`, `"fashion_mnist"` or a `.npz` file's path (see
            `load_mnist`); the model's `x_dim` is the data's. None: the
            resumed run's own, or for a fresh run `"mnist"`.
        binarize: bool, dynamic binarization of the training images.
        learning_rate: float, Adam's step size.
        beta: float, the KL term's weight.
            For these three, None: the resumed run's own, or for a fresh run
            the original's (no binarization, 1e-3, 1).
        log_dir: str or None, where `keras_vae.logs.TrainingLog` writes
            TensorBoard events and `metrics.csv` every `sample_every` steps.
        eval_every: int or None, with `log_dir`: steps between measures of the
            test split's negative ELBO (a multiple of `sample_every`).
        strategy: a `tf.distribute.Strategy` or None (one device), e.g. from
            `keras_vae.strategies.make_strategy`. Only its chief writes grids,
            logs and checkpoints; every worker reads the same
            `checkpoint_dir`, which must be shared.

    Turns on TensorFlow's op determinism for the process, so that the same
    seed gives the same run.

    Returns:
        An `Outcome`.

    Raises:
        UsageError: `out` or `checkpoint_dir` is unusable, `out` holds another
            run's grids, or the checkpoints belong to a different run.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_vae.callbacks import Checkpointer, SampleGrid, StopOnDivergence, StopOnSignal
    from keras_vae.checkpoints import load_latest
    from keras_vae.data import default_split, image_pixels, load_mnist
    from keras_vae.execution import warm_up
    from keras_vae.model import VAE
    from keras_vae.optimizers import TF1Adam
    from keras_vae.strategies import gatherer, is_chief, is_multi_worker, lost_workers

    if strategy is not None and fast:
        raise UsageError("--fast runs each call's steps as one XLA loop on one device; "
                         "drop --fast, or --strategy.")
    chief = strategy is None or is_chief(strategy)
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    if chief:
        _writable_dir(out, "--out")
    if log_dir is not None and chief:
        _writable_dir(log_dir, "--log-dir")
    if eval_every is not None and (log_dir is None or eval_every % sample_every):
        raise UsageError(
            f"--eval-every {eval_every} needs --log-dir and a multiple of --sample-every "
            f"({sample_every}): the test negative ELBO goes into the logs, at their steps.")
    # One all-gather for the workers' agreements (checkpoint step, signals).
    gather = gatherer(strategy) if strategy is not None else None
    resumed = None
    if checkpoint_dir is not None:
        if chief:
            _writable_dir(checkpoint_dir, "--checkpoint-dir")
        if strategy is not None:  # before loading, which runs collectives
            newest = _newest_checkpoint(checkpoint_dir)
            _check_same_start(gather, newest[0] if newest else 0, checkpoint_dir)
        with scope():
            resumed = load_latest(checkpoint_dir)
    if resumed is None and chief:
        _clear_or_refuse_grids(out, overwrite)
    if resumed is None and seed is None and strategy is not None and is_multi_worker(strategy):
        raise UsageError("--strategy multi-worker needs --seed on a fresh run: every worker "
                         "must draw the same batches and noise.")
    if resumed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed
        dataset = "mnist" if dataset is None else os.fspath(dataset)
        config = RunConfig(seed, batch_size, h_dim, z_dim, sample_every, default_split(dataset),
                           dataset, _data_sha256(dataset), bool(binarize),
                           1e-3 if learning_rate is None else learning_rate,
                           1.0 if beta is None else beta)
        start = 0
    else:
        checkpoint, model = resumed
        config = RunConfig(**checkpoint.config)
        _check_same_run(config, checkpoint_dir, seed=seed, batch_size=batch_size,
                        h_dim=h_dim, z_dim=z_dim, sample_every=sample_every,
                        dataset=dataset and os.fspath(dataset), binarize=binarize,
                        learning_rate=learning_rate, beta=beta)
        if _data_sha256(config.dataset) != config.data_sha256:
            raise UsageError(
                f"{config.dataset} is not the file the checkpoints in {checkpoint_dir} "
                "were trained on: its SHA-256 differs. Resume with that file, or start "
                "a new run with another --checkpoint-dir.")
        start = checkpoint.step
    if log_dir is not None and chief:
        from keras_vae.logs import prepare_log_dir

        try:
            prepare_log_dir(log_dir, start, overwrite)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if resumed is None:
        keras.utils.set_random_seed(seed)
    else:
        print(f"Resuming from {checkpoint.model_path} at step {start}.", flush=True)
    if start >= iters:
        print(f"The run is at step {start} already (--iters {iters}): nothing to train.")
        return Outcome("completed", start, model)

    def prepared_model(x_dim):
        """The run's model (built unless resumed), compiled for the run."""
        if resumed is None:
            with scope():
                built = VAE(x_dim=x_dim, h_dim=h_dim, z_dim=z_dim, seed=seed, beta=config.beta)
        else:
            built = resumed[1]
        built.trained_with = {
            name: value for name, value in dataclasses.asdict(config).items()
            if name not in ("h_dim", "z_dim", "sample_every") and value is not None
        }
        # Several steps per call into TensorFlow; the callbacks' steps still end
        # calls (keras_vae.execution), so the bits are those of one step per call.
        # Under a strategy Keras' own loop runs, whose calls would not end there:
        # one step per call.
        with scope():
            optimizer = (getattr(built, "optimizer", None)
                         or TF1Adam(learning_rate=config.learning_rate))
            built.compile(optimizer=optimizer, fast=fast,
                          steps_per_execution=STEPS_PER_EXECUTION if strategy is None else 1)
        return built

    read_data = functools.partial(
        load_mnist, config.split, batch_size=config.batch_size, data_dir=data_dir,
        seed=config.seed, initial_step=start, dataset=config.dataset, binarize=config.binarize,
    )
    grid = SampleGrid(out, every=config.sample_every, seed=config.seed, resume=True)
    x_dim = model.x_dim if resumed is not None else image_pixels(config.dataset)
    if x_dim is None:
        data = read_data()
        model = prepared_model(data.element_spec.shape[-1])
    else:
        # Reading the data is mostly I/O and zlib, which release the GIL, and so
        # does XLA's compile: the model is built (in fast mode, compiled) and the
        # grids' figure drawn while a thread reads. The figure is drawn by
        # whichever thread would otherwise wait: the reader once it has read
        # while XLA compiles, else the main thread while the data is read.
        def read_and_draw(draw):
            data = read_data()
            if draw:
                grid.prepare(x_dim)
            return data

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            reading = pool.submit(read_and_draw, chief and fast)
            model = prepared_model(x_dim)
            if fast:
                warm_up(model, config.batch_size)
            elif chief:
                grid.prepare(x_dim)
            data = reading.result()
    tf.config.experimental.enable_op_determinism()
    divergence = StopOnDivergence()
    if strategy is not None and is_multi_worker(strategy):
        signals = StopOnSignal(agree=lambda signum: max(gather(signum)))
    else:
        signals = StopOnSignal()
    run_callbacks = [divergence, grid] if chief else [divergence]
    if log_dir is not None and chief:
        from keras_vae.logs import TrainingLog

        test_data = None
        if eval_every is not None:
            test_data = load_mnist("test", batch_size=1000, data_dir=data_dir, shuffle=False,
                                   dataset=config.dataset, binarize=config.binarize,
                                   seed=config.seed)
        run_callbacks.append(TrainingLog(log_dir, every=config.sample_every, grid=grid,
                                         eval_every=eval_every, test_data=test_data,
                                         eval_seed=config.seed))
    checkpointer = None
    if checkpoint_dir is not None and chief:
        checkpointer = Checkpointer(
            checkpoint_dir, every=checkpoint_every, config=dataclasses.asdict(config)
        )
        run_callbacks.append(checkpointer)
    try:
        model.fit(
            data, epochs=1, steps_per_epoch=iters - start,
            callbacks=[*run_callbacks, signals, *callbacks],
            shuffle=False, verbose=verbose if chief else 0,
        )
    except tf.errors.UnavailableError as error:  # a collective lost a peer
        lost = lost_workers(strategy, error) if strategy and is_multi_worker(strategy) else None
        if lost is None:
            raise
        raise lost from None
    step = int(model.optimizer.iterations.numpy())
    if divergence.diverged_at is not None:
        newest = _newest_checkpoint(checkpoint_dir)
        return Outcome("diverged", step, model, newest[2] if newest else None,
                       diverged_at=divergence.diverged_at)
    saved = checkpointer.save() if checkpointer else None
    if signals.received is not None:
        return Outcome("interrupted", step, model, saved, signal=signals.received)
    return Outcome("completed", step, model, saved)


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


def _check_same_run(config, checkpoint_dir, **asked):
    """Refuses flags that contradict the checkpointed run's configuration."""
    for name, value in asked.items():
        stored = getattr(config, name)
        if value is not None and value != stored:
            flag = "--" + name.replace("_", "-")
            if isinstance(stored, bool):  # a switch: the run had it or not
                ran = flag if stored else f"no {flag}"
                fix = f"Resume {'with' if stored else 'without'} {flag}"
            else:
                ran, fix = f"{flag} {stored}, not {value}", f"Resume with {flag} {stored}"
            raise UsageError(
                f"The checkpoints in {checkpoint_dir} are of a run with {ran}. {fix}, "
                "or start a new run with another --checkpoint-dir."
            )


def _data_sha256(dataset):
    """A .npz file's SHA-256, which a resumed run must match; None for a named dataset."""
    from keras_vae.atomic import sha256
    from keras_vae.data import is_npz

    if not is_npz(dataset):
        return None
    if not os.path.isfile(dataset):
        raise UsageError(f"--data {dataset}: no such file. Give the path of a .npz file of "
                         "images (x_train, x_test).")
    return sha256(dataset)


def _check_same_start(gather, start, checkpoint_dir):
    """Every worker must resume from the chief's checkpoint: refuses a
    `--checkpoint-dir` that is not the same directory on every worker.
    `gather`: `keras_vae.strategies.gatherer`'s function."""
    starts = gather(start)
    if len(set(starts)) > 1:
        raise UsageError(
            f"The workers found different checkpoints in --checkpoint-dir {checkpoint_dir}: "
            f"steps {sorted(set(starts))} (one per replica: {starts}). "
            "Every worker resumes from the chief's checkpoint, so --checkpoint-dir must be "
            "one directory all of them share (a network file system).")


def _newest_checkpoint(checkpoint_dir):
    """(step, record path, model path) of the newest checkpoint on disk, or None."""
    from keras_vae.checkpoints import list_checkpoints

    found = (list_checkpoints(checkpoint_dir)
             if checkpoint_dir and os.path.isdir(checkpoint_dir) else [])
    return found[-1] if found else None
