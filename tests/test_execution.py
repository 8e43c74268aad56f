"""fit's fast path: in-graph batches, planned executions, fast mode."""

import gc
import json
import subprocess
import sys
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import execution
from keras_vae.data.batches import load_mnist
from keras_vae.execution import call_sizes
from keras_vae.model import VAE
from keras_vae.training.callbacks import Checkpointer, SampleGrid
from tests.conftest import REPO, checkout_env, run_keras_vae
from tests.mnist_files import FILES, idx_bytes, write_gz


def _mnist(directory, n=2000, seed=0):
    """`n` random 28x28 training images (uint8) as IDX files."""
    directory.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), np.uint8)
    write_gz(directory / FILES["train_images"], idx_bytes(images))
    write_gz(directory / FILES["train_labels"], idx_bytes(np.zeros(n, np.uint8)))
    return directory


@pytest.mark.parametrize("initial_step", [0, 13])
def test_stream_blocks_are_the_datasets_batches(tmp_path, initial_step):
    # 300 images in batches of 16: an epoch every 18.75 batches, so blocks
    # and batches run across epoch ends.
    ds = load_mnist("train", 16, _mnist(tmp_path, n=300), seed=4, initial_step=initial_step)
    stream = ds.stream
    stream.start()
    next_block = tf.function(stream.next_block)
    sizes = [1, 18, 5, 18, 18, 7, 18, 18, 2]  # 105 batches: over 5 epochs
    blocks = np.concatenate([next_block(tf.constant(n)).numpy() for n in sizes])
    expected = np.stack([b.numpy() for b in ds.take(sum(sizes))])
    assert blocks.shape == expected.shape == (105, 16, 784)
    assert np.array_equal(blocks, expected)


def test_plan_ends_executions_at_every_boundary():
    # Grids after steps 0, 5, ... (iterations 1, 6, ...), checkpoints at 4, 8.
    executions = call_sizes(0, 10, 4, [(5, 1), (4, 0)])
    assert sum(executions) == 10 and max(executions) <= 4
    ends = np.cumsum(executions).tolist()
    assert {1, 6} <= set(ends) and {4, 8} <= set(ends) and ends[-1] == 10
    assert call_sizes(3, 10, 100, []) == [10]


def _train(data, steps_per_execution, steps=40, every=6, out=None, epochs=1):
    keras.utils.set_random_seed(2)
    model = VAE(h_dim=32, z_dim=8, seed=2)
    model.compile(steps_per_execution=steps_per_execution)
    callbacks = [SampleGrid(out, every=every, seed=1, verbose=False)] if out else []
    history = model.fit(data, steps_per_epoch=steps, epochs=epochs, verbose=0,
                        callbacks=callbacks)
    return model, history


def test_in_graph_fit_has_the_bits_of_one_step_per_call(tmp_path):
    ds = load_mnist("train", 16, _mnist(tmp_path / "data"), seed=4)
    through_tf_data = ds.map(lambda x: x)  # a plain tf.data.Dataset: Keras' own path
    assert isinstance(through_tf_data, tf.data.Dataset)
    reference, ref_history = _train(through_tf_data, 1, out=tmp_path / "a")
    assert reference.execution._runner is None  # it took Keras' own path
    for k, out in ((7, "b"), (100, "c")):
        model, history = _train(ds, k, out=tmp_path / out)
        assert int(model.optimizer.iterations.numpy()) == 40
        # Bits: both run the traced train_step, the same ops on the same
        # batches and noise, in one process (the parity paths' promise).
        for ours, theirs in zip(model.variables, reference.variables):
            assert np.array_equal(np.asarray(ours), np.asarray(theirs)), ours.name
        assert history.history == ref_history.history
        # The grids of steps 0, 6, ..., 36 are those of one step per call.
        grids = sorted(p.name for p in (tmp_path / out).iterdir())
        assert grids == [f"{i:03d}.png" for i in range(7)]
        for name in grids:
            assert (tmp_path / out / name).read_bytes() == (tmp_path / "a" / name).read_bytes()


def test_steps_per_epoch_is_exact_whatever_steps_per_execution(tmp_path):
    ds = load_mnist("train", 16, _mnist(tmp_path), seed=4)
    model, history = _train(ds, 7, steps=10, epochs=3)
    assert int(model.optimizer.iterations.numpy()) == 30
    assert len(history.history["loss"]) == 3


def test_checkpoints_fall_on_their_steps_with_many_steps_per_call(tmp_path):
    ds = load_mnist("train", 16, _mnist(tmp_path / "data"), seed=4)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(int(self.model.optimizer.iterations.numpy()))

    keras.utils.set_random_seed(2)
    model = VAE(h_dim=32, z_dim=8, seed=2)
    model.compile(steps_per_execution=50)
    model.fit(ds, steps_per_epoch=40, verbose=0,
              callbacks=[Checkpointer(str(tmp_path / "ck"), every=15), Record()])
    assert {15, 30} <= set(seen) and seen[-1] == 40
    assert sorted(p.name for p in (tmp_path / "ck").glob("*.keras")) == [
        "ckpt-000000015.keras", "ckpt-000000030.keras"]


