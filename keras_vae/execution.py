"""How `VAE.fit` runs: exactly the steps asked, and `load_mnist`'s batches
drawn inside the training loop, many steps per call into TensorFlow.

Given `MnistBatches` with a stream (what `load_mnist` returns for training)
and `steps_per_epoch`, each call into TensorFlow runs up to
`steps_per_execution` steps of one `tf.while_loop`, drawing each batch
inside the loop. The arithmetic is the step's own, so the results are the
same bits as one step per call through `tf.data`. A call also ends after
every step a callback must see the model at: a callback lists those steps
as `execution_boundaries`, pairs `(period, offset)` meaning "after every
step at which `optimizer.iterations % period == offset`", so `SampleGrid`
and `Checkpointer` see the model of their exact step. Under a
`MirroredStrategy` or `MultiWorkerMirroredStrategy` of several replicas,
each step runs through `strategy.run`, every replica taking its rows of the
batch (`keras_vae.replicas.rows_of`).

Fast mode (`compile(fast=True)`) runs the same loop compiled by XLA, with
each call's noise drawn at once before it: statistically the same training,
not the same bits.

Any other data, a plain `tf.data.Dataset` included, goes through Keras' own
`tf.data` path, with `steps_per_execution` lowered for the call where Keras
would otherwise round an epoch up to whole calls.
"""

import math
import sys
import weakref

import keras
import tensorflow as tf

from keras_vae import _compat, replicas
from keras_vae.data.batches import MnistBatches, as_dataset
from keras_vae.progress import progress_bar

_NOT_FAST = ("warm_up compiles fast mode's loop, which this model does not run: compile it "
             "with model.compile(fast=True) first.")


class Execution:
    """A compiled VAE's way of running `fit`: its in-graph loop for the
    batches it last fit on, and in fast mode its XLA-compiled steps.

    Made by `VAE.compile` (`model.execution`). It holds the model weakly:
    the model holds it.
    """

    def __init__(self, model, fast=False):
        self._model = weakref.ref(model)
        self.fast = fast
        self._runner = None  # the InGraphFit of the batches last fit on
        self._xla_loop = self._xla_gradients = None

    @property
    def model(self):
        return self._model()

    def fit(self, keras_fit, x, y=None, steps_per_epoch=None, **kwargs):
        """`fit` through `keras_fit` (Keras' own): in-graph on `MnistBatches`
        with a stream, else through `tf.data` with exactly the steps asked."""
        stream = self._in_graph_stream(x, y, steps_per_epoch)
        if stream is None:
            return _fit_exact_steps(self.model, keras_fit, as_dataset(x), y, steps_per_epoch,
                                    **kwargs)
        if self._runner is None or self._runner.stream is not stream:
            self._runner = InGraphFit(self, stream)
        return self._runner.fit(keras_fit, steps_per_epoch, **kwargs)

    def _in_graph_stream(self, x, y, steps_per_epoch):
        """The `BatchStream` to draw from in-graph, or None for Keras' own path."""
        model = self.model
        if (not isinstance(x, MnistBatches) or x.stream is None or y is not None
                or not steps_per_epoch or model.run_eagerly):
            return None
        # A model made in a strategy's scope keeps it; fit may run outside it.
        strategy = model.distribute_strategy
        if tf.distribute.has_strategy() and tf.distribute.get_strategy() is not strategy:
            return None
        if _distributed(strategy) and not isinstance(strategy, IN_GRAPH_STRATEGIES):
            return None  # Keras' loop: replicas take their rows of each batch from tf.data
        return x.stream

    def xla_loop(self):
        """Fast mode's steps as one XLA-compiled function, `(steps, block,
        noise)` to the sums of the steps' (loss, recon, kl) and the last loss:
        one per model, so that each fit, and `warm_up`, share its compile."""
        if self._xla_loop is None:
            model_ref = self._model  # the function must not keep its model alive
            self._xla_loop = tf.function(
                lambda steps, block, noise: _steps_under_xla(model_ref(), steps, block, noise),
                jit_compile=True, autograph=False)
        return self._xla_loop

    def xla_gradients(self):
        """Fast mode on several replicas: a replica's losses and gradients,
        `(x, noise, share)` to `(losses, gradients)`, compiled by XLA. The
        all-reduce and the update run outside it: a synchronisation between
        replicas cannot run inside a function of one replica."""
        if self._xla_gradients is None:
            model_ref = self._model
            self._xla_gradients = tf.function(
                lambda x, noise, share: model_ref().compute_gradients(x, noise, share=share),
                jit_compile=True, autograph=False)
        return self._xla_gradients

    def warm_up(self, batch_size):
        """Compiles fast mode's XLA loop for batches of `batch_size`; see `warm_up`."""
        if not self.fast:
            raise ValueError(_NOT_FAST)
        model = self.model
        if model.distribute_strategy.num_replicas_in_sync > 1:
            return  # each replica's XLA function compiles at its first step
        size = int(model.steps_per_execution)
        self.xla_loop()(tf.constant(0), tf.zeros((size, batch_size, model.x_dim)),
                        tf.zeros((size, batch_size, model.z_dim)))


