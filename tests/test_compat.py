"""Canaries for keras_vae._compat: what keras_vae relies on in Keras and
TensorFlow beyond their public API.

Each function and class of `_compat` has a test here of the behaviour relied
on (not only that the name exists). When a Keras or TensorFlow upgrade
breaks one, the test fails with a message naming the private name and the
keras_vae code that relies on it, so that the upgrade says what to fix.
"""

import contextlib
import inspect
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import _compat
from keras_vae.execution import _stand_in_dataset
from keras_vae.model import VAE
from tests.conftest import REPO, checkout_env, free_ports


@contextlib.contextmanager
def _canary(message):
    """Fails with `message` (what broke, and what relies on it) on any error
    in the block, e.g. a private name gone, as well as on a failed assert."""
    try:
        yield
    except AssertionError as error:
        raise AssertionError(f"{message}\n{error}") from error
    except Exception as error:
        raise AssertionError(f"{message}\n({type(error).__name__}: {error})") from error


# --- Optimizer._get_variable_index (_compat.variable_index) --------------------

SHAPES = [(3,), (2, 4), (3,), (5,)]  # two alike: a shape alone picks no slot


class _SlotPerVariable(keras.optimizers.Optimizer):
    """Adds each variable's gradient to its slot `m`, found as TF1Adam finds its
    slots: through `_compat.variable_index` of the variable `update_step` gets."""

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.m = self.add_optimizer_variables(var_list, "m")

    def update_step(self, gradient, variable, learning_rate):
        self.m[_compat.variable_index(self, variable)].assign_add(gradient)


@pytest.mark.parametrize("where", ["no_strategy", "mirrored"])
def test_variable_index_picks_each_variables_slot(where):
    with _canary("Keras' Optimizer._get_variable_index no longer gives the index, in "
                 "add_optimizer_variables' lists, of the slots of the variable "
                 f"update_step is given ({where}): keras_vae.optimizers.TF1Adam."
                 "update_step relies on it, through keras_vae._compat.variable_index"):
        strategy = (tf.distribute.MirroredStrategy(["/cpu:0"]) if where == "mirrored"
                    else tf.distribute.get_strategy())
        with strategy.scope():
            variables = [keras.Variable(np.zeros(shape, np.float32)) for shape in SHAPES]
            optimizer = _SlotPerVariable(learning_rate=1.0, name="slot_per_variable")
            optimizer.build(variables)
        assert [_compat.variable_index(optimizer, v) for v in variables] == [0, 1, 2, 3]
        grads = [tf.fill(shape, float(i + 1)) for i, shape in enumerate(SHAPES)]
        tf.function(lambda: strategy.run(lambda: optimizer.apply(grads, variables)),
                    autograph=False)()
        for i, (slot, variable) in enumerate(zip(optimizer.m, variables)):
            assert slot.shape == variable.shape
            np.testing.assert_array_equal(slot.numpy(), np.full(SHAPES[i], i + 1.0))


# --- Optimizer._backend_apply_gradients (_compat.ApplyGradientsHook) ------------


def test_apply_gradients_hook_runs_once_around_each_steps_updates():
    events = []

    class Recording(_compat.ApplyGradientsHook, keras.optimizers.SGD):
        def before_apply(self, trainable_variables):
            events.append(("before", [id(v) for v in trainable_variables],
                           float(self.learning_rate)))

        def update_step(self, gradient, variable, learning_rate):
            events.append(("update", tuple(variable.shape), float(learning_rate)))
            super().update_step(gradient, variable, learning_rate)

        def after_apply(self):
            events.append(("after",))

    with _canary("Keras' Optimizer._backend_apply_gradients is no longer called once "
                 "per optimizer.apply, with all the variables, before the step is "
                 "counted, and update_step from inside it for each variable: "
                 "keras_vae.optimizers.TF1Adam relies on it (its beta powers advance, "
                 "its scalars are read, once per step), through "
                 "keras_vae._compat.ApplyGradientsHook"):
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0], [0.5, 0.125])
        optimizer = Recording(learning_rate=schedule)
        variables = [keras.Variable(np.ones(shape, np.float32)) for shape in SHAPES]
        grads = [tf.ones(shape) for shape in SHAPES]
        for _ in range(2):
            optimizer.apply(grads, variables)
        expected = []
        for rate in (0.5, 0.125):  # the schedule's value at steps 0 and 1
            expected += [("before", [id(v) for v in variables], rate),
                         *(("update", shape, rate) for shape in SHAPES), ("after",)]
        assert events == expected


