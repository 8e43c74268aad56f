"""The Keras side of the VAE: what makes the paper's model the `keras.Model`
users expect. `compile()` picks the faithful optimizer, `fit` runs through
`keras_vae.execution`, `.keras` files carry the sampler's state and their
format version, and `export` writes the SavedModel's signatures."""

import json

import keras

from keras_vae import _compat
from keras_vae.data.batches import as_dataset
from keras_vae.execution import Execution
from keras_vae.optimizers import TF1Adam
from keras_vae.saving import formats, saved_model


class KerasModel(_compat.StrategyBuildHook, keras.Model):
    """A `keras.Model` with keras_vae's `compile`, `fit`, saving and export.

    A subclass defines `WEIGHTS` (its variables' attribute names, in the
    order its files keep them) and `seed_generator`.
    """

    def __init__(self, trained_with=None, **kwargs):
        super().__init__(**kwargs)
        self.trained_with = trained_with or {}
        self.execution = None  # how fit runs its steps: set by compile

    def compile(self, optimizer=None, fast=False, **kwargs):
        """Configures training; with no optimizer, the faithful `TF1Adam()`.

        Args:
            optimizer: a Keras optimizer or its name. Defaults to `TF1Adam()`,
                the original's `tf.train.AdamOptimizer()` with its arithmetic.
            fast: bool. `True`: fast mode, statistically the original's
                training but not bit for bit: `steps_per_execution` defaults
                to 100, and on `load_mnist`'s batches each execution's steps
                run as one XLA-compiled loop, their noise drawn at once.
                Defaults to `False`: faithful, the TF1 graph's bits.
            **kwargs: passed to `keras.Model.compile`. `jit_compile` defaults
                to `False`: XLA changes the arithmetic. For speed with the
                same bits, pass `steps_per_execution=100`.
        """
        kwargs.setdefault("jit_compile", False)
        if fast:
            kwargs.setdefault("steps_per_execution", 100)
        super().compile(optimizer=optimizer or TF1Adam(), **kwargs)
        self.execution = Execution(self, fast)

    def compile_from_config(self, config):
        # Keras skips this for models with their own `compile`, which would
        # load a `.keras` file without its optimizer state.
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, steps_per_epoch=None, **kwargs):
        """Keras' `fit`, running exactly `steps_per_epoch` steps whatever
        `steps_per_execution` is; given `load_mnist`'s batches it draws them
        inside the training loop (see `keras_vae.execution`)."""
        if self.execution is None:  # not compiled: Keras says so
            return super().fit(as_dataset(x), y, steps_per_epoch=steps_per_epoch, **kwargs)
        history = self.execution.fit(super().fit, x, y, steps_per_epoch, **kwargs)
        if not history.history:
            raise ValueError("fit() ran no training step: the data is empty. Pass at least "
                             "one batch of images, e.g. keras_vae.load_mnist().")
        return history

    def evaluate(self, x=None, *args, **kwargs):
        """Keras' `evaluate`; `load_mnist`'s batches are read as their dataset."""
        return super().evaluate(as_dataset(x), *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """Keras' `predict` (reconstructions); `load_mnist`'s batches are read as their dataset."""
        return super().predict(as_dataset(x), *args, **kwargs)

    def export(self, filepath, format="tf_saved_model", verbose=None, overwrite=False, **kwargs):
        """Exports a SavedModel with the signatures `encode`, `decode`,
        `reconstruct`, `sample` and `serving_default`, written atomically
        (`keras_vae.saving.saved_model`). Other formats, or Keras' own
        arguments, go to `keras.Model.export`."""
        if format != "tf_saved_model" or kwargs:
            return super().export(filepath, format=format, verbose=verbose, **kwargs)
        return saved_model.export_saved_model(self, filepath, overwrite=overwrite,
                                              verbose=bool(verbose))

    def save_own_variables(self, store):
        formats.save_variables(store, self._saved_variables())

    def load_own_variables(self, store):
        formats.load_variables(store, self._saved_variables())

    def _saved_variables(self):
        # The sampler's state travels with the weights, so that training
        # continued after loading draws the noise it would have drawn.
        return [*(getattr(self, name) for name in self.WEIGHTS), self.seed_generator.state]

    @property
    def trained_with(self):
        """What the model was trained on and how: a dict (a copy)."""
        return json.loads(self._trained_with)

    @trained_with.setter
    def trained_with(self, value):
        # Kept as JSON: a dict attribute would become Keras' TrackedDict, and the
        # record must stay JSON for .keras files and SavedModels alike.
        self._trained_with = json.dumps(dict(value))

