"""Shared fixtures: MNIST files (synthetic, or the real ones for the few tests
whose meaning depends on real digits), and quiet TensorFlow logs."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.mnist_files import write_synthetic_mnist

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
REAL_MNIST = Path(
    os.environ.get("KERAS_VAE_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist")
)


def have_real_mnist():
    return (REAL_MNIST / "train-images-idx3-ubyte.gz").is_file()


def pytest_collection_modifyitems(config, items):
    """A test reaches the real MNIST only through `real_mnist_dir`, and only
    when marked `real_mnist(reason=...)`; without the files it is skipped,
    item by item, with that reason."""
    for item in items:
        marker = item.get_closest_marker("real_mnist")
        needs = "real_mnist_dir" in item.fixturenames
        if bool(marker) != needs:
            raise pytest.UsageError(
                f"{item.nodeid}: a test that uses the real_mnist_dir fixture must be "
                "marked @pytest.mark.real_mnist(reason=...), and only such a test"
            )
        if marker and not marker.kwargs.get("reason"):
            raise pytest.UsageError(f"{item.nodeid}: real_mnist needs a reason=...")
        if marker and not have_real_mnist():
            item.add_marker(pytest.mark.skip(
                reason=f"real MNIST not found at {REAL_MNIST} (set KERAS_VAE_MNIST_DIR): "
                + marker.kwargs["reason"]
            ))


@pytest.fixture(scope="session")
def real_mnist_dir():
    """The four real MNIST IDX .gz files (for tests marked `real_mnist`)."""
    return REAL_MNIST


@pytest.fixture(scope="session")
def synthetic_mnist_dir(tmp_path_factory):
    """The four MNIST files in the IDX layout, of synthetic images."""
    return write_synthetic_mnist(tmp_path_factory.mktemp("synthetic_mnist"))


def checkout_env():
    """The environment for a child Python that must import this checkout's
    keras_vae, from any directory (not an older installed copy)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}


def run_keras_vae(*args, cwd=None, timeout=600):
    """Runs `keras-vae ARGS` as a user would (`python -m keras_vae_cli`, the
    command's module); returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "keras_vae_cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or REPO, env=checkout_env(), timeout=timeout,
    )


def free_ports(count):
    """`count` ports free on localhost now, as "PORT,PORT,...", for local clusters."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ",".join(map(str, ports))


def make_batch(seed, n=64):
    """`n` mostly-dark images in [0, 1] (like MNIST) and `n` noise draws for z."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)).astype(np.float32)
    x[x < 0.5] = 0.0
    return x, rng.standard_normal((n, 100)).astype(np.float32)
