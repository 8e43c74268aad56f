"""SavedModel export, checked by real consumers: a process without keras_vae,
and saved_model_cli."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import __version__, parity
from keras_vae.model import VAE
from keras_vae.saving import saved_model
from keras_vae.saving.keras_file import load_model, save_model
from tests.conftest import REPO, run_keras_vae as keras_vae

SIGNATURES = ("serving_default", "encode", "decode", "reconstruct", "sample_from_z",
              "reconstruct_sampled", "sample")

# Runs in `python -I` from an empty directory, with keras_vae made unimportable:
# what a serving process sees.
CONSUMER = """
import sys
sys.modules["keras_vae"] = None  # any import of keras_vae now fails
import numpy as np
import tensorflow as tf

export_dir, inputs_path, outputs_path = sys.argv[1:]
inputs = np.load(inputs_path)
loaded = tf.saved_model.load(export_dir)
sig = loaded.signatures
out = {}
for name, arg in (("encode", "x"), ("reconstruct", "x"), ("serving_default", "x")):
    for key, value in sig[name](**{arg: tf.constant(inputs["x"])}).items():
        out[f"{name}/{key}"] = value.numpy()
for key, value in sig["decode"](z=tf.constant(inputs["z"])).items():
    out[f"decode/{key}"] = value.numpy()
for i in range(2):
    out[f"sample{i}"] = sig["sample"](n=tf.constant(5), seed=tf.constant(11, tf.int64))["prob"].numpy()
out["sample_other_seed"] = sig["sample"](n=tf.constant(5), seed=tf.constant(12, tf.int64))["prob"].numpy()
try:
    import keras_vae  # noqa: F401
    out["keras_vae_importable"] = np.array(True)
except ImportError:
    out["keras_vae_importable"] = np.array(False)
np.savez(outputs_path, **out)
"""


# float32's unit roundoff: one rounding errs by at most U times the value.
U = 2.0**-24


def _numpy_encode(weights, x):
    """Q(z|X) in float64 NumPy from the formulas: z_mu and z_logvar."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    h = np.maximum(x @ w["Q_W1"] + w["Q_b1"], 0.0)
    return h @ w["Q_W2_mu"] + w["Q_b2_mu"], h @ w["Q_W2_sigma"] + w["Q_b2_sigma"]