# --- Model._maybe_symbolic_build (_compat.StrategyBuildHook) ---------------------


def test_maybe_symbolic_build_keeps_its_signature():
    with _canary("Keras' Model._maybe_symbolic_build(iterator=None, data_batch=None) "
                 "is gone or has a new signature: keras_vae.model.VAE overrides it, "
                 "through keras_vae._compat.StrategyBuildHook"):
        parameters = inspect.signature(keras.Model._maybe_symbolic_build).parameters
        assert [(p.name, p.default) for p in parameters.values()] == [
            ("self", inspect.Parameter.empty), ("iterator", None), ("data_batch", None)]


def test_fit_and_evaluate_call_maybe_symbolic_build_first_under_a_strategy():
    calls = []

    class Recording(VAE):
        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            calls.append((iterator is not None, data_batch, self.optimizer.built))
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    with _canary("Keras' Model._distribute_strategy is no longer the strategy a model "
                 "was made in (None outside any): keras_vae.model.VAE reads it, in "
                 "keras_vae._compat.StrategyBuildHook"):
        assert Recording(h_dim=8, z_dim=2)._distribute_strategy is None
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        with strategy.scope():
            model = Recording(h_dim=8, z_dim=2)
            model.compile()
        assert model._distribute_strategy is strategy
    with _canary("Keras' fit and evaluate no longer call Model._maybe_symbolic_build("
                 "iterator=...) before their first step: keras_vae.model.VAE "
                 "overrides it, through keras_vae._compat.StrategyBuildHook, to skip "
                 "Keras' symbolic build under a strategy (compile built the optimizer)"):
        x = np.random.default_rng(0).random((32, 784)).astype(np.float32)
        model.fit(x, np.zeros(32, np.float32), batch_size=8, epochs=1, verbose=0)
        model.evaluate(x, batch_size=8, verbose=0)
        assert calls == [(True, None, True), (True, None, True)]
        assert int(model.optimizer.iterations.numpy()) == 4


# --- keras.metrics.Mean's total and count (_compat.mean_state) -----------------


def test_mean_state_is_the_total_and_count_result_divides():
    with _canary("keras.metrics.Mean's `total` and `count` are no longer its variables "
                 "whose quotient result() is, zeroed by reset_state: "
                 "keras_vae.execution.InGraphFit._record_sums and "
                 "keras_vae.training.logs.TrainingLog rely on them, through "
                 "keras_vae._compat.mean_state"):
        tracker = keras.metrics.Mean()
        for value in (1.0, 2.0, 6.0):
            tracker.update_state(value)
        total, count = _compat.mean_state(tracker)
        assert (float(total.numpy()), float(count.numpy())) == (9.0, 3.0)
        assert float(tracker.result()) == 3.0
        assert {id(total), id(count)} <= {id(v) for v in tracker.variables}
        total.assign_add(11.0)
        count.assign_add(2.0)
        assert float(tracker.result()) == 4.0
        tracker.reset_state()
        assert (float(total.numpy()), float(count.numpy())) == (0.0, 0.0)


# --- MultiWorkerMirroredStrategy.extended._in_multi_worker_mode (logs_for_keras) --

# In a child Python: MultiWorkerMirroredStrategy sets TensorFlow's collective
# ops for the whole process. Prints, as JSON, whether the strategy spans
# workers by `_in_multi_worker_mode()` and by Keras' own test, and a step's
# "loss" log (the task's index) passed through `logs_for_keras` and reduced
# as Keras' fit reduces it.
WORKER = """
import json, os, sys
if len(sys.argv) > 1:
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"localhost:{port}" for port in sys.argv[2].split(",")]},
        "task": {"type": "worker", "index": int(sys.argv[1])}})
import tensorflow as tf
from keras.src.backend.tensorflow import trainer
from keras_vae import _compat
strategy = tf.distribute.MultiWorkerMirroredStrategy()
task = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
logs = tf.function(lambda: strategy.run(
    lambda: _compat.logs_for_keras({"loss": tf.constant(task)})), autograph=False)()
loss = trainer.reduce_per_replica(logs, strategy, "auto")["loss"]
print(json.dumps({"multi_worker": strategy.extended._in_multi_worker_mode(),
                  "keras": trainer._collective_all_reduce_multi_worker(strategy),
                  "loss": loss.numpy().tolist()}))
"""