def test_sample_grid_warns_when_a_call_skips_its_step(tmp_path):
    model = VAE(h_dim=32, z_dim=8)
    model.compile(steps_per_execution=4)
    x = np.random.default_rng(0).random((64, 784)).astype(np.float32)
    with pytest.warns(UserWarning, match="grid 000 shows the model after step 3, not 0"):
        model.fit(x, batch_size=8, verbose=0,
                  callbacks=[SampleGrid(tmp_path, every=100, verbose=False)])


def test_progress_bar_counts_the_steps_run(tmp_path, capsys):
    ds = load_mnist("train", 16, _mnist(tmp_path), seed=4)
    model = VAE(h_dim=32, z_dim=8)
    model.compile(steps_per_execution=7)
    model.fit(ds, steps_per_epoch=10, verbose=2)
    printed = capsys.readouterr().out
    assert "10/10" in printed and "loss:" in printed and "14/" not in printed


def _train_fast(ds, seed, out):
    keras.utils.set_random_seed(seed)
    model = VAE(h_dim=32, z_dim=8, seed=seed)
    model.compile(fast=True)
    # Grids after steps 0, 7, 14, ...: executions of 1, 7 and 6 steps, and
    # an epoch of 6 executions beside one of 5.
    history = model.fit(ds, steps_per_epoch=30, epochs=2, verbose=0,
                        callbacks=[SampleGrid(out, every=7, seed=1, verbose=False)])
    return model, history


