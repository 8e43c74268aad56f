"""Interrupted runs resume exactly; signals, divergence and damaged checkpoints
are handled; bad input gets a clear error and exit status 2."""

import gzip
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_vae.model import VAE
from keras_vae.training.checkpoints import list_checkpoints, load_latest, save_checkpoint
from tests.conftest import REPO, checkout_env, run_keras_vae

TRAIN = ("train", "--verbose", "0", "--seed", "5")


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--fast"]], ids=["faithful", "fast"])
def test_kill_9_three_times_then_resume_is_bit_identical(synthetic_mnist_dir, mode):
    run = subprocess.run(
        [sys.executable, "tools/kill_resume.py", "--data-dir", str(synthetic_mnist_dir), *mode],
        capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    killed = [line for line in run.stdout.splitlines() if line.startswith("killed")]
    assert len(killed) == 3, run.stdout
    # The tool prints "killed" only for a kill that landed mid-training; one of
    # them landed mid-write of a checkpoint.
    assert [" mid-write event " in line for line in killed] == [False, True, False]
    assert "verdict: BIT-IDENTICAL" in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_checkpoints_and_the_same_command_resumes(synthetic_mnist_dir, tmp_path, signum, status):
    command = [
        sys.executable, "-m", "keras_vae", *TRAIN, "--data-dir", str(synthetic_mnist_dir),
        "--iters", "100000", "--sample-every", "50", "--checkpoint-every", "1000",
        "--checkpoint-dir", str(tmp_path / "ck"), "--out", str(tmp_path / "out"),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env)
    for line in proc.stdout:
        if line.strip() == "Iter: 100":
            break
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr[-2000:]
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    assert "run the same command again to resume" in stderr
    (step, _, keras_path), = list_checkpoints(str(tmp_path / "ck"))
    assert step >= 101 and keras_path in stderr  # a checkpoint at the stop, not at 1000

    command[command.index("100000")] = str(step + 20)
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resuming from {keras_path} at step {step}." in resumed.stdout
    assert list_checkpoints(str(tmp_path / "ck"))[-1][0] == step + 20


def test_only_the_two_newest_checkpoints_are_kept(tmp_path):
    model = VAE(h_dim=8, z_dim=2, seed=5)
    model.compile()
    model.optimizer.build(model.trainable_variables)  # as after a step: its state is saved
    for step in range(1, 6):
        model.optimizer.iterations.assign(step)
        model.P_b2.assign(np.full(784, step, np.float32))
        save_checkpoint(model, str(tmp_path), {"seed": 5})
    assert sorted(os.listdir(tmp_path)) == [
        "ckpt-000000004.json", "ckpt-000000004.keras",
        "ckpt-000000005.json", "ckpt-000000005.keras",
    ]
    checkpoint, loaded = load_latest(str(tmp_path))
    assert checkpoint.step == 5
    assert checkpoint.model_path == str(tmp_path / "ckpt-000000005.keras")
    assert int(loaded.optimizer.iterations.numpy()) == 5
    np.testing.assert_array_equal(loaded.P_b2.numpy(), np.full(784, 5, np.float32))


def _checkpoint(directory, z_dim=100, logvar_bias=None):
    """A step-0 checkpoint of a fresh model, as `keras-vae train` writes it."""
    keras.utils.set_random_seed(5)
    model = VAE(z_dim=z_dim, seed=5)
    model.compile()
    if logvar_bias is not None:
        model.Q_b2_sigma.assign(np.full(z_dim, logvar_bias, np.float32))
    config = {"seed": 5, "batch_size": 64, "h_dim": 128, "z_dim": z_dim,
              "sample_every": 1000, "split": "train[5000:]"}
    return save_checkpoint(model, str(directory), config)


def test_divergence_stops_and_keeps_the_last_good_checkpoint(synthetic_mnist_dir, tmp_path):
    # exp(88.5) * 100 latent dims overflows float32: the first loss is inf.
    good = _checkpoint(tmp_path / "ck", logvar_bias=88.5)
    before = open(good.model_path, "rb").read()
    run = run_keras_vae(*TRAIN, "--data-dir", synthetic_mnist_dir, "--iters", 50,
                        "--checkpoint-dir", tmp_path / "ck", "--out", tmp_path / "out")
    assert run.returncode == 1
    assert "training diverged: the loss at step 0 is NaN or infinite" in run.stderr
    assert good.model_path in run.stderr
    assert [c[0] for c in list_checkpoints(str(tmp_path / "ck"))] == [0]
    assert open(good.model_path, "rb").read() == before


@pytest.mark.slow
def test_a_truncated_newest_checkpoint_falls_back_to_the_previous(synthetic_mnist_dir, tmp_path):
    args = (*TRAIN, "--data-dir", synthetic_mnist_dir, "--checkpoint-every", 30,
            "--checkpoint-dir", tmp_path / "ck", "--out", tmp_path / "out")
    assert run_keras_vae(*args, "--iters", 60).returncode == 0
    (_, _, older), (_, _, newest) = list_checkpoints(str(tmp_path / "ck"))
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) // 2)
    run = run_keras_vae(*args, "--iters", 70)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "skipping the damaged checkpoint at step 60" in run.stderr
    assert f"Resuming from {older} at step 30." in run.stdout

    for _, _, path in list_checkpoints(str(tmp_path / "ck")):
        with open(path, "r+b") as f:
            f.truncate(100)
    run = run_keras_vae(*args, "--iters", 80)
    assert run.returncode == 2
    assert "No usable checkpoint in" in run.stderr and "Traceback" not in run.stderr


