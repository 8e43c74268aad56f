"""`keras-vae` end to end, as a user runs it: train, sample, bad flags, --help."""

import subprocess
import sys

import matplotlib.image
import pytest

from tests.conftest import REPO, checkout_env
from tests.conftest import run_keras_vae as keras_vae


@pytest.mark.slow
def test_train_then_sample(synthetic_mnist_dir, tmp_path):
    out, model = tmp_path / "out", tmp_path / "vae.keras"
    run = keras_vae(
        "train", "--data-dir", synthetic_mnist_dir, "--iters", 301, "--sample-every", 100,
        "--out", out, "--seed", 0, "--save", model, "--verbose", 0,
    )
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "000.png", "001.png", "002.png", "003.png"
    ]
    lines = run.stdout.splitlines()
    assert [l for l in lines if l.startswith("Iter:")] == [
        "Iter: 0", "Iter: 100", "Iter: 200", "Iter: 300"
    ]
    losses = [float(l.split()[1]) for l in lines if l.startswith("Loss:")]
    assert losses[0] > 500 and losses[-1] < 250  # it learns (starts near 550-800)
    assert model.is_file()

    grid = tmp_path / "grid.png"
    run = keras_vae("sample", "--model", model, "--n", 9, "--out", grid, "--seed", 1)
    assert run.returncode == 0, run.stderr
    image = matplotlib.image.imread(grid)
    assert image.shape[0] > 100 and image.shape[1] > 100


@pytest.mark.slow
def test_parity_command_reports_bit_identical(synthetic_mnist_dir):
    run = keras_vae("parity", "--path", "fit", "--data-dir", synthetic_mnist_dir,
                    "--steps", 30, "--seed", 3)
    assert run.returncode == 0, run.stderr
    assert "verdict: BIT-IDENTICAL: all 10 variables after every one of 30 steps" in run.stdout
    assert run.stdout.count("  -\n") == 10  # no variable ever differed


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--iters", "0"], "--iters: expected a positive integer"),
        (["train", "--batch-size", "-1"], "--batch-size: expected a positive integer"),
        (["train", "--sample-every", "0"], "--sample-every: expected a positive integer"),
        (["train", "--save", "model.h5"], "--save: expected a path ending in .keras"),
        (["sample", "--model", "no/such.keras"], "No model file at no/such.keras"),
        (["train", "--data-dir", "no/such/dir"], "no/such/dir"),
        (["parity"], "--data-dir"),
        (["parity", "--data-dir", "no/such/dir"], "no/such/dir"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message, tmp_path):
    run = keras_vae(*args, cwd=tmp_path)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_help_lists_the_flags():
    run = subprocess.run(
        [sys.executable, "-m", "keras_vae", "train", "--help"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert run.returncode == 0
    assert "--data-dir" in run.stdout and "--sample-every" in run.stdout


@pytest.mark.slow
def test_import_keras_vae_lets_keras_load_a_trained_model(synthetic_mnist_dir, tmp_path):
    path = tmp_path / "vae.keras"
    run = keras_vae("train", "--data-dir", synthetic_mnist_dir, "--iters", 7, "--out",
                    tmp_path / "out", "--save", path, "--verbose", 0)
    assert run.returncode == 0, run.stderr[-2000:]
    code = (
        "import sys, keras, keras_vae; "
        "model = keras.models.load_model(sys.argv[1]); "
        "print(type(model).__name__, int(model.optimizer.iterations), "
        "type(model.optimizer).__name__, len(model.optimizer.variables))"
    )
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, cwd=tmp_path, env=checkout_env(), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["VAE", "7", "TF1Adam", "24"]  # with its optimizer state


def test_the_command_exits_with_mains_status_and_skips_the_last_collection(tmp_path):
    # The console script and `python -m keras_vae` call cli.command.
    code = ("import gc, sys; from keras_vae.cli import command; "
            "sys.argv = ['keras-vae', 'sample', '--model', 'no/such.keras']; "
            "status = command(); print(status, gc.get_freeze_count() > 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=checkout_env(), timeout=300)
    assert run.stdout.split() == ["2", "True"], run.stderr[-2000:]
    assert "No model file at no/such.keras" in run.stderr
