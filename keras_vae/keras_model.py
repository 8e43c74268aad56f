"""The Keras side of the VAE: what makes the paper's model the `keras.Model`
users expect. `compile()` picks the faithful optimizer, `fit` runs through
`keras_vae.execution`, `.keras` files carry the sampler's state and their
format version, and `export` writes the signatures in three formats."""

import json

import keras
import tensorflow as tf

from keras_vae import _compat
from keras_vae.data.batches import as_dataset
from keras_vae.execution import Execution
from keras_vae.optimizers import TF1Adam
from keras_vae.saving import export, formats


class KerasModel(_compat.StrategyBuildHook, keras.Model):
    """A `keras.Model` with keras_vae's `compile`, `fit`, saving and export.

    A subclass defines `WEIGHTS` (its variables' attribute names, in the
    order its files keep them), `seed_generator` and `parts()` (what
    `summary()` lists).
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
        _refuse_losses_and_metrics(kwargs)
        kwargs.setdefault("jit_compile", False)
        if fast:
            kwargs.setdefault("steps_per_execution", 100)
        super().compile(optimizer=optimizer or TF1Adam(), **kwargs)
        self.execution = Execution(self, fast)
        # Its variables exist before any step is traced: a step whose trace
        # failed (bad input) would otherwise leave the next one to make them
        # on a non-first call of Keras' tf.function, which TensorFlow refuses.
        self.build_optimizer()

    def compile_from_config(self, config):
        # Keras skips this for models with their own `compile`, which would
        # load a `.keras` file without its optimizer state.
        self.compile(**keras.saving.deserialize_keras_object(config))

    def fit(self, x=None, y=None, steps_per_epoch=None, **kwargs):
        """Keras' `fit`, running exactly `steps_per_epoch` steps whatever
        `steps_per_execution` is; given `load_mnist`'s batches it draws them
        inside the training loop (see `keras_vae.execution`)."""
        _refuse_endless(x, steps_per_epoch, "fit", "steps_per_epoch")
        if self.execution is None:  # not compiled: Keras says so
            return super().fit(as_dataset(x), y, steps_per_epoch=steps_per_epoch, **kwargs)
        history = self.execution.fit(super().fit, x, y, steps_per_epoch, **kwargs)
        if not history.history:
            raise ValueError("fit() ran no training step: the data is empty. Pass at least "
                             "one batch of images, e.g. keras_vae.load_mnist().")
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, **kwargs):
        """Keras' `evaluate`; `load_mnist`'s batches are read as their dataset."""
        _refuse_endless(x, steps, "evaluate", "steps")
        return super().evaluate(as_dataset(x), y, batch_size, verbose, sample_weight, steps,
                                **kwargs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, **kwargs):
        """Keras' `predict` (reconstructions); `load_mnist`'s batches are read as their dataset."""
        _refuse_endless(x, steps, "predict", "steps")
        return super().predict(as_dataset(x), batch_size, verbose, steps, **kwargs)

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs):
        """Prints the model's parts (`parts()`: the paper's Q(z|X), sampler
        and P(X|z)) with their outputs and parameters. Keras' own table
        lists sublayers, which this model, holding its weights itself, has
        none of. `positions` and Keras' other arguments change nothing here."""
        lines = summary_lines(self, line_length or 98)
        for line in lines:
            (print_fn or print)(line)

    def export(self, filepath, format="tf_saved_model", verbose=None, overwrite=False,
               max_samples=None, **kwargs):
        """Exports the signatures `encode`, `decode`, `reconstruct`,
        `sample_from_z` and `reconstruct_sampled` as a SavedModel (with
        `sample`, at most `max_samples` images a call, and `serving_default`),
        a LiteRT `.tflite` file (`format="litert"`) or a directory of ONNX
        files (`format="onnx"`), checked and written atomically
        (`keras_vae.saving.export`). Other formats, or Keras' own arguments,
        go to `keras.Model.export`, which exports `call()` alone."""
        if export.KERAS_NAMES.get(format, format) not in export.FORMATS or kwargs:
            return super().export(filepath, format=format, verbose=verbose, **kwargs)
        return export.export(self, filepath, format=format, overwrite=overwrite,
                             verbose=bool(verbose), max_samples=max_samples)

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


def _refuse_losses_and_metrics(kwargs):
    """A ValueError for `compile`'s loss and metrics arguments, which the VAE
    would otherwise ignore: it trains on its own loss."""
    given = sorted(name for name in ("loss", "loss_weights", "metrics", "weighted_metrics")
                   if kwargs.get(name) is not None)
    if given:
        raise ValueError(
            f"The VAE trains on its own loss, the original's: the reconstruction term (sigmoid "
            f"cross-entropy summed over pixels) plus the KL divergence, reported as loss, "
            f"recon_loss and kl_loss. Remove {', '.join(given)} from compile().")


def _refuse_endless(x, steps, method, argument):
    """A ValueError for data without end (`load_mnist`'s training stream, a
    repeated dataset) when no `steps` bound the pass: it would never end."""
    data = as_dataset(x)
    if steps is None and isinstance(data, tf.data.Dataset) and (
            int(data.cardinality()) == tf.data.INFINITE_CARDINALITY):
        raise ValueError(
            f"{method}() got endless data (e.g. load_mnist()'s training stream, or a repeated "
            f"dataset) and no {argument}, so it would never end. Pass {argument}=N, the steps "
            f"per {'epoch' if method == 'fit' else 'pass'}.")


def summary_lines(model, width):
    """`summary()`'s lines: a row per part of `model`, then its parameter
    counts, as Keras' table gives them (the optimizer's once built)."""
    rows = [(name, output, f"{_size(getattr(model, w) for w in weights):,}")
            for name, output, weights in model.parts()]
    name_width = max(len(row[0]) for row in rows) + 2
    output_width = max(width - name_width - 12, max(len(row[1]) for row in rows) + 2)
    rule = "─" * (name_width + output_width + 12)
    lines = [f'Model: "{model.name}"', rule,
             f"{'Part':<{name_width}}{'Output':<{output_width}}{'Param #':>12}", rule]
    lines += [f"{name:<{name_width}}{output:<{output_width}}{count:>12}"
              for name, output, count in rows]
    counts = {"Trainable": _size(model.trainable_weights),
              "Non-trainable": _size(model.non_trainable_weights)}
    if getattr(model, "optimizer", None) is not None and model.optimizer.built:
        counts["Optimizer"] = _size(model.optimizer.variables)
    lines += [rule, f"Total params: {_with_bytes(sum(counts.values()))}"]
    return lines + [f"{kind} params: {_with_bytes(count)}" for kind, count in counts.items()]


def _size(variables):
    return sum(int(v.shape.num_elements()) for v in variables)


def _with_bytes(count):
    """`count` float32 parameters and their memory, as Keras writes them: "240,344 (938.84 KB)"."""
    size, unit = count * 4.0, "B"
    for larger in ("KB", "MB", "GB"):
        if size < 1024:
            break
        size, unit = size / 1024, larger
    return f"{count:,} ({size:.2f} {unit})"