# Bad input: one test per row of the README's table.


def _idx_dir(tmp_path, n_images=10, n_labels=10, images=None):
    """Train IDX files (test files absent); `images` replaces the gzip payload."""
    def header(magic, *dims):
        return b"".join(int(v).to_bytes(4, "big") for v in (magic, *dims))

    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(images if images is not None else
                header(2051, n_images, 28, 28) + bytes(n_images * 784))
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(header(2049, n_labels) + bytes(n_labels))
    return tmp_path


def test_empty_data_is_refused():
    model = VAE()
    model.compile()
    with pytest.raises(ValueError, match="the data is empty"):
        model.fit(np.zeros((0, 784), np.float32), verbose=0)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "MNIST file not found"),
        ("truncated", "not a complete gzip file"),
        ("wrong_magic", "is not an MNIST IDX file"),
        ("count_mismatch", "The MNIST files disagree"),
        ("empty", "holds no examples"),
    ],
)
def test_bad_idx_files_exit_2_naming_the_file(tmp_path, case, message):
    data = tmp_path / "data"
    data.mkdir()
    if case == "truncated":
        _idx_dir(data)
        payload = (data / "train-images-idx3-ubyte.gz").read_bytes()
        (data / "train-images-idx3-ubyte.gz").write_bytes(payload[: len(payload) // 2])
    elif case == "wrong_magic":
        _idx_dir(data, images=(1234).to_bytes(4, "big") + bytes(12))
    elif case == "count_mismatch":
        _idx_dir(data, n_images=10, n_labels=9)
    elif case == "empty":
        _idx_dir(data, n_images=5000, n_labels=5000)  # train[5000:] is empty
    run = run_keras_vae(*TRAIN, "--data-dir", data, "--iters", 5, "--out", tmp_path / "out")
    assert run.returncode == 2, run.stderr[-2000:]
    assert message in run.stderr and "Traceback" not in run.stderr
    if case != "empty":
        assert "train-" in run.stderr  # names the file


@pytest.mark.parametrize("flag", ["--out", "--checkpoint-dir"])
def test_unwritable_directories_exit_2(tmp_path, flag):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory cannot be made inside a file, even as root
    args = ["--out", tmp_path / "out", "--checkpoint-dir", tmp_path / "ck"]
    args[args.index(flag) + 1] = blocker / "sub"
    run = run_keras_vae(*TRAIN, "--iters", 5, *args)
    assert run.returncode == 2
    assert f"Cannot write to {flag} {blocker / 'sub'}" in run.stderr


@pytest.mark.slow
def test_another_runs_grids_in_out_need_overwrite(synthetic_mnist_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "000.png").write_bytes(b"not ours")
    (out / ".gitkeep").write_text("")
    run = run_keras_vae(*TRAIN, "--data-dir", synthetic_mnist_dir, "--iters", 5, "--out", out)
    assert run.returncode == 2
    assert "already holds 1 sample grids" in run.stderr and "--overwrite" in run.stderr
    assert (out / "000.png").read_bytes() == b"not ours"
    run = run_keras_vae(*TRAIN, "--data-dir", synthetic_mnist_dir, "--iters", 5, "--out", out,
                        "--overwrite")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (out / "000.png").read_bytes() != b"not ours" and (out / ".gitkeep").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--iters", "0"], "--iters: expected a positive integer, got 0"),
        (["--batch-size", "-1"], "--batch-size: expected a positive integer, got -1"),
        (["--sample-every", "0"], "--sample-every: expected a positive integer, got 0"),
        (["--checkpoint-every", "0"], "--checkpoint-every: expected a positive integer"),
        (["--z-dim", "x"], "--z-dim: expected a positive integer, got 'x'"),
    ],
)
def test_nonsensical_flags_exit_2(args, message):
    run = run_keras_vae("train", *args)
    assert run.returncode == 2 and message in run.stderr


def test_a_checkpoint_of_another_configuration_is_refused(synthetic_mnist_dir, tmp_path):
    _checkpoint(tmp_path / "ck", z_dim=100)
    run = run_keras_vae(*TRAIN, "--data-dir", synthetic_mnist_dir, "--iters", 5, "--z-dim", 20,
                        "--checkpoint-dir", tmp_path / "ck", "--out", tmp_path / "out")
    assert run.returncode == 2
    assert "are of a run with --z-dim 100, not 20" in run.stderr


def test_a_damaged_keras_file_is_refused(tmp_path):
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 not really a zip")
    run = run_keras_vae("sample", "--model", tmp_path / "bad.keras", "--out", tmp_path / "g.png")
    assert run.returncode == 2
    assert "Cannot load" in run.stderr and "Traceback" not in run.stderr