def _numpy_decode(weights, z):
    """P(X|z) in float64 NumPy from the formulas: prob and logits."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    logits = np.maximum(z @ w["P_W1"] + w["P_b1"], 0.0) @ w["P_W2"] + w["P_b2"]
    return 1 / (1 + np.exp(-logits)), logits


def _assert_within_rounding(value, keras_value, exact, name):
    """`value` (the SavedModel's) is `exact` (in float64) but for float32
    rounding, as `keras_value` (keras_vae's, eager) is here.

    `keras_value`'s error, in norm, is checked to be rounding (~1e-7
    relative; other weights or inputs are ~1e-2 away or more). The
    SavedModel runs traced, perhaps on other kernels: the same terms
    rounded, so an error of the same size (0.6x to 1.2x measured;
    tests/distribute/test_distribute.py's `_within_rounding`), 4x; and 16 U
    of the value for an eager error small by chance."""
    scale = np.linalg.norm(exact)
    keras_error = np.linalg.norm(keras_value - exact)
    assert keras_error <= 2**-16 * scale, (name, "keras_vae", keras_error / scale)
    error = np.linalg.norm(value - exact)
    assert error <= 4 * keras_error + 16 * U * scale, (name, error / scale, keras_error / scale)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained for a few steps, its .keras file, and its export."""
    keras.utils.set_random_seed(0)
    model = VAE()
    model.compile()
    x = np.random.default_rng(0).random((5 * 64, 784)).astype(np.float32)
    model.fit(x, batch_size=64, verbose=0)
    root = tmp_path_factory.mktemp("export")
    save_model(model, root / "vae.keras")
    export_dir = model.export(root / "saved")
    return model, root, export_dir


@pytest.mark.slow
def test_another_process_without_keras_vae_gets_the_same_outputs(trained, tmp_path):
    model, _, export_dir = trained
    rng = np.random.default_rng(1)
    x = rng.random((7, 784)).astype(np.float32)
    z = rng.standard_normal((7, 100)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", x=x, z=z)
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-I", "-c", CONSUMER, export_dir,
         tmp_path / "inputs.npz", tmp_path / "outputs.npz"],
        capture_output=True, text=True, cwd=workdir, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = np.load(tmp_path / "outputs.npz")
    assert not out["keras_vae_importable"]

    weights = parity.get_tf1_weights(model)
    exact_mu, exact_logvar = _numpy_encode(weights, x)
    exact = {"encode/z_mu": exact_mu, "encode/z_logvar": exact_logvar}
    z_mu, z_logvar = model.encode(x)
    here = {"encode/z_mu": z_mu, "encode/z_logvar": z_logvar}
    for name, (z_exact, z_here) in (("decode", (z, z)), ("reconstruct", (exact_mu, z_mu)),
                                    ("serving_default", (exact_mu, z_mu))):
        exact.update(zip((f"{name}/prob", f"{name}/logits"), _numpy_decode(weights, z_exact)))
        here.update(zip((f"{name}/prob", f"{name}/logits"), model.decode(z_here)))
    assert set(exact) <= set(out)
    for key in exact:
        _assert_within_rounding(out[key], np.asarray(here[key]), exact[key], key)
    assert out["sample0"].shape == (5, 784)
    np.testing.assert_array_equal(out["sample0"], out["sample1"])  # one graph, run twice
    assert not np.array_equal(out["sample0"], out["sample_other_seed"])


def test_metadata_is_readable_without_tensorflow(trained):
    model, _, export_dir = trained
    with open(os.path.join(export_dir, "assets.extra", "keras_vae.json")) as f:
        metadata = json.load(f)
    assert metadata == {
        "x_dim": 784, "h_dim": 128, "z_dim": 100, "beta": 1.0, "trained_with": {},
        "keras_vae_version": __version__, "training_steps": 5, "format_version": 1,
        "max_samples": 10_000,
    }


def _saved_model_cli(*args):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return subprocess.run(
        [cli, *map(str, args)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.mark.slow
def test_saved_model_cli_lists_and_runs_the_signatures(trained, tmp_path):
    _, _, export_dir = trained
    show = _saved_model_cli("show", "--dir", export_dir, "--all")
    assert show.returncode == 0, show.stderr[-2000:]
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in show.stdout
    for name in ("inputs['x']", "inputs['z']", "inputs['n']", "inputs['seed']",
                 "outputs['z_mu']", "outputs['z_logvar']", "outputs['prob']",
                 "outputs['logits']"):
        assert name in show.stdout
    # TF 2.21's saved_model_cli evaluates --input_exprs with literal_eval
    # only, so `np.zeros(...)` is refused there; a literal or a .npy file
    # carries the same zeros.
    zeros = np.zeros((2, 100), np.float32)
    np.save(tmp_path / "zeros.npy", zeros)
    for inputs in (
        ["--input_exprs", "z=" + repr(zeros.tolist())],
        ["--inputs", f"z={tmp_path / 'zeros.npy'}"],
    ):
        run = _saved_model_cli(
            "run", "--dir", export_dir, "--tag_set", "serve", "--signature_def", "decode",
            *inputs,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert len(_rows(run.stdout, "prob")) == 2
        assert len(_rows(run.stdout, "logits")) == 2


def _rows(stdout, key):
    """The rows of one output that `saved_model_cli run` prints: one `[...]` each."""
    block = stdout.split(f"Result for output key {key}:")[1].split("Result for")[0]
    return [line for line in block.splitlines() if line.strip().startswith("[")]


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("decode", tf.zeros((2, 5)), r"\(None, 100\)"),
        ("decode", tf.zeros((2, 100, 1)), r"\(None, 100\)"),
        ("encode", tf.zeros((2, 28)), r"\(None, 784\)"),
        ("decode", tf.zeros((2, 100), tf.float64), "float"),
    ],
)
def test_wrong_input_names_what_is_expected(trained, name, value, expected):
    _, _, export_dir = trained
    signature = tf.saved_model.load(export_dir).signatures[name]
    arg = "z" if name == "decode" else "x"
    with pytest.raises(Exception, match=expected):
        signature(**{arg: value})


def test_keras_file_and_saved_model_decode_alike(trained):
    _, root, export_dir = trained
    z = np.random.default_rng(2).standard_normal((4, 100)).astype(np.float32)
    loaded = load_model(root / "vae.keras")
    from_keras, _ = loaded.decode(z)
    from_saved = tf.saved_model.load(export_dir).signatures["decode"](z=tf.constant(z))
    # The signature runs traced, `decode` here eagerly: not always the same
    # kernels, so not bits; both within float32 rounding of the decoding in float64.
    exact, _ = _numpy_decode(parity.get_tf1_weights(loaded), z)
    _assert_within_rounding(from_saved["prob"].numpy(), from_keras.numpy(), exact, "prob")


def test_existing_target_is_refused_and_left_untouched(trained):
    model, root, _ = trained
    target = root / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        model.export(target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    model.export(target, overwrite=True)
    assert (target / "saved_model.pb").is_file() and not (target / "keep.txt").exists()
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []


def test_a_failed_export_leaves_nothing(trained, monkeypatch):
    model, root, _ = trained
    from keras_vae.saving import saved_model as export

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(export, "_write_metadata", fail)
    with pytest.raises(OSError, match="disk full"):
        model.export(root / "failed")
    assert not (root / "failed").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []


def _holds_a_file(directory):
    """Whether `directory` exists with a file in it (or in a subdirectory)."""
    return any(files for _, _, files in os.walk(directory))


@pytest.mark.slow
def test_killing_an_export_never_leaves_a_partial_target(trained, tmp_path):
    _, root, _ = trained
    target = tmp_path / "saved"
    proc = subprocess.Popen(
        [sys.executable, "-m", "keras_vae", "export", "--model", root / "vae.keras",
         "--out", target],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    temporary = tmp_path / f".saved.tmp-{proc.pid}"  # the export's
    while proc.poll() is None and not _holds_a_file(temporary):
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the export ended before it was killed"
    assert _holds_a_file(temporary)  # the kill landed while it was being written
    assert not target.exists()

    run = keras_vae("export", "--model", root / "vae.keras", "--out", target)
    assert run.returncode == 0, run.stderr[-2000:]
    assert set(SIGNATURES) <= set(tf.saved_model.load(str(target)).signatures)
    with open(target / "assets.extra" / "keras_vae.json") as f:
        assert json.load(f)["training_steps"] == 5


@pytest.mark.slow
def test_train_refuses_an_existing_export_before_training(tmp_path, synthetic_mnist_dir):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    run = keras_vae(
        "train", "--data-dir", synthetic_mnist_dir, "--iters", 20, "--verbose", 0,
        "--out", tmp_path / "grids", "--checkpoint-dir", tmp_path / "ck", "--export", taken,
    )
    assert run.returncode == 2
    assert f"{taken} already exists" in run.stderr and "--overwrite" in run.stderr
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    assert (taken / "keep.txt").read_text() == "mine"
    # Nothing trained: a run of 20 steps would have written 000.png and ckpt-000000020.*.
    assert list((tmp_path / "grids").glob("*.png")) == []
    assert list((tmp_path / "ck").glob("ckpt-*")) == []


@pytest.mark.slow
def test_cli_export_and_train_export(trained, tmp_path, synthetic_mnist_dir):
    _, root, _ = trained
    run = keras_vae("export", "--model", root / "vae.keras", "--out", tmp_path / "a")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "a" / "saved_model.pb").is_file()
    again = keras_vae("export", "--model", root / "vae.keras", "--out", tmp_path / "a")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    run = keras_vae(
        "train", "--data-dir", synthetic_mnist_dir, "--iters", 20, "--out", tmp_path / "grids",
        "--export", tmp_path / "b", "--verbose", 0,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    with open(tmp_path / "b" / "assets.extra" / "keras_vae.json") as f:
        assert json.load(f)["training_steps"] == 20


def _ops(concrete):
    """Every op type in `concrete`'s graph and in the functions it calls."""
    graph = concrete.graph.as_graph_def()
    return {node.op for node in graph.node} | {
        node.op for function in graph.library.function for node in function.node_def}


def test_the_signatures_without_random_ops_are_the_models_own(trained):
    model, _, export_dir = trained
    signatures = tf.saved_model.load(export_dir).signatures
    random_ops = {name: sorted(op for op in _ops(signatures[name]) if "Random" in op)
                  for name in SIGNATURES}
    assert random_ops.pop("sample") and not any(random_ops.values()), random_ops
    rng = np.random.default_rng(3)
    x = rng.random((6, 784)).astype(np.float32)
    z, eps = rng.standard_normal((2, 6, 100)).astype(np.float32)
    weights = {name: getattr(model, name).numpy() for name in VAE.WEIGHTS}
    prob = signatures["sample_from_z"](z=tf.constant(z))["prob"].numpy()
    _assert_within_rounding(prob, model.decode(z)[0].numpy(), _numpy_decode(weights, z)[0],
                            "sample_from_z")
    z_mu, z_logvar = _numpy_encode(weights, x)
    exact = _numpy_decode(weights, z_mu + np.exp(z_logvar / 2) * eps)
    sampled = signatures["reconstruct_sampled"](x=tf.constant(x), eps=tf.constant(eps))
    mu, logvar = model.encode(x)
    by_keras = model.decode(model.reparameterize(mu, logvar, tf.constant(eps)))
    for key, value, keras_value, exact_value in zip(("prob", "logits"), (
            sampled["prob"], sampled["logits"]), by_keras, exact):
        _assert_within_rounding(value.numpy(), keras_value.numpy(), exact_value, key)
    with pytest.raises(tf.errors.InvalidArgumentError, match="a row per image"):
        signatures["reconstruct_sampled"](x=tf.constant(x), eps=tf.constant(eps[:5]))
    with pytest.raises(Exception, match=r"`eps` must be float32 of shape \(None, 100\)"):
        signatures["reconstruct_sampled"](x=tf.constant(x), eps=tf.zeros((6, 3)))


def test_sample_refuses_n_outside_the_limit_set_at_export(trained, tmp_path):
    model, _, export_dir = trained
    sample = tf.saved_model.load(export_dir).signatures["sample"]
    for n in (0, -1, 10_001, 10**8):
        with pytest.raises(tf.errors.InvalidArgumentError, match="from 1 to 10000, the limit"):
            sample(n=tf.constant(n), seed=tf.constant(0, tf.int64))
    assert sample(n=tf.constant(10_000), seed=tf.constant(0, tf.int64))["prob"].shape == (
        10_000, 784)
    small = tf.saved_model.load(model.export(tmp_path / "small", max_samples=7))
    with pytest.raises(tf.errors.InvalidArgumentError, match="--max-samples"):
        small.signatures["sample"](n=tf.constant(8), seed=tf.constant(0, tf.int64))
    assert small.signatures["sample"](n=tf.constant(7), seed=tf.constant(0, tf.int64))[
        "prob"].shape == (7, 784)
    with open(tmp_path / "small" / saved_model.METADATA) as f:
        assert json.load(f)["max_samples"] == 7
    with pytest.raises(ValueError, match="max_samples"):
        model.export(tmp_path / "none", max_samples=0)
    assert not (tmp_path / "none").exists()


def test_the_commands_default_limit_is_the_librarys():
    from keras_vae.cli import export

    assert export.MAX_SAMPLES == saved_model.MAX_SAMPLES


# Runs in a process of its own: its peak memory is the requests' alone.
HUGE_REQUESTS = """
import json, sys, time
import tensorflow as tf
sample = tf.saved_model.load(sys.argv[1]).signatures["sample"]
sample(n=tf.constant(1), seed=tf.constant(0, tf.int64))  # the first call's set-up
refused, seconds = [], []
for n in (0, -1, 10_001, 10**8):
    start = time.perf_counter()
    try:
        sample(n=tf.constant(n), seed=tf.constant(0, tf.int64))
    except tf.errors.InvalidArgumentError as error:
        refused.append("from 1 to 10000" in error.message)
    seconds.append(time.perf_counter() - start)
# VmHWM: this process's peak resident memory (getrusage's ru_maxrss would
# count the forking parent's too, which Linux keeps across exec).
with open("/proc/self/status") as f:
    peak_kib = int(next(line for line in f if line.startswith("VmHWM:")).split()[1])
print(json.dumps([refused, seconds, peak_kib]))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's VmHWM")
def test_huge_requests_are_refused_before_any_allocation(trained):
    _, _, export_dir = trained
    run = subprocess.run([sys.executable, "-c", HUGE_REQUESTS, str(export_dir)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert run.returncode == 0, run.stderr[-2000:]
    refused, seconds, peak_kib = json.loads(run.stdout.strip().splitlines()[-1])
    assert refused == [True] * 4
    # The bound, a behaviour's: a refusal is one comparison (about a
    # millisecond here), while drawing 10**8 rows of z would take minutes.
    assert max(seconds) < 1.0, seconds
    assert peak_kib < 2**20, peak_kib  # under 1 GiB; n = 10**8 alone would take 40 GB of z
