"""The original's progress report: a sample grid and the loss every N steps."""

import os

import keras
import numpy as np

from keras_vae.grid import save_grid


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

    Example:

    >>> model.fit(dataset, steps_per_epoch=5000, callbacks=[SampleGrid("out")])
    """

    def __init__(self, out_dir="out", every=1000, seed=None, verbose=True):
        super().__init__()
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"`every` must be a positive integer. Received: every={every!r}")
        self.out_dir = os.fspath(out_dir)
        self.every = every
        self.seed = int(np.random.randint(2**31)) if seed is None else seed
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        os.makedirs(self.out_dir, exist_ok=True)
        self._steps_done = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        first = self._steps_done
        self._steps_done = int(self.model.optimizer.iterations.numpy())
        # The steps this call covers: one, unless steps_per_execution > 1.
        for step in range(first, self._steps_done):
            if step % self.every == 0:
                self._report(step, logs or {})

    def _report(self, step, logs):
        index = step // self.every
        if self.verbose:
            loss = logs.get("step_loss", logs.get("loss"))
            print(f"\nIter: {step}\nLoss: {float(loss):.4}\n", flush=True)
        z = self.noise(index, self.model.z_dim)
        prob, _ = self.model.decode(z)
        save_grid(np.asarray(prob), os.path.join(self.out_dir, f"{index:03d}.png"))

    def noise(self, index, z_dim):
        """The 16 draws of z, `(16, z_dim)`, for grid `index`."""
        rng = np.random.default_rng([self.seed, index])
        return rng.standard_normal((16, z_dim)).astype(np.float32)
