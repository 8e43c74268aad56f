"""Shared fixtures: where the real MNIST lives, and quiet TensorFlow logs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir():
    """The four real MNIST IDX .gz files; skips when this clone has none beside it."""
    path = Path(os.environ.get("KERAS_VAE_MNIST_DIR", SHARED_MNIST))
    if not (path / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(
            f"real MNIST not found at {path} (it sits in ../shared/data/mnist "
            "beside the project's own checkouts; set KERAS_VAE_MNIST_DIR to point elsewhere)"
        )
    return path


def run_keras_vae(*args, cwd=None, timeout=600):
    """Runs `python -m keras_vae ARGS` as a user would; returns the CompletedProcess."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "keras_vae", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or REPO, env=env, timeout=timeout,
    )


def make_batch(seed, n=64):
    """`n` mostly-dark images in [0, 1] (like MNIST) and `n` noise draws for z."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)).astype(np.float32)
    x[x < 0.5] = 0.0
    return x, rng.standard_normal((n, 100)).astype(np.float32)