# The strategies whose replicas run the in-graph loop's steps.
IN_GRAPH_STRATEGIES = (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)


def _distributed(strategy):
    """Whether `strategy` is a `tf.distribute` strategy, not the default one (one device)."""
    return tf.distribute.has_strategy() or strategy is not tf.distribute.get_strategy()


def warm_up(model, batch_size):
    """Compiles fast mode's XLA loop for `fit` on `load_mnist` batches of
    `batch_size`, ahead of `fit`, e.g. while the data is read; it runs no step.

    `fit` finds it compiled, unless its epochs are shorter than
    `model.steps_per_execution` batches (it compiles that shape then).
    """
    execution = getattr(model, "execution", None)
    if execution is None:  # not compiled
        raise ValueError(_NOT_FAST)
    execution.warm_up(batch_size)


def _fit_exact_steps(model, keras_fit, x, y, steps_per_epoch, **kwargs):
    """Keras' `fit`, with `steps_per_execution` lowered for this call to a
    divisor of `steps_per_epoch`: Keras rounds an epoch up to whole calls
    (3 steps asked, 100 run). Off a terminal, with the plain progress lines."""
    if steps_per_epoch and kwargs.get("verbose", "auto") != 0 and not sys.stdout.isatty():
        progress = _Progress(steps_per_epoch, kwargs.get("verbose", "auto"),
                             kwargs.get("epochs", 1))
        kwargs.update(verbose=0, callbacks=[*(kwargs.get("callbacks") or []), progress])
    per_call = model.steps_per_execution or 1
    if not steps_per_epoch or steps_per_epoch % per_call == 0:
        return keras_fit(x, y, steps_per_epoch=steps_per_epoch, **kwargs)
    with _compat.steps_per_execution_set(model, math.gcd(steps_per_epoch, per_call)):
        return keras_fit(x, y, steps_per_epoch=steps_per_epoch, **kwargs)


def _steps_under_xla(model, steps, block, noise):
    """`steps` optimizer steps; the sums of their (loss, recon, kl) and the last loss."""

    def step(i, sums, last_loss):
        losses = model.optimizer_step(block[i], noise[i])
        return i + 1, [s + loss for s, loss in zip(sums, losses)], losses[0]

    _, sums, last_loss = tf.while_loop(
        lambda i, *_: i < steps, step,
        (tf.constant(0), [tf.constant(0.0)] * 3, model.step_loss_tracker.result()),
        parallel_iterations=1,
    )
    return sums, last_loss


def call_sizes(start, steps, max_steps, boundaries):
    """How many steps each call into TensorFlow runs, for an epoch of `steps`
    steps from step `start`: at most `max_steps`, ending at every boundary."""
    sizes, step, end = [], start, start + steps
    while step < end:
        size = min(max_steps, end - step)
        for period, offset in boundaries:
            size = min(size, (offset - step) % period or period)
        sizes.append(size)
        step += size
    return sizes


