"""`VAE.fit`'s fast path: several steps per call, batches drawn in-graph.

When `fit` gets a dataset from `load_mnist` (which carries a `BatchStream`)
and `steps_per_epoch`, each call into TensorFlow runs up to
`steps_per_execution` steps of one `tf.while_loop`, drawing each batch
inside the loop. The arithmetic is the step's own, so the results are the
same bits as one step per call through `tf.data`.

An execution also ends after every step a callback must see the model at:
a callback lists those steps as `execution_boundaries`, pairs `(period,
offset)` meaning "after every step at which `optimizer.iterations % period
== offset`". So `SampleGrid` and `Checkpointer` see the model of their exact
step, whatever `steps_per_execution` is.

Fast mode (`compile(fast=True)`) runs the same loop compiled by XLA, with
each execution's noise drawn at once before it: not the same bits,
2.2 to 2.7x the faithful loop's speed on two cores (bench_train).
"""

import math

import keras
import tensorflow as tf


def fit(model, keras_fit, x, y=None, steps_per_epoch=None, **kwargs):
    """`model.fit` through `keras_fit` (Keras' own): in-graph on a stream from
    `load_mnist`, else through `tf.data` with exactly the steps asked."""
    stream = usable_stream(model, x, steps_per_epoch) if y is None else None
    if stream is None:
        return _fit_exact_steps(model, keras_fit, x, y, steps_per_epoch, **kwargs)
    fast = model.__dict__.get("_fast", False)
    runner = model.__dict__.get("_in_graph_fit")
    if runner is None or runner.stream is not stream or runner.fast != fast:
        runner = InGraphFit(model, stream, fast)
        model.__dict__["_in_graph_fit"] = runner  # untracked: not a weight
    return runner.fit(keras_fit, steps_per_epoch, **kwargs)


def _fit_exact_steps(model, keras_fit, x, y, steps_per_epoch, **kwargs):
    """Keras' `fit`, with `steps_per_execution` lowered for this call to a
    divisor of `steps_per_epoch`: Keras rounds an epoch up to whole executions
    (3 steps asked, 100 run)."""
    per_call = model.steps_per_execution or 1
    if not steps_per_epoch or steps_per_epoch % per_call == 0:
        return keras_fit(x, y, steps_per_epoch=steps_per_epoch, **kwargs)
    previous = model.train_function
    model.steps_per_execution = math.gcd(steps_per_epoch, per_call)
    model.train_function = None  # rebuilt for the new count
    try:
        return keras_fit(x, y, steps_per_epoch=steps_per_epoch, **kwargs)
    finally:
        model.steps_per_execution, model.train_function = per_call, previous


def usable_stream(model, x, steps_per_epoch):
    """`x`'s `BatchStream` if `fit` can draw from it in-graph, else None."""
    stream = getattr(x, "keras_vae_stream", None)
    if stream is None or not steps_per_epoch or model.run_eagerly:
        return None
    if tf.distribute.has_strategy():
        return None  # replicas each need their own batches: tf.data does that
    return stream


def plan(start, steps, per_execution, boundaries):
    """The steps of each execution of an epoch of `steps` steps from step `start`."""
    executions, step, end = [], start, start + steps
    while step < end:
        n = min(per_execution, end - step)
        for period, offset in boundaries:
            to_next = (offset - step) % period or period
            n = min(n, to_next)
        executions.append(n)
        step += n
    return executions


