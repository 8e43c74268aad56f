"""Tests of legacy_tf1: the TF1 input_data stand-in, the graph builder, the script."""

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from legacy_tf1 import input_data
from tests.mnist_files import FILES

REPO = Path(__file__).resolve().parents[1]


# --- input_data.DataSet.next_batch ---------------------------------------------


def _toy(n=10, seed=3):
    """A DataSet whose image i is [i, i] and whose label is i + 100 (alignment check)."""
    images = np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1)
    labels = np.arange(n) + 100
    return input_data.DataSet(images, labels, seed=seed)


def _ids(batch):
    images, labels = batch
    np.testing.assert_array_equal(labels, images[:, 0] + 100)  # rows stay paired
    return images[:, 0].astype(int).tolist()


def test_next_batch_first_epoch_is_a_seeded_permutation():
    data = _toy(seed=3)
    rng = np.random.RandomState(3)
    perm = rng.permutation(10)
    assert perm.tolist() != list(range(10))
    assert _ids(data.next_batch(4)) == perm[:4].tolist()
    assert _ids(data.next_batch(4)) == perm[4:8].tolist()
    assert data.epochs_completed == 0
    assert data.num_examples == 10


def test_next_batch_crosses_epoch_end_into_a_reshuffled_epoch():
    data = _toy(seed=3)
    rng = np.random.RandomState(3)
    first = rng.permutation(10)
    second = first[rng.permutation(10)]  # TF1 shuffles the already shuffled order
    assert first.tolist() != second.tolist()
    data.next_batch(4)
    data.next_batch(4)
    # 2 left in epoch 1, then the first 2 of the freshly shuffled epoch 2.
    assert _ids(data.next_batch(4)) == first[8:].tolist() + second[:2].tolist()
    assert data.epochs_completed == 1
    assert _ids(data.next_batch(4)) == second[2:6].tolist()
    assert _ids(data.next_batch(4)) == second[6:10].tolist()
    assert data.epochs_completed == 1


def test_next_batch_exact_epoch_end_as_tf1():
    data = _toy(n=8, seed=0)
    rng = np.random.RandomState(0)
    first = rng.permutation(8)
    second = first[rng.permutation(8)]
    assert _ids(data.next_batch(4)) + _ids(data.next_batch(4)) == first.tolist()
    assert data.epochs_completed == 0  # TF1 counts the epoch at the next call
    assert _ids(data.next_batch(4)) == second[:4].tolist()
    assert data.epochs_completed == 1


def test_next_batch_without_shuffle_runs_in_order():
    data = _toy(seed=3)
    assert _ids(data.next_batch(4, shuffle=False)) == [0, 1, 2, 3]
    assert _ids(data.next_batch(4, shuffle=False)) == [4, 5, 6, 7]
    assert _ids(data.next_batch(4, shuffle=False)) == [8, 9, 0, 1]
    assert data.epochs_completed == 1


def test_next_batch_seed_reproducibility():
    a, b, c = _toy(seed=7), _toy(seed=7), _toy(seed=8)
    batches_a = [_ids(a.next_batch(3)) for _ in range(8)]
    assert batches_a == [_ids(b.next_batch(3)) for _ in range(8)]
    assert batches_a != [_ids(c.next_batch(3)) for _ in range(8)]


def test_next_batch_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size=11"):
        _toy().next_batch(11)
    with pytest.raises(ValueError, match="batch_size=0"):
        _toy().next_batch(0)


def test_dense_to_one_hot():
    one_hot = input_data.dense_to_one_hot(np.array([3, 0, 9], dtype=np.uint8))
    assert one_hot.shape == (3, 10)
    np.testing.assert_array_equal(one_hot.argmax(1), [3, 0, 9])
    np.testing.assert_array_equal(one_hot.sum(1), [1, 1, 1])


# --- input_data.read_data_sets on the real MNIST --------------------------------


@pytest.mark.real_mnist(reason="checks read_data_sets' splits of the published files and their statistics")
def test_read_data_sets_real_mnist(real_mnist_dir):
    mnist = input_data.read_data_sets(str(real_mnist_dir), one_hot=True, seed=0)
    sizes = {"train": 55000, "validation": 5000, "test": 10000}
    for name, size in sizes.items():
        data = getattr(mnist, name)
        assert data.num_examples == size
        assert data.images.shape == (size, 784) and data.images.dtype == np.float32
        assert data.labels.shape == (size, 10)
        np.testing.assert_array_equal(data.labels.sum(1), np.ones(size))
        assert data.images.min() == 0.0 and data.images.max() == np.float32(1.0)
    # The original's scaling: float32(pixel) * float32(1/255), exactly.
    pixels = np.round(mnist.test.images * 255).astype(np.uint8)
    np.testing.assert_array_equal(
        mnist.test.images, pixels.astype(np.float32) * np.float32(1.0 / 255.0))
    # validation + train is the whole training file (README: label counts, pixel mean).
    labels = np.concatenate([mnist.validation.labels, mnist.train.labels]).argmax(1)
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    mean = (mnist.validation.images.sum(dtype=np.float64)
            + mnist.train.images.sum(dtype=np.float64)) / (60000 * 784)
    # Summed in float64 (exact to ~1e-12); the published 0.1307 is to 4 decimals.
    assert abs(mean - 0.1307) < 5e-4
    # next_batch serves real batches.
    X_mb, y_mb = mnist.train.next_batch(64)
    assert X_mb.shape == (64, 784) and y_mb.shape == (64, 10)


