"""keras-vae train's knobs and logs, through the CLI: --binarize, --beta,
--learning-rate, --log-dir and --eval-every change nothing they should not,
a resumed run continues them exactly, and what a run was trained with is
recorded in its .keras file, checkpoints and SavedModel."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae.evaluation.plots import read_metrics
from keras_vae.saving.keras_file import load_model
from keras_vae.training.checkpoints import list_checkpoints
from tests.conftest import run_keras_vae

SMALL = ("--h-dim", 16, "--z-dim", 4, "--sample-every", 50, "--seed", 3, "--verbose", 0)
KNOBS = ("--binarize", "--beta", "0.5", "--learning-rate", "0.002")


def _train(tmp_path, name, *args):
    run = run_keras_vae("train", *SMALL, "--out", tmp_path / name / "out", *args)
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def _raw_points(log_dir):
    """(tag, step) of every summary in all of `log_dir`'s event files, as stored."""
    points = []
    for name in sorted(os.listdir(log_dir)):
        if "tfevents" in name:
            for record in tf.data.TFRecordDataset(os.path.join(log_dir, name)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                points += [(value.tag, event.step) for value in event.summary.value]
    return points


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_mnist_dir):
    """One run straight to step 300 without logs, and the same run with logs
    and evaluations, stopped at 200 and resumed from its step-120 checkpoint."""
    tmp_path = tmp_path_factory.mktemp("runs")
    data = ("--data-dir", synthetic_mnist_dir, *KNOBS)
    _train(tmp_path, "plain", *data, "--iters", 300, "--save", tmp_path / "plain.keras")
    logged = (*data, "--log-dir", tmp_path / "logs", "--eval-every", 100,
              "--checkpoint-dir", tmp_path / "ck", "--checkpoint-every", 120)
    _train(tmp_path, "logged", *logged, "--iters", 200)
    points_before = _raw_points(tmp_path / "logs")
    # As if killed after step 200's logs but before its checkpoint.
    for path in (tmp_path / "ck").glob("ckpt-000000200.*"):
        path.unlink()
    resumed = _train(tmp_path, "logged", *logged, "--iters", 300,
                     "--save", tmp_path / "logged.keras", "--export", tmp_path / "export")
    return tmp_path, points_before, resumed


@pytest.mark.slow
def test_logs_and_evaluations_change_no_bit_and_resume_each_step_once(runs):
    tmp_path, points_before, resumed = runs
    assert "Resuming from" in resumed.stdout and "at step 120" in resumed.stdout
    # The first run had logged steps 0 ... 199; the resumed one dropped 150 and 199.
    assert ("loss", 150) in points_before and ("loss", 199) in points_before
    plain, logged = load_model(tmp_path / "plain.keras"), load_model(tmp_path / "logged.keras")
    for a, b in zip(plain.weights, logged.weights):
        assert np.array_equal(a.numpy(), b.numpy()), a.name
    points = _raw_points(tmp_path / "logs")
    assert len(points) == len(set(points)), "a step logged twice"
    steps = [0, 50, 100, 150, 200, 250, 299]
    for tag in ("loss", "recon_loss", "kl_loss"):
        assert sorted(step for t, step in points if t == tag) == steps
    assert sorted(step for t, step in points if t == "test_neg_elbo") == [0, 100, 200]
    assert sorted(step for t, step in points if t == "samples") == steps[:-1]
    metrics = read_metrics(tmp_path / "logs")
    assert list(metrics["step"]) == steps
    assert np.isfinite(metrics["test_neg_elbo"][[0, 2, 4]]).all()
    assert np.isnan(metrics["test_neg_elbo"][[1, 3, 5, 6]]).all()