class InGraphFit:
    """Runs `fit` epochs as planned executions of an in-graph loop over `stream`."""

    def __init__(self, model, stream, fast=False):
        self.model, self.stream, self.fast = model, stream, fast
        self._run = tf.function(self._steps)
        self._fast_loop = tf.function(self._fast_loop_body, jit_compile=True)

    def _steps(self, n, block_size):
        block = self.stream.next_block(n)  # (n, batch, 784)
        if self.fast:
            return self._fast_steps(n, block, block_size)

        def body(i, logs):
            # The step is built for any batch size, as the TF1 graph's
            # placeholder was: with the batch size known, the graph came out
            # different, and the gradients' last bits too. The pixels need no
            # check: uint8 times 1/255 lies in [0, 1].
            x = tf.raw_ops.PlaceholderWithDefault(input=block[i], shape=[None, block.shape[-1]])
            return i + 1, self.model.track(*self.model.update(x))

        logs = self.model.get_metrics_result()
        # One iteration at a time: a step reads the weights the last one wrote.
        loop = tf.while_loop(lambda i, _: i < n, body, (tf.constant(0), logs),
                             parallel_iterations=1)
        return loop[1]

    def _fast_steps(self, n, block, block_size):
        """Fast mode: the loop compiled by XLA, its batches and noise drawn
        outside it (Keras' noise drawn inside XLA ran at a third of the
        speed). Padded to `block_size` steps, so XLA compiles it once."""
        model = self.model
        block = tf.pad(block, [[0, block_size - n], [0, 0], [0, 0]])
        noise = keras.random.normal(
            (block_size, block.shape[1], model.z_dim), seed=model.seed_generator)
        sums, last = self._fast_loop(n, block, noise)
        return model.track_sums(sums, n, last)

    def _fast_loop_body(self, n, block, noise):
        model = self.model

        def body(i, sums, last):
            losses = model.update(block[i], noise[i])
            return i + 1, [s + loss for s, loss in zip(sums, losses)], losses[0]

        zeros = [tf.constant(0.0)] * 3
        _, sums, last = tf.while_loop(
            lambda i, *_: i < n, body,
            (tf.constant(0), zeros, model.step_loss_tracker.result()),
            parallel_iterations=1,
        )
        return sums, last

    def fit(self, keras_fit, steps_per_epoch, epochs=1, initial_epoch=0, callbacks=None,
            verbose="auto", **kwargs):
        """Calls Keras' `fit` so that its calls into TensorFlow follow the plan."""
        model = self.model
        per_call = max(1, int(model.steps_per_execution or 1))  # Keras' unit of steps
        # A block holds at most an epoch's worth of batches.
        k = min(per_call, self.stream.max_block())
        if isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = callbacks.callbacks
        callbacks = list(callbacks or [])
        boundaries = [b for c in callbacks for b in getattr(c, "execution_boundaries", ())]
        start = int(model.optimizer.iterations.numpy())
        plans = [plan(start + e * steps_per_epoch, steps_per_epoch, k, boundaries)
                 for e in range(epochs - initial_epoch)]
        calls = max(len(p) for p in plans)
        progress = _Progress(steps_per_epoch, verbose, epochs)
        done = {"epoch": 0, "call": 0}

        def train_function(iterator):
            executions = plans[min(done["epoch"], len(plans) - 1)]
            n = executions[done["call"]] if done["call"] < len(executions) else 0
            done["call"] += 1
            if done["call"] == calls:
                done["epoch"], done["call"] = done["epoch"] + 1, 0
            if n == 0:  # an epoch of fewer executions than the longest
                return model.get_metrics_result()
            return self._run(tf.constant(n), tf.constant(k))

        model.optimizer.build(model.trainable_variables)
        self.stream.start()
        previous, model.train_function = model.train_function, train_function
        try:
            return keras_fit(
                _placeholder_dataset(), steps_per_epoch=calls * per_call, epochs=epochs,
                initial_epoch=initial_epoch, callbacks=[*callbacks, progress], verbose=0,
                **{**kwargs, "shuffle": False},
            )
        finally:
            model.train_function = previous


def _placeholder_dataset():
    """What Keras' epoch loop iterates over; the batches come from the stream."""
    return tf.data.Dataset.from_tensors(tf.constant(0)).repeat()


class _Progress(keras.callbacks.Callback):
    """Keras' progress bar, counting the steps actually run."""

    def __init__(self, steps, verbose, epochs):
        super().__init__()
        self.steps, self.epochs = steps, epochs
        self.verbose = 0 if verbose == 0 else (2 if verbose == 2 else 1)

    def on_epoch_begin(self, epoch, logs=None):
        self._first = int(self.model.optimizer.iterations.numpy())
        if self.verbose:
            if self.epochs > 1:
                print(f"Epoch {epoch + 1}/{self.epochs}")
            self._bar = keras.utils.Progbar(self.steps, verbose=self.verbose,
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