# --- independence from the port -------------------------------------------------


@pytest.mark.slow
def test_the_reference_imports_nothing_of_keras_vae():
    code = (
        "import sys; sys.modules['keras_vae'] = None; "  # any import of keras_vae fails
        "import legacy_tf1.input_data, legacy_tf1.vae_tf1"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def _assert_both_data_paths_agree(directory):
    """The reference's read_data_sets and the port's readers give the same bytes."""
    from keras_vae.data.batches import load_mnist
    from keras_vae.data.idx import read_mnist, scale_pixels

    mnist = input_data.read_data_sets(str(directory), seed=0)  # not shuffled before next_batch
    for split, data in (("train[5000:]", mnist.train), ("train[:5000]", mnist.validation),
                        ("test", mnist.test)):
        images, labels = read_mnist(directory, split)
        assert labels.tobytes() == data.labels.tobytes(), split
        assert scale_pixels(images).tobytes() == data.images.tobytes(), split
        # And scaled by TensorFlow, as load_mnist's batches are.
        batches = load_mnist(split, 1000, directory, shuffle=False, repeat=False)
        assert np.concatenate([b.numpy() for b in batches]).tobytes() == data.images.tobytes()
    assert 0 < mnist.train.images.mean() < 0.5  # images, not zeros


def test_both_data_paths_agree_on_synthetic_files(synthetic_mnist_dir):
    _assert_both_data_paths_agree(synthetic_mnist_dir)


@pytest.mark.real_mnist(reason="the two readers must agree on the published files themselves")
def test_both_data_paths_agree_on_the_real_files(real_mnist_dir):
    _assert_both_data_paths_agree(real_mnist_dir)


@pytest.mark.parametrize("problem, message", [
    ("magic", "Invalid magic number 2049 in MNIST image file"),
    ("truncated", "truncated"),
])
def test_read_data_sets_refuses_a_bad_file(tmp_path, synthetic_mnist_dir, problem, message):
    shutil.copytree(synthetic_mnist_dir, tmp_path, dirs_exist_ok=True)
    images = tmp_path / FILES["train_images"]
    if problem == "magic":  # a labels file where the images belong
        shutil.copy(tmp_path / FILES["train_labels"], images)
    else:
        images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-100]))
    with pytest.raises(ValueError, match=message):
        input_data.read_data_sets(str(tmp_path))


# --- vae_tf1.build_graph --------------------------------------------------------


@pytest.fixture(scope="module")
def tf1():
    import tensorflow as tf

    return tf.compat.v1


@pytest.fixture(scope="module")
def vae_tf1():
    from legacy_tf1 import vae_tf1

    return vae_tf1


def _initial_values(seed=0):
    rng = np.random.RandomState(seed)
    shapes = {
        "Q_W1": (784, 128), "Q_b1": (128,), "Q_W2_mu": (128, 100), "Q_b2_mu": (100,),
        "Q_W2_sigma": (128, 100), "Q_b2_sigma": (100,), "P_W1": (100, 128),
        "P_b1": (128,), "P_W2": (128, 784), "P_b2": (784,),
    }
    return {name: (rng.randn(*shape) * (0.05 if len(shape) == 2 else 0.01)).astype(np.float32)
            for name, shape in shapes.items()}


def _batches(steps, seed=1, batch=64):
    rng = np.random.RandomState(seed)
    X = rng.rand(steps, batch, 784).astype(np.float32) * (rng.rand(steps, batch, 784) > 0.8)
    eps = rng.randn(steps, batch, 100).astype(np.float32)
    return X, eps


# float32's unit roundoff: one rounding errs by at most U times the value.
U = 2.0**-24