@pytest.mark.slow
def test_a_run_records_its_data_and_knobs(runs, synthetic_mnist_dir):
    tmp_path, _, _ = runs
    expected = {"dataset": "mnist", "split": "train[5000:]", "binarize": True, "beta": 0.5,
                "learning_rate": 0.002, "batch_size": 64, "seed": 3}
    model = load_model(tmp_path / "logged.keras")
    assert model.trained_with.items() >= expected.items()
    assert (model.beta, model.h_dim, model.z_dim) == (0.5, 16, 4)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.002)
    (_, record, _), *_ = list_checkpoints(str(tmp_path / "ck"))
    with open(record) as f:
        assert json.load(f)["config"].items() >= expected.items()
    with open(tmp_path / "export" / "assets.extra" / "keras_vae.json") as f:
        exported = json.load(f)
    assert exported["trained_with"].items() >= expected.items() and exported["beta"] == 0.5
    # evaluate and plot default to the recorded data: binarized, as trained.
    run = run_keras_vae("evaluate", "--model", tmp_path / "logged.keras", "--data-dir",
                        synthetic_mnist_dir, "--k", "1,2", "--split", "test[:200]", "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.splitlines()[-1])["binarized"] is True
    run = run_keras_vae("plot", "curves", "--log-dir", tmp_path / "logs", "--out",
                        tmp_path / "curves.png")
    assert run.returncode == 0 and (tmp_path / "curves.png").stat().st_size > 0


@pytest.mark.slow
def test_a_resumed_run_refuses_other_knobs(runs, synthetic_mnist_dir):
    tmp_path, _, _ = runs
    common = ("--data-dir", synthetic_mnist_dir, "--checkpoint-dir", tmp_path / "ck",
              "--iters", 400, "--out", tmp_path / "other")
    for flags, message in [
        (("--beta", "1"), "with --beta 0.5, not 1.0. Resume with --beta 0.5"),
        (("--learning-rate", "0.001"), "with --learning-rate 0.002, not 0.001"),
        (("--dataset", "fashion_mnist"), "with --dataset mnist, not fashion_mnist"),
    ]:
        run = run_keras_vae("train", *SMALL, *common, *flags)
        assert run.returncode == 2 and message in run.stderr, run.stderr[-1000:]
    assert list_checkpoints(str(tmp_path / "ck"))[-1][0] == 300  # untouched


@pytest.mark.slow
def test_a_finished_run_asked_again_saves_its_model_without_its_settings(runs,
                                                                       synthetic_mnist_dir):
    tmp_path, _, _ = runs
    run = run_keras_vae("train", "--data-dir", synthetic_mnist_dir, "--checkpoint-dir",
                        tmp_path / "ck", "--iters", 300, "--out", tmp_path / "again",
                        "--verbose", 0, "--save", tmp_path / "again.keras")
    assert run.returncode == 0, run.stderr[-1000:]
    assert "nothing to train" in run.stdout
    model = load_model(tmp_path / "again.keras")  # the run's own settings, from its record
    assert (model.z_dim, model.beta, model.trained_with["seed"]) == (4, 0.5, 3)


def test_a_refused_setting_removes_no_grid(tmp_path, synthetic_mnist_dir):
    from keras_vae.training.run import UsageError, train

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "000.png").write_bytes(b"a grid")
    with pytest.raises(UsageError, match="a multiple of --sample-every"):
        train(iters=10, data_dir=str(synthetic_mnist_dir), out=str(tmp_path / "out"),
              overwrite=True, sample_every=50, eval_every=75, log_dir=str(tmp_path / "logs"))
    assert (tmp_path / "out" / "000.png").read_bytes() == b"a grid"


@pytest.mark.parametrize("flags, message", [
    (("--eval-every", 100), "--eval-every 100 needs --log-dir"),
    (("--log-dir", "L", "--eval-every", 75), "a multiple of --sample-every (50)"),
    (("--beta", "-1"), "expected a number >= 0"),
    (("--learning-rate", "nan"), "expected a finite number"),
    (("--data", "missing.npz"), "--data missing.npz: no such file"),
    (("--data", "x.npz", "--dataset", "mnist"), "not allowed with argument"),
])
def test_bad_knobs_get_a_clear_error(tmp_path, flags, message):
    run = run_keras_vae("train", *SMALL, "--out", tmp_path / "out", "--iters", 10, *flags,
                        cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr, run.stderr[-1000:]
    assert not os.path.exists(tmp_path / "out" / "000.png")


def test_beta_weighs_the_kl_term_and_one_keeps_the_original_sum():
    from tests.conftest import make_batch

    x, noise = make_batch(0)
    original = keras_vae.VAE(seed=0)
    weighted = keras_vae.VAE(seed=0, beta=0.25)
    weighted.set_weights(original.get_weights())
    loss, recon, kl = (t.numpy() for t in original.compute_vae_loss(x, noise))
    # The batch mean of recon + kl per image; two kernels' float32 sums of 64
    # terms agree within 64 roundings.
    recon_kl = _per_image(original, x, noise)
    assert loss == pytest.approx(np.mean(recon_kl, dtype=np.float64), rel=64 * 2**-24)
    w_loss, w_recon, w_kl = (t.numpy() for t in weighted.compute_vae_loss(x, noise))
    assert (w_recon, w_kl) == (recon, kl)
    assert w_loss == pytest.approx(recon + 0.25 * kl, rel=1e-6)
    assert w_loss < loss and recon_kl.shape == (64,)
    for beta in (-1, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="Expected beta to be a finite number >= 0"):
            keras_vae.VAE(beta=beta)


def _per_image(model, x, noise):
    """recon + kl per image, with the original's ops, for the batch mean."""
    from keras_vae.losses import kl_divergence, reconstruction_loss

    z_mu, z_logvar = model.encode(x)
    _, logits = model.decode(model.reparameterize(z_mu, z_logvar, noise))
    return (reconstruction_loss(x, logits) + kl_divergence(z_mu, z_logvar)).numpy()