class InGraphFit:
    """Runs `fit`'s epochs as calls of an in-graph loop of steps over `stream`."""

    def __init__(self, execution, stream):
        self.execution, self.stream = execution, stream
        # No AutoGraph: the loop's control flow is explicit (tf.while_loop,
        # tf.cond), and converting the step's Python, Keras' optimizer
        # included, would cost the first call time for nothing.
        self._run_call = tf.function(self._call, autograph=False)
        self._draw = tf.function(self._draw_block, autograph=False)
        self._record = tf.function(self._record_sums, autograph=False)

    @property
    def model(self):
        return self.execution.model

    def _call(self, steps):
        """One call into TensorFlow: `steps` training steps; returns the metrics."""
        block = self.stream.next_block(steps)  # (steps, batch, 784)
        model = self.model
        if model.distribute_strategy.num_replicas_in_sync > 1:
            return self._distributed_call(steps, block)

        def step(i, logs):
            # The step is built for any batch size, as the TF1 graph's
            # placeholder was: with the batch size known, the graph came out
            # different, and the gradients' last bits too. The pixels need no
            # check: uint8 times 1/255 lies in [0, 1].
            x = tf.raw_ops.PlaceholderWithDefault(input=block[i], shape=[None, block.shape[-1]])
            return i + 1, model.update_metrics(*model.optimizer_step(x))

        # One step at a time: a step reads the weights the last one wrote.
        _, logs = tf.while_loop(lambda i, _: i < steps, step,
                                (tf.constant(0), model.get_metrics_result()),
                                parallel_iterations=1)
        return logs

    def _distributed_call(self, steps, block):
        """`_call`'s steps under the model's strategy: each step runs on every
        replica, each taking its rows of the global batch (its share known
        here, so found without a collective); the metrics are read once, at
        the end. In fast mode XLA computes each replica's gradients, from
        its rows of the noise drawn outside it."""
        model = self.model
        strategy = model.distribute_strategy
        total = block.shape[1]

        def replica_step(batch):
            x, share = replicas.rows_of(batch, total, strategy.num_replicas_in_sync)
            x = tf.raw_ops.PlaceholderWithDefault(input=x, shape=[None, batch.shape[-1]])
            if self.execution.fast:
                _, noise = replicas.share_and_noise(x, None, model.draw_normal, model.z_dim, share)
                losses, gradients = self.execution.xla_gradients()(x, noise, share)
                model.optimizer.apply(gradients, model.trainable_weights)
            else:
                losses = model.optimizer_step(x, share=share)
            model.update_metrics(*losses)  # each replica's share of the batch means
            return losses[0]

        def step(i, _):
            # Carried out of the loop, this replica's loss orders the steps.
            return i + 1, strategy.experimental_local_results(
                strategy.run(replica_step, args=(block[i],)))[0]

        _, last = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), tf.constant(0.0)),
                                parallel_iterations=1)
        with tf.control_dependencies([last]):
            return strategy.experimental_local_results(
                strategy.run(lambda: _metrics_reduced_together(model)))[0]

    def _fast_call(self, steps, block_size):
        """Fast mode: the steps compiled by XLA, their batches and noise drawn
        outside it (Keras' seeded noise is slow to draw inside XLA). Three
        calls into TensorFlow: the XLA loop's is the model's own
        (`Execution.xla_loop`), which `warm_up` may have compiled already."""
        steps = tf.constant(steps)
        block, noise = self._draw(steps, tf.constant(block_size))
        sums, last_loss = self.execution.xla_loop()(steps, block, noise)
        return self._record(steps, sums, last_loss)

    def _draw_block(self, steps, block_size):
        """The next `steps` batches and their noise, padded to `block_size`
        steps, so that XLA compiles one shape."""
        block = self.stream.next_block(steps)
        block = tf.pad(block, [[0, block_size - steps], [0, 0], [0, 0]])
        noise = keras.random.normal(
            (block_size, block.shape[1], self.model.z_dim), seed=self.model.seed_generator)
        return block, noise

    def _record_sums(self, steps, sums, last_loss):
        """The metrics take a call's sums at once, as `steps` updates would."""
        model = self.model
        for tracker, total in zip(
                (model.loss_tracker, model.recon_loss_tracker, model.kl_loss_tracker), sums):
            tracker_total, tracker_count = _compat.mean_state(tracker)
            tracker_total.assign_add(total)
            tracker_count.assign_add(tf.cast(steps, tracker_count.dtype))
        model.step_loss_tracker.update_state(last_loss)
        return model.get_metrics_result()

    def fit(self, keras_fit, steps_per_epoch, epochs=1, initial_epoch=0, callbacks=None,
            verbose="auto", **kwargs):
        """Calls Keras' `fit` so that its calls into TensorFlow run `call_sizes`' steps."""
        model = self.model
        per_call = max(1, int(model.steps_per_execution or 1))  # Keras' unit of steps
        # A block holds at most an epoch's worth of batches.
        block_size = min(per_call, self.stream.max_block())
        if isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = callbacks.callbacks
        callbacks = list(callbacks or [])
        boundaries = [b for c in callbacks for b in getattr(c, "execution_boundaries", ())]
        start = int(model.optimizer.iterations.numpy())
        epochs_sizes = [call_sizes(start + e * steps_per_epoch, steps_per_epoch, block_size,
                                   boundaries)
                        for e in range(epochs - initial_epoch)]
        calls = max(len(sizes) for sizes in epochs_sizes)  # Keras makes as many each epoch
        progress = _Progress(steps_per_epoch, verbose, epochs)
        done = {"epoch": 0, "call": 0}

        def train_function(iterator):
            sizes = epochs_sizes[min(done["epoch"], len(epochs_sizes) - 1)]
            steps = sizes[done["call"]] if done["call"] < len(sizes) else 0
            done["call"] += 1
            if done["call"] == calls:
                done["epoch"], done["call"] = done["epoch"] + 1, 0
            if steps == 0:  # an epoch of fewer calls than the longest
                return model.get_metrics_result()
            if self.execution.fast and model.distribute_strategy.num_replicas_in_sync == 1:
                return self._fast_call(steps, block_size)
            return self._run_call(tf.constant(steps))

        self.stream.start()
        with _compat.train_function_replaced(model, train_function):
            return keras_fit(
                _stand_in_dataset(), steps_per_epoch=calls * per_call, epochs=epochs,
                initial_epoch=initial_epoch, callbacks=[*callbacks, progress], verbose=0,
                **{**kwargs, "shuffle": False},
            )