def _numpy_losses(w, X, eps):
    """The original's formulas in float64 NumPy: each example's recon and KL
    terms, and the logits."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    X = X.astype(np.float64)
    h = np.maximum(X @ w["Q_W1"] + w["Q_b1"], 0)
    z_mu = h @ w["Q_W2_mu"] + w["Q_b2_mu"]
    z_logvar = h @ w["Q_W2_sigma"] + w["Q_b2_sigma"]
    z = z_mu + np.exp(z_logvar / 2) * eps
    logits = np.maximum(z @ w["P_W1"] + w["P_b1"], 0) @ w["P_W2"] + w["P_b2"]
    recon = np.sum(np.maximum(logits, 0) - logits * X + np.log1p(np.exp(-np.abs(logits))), 1)
    kl = 0.5 * np.sum(np.exp(z_logvar) + z_mu**2 - 1. - z_logvar, 1)
    return recon, kl, logits


def _mean_error(float32, exact):
    """How far a float32 batch mean of per-example values may be from the
    exact mean, given the float32 per-example values `float32` the graph
    computes here (checked to be rounding: ~1e-7 relative in norm, where a
    wrong formula is ~1e-2 off): by the RMS of its examples' errors, which
    another order of the same float32 sums (other kernels) leaves of the
    same size (0.6x to 1.2x measured, tests/distribute/test_distribute.py's
    `_within_rounding`: 4x, and 16 U of the values for an error small by
    chance); plus the mean's own sum and division, B roundings of the mean
    of B positive values."""
    error, scale = np.linalg.norm(float32 - exact), np.linalg.norm(exact)
    assert error <= 2**-16 * scale, error / scale
    return (4 * error + 16 * U * scale) / np.sqrt(len(exact)) + len(exact) * U * exact.mean()


def test_build_graph_losses_match_numpy(tf1, vae_tf1):
    w = _initial_values()
    X, eps = _batches(1)
    vae = vae_tf1.build_graph(initial_values=w, feed_eps=True)
    assert sorted(vae.variables) == sorted(vae_tf1.VARIABLE_NAMES)
    with vae.graph.as_default():  # each example's terms, with the graph's ops on its tensors
        per_example_recon = tf1.reduce_sum(tf1.nn.sigmoid_cross_entropy_with_logits(
            logits=vae.logits, labels=vae.X), 1)
        per_example_kl = 0.5 * tf1.reduce_sum(
            tf1.exp(vae.z_logvar) + vae.z_mu**2 - 1. - vae.z_logvar, 1)
    with tf1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        recon, kl, loss, recon_32, kl_32 = sess.run(
            [vae.recon_loss, vae.kl_loss, vae.vae_loss, per_example_recon, per_example_kl],
            {vae.X: X[0], vae.eps: eps[0]})
    want_recon, want_kl, _ = _numpy_losses(w, X[0], eps[0])
    for name, value, float32, exact in (("recon", recon, recon_32, want_recon),
                                        ("kl", kl, kl_32, want_kl),
                                        ("loss", loss, recon_32 + kl_32, want_recon + want_kl)):
        assert abs(value - exact.mean()) <= _mean_error(float32, exact), name


def test_build_graph_one_step_is_tf1_adam_on_the_exposed_gradients(tf1, vae_tf1):
    w = _initial_values()
    X, eps = _batches(1)
    vae = vae_tf1.build_graph(initial_values=w, feed_eps=True)
    with tf1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        _, grads, logits_32 = sess.run([vae.solver, vae.gradients, vae.logits],
                                       {vae.X: X[0], vae.eps: eps[0]})
        after = sess.run(vae.variables)
    # d loss / d P_b2 = mean over the batch of sigmoid(logits) - X, each term
    # within 0.25 |logits - exact| of the float64 one (the sigmoid's slope)
    # and its ops' roundings (a few U of terms <= 2: 16 U); their sum over
    # the batch of B, in any order, within B U of the sum of their sizes.
    logits = _numpy_losses(w, X[0], eps[0])[2]
    terms = 1 / (1 + np.exp(-logits)) - X[0]
    batch = len(terms)
    allowed = (0.25 * np.abs(logits_32 - logits) + 16 * U + batch * U * np.abs(terms)).mean(0)
    apart = np.abs(grads["P_b2"] - terms.mean(0))
    assert (apart <= allowed).all(), (apart.max(), (apart - allowed).max())
    # First Adam step (TF1's update rule), in float64 from the gradients it
    # applied and its kernel's float32 inputs: lr 1e-3, beta1 0.9, beta2
    # 0.999, epsilon 1e-8, and the beta powers, beta1 and beta2 at step 1.
    lr, beta1, beta2, epsilon = (np.float64(np.float32(v)) for v in (1e-3, 0.9, 0.999, 1e-8))
    lr_t = lr * np.sqrt(1 - beta2) / (1 - beta1)
    for name, g in grads.items():
        g = g.astype(np.float64)
        step = lr_t * ((1 - beta1) * g) / (np.sqrt((1 - beta2) * g * g) + epsilon)
        # The kernel's float32 roundings: 13 U of the update (3 in m, 4 in
        # sqrt(v) + epsilon, 4 in lr_t, 2 in the update), counted twice over
        # (for kernels of approximate sqrt or division); and the weight's own
        # rounding, half an ulp, counted twice.
        moved = w[name] - after[name].astype(np.float64)
        allowed = 26 * U * np.abs(step) + np.spacing(np.maximum(np.abs(w[name]),
                                                                np.abs(after[name])))
        apart = np.abs(moved - step)
        assert (apart <= allowed).all(), (name, apart.max(), (apart - allowed).max())


def test_build_graph_feed_eps(tf1, vae_tf1):
    X, eps = _batches(1)
    vae = vae_tf1.build_graph(initial_values=_initial_values(), feed_eps=True)
    assert vae.eps.op.type == "PlaceholderWithDefault"
    with tf1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        mu, logvar, z = sess.run([vae.z_mu, vae.z_logvar, vae.z_sample],
                                 {vae.X: X[0], vae.eps: eps[0]})
        # Elementwise ops only, in float32 here and in NumPy: two exps within 4
        # ulp (8 U) each, and a product and a sum rounded on each side, at most
        # 20 U of |mu| + |exp(logvar / 2) eps|; 32 U.
        scaled = np.exp(logvar / 2) * eps[0]
        apart = np.abs(z - (mu + scaled))
        assert (apart <= 32 * U * (np.abs(mu) + np.abs(scaled))).all(), apart.max()
        fed = [sess.run(vae.vae_loss, {vae.X: X[0], vae.eps: eps[0]}) for _ in range(2)]
        drawn = [sess.run(vae.vae_loss, {vae.X: X[0]}) for _ in range(2)]
    assert fed[0] == fed[1]
    assert drawn[0] != drawn[1]  # the default is still the original's random_normal
    plain = vae_tf1.build_graph()
    assert plain.eps.op.type != "PlaceholderWithDefault"


def test_build_graph_default_init_and_eager_left_on(tf1, vae_tf1):
    import tensorflow as tf

    vae = vae_tf1.build_graph(seed=0)
    assert tf.executing_eagerly()  # built in its own graph; eager is not switched off
    with tf1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        values = sess.run(vae.variables)
    for name, value in values.items():
        if value.ndim == 1:
            assert not value.any(), name  # zero biases
        else:  # xavier_init: N(0, 1 / sqrt(in_dim / 2)); statistical: the std of
            # n >= 12,800 draws is within 1 / sqrt(2 n) (0.6%) at one standard error
            assert abs(value.std() / np.sqrt(2 / value.shape[0]) - 1) < 0.05, name
    with pytest.raises(ValueError, match="missing=\\['P_b2'\\]"):
        vae_tf1.build_graph(initial_values={k: v for k, v in _initial_values().items() if k != "P_b2"})


def test_build_graph_training_is_deterministic(tf1, vae_tf1):
    steps = 100
    w = _initial_values()
    X, eps = _batches(steps)
    vae = vae_tf1.build_graph(initial_values=w, feed_eps=True)
    runs = []
    for _ in range(2):
        with tf1.Session(graph=vae.graph) as sess:
            sess.run(vae.init)
            losses = [sess.run([vae.solver, vae.vae_loss], {vae.X: X[i], vae.eps: eps[i]})[1]
                      for i in range(steps)]
            runs.append((np.array(losses), sess.run(vae.variables)))
    (losses_a, vars_a), (losses_b, vars_b) = runs
    assert losses_a[-1] < losses_a[0]
    np.testing.assert_array_equal(losses_a, losses_b)
    for name in vae_tf1.VARIABLE_NAMES:
        np.testing.assert_array_equal(vars_a[name], vars_b[name], err_msg=name)
        assert not np.array_equal(vars_a[name], w[name]), name  # every variable trained


# --- python -m legacy_tf1.vae_tf1 ------------------------------------------------


@pytest.mark.slow
def test_script_end_to_end(synthetic_mnist_dir, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    result = subprocess.run(
        [sys.executable, "-m", "legacy_tf1.vae_tf1", "--data-dir", str(synthetic_mnist_dir),
         "--iters", "1001", "--out", str(out), "--seed", "0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.findall(r"^Iter: (\d+)$", result.stdout, re.M) == ["0", "1000"]
    losses = [float(x) for x in re.findall(r"^Loss: (\S+)$", result.stdout, re.M)]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert sorted(p.name for p in out.iterdir()) == ["000.png", "001.png"]
    for png in out.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
