"""Callbacks of a training run: the original's sample grids, checkpoints, and
clean stops on a signal or a diverged loss."""

import math
import os
import signal
import warnings

import keras
import numpy as np

from keras_vae.checks import check_count
from keras_vae.evaluation.grid import GridPainter
from keras_vae.training.checkpoints import save_checkpoint

SAMPLES = 16  # per grid, as in the original's 4x4 plot


class SampleGrid(keras.callbacks.Callback):
    """Every `every` steps, saves 16 samples of z ~ N(0, I) and prints the loss.

    As the original did: from step 0, after that step's update, it decodes 16
    draws of z into `out_dir/000.png`, `001.png`, ... (grid `i` is step
    `i * every`) and prints `Iter: N` and `Loss: X.XXX` (that step's batch
    loss). The draws for grid `i` come from `seed` and `i` alone, so a run
    with the same seed makes the same grids.

    Args:
        out_dir: path, where the PNGs go; created if missing. Defaults to `"out"`.
        every: int, steps between grids. Defaults to `1000`.
        seed: int or None, seeds the draws of z. Defaults to `None`: one drawn
            from NumPy's global generator (`keras.utils.set_random_seed` fixes it).
        verbose: bool, print the `Iter:`/`Loss:` lines. Defaults to `True`.
        resume: bool, leave a grid already on disk as it is: a resumed run
            passing steps again draws the same grids, and none is rewritten.
            Defaults to `False` (overwrite).

    Example:

    >>> model.fit(dataset, steps_per_epoch=5000, callbacks=[SampleGrid("out")])
    """

    def __init__(self, out_dir="out", every=1000, seed=None, verbose=True, resume=False):
        super().__init__()
        check_count("every", every)
        self.out_dir = os.fspath(out_dir)
        self.every = every
        self.seed = int(np.random.randint(2**31)) if seed is None else seed
        self.verbose = verbose
        self.resume = resume
        self._painter = GridPainter()

    @property
    def execution_boundaries(self):
        """After step `i * every` (iterations `i * every + 1`): see `keras_vae.execution`."""
        return [(self.every, 1 % self.every)]

    def on_train_begin(self, logs=None):
        os.makedirs(self.out_dir, exist_ok=True)
        self._steps_done = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        first = self._steps_done
        self._steps_done = int(self.model.optimizer.iterations.numpy())
        # The steps this call covers: one, unless steps_per_execution > 1.
        for step in range(first, self._steps_done):
            if step % self.every == 0:
                if step != self._steps_done - 1:
                    warnings.warn(
                        f"SampleGrid: grid {step // self.every:03d} shows the model after "
                        f"step {self._steps_done - 1}, not {step}: this call ran several "
                        "steps. Train on keras_vae.load_mnist with steps_per_epoch, or "
                        "with steps_per_execution=1, for exact grids.", stacklevel=2)
                self._report(step, logs or {})

    def prepare(self, x_dim):
        """Builds the grids' figure, for images of `x_dim` pixels, ahead of
        training: the first grid is then as quick as the others."""
        self._painter.prepare(SAMPLES, x_dim)

    def _report(self, step, logs):
        index = step // self.every
        if self.verbose:
            loss = logs.get("step_loss", logs.get("loss"))
            print(f"\nIter: {step}\nLoss: {float(loss):.4}\n", flush=True)
        path = os.path.join(self.out_dir, f"{index:03d}.png")
        if self.resume and os.path.exists(path):
            return
        prob, _ = self.model.decode(self.noise(index, self.model.z_dim))
        self._painter.save(np.asarray(prob), path)

    def noise(self, index, z_dim):
        """The 16 draws of z, `(16, z_dim)`, for grid `index`."""
        rng = np.random.default_rng([self.seed, index])
        return rng.standard_normal((SAMPLES, z_dim)).astype(np.float32)


class Checkpointer(keras.callbacks.Callback):
    """Writes a checkpoint every `every` steps (see `keras_vae.training.checkpoints`).

    Args:
        directory: str, where the checkpoints go.
        every: int, steps between checkpoints. Defaults to `1000`.
        config: dict, the run's configuration, stored with each checkpoint.
    """

    def __init__(self, directory, every=1000, config=None):
        super().__init__()
        self.directory = directory
        self.every = every
        self.config = config or {}

    @property
    def execution_boundaries(self):
        """After every `every`-th step: see `keras_vae.execution`."""
        return [(self.every, 0)]

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0 and not self.model.stop_training:
            self.save()

    def save(self):
        """Writes a checkpoint now, unless this step's is written; returns its path."""
        step = int(self.model.optimizer.iterations.numpy())
        if step != getattr(self, "_saved_step", None):
            self._saved_path = save_checkpoint(self.model, self.directory, self.config).model_path
            self._saved_step = step
        return self._saved_path


class StopOnDivergence(keras.callbacks.Callback):
    """Stops training when a loss is NaN or infinite.

    `diverged_at` then holds the step (counted from 0, as `Iter:` counts):
    the last step of the execution that found it, with steps_per_execution > 1.
    """

    diverged_at = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("step_loss", (logs or {}).get("loss"))
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = int(self.model.optimizer.iterations.numpy()) - 1
            self.model.stop_training = True


class StopOnSignal(keras.callbacks.Callback):
    """Turns SIGINT and SIGTERM into a stop at the end of the running execution
    (the current step, or up to `steps_per_execution` steps).

    The handlers are installed for the length of `fit` only; `received`
    then holds the signal's number, or None.

    Args:
        agree: callable or None, for the workers of a cluster, who must stop
            at the same step (else their collectives no longer pair up): takes
            this worker's signal number (0 for none) and returns the largest
            of all workers'. Called by every worker every `every` steps.
        every: int, steps between agreements.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    received = None
    _caught = None  # this process's signal, which the handler alone writes

    def __init__(self, agree=None, every=10):
        super().__init__()
        self.agree, self.every = agree, every

    def on_train_begin(self, logs=None):
        self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def _handle(self, signum, frame):
        self._caught = signum

    def on_train_batch_end(self, batch, logs=None):
        # The handler may run while `agree` waits for the other workers: a
        # signal it did not send stays caught, for the next agreement.
        received = self._caught
        if self.agree is not None:
            if (batch + 1) % self.every:
                return
            received = self.agree(received or 0) or None
        if received is not None:
            self.received = received
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class CallBoundaries(keras.callbacks.Callback):
    """Ends `fit`'s calls into TensorFlow where other callbacks do, doing
    nothing else: a worker that writes no grid or checkpoint runs its calls'
    steps in step with the chief's, whose collectives must match."""

    def __init__(self, boundaries):
        super().__init__()
        self.execution_boundaries = list(boundaries)