def _metrics_reduced_together(model):
    """In a replica: the model's metric results, their variables summed over
    the replicas in one all-reduce (read one by one, as Keras would, each
    variable takes an all-reduce of its own). The VAE's metric variables
    aggregate by sum (`Mean`'s) or by mean (`LastValue`'s)."""
    variables = [v for metric in model.metrics for v in metric.variables]
    local = [tf.reshape(tf.cast(v.value, tf.float32), [-1]) for v in variables]
    summed = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, tf.concat(local, axis=0))
    replicas = model.distribute_strategy.num_replicas_in_sync
    values = []
    for v, part in zip(variables, tf.split(summed, [int(t.shape[0]) for t in local])):
        part = part / replicas if v.aggregation == "mean" else part
        values.append(tf.cast(tf.reshape(part, v.shape), v.dtype))
    results, start = {}, 0
    for metric in model.metrics:
        count = len(metric.variables)
        results[metric.name] = metric.stateless_result(values[start:start + count])
        start += count
    return results


def _stand_in_dataset():
    """What Keras' epoch loop iterates over; the batches come from the stream."""
    return tf.data.Dataset.from_tensors(tf.zeros([1])).repeat()


class _Progress(keras.callbacks.Callback):
    """Keras' progress bar (plain lines off a terminal), counting the steps actually run."""

    def __init__(self, steps, verbose, epochs):
        super().__init__()
        self.steps, self.epochs = steps, epochs
        self.verbose = 0 if verbose == 0 else (2 if verbose == 2 else 1)

    def on_epoch_begin(self, epoch, logs=None):
        self._first = int(self.model.optimizer.iterations.numpy())
        if self.verbose:
            if self.epochs > 1:
                print(f"Epoch {epoch + 1}/{self.epochs}")
            self._bar = progress_bar(self.steps, verbose=self.verbose,
                                     stateful_metrics=[m.name for m in self.model.metrics])

    def on_train_batch_end(self, batch, logs=None):
        if not self.verbose:
            return
        done = int(self.model.optimizer.iterations.numpy()) - self._first
        if done < self.steps:  # the epoch's end finishes the bar
            self._bar.update(done, _values(logs), finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose:
            self._bar.update(self.steps, _values(logs), finalize=True)


def _values(logs):
    return [(name, float(value)) for name, value in (logs or {}).items()]