def _run_workers(*argvs):
    """Runs WORKER once per argv at once; returns each one's JSON, or fails
    with the stderr of the first that failed."""
    env = {k: v for k, v in checkout_env().items() if k != "TF_CONFIG"}
    runs = [subprocess.Popen([sys.executable, "-c", WORKER, *argv], env=env, cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for argv in argvs]
    try:
        outputs = [run.communicate(timeout=300) for run in runs]
    finally:
        for run in runs:  # a worker left waiting for a failed peer
            if run.poll() is None:
                run.kill()
                run.wait()
    for run, (_, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-3000:]
    return [json.loads(out.splitlines()[-1]) for out, _ in outputs]


IN_MULTI_WORKER_MODE = (
    "TensorFlow's MultiWorkerMirroredStrategy.extended._in_multi_worker_mode() no "
    "longer tells {}, as Keras' fit does{}: keras_vae._compat.logs_for_keras (in "
    "keras_vae.model.VAE.update_metrics) relies on it")


def test_in_multi_worker_mode_is_false_for_one_local_worker():
    with _canary(IN_MULTI_WORKER_MODE.format(
            "one local worker without TF_CONFIG (False)", ", leaving its logs alone")):
        [local] = _run_workers(())
        assert local == {"multi_worker": False, "keras": False, "loss": 0.0}, local


@pytest.mark.slow
def test_in_multi_worker_mode_is_true_for_a_cluster_of_two_workers():
    with _canary(IN_MULTI_WORKER_MODE.format(
            "a cluster of two workers (True)",
            ", or logs of shape (1,) no longer reduce to their scalar mean")):
        ports = free_ports(2)
        for worker in _run_workers(("0", ports), ("1", ports)):
            assert worker == {"multi_worker": True, "keras": True, "loss": 0.5}, worker


# --- What fit does with train_function and steps_per_execution -----------------


def _model(steps_per_execution):
    model = VAE(h_dim=8, z_dim=2)
    model.compile(steps_per_execution=steps_per_execution)
    return model


def test_fit_calls_a_replaced_train_function_once_per_call_and_logs_its_metrics():
    model = _model(steps_per_execution=5)
    calls = []

    def train_function(iterator):
        calls.append(len(calls))
        model.step_loss_tracker.update_state(float(len(calls)))
        return model.get_metrics_result()

    with _canary("Keras' fit no longer calls a replaced Model.train_function once per "
                 "steps_per_execution steps (6 calls expected), taking the logs from "
                 "what it returns: keras_vae.execution.InGraphFit relies on it, through "
                 "keras_vae._compat.train_function_replaced"):
        with _compat.train_function_replaced(model, train_function):
            history = model.fit(_stand_in_dataset(), steps_per_epoch=15, epochs=2,
                                verbose=0)
        assert len(calls) == 6, calls
        assert history.history["step_loss"] == [3.0, 6.0], history.history
    assert model.train_function is None  # _compat's own promise: put back


def test_fit_rebuilds_a_train_function_set_to_none_for_the_new_steps_per_execution():
    model = _model(steps_per_execution=4)
    x = np.random.default_rng(0).random((64, 784)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(x).batch(8).repeat()
    with _canary("Keras' fit no longer builds Model.train_function anew when it is "
                 "None, reading steps_per_execution, or no longer keeps the one put "
                 "back: keras_vae.execution._fit_exact_steps relies on it, through "
                 "keras_vae._compat.steps_per_execution_set"):
        model.fit(data, steps_per_epoch=4, verbose=0)  # builds Keras' train_function
        with _compat.steps_per_execution_set(model, 1):
            model.fit(data, steps_per_epoch=3, verbose=0)
        assert int(model.optimizer.iterations.numpy()) == 7
        assert model.steps_per_execution == 4
        model.fit(data, steps_per_epoch=4, verbose=0)  # Keras' 4-step function, put back
        assert int(model.optimizer.iterations.numpy()) == 11
