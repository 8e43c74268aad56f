"""Many steps per call under a strategy: `fit` and `keras-vae train` run the
in-graph loop on 2 mirrored replicas and on 2 localhost workers (the
command in fast mode too), and end up
where one device does: within 1e-5 relative norm per weight after 100
steps, with the calls, grids and checkpoints at one device's steps, and
the collectives of a call packed (one all-reduce per step, one after).

All the runs of a test start together, each in a process of its own."""

import subprocess
import sys

import numpy as np
import pytest

from keras_vae.model import VAE
from keras_vae.saving.keras_file import load_model
from tests.conftest import REPO, checkout_env, free_ports

pytestmark = pytest.mark.slow


def run_together(commands, cwd):
    """Runs `commands` at once; fails the test unless every one exits 0."""
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=checkout_env(), cwd=cwd) for command in commands]
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr[-3000:]


def assert_near(weights, reference, what):
    """Each weight within 1e-5 of `reference`'s in relative norm."""
    for name in VAE.WEIGHTS:
        gap = np.linalg.norm(weights[name] - reference[name]) / np.linalg.norm(reference[name])
        assert gap <= 1e-5, (what, name, gap)


def test_fit_on_two_replicas_and_two_workers_ends_where_one_device_does(
        tmp_path, synthetic_mnist_dir):
    script = str(REPO / "tests" / "distributed_fit.py")
    ports = free_ports(2)
    runs = {"one": ["one"], "mirrored": ["mirrored"], "w0": ["worker", "0", ports],
            "w1": ["worker", "1", ports]}
    run_together([[sys.executable, script, str(synthetic_mnist_dir), str(tmp_path / f"{name}.npz"),
                   *args] for name, args in runs.items()], REPO)
    one, *others = (np.load(tmp_path / f"{name}.npz") for name in runs)
    assert list(one["ends"]) == [30, 60, 90, 100]  # the in-graph loop's calls
    for name, other in zip(list(runs)[1:], others):
        assert other["replicas"] == 2, name
        assert list(other["ends"]) == list(one["ends"]), name
        assert_near(other, one, name)
        np.testing.assert_allclose(other["logs"], one["logs"], rtol=1e-5, err_msg=name)
        # One all-reduce per step (the gradients, packed) and one after the
        # steps (the logged values, together); mirrored's 2 replicas in this
        # process each hold their op of it.
        local_replicas = 2 if name == "mirrored" else 1
        assert other["all_reduces_in_loop"] == local_replicas, name
        assert other["all_reduces_after"] == local_replicas, name


def train_command(data_dir, tmp_path, name, *flags):
    return [sys.executable, "-m", "keras_vae", "train", "--data-dir", str(data_dir),
            "--iters", "100", "--sample-every", "40", "--checkpoint-every", "50", "--seed", "0",
            "--verbose", "0", "--out", str(tmp_path / name / "out"),
            "--checkpoint-dir", str(tmp_path / name / "ck"),
            "--save", str(tmp_path / name / "model.keras"), *map(str, flags)]


def test_the_command_on_two_replicas_and_two_workers_ends_where_one_device_does(
        tmp_path, synthetic_mnist_dir):
    ports = free_ports(4).split(",")
    clusters = [("--strategy", "multi-worker", "--workers",
                 ",".join(f"localhost:{port}" for port in pair)) for pair in (ports[:2], ports[2:])]
    commands = [
        train_command(synthetic_mnist_dir, tmp_path, "one"),
        train_command(synthetic_mnist_dir, tmp_path, "mirrored", "--strategy", "mirrored",
                      "--replicas", 2),
        *(train_command(synthetic_mnist_dir, tmp_path, "workers", *clusters[0],
                        "--worker-index", i) for i in range(2)),
        # Fast mode too: XLA computes each worker's gradients.
        *(train_command(synthetic_mnist_dir, tmp_path, "workers-fast", *clusters[1],
                        "--worker-index", i, "--fast") for i in range(2)),
    ]
    run_together(commands, tmp_path)

    def files(name, directory):
        return sorted(p.name for p in (tmp_path / name / directory).iterdir())

    one = load_model(tmp_path / "one" / "model.keras")
    assert files("one", "out") == ["000.png", "001.png", "002.png"]
    assert files("one", "ck")[-2:] == ["ckpt-000000100.json", "ckpt-000000100.keras"]
    for name in ("mirrored", "workers", "workers-fast"):
        assert files(name, "out") == files("one", "out"), name
        assert files(name, "ck") == files("one", "ck"), name
        model = load_model(tmp_path / name / "model.keras")
        assert int(model.optimizer.iterations.numpy()) == 100
        if name != "workers-fast":  # fast mode: the same training, not the same bits
            assert_near({n: getattr(model, n).numpy() for n in VAE.WEIGHTS},
                        {n: getattr(one, n).numpy() for n in VAE.WEIGHTS}, name)
