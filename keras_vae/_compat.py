"""Every name of Keras or TensorFlow that keras_vae relies on beyond their
public API, in one place, each with why it is needed.

`tests/test_compat.py` holds a canary for each: a test that fails, naming
the name, when a Keras or TensorFlow release changes what is relied on here.
setup.cfg pins Keras to its minor version for the same reason.
"""

import contextlib

import tensorflow as tf

# --- keras.optimizers.Optimizer ---------------------------------------------


def variable_index(optimizer, variable):
    """`Optimizer._get_variable_index`: where `variable`'s slots (Adam's m and
    v) are in the lists `add_optimizer_variables` made. `TF1Adam.update_step`
    is given the variable alone; Keras' own Adam finds its slots this way."""
    return optimizer._get_variable_index(variable)


class ApplyGradientsHook:
    """Mixin for a `keras.optimizers.Optimizer`: `before_apply(variables)` and
    `after_apply()` run around each step's update of all the variables.

    Keras' `Optimizer._backend_apply_gradients` is where one step's gradients
    are applied to every variable. TF1's Adam advanced its beta powers once
    per step, after every variable's update (its `_finish`): `TF1Adam` needs
    that place, which the public `update_step` (one variable) does not give.
    """

    def _backend_apply_gradients(self, grads, trainable_variables):
        self.before_apply(trainable_variables)
        try:
            super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            self.after_apply()


# --- keras.Model --------------------------------------------------------------


class StrategyBuildHook:
    """Mixin for a `keras.Model` built when made: `build_optimizer` (which
    its `compile` calls) makes the optimizer's variables in the strategy's
    scope, and `fit` skips Keras' symbolic build.

    Keras 3.15's `Model._maybe_symbolic_build`, under a strategy, first
    reduces a batch across the replicas to build the model on it: that fails
    for `(x, y)` batches under `MultiWorkerMirroredStrategy` and for replicas
    of unequal shares. A model that is built when made and compiles no loss
    or metric needs nothing of that step but its optimizer built (a loss or
    metric compiled under a strategy would be left unbuilt). The strategy
    the model was made in is Keras' `Model._distribute_strategy`: the public
    `distribute_strategy` falls back to the current one.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if not self.optimizer.built:
            self.build_optimizer()

    def build_optimizer(self):
        """Makes the optimizer's variables, in the scope of the strategy the
        model was made in, if any."""
        strategy = self._distribute_strategy
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            self.optimizer.build(self.trainable_variables)


def mean_state(tracker):
    """The `(total, count)` variables of a `keras.metrics.Mean`: the in-graph
    loop adds a call's sums at once, and `TrainingLog` reads the means over
    its own windows of steps, neither of which `update_state`/`result` give."""
    return tracker.total, tracker.count


def logs_for_keras(logs):
    """`logs` as Keras 3.15's `fit` and `evaluate` can reduce them across workers.

    Under `MultiWorkerMirroredStrategy` Keras reduces each log with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalars a
    step returns ("Invalid reduction dimension 0 for input with 0
    dimensions"; keras-team/keras#20585). Given shape `(1,)`, each reduces
    to the mean over the replicas, a scalar again. One device and
    `MirroredStrategy` reduce otherwise, and get the scalars unchanged.
    Whether the strategy really spans workers is
    `MultiWorkerMirroredStrategy.extended._in_multi_worker_mode()`, the test
    Keras' own trainer makes: the same class runs one local worker without a
    cluster.
    """
    strategy = tf.distribute.get_strategy()
    if not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()):
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


# --- keras.Model.fit's calls ---------------------------------------------------
# `train_function` and `steps_per_execution` are public attributes, but what
# `fit` does with them is Keras' internal contract.


@contextlib.contextmanager
def train_function_replaced(model, train_function):
    """Runs `train_function` for each of `fit`'s calls into TensorFlow.

    Keras' `fit` calls `model.train_function(iterator)` once per call (every
    `steps_per_execution` steps of its epoch loop) and takes the metrics it
    returns as the logs: replaced for the length of a `fit`, it runs the
    in-graph loop's calls instead of Keras' own.
    """
    previous, model.train_function = model.train_function, train_function
    try:
        yield
    finally:
        model.train_function = previous


@contextlib.contextmanager
def steps_per_execution_set(model, steps):
    """Runs Keras' own `fit` with `steps` steps per call for the length of the
    block: with `model.train_function` set to None, `fit` builds it anew,
    reading `model.steps_per_execution`."""
    previous = model.steps_per_execution, model.train_function
    model.steps_per_execution, model.train_function = steps, None
    try:
        yield
    finally:
        model.steps_per_execution, model.train_function = previous