@pytest.mark.slow
def test_fast_mode_trains_from_one_xla_compilation(tmp_path):
    data = _mnist(tmp_path / "data")
    model, history = _train_fast(load_mnist("train", 16, data, seed=4), 3, tmp_path / "a")
    assert model.steps_per_execution == 100
    assert int(model.optimizer.iterations.numpy()) == 60
    assert len(list((tmp_path / "a").iterdir())) == 9  # steps 0, 7, ..., 56
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[1] < losses[0]
    assert history.history["step_loss"][-1] > 0
    # Executions of 1, 6 and 7 steps, all padded to one shape: one trace.
    assert model.execution.fast and model.execution._runner is not None
    assert model.execution.xla_loop().experimental_get_tracing_count() == 1
    # The same seed, the same run: the same XLA program on the same inputs.
    again, _ = _train_fast(load_mnist("train", 16, data, seed=4), 3, tmp_path / "b")
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_warm_up_compiles_fast_mode_ahead_of_fit_and_runs_no_step(tmp_path):
    ds = load_mnist("train", 16, _mnist(tmp_path / "data"), seed=4)  # 125 batches an epoch
    keras.utils.set_random_seed(3)
    model = VAE(h_dim=32, z_dim=8, seed=3)
    model.compile(fast=True)
    model.optimizer.build(model.trainable_variables)
    before = [v.numpy() for v in (*model.weights, *model.optimizer.variables)]
    execution.warm_up(model, 16)
    after = [v.numpy() for v in (*model.weights, *model.optimizer.variables)]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations.numpy()) == 0
    model.fit(ds, steps_per_epoch=30, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 30
    # fit ran the loop warm_up traced (and XLA compiled), not one of its own.
    assert model.execution.xla_loop().experimental_get_tracing_count() == 1
    faithful = VAE(h_dim=32, z_dim=8)
    faithful.compile()
    with pytest.raises(ValueError, match=r"compile\(fast=True\)"):
        execution.warm_up(faithful, 16)


@pytest.mark.parametrize("fast", [False, True])
def test_a_model_fit_on_load_mnist_is_freed_once_dropped(tmp_path, fast):
    ds = load_mnist("train", 16, _mnist(tmp_path), seed=1)
    model = VAE(h_dim=8, z_dim=2)
    model.compile(fast=fast)
    model.fit(ds, steps_per_epoch=3, verbose=0)
    assert model.execution._runner is not None  # it ran in-graph
    dropped = weakref.ref(model)
    del model
    gc.collect()
    assert dropped() is None  # fit's runner and XLA loop kept no hold on it


@pytest.mark.slow
@pytest.mark.parametrize("fast", [False, True])
def test_train_reads_the_data_while_it_builds_the_model_and_the_grid(tmp_path,
                                                                     synthetic_mnist_dir, fast):
    # train() turns on op determinism for its whole process: a process of its own.
    script = f"""
import json, threading
from keras_vae.evaluation import grid
from keras_vae.training import run

readers, figures = [], []
read, plot = run.load_mnist, grid.plot
def load_mnist(*args, **kwargs):
    readers.append(threading.current_thread() is threading.main_thread())
    return read(*args, **kwargs)
def drawn(samples):
    figures.append(threading.current_thread() is threading.main_thread())
    return plot(samples)
run.load_mnist, grid.plot = load_mnist, drawn
outcome = run.train(iters=3, out={str(tmp_path / "out")!r}, data_dir={str(synthetic_mnist_dir)!r},
                seed=1, fast={fast}, verbose=0)
traces = outcome.model.execution.xla_loop().experimental_get_tracing_count() if {fast} else 1
print(json.dumps({{"main_thread_read": readers, "main_thread_figures": figures,
                  "step": outcome.step, "traces": traces}}))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=REPO, env=checkout_env(), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    # The data read in another thread; the grids' one figure drawn before the
    # step-0 grid, by the main thread while it waits for the data, or in fast
    # mode by the reader while XLA compiles; fast mode's loop compiled once:
    # warm_up's compile is the one fit used.
    assert found == {"main_thread_read": [False], "main_thread_figures": [not fast],
                     "step": 3, "traces": 1}
    assert (tmp_path / "out" / "000.png").exists()


@pytest.mark.real_mnist(reason="its tolerances were measured on how the real digits train")
def test_fast_mode_learns_as_faithful_mode_does(real_mnist_dir):
    losses = {}
    for fast in (False, True):
        keras.utils.set_random_seed(5)
        model = VAE(h_dim=32, z_dim=8, seed=5)
        model.compile(fast=fast, steps_per_execution=50)
        history = model.fit(load_mnist("train", 32, real_mnist_dir, seed=4), steps_per_epoch=100,
                            epochs=3, verbose=0)
        losses[fast] = history.history
    # Not the same bits, but the same training: statistical, as fast mode
    # draws its noise otherwise (and XLA rounds otherwise), so the runs take
    # their own paths, whose epoch means agree within 2% (KL 5%), measured on
    # the real digits.
    np.testing.assert_allclose(losses[True]["loss"], losses[False]["loss"], rtol=0.02)
    np.testing.assert_allclose(losses[True]["kl_loss"], losses[False]["kl_loss"], rtol=0.05)
    assert losses[True]["loss"][-1] < 0.9 * losses[True]["loss"][0]


def test_blocks_never_exceed_an_epoch(tmp_path):
    # 300 images in batches of 16: at most 18 batches a block, not 100.
    ds = load_mnist("train", 16, _mnist(tmp_path, n=300), seed=4)
    model, _ = _train(ds, 100, steps=45, out=tmp_path / "out")
    assert int(model.optimizer.iterations.numpy()) == 45
    assert len(list((tmp_path / "out").iterdir())) == 8  # steps 0, 6, ..., 42


@pytest.mark.slow
def test_cli_fast_mode_trains_and_writes_the_grids(tmp_path, synthetic_mnist_dir):
    run = run_keras_vae("train", "--fast", "--data-dir", synthetic_mnist_dir,
                        "--iters", 25, "--sample-every", 10, "--out", tmp_path / "out",
                        "--seed", 1, "--verbose", 0)
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "000.png", "001.png", "002.png"]
    assert [line for line in run.stdout.splitlines() if line.startswith("Iter:")] == [
        "Iter: 0", "Iter: 10", "Iter: 20"]


@pytest.mark.parametrize("steps_per_execution, steps, epochs", [(100, 3, 1), (7, 10, 2), (4, 10, 1)])
def test_fit_through_tf_data_runs_exactly_the_steps_asked(steps_per_execution, steps, epochs):
    x = np.random.default_rng(0).random((640, 784)).astype(np.float32)
    model = VAE(h_dim=8, z_dim=2)
    model.compile(steps_per_execution=steps_per_execution)
    data = tf.data.Dataset.from_tensor_slices(x).batch(64).repeat()  # no stream
    history = model.fit(data, steps_per_epoch=steps, epochs=epochs, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == steps * epochs
    assert len(history.history["loss"]) == epochs
    assert model.steps_per_execution == steps_per_execution  # as compiled


@pytest.mark.slow
def test_cli_batch_larger_than_the_split_trains_exactly_the_steps_asked(tmp_path,
                                                                       synthetic_mnist_dir):
    # 7,000 images in the synthetic train[5000:]: no in-graph stream can serve 7,001.
    run = run_keras_vae("train", "--data-dir", synthetic_mnist_dir, "--batch-size", 7001,
                        "--iters", 3, "--out", tmp_path / "out", "--save", tmp_path / "v.keras",
                        "--verbose", 0)
    assert run.returncode == 0, run.stderr[-2000:]
    from keras_vae.saving.keras_file import load_model

    assert int(load_model(tmp_path / "v.keras").optimizer.iterations.numpy()) == 3
