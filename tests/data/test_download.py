"""The online path: the four IDX files downloaded with their checksums, from a
stand-in mirror on this machine, give the original's images in its order."""

import contextlib
import functools
import http.server
import socket
import threading
import time

import numpy as np
import pytest

from keras_vae.data import download
from keras_vae.data.batches import load_mnist
from keras_vae.data.idx import DataError, read_mnist, scale_pixels
from keras_vae.saving.atomic import sha256
from tests.conftest import run_keras_vae
from tests.mnist_files import FILES


@contextlib.contextmanager
def serving(directory):
    """A local HTTP server of `directory`'s files: `(url, requested paths)`."""
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

    handler = functools.partial(Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requested
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mirror(synthetic_mnist_dir):
    """A stand-in mirror of the synthetic files: `(url, requested paths)`."""
    with serving(synthetic_mnist_dir) as served:
        yield served


def publish(monkeypatch, directory):
    """`directory`'s files' hashes stand in for the published ones."""
    hashes = {name: sha256(directory / name) for name in FILES.values()}
    monkeypatch.setattr(download, "SHA256", hashes)
    return hashes


@pytest.fixture
def published(monkeypatch, synthetic_mnist_dir):
    return publish(monkeypatch, synthetic_mnist_dir)


def test_download_writes_the_four_files_byte_for_byte(tmp_path, mirror, published,
                                                      synthetic_mnist_dir):
    url, requested = mirror
    target = tmp_path / "MNIST_data"
    assert download.download_mnist(target, url=url) == str(target)
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES.values())
    for name in FILES.values():
        assert (target / name).read_bytes() == (synthetic_mnist_dir / name).read_bytes()
    assert len(requested) == 4
    download.download_mnist(target, url=url)  # all there: nothing fetched again
    assert len(requested) == 4


def test_the_online_path_gives_the_original_split_in_its_order(tmp_path, monkeypatch, mirror,
                                                               published, synthetic_mnist_dir):
    monkeypatch.setattr(download, "MNIST_URL", mirror[0])
    monkeypatch.setattr(download, "DEFAULT_DIR", str(tmp_path / "cache"))
    online = load_mnist(batch_size=1000, shuffle=False, repeat=False)  # data_dir=None
    pixels = np.concatenate([batch.numpy() for batch in online])
    images, _ = read_mnist(synthetic_mnist_dir)  # train[5000:], from the same files
    assert pixels.tobytes() == scale_pixels(images).tobytes()
    # And the shuffled stream that training draws.
    online = [b.numpy() for b in load_mnist(seed=3).take(5)]
    offline = [b.numpy() for b in load_mnist(data_dir=synthetic_mnist_dir, seed=3).take(5)]
    assert np.array_equal(online, offline)


@pytest.mark.real_mnist(reason="the online path must give the original's 55,000 images, "
                                "in order, from the real files served locally")
def test_the_online_path_gives_the_real_55000_in_their_order(tmp_path, monkeypatch,
                                                            real_mnist_dir):
    publish(monkeypatch, real_mnist_dir)
    monkeypatch.setattr(download, "DEFAULT_DIR", str(tmp_path / "cache"))
    with serving(real_mnist_dir) as (url, _):
        monkeypatch.setattr(download, "MNIST_URL", url)
        online = load_mnist(batch_size=5000, shuffle=False, repeat=False)
        pixels = np.concatenate([batch.numpy() for batch in online])
    images, _ = read_mnist(real_mnist_dir)
    assert pixels.shape == (55000, 784)
    assert pixels.tobytes() == scale_pixels(images).tobytes()


def test_a_download_that_fails_its_checksum_is_not_kept(tmp_path, monkeypatch, mirror,
                                                        published):
    name = FILES["train_images"]
    monkeypatch.setitem(download.SHA256, name, "0" * 64)
    target = tmp_path / "MNIST_data"
    with pytest.raises(DataError, match="hash does not match") as info:
        download.download_mnist(target, url=mirror[0])
    assert name in str(info.value) and "--data-dir" in str(info.value)
    assert sorted(p.name for p in target.iterdir()) == []  # nothing half-checked, no temporary


def test_a_file_of_another_hash_is_refused_not_overwritten(tmp_path, mirror, published):
    target = tmp_path / "MNIST_data"
    target.mkdir()
    (target / FILES["test_labels"]).write_bytes(b"mine")
    with pytest.raises(DataError, match="is not the published MNIST file"):
        download.download_mnist(target, url=mirror[0])
    assert (target / FILES["test_labels"]).read_bytes() == b"mine"


def test_offline_fails_fast_naming_the_files(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # offline, even on a machine that is not
    monkeypatch.setattr(download, "DEFAULT_DIR", str(tmp_path / "cache"))
    start = time.monotonic()
    with pytest.raises(DataError, match=r"Could not download MNIST \(offline\?\)") as info:
        load_mnist()
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert "--data-dir" in message and "keras-vae download" in message
    assert all(name in message for name in FILES.values())
    assert list((tmp_path / "cache").iterdir()) == []


def test_cli_download_refuses_files_that_are_not_the_published_ones(tmp_path, mirror):
    # The stand-in mirror serves synthetic files, not the published MNIST.
    run = run_keras_vae("download", "--data-dir", tmp_path / "MNIST_data", "--url", mirror[0])
    assert run.returncode == 2, run.stderr[-2000:]
    assert "hash does not match" in run.stderr and "Traceback" not in run.stderr
    assert list((tmp_path / "MNIST_data").iterdir()) == []
