"""The online path: the four IDX files downloaded with their checksums, from a
stand-in mirror on this machine, give the original's images in its order."""

import contextlib
import functools
import gzip
import hashlib
import http.server
import shutil
import socket
import threading
import time

import numpy as np
import pytest

from keras_vae.data import download
from keras_vae.data.batches import load_mnist
from keras_vae.data.idx import DataError, read_mnist, scale_pixels
from tests.conftest import run_keras_vae
from tests.mnist_files import FILES, write_gz


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


def contents_sha256(path):
    """The SHA-256 of what the gzip file at `path` holds, decompressed."""
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


def published_hashes(directory):
    """{file name: SHA-256 of its decompressed contents} of `directory`'s four files."""
    return {name: contents_sha256(directory / name) for name in FILES.values()}


def publish(monkeypatch, directory):
    """`directory`'s files' contents stand in for the published ones."""
    hashes = published_hashes(directory)
    monkeypatch.setattr(download, "SHA256", hashes)
    return hashes


def unreachable_url():
    """A URL on this machine where nothing listens: every request is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


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
    with pytest.raises(DataError, match="does not serve the published MNIST file") as info:
        download.download_mnist(target, url=mirror[0])
    assert name in str(info.value) and "--url" in str(info.value)
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
    assert_offline_advice(str(info.value), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def assert_offline_advice(message, directory):
    """The offline error says what helps without a network: the four files
    copied into `directory`, or another mirror; not the download that failed."""
    assert f"Copy the four MNIST files ({', '.join(FILES.values())}) from a machine" in message
    assert f"into {directory}, " in message
    assert "--url" in message
    assert "where there is a network" not in message  # the old advice: download them


def test_download_offline_says_to_copy_the_files_or_use_a_mirror(tmp_path):
    target = tmp_path / "MNIST_data"
    with pytest.raises(DataError, match=r"Could not download MNIST \(offline\?\)") as info:
        download.download_mnist(target, url=unreachable_url())
    assert_offline_advice(str(info.value), target)


def test_a_copy_compressed_again_is_the_published_file(tmp_path, mirror, published,
                                                       synthetic_mnist_dir):
    # The same images in other gzip bytes: level 9 and another timestamp.
    target = tmp_path / "MNIST_data"
    target.mkdir()
    for name in FILES.values():
        data = gzip.decompress((synthetic_mnist_dir / name).read_bytes())
        (target / name).write_bytes(gzip.compress(data, compresslevel=9, mtime=1))
        assert (target / name).read_bytes() != (synthetic_mnist_dir / name).read_bytes()
    url, requested = mirror
    assert download.download_mnist(target, url=url) == str(target)
    assert requested == []  # all four taken as they are


def test_a_file_with_one_changed_image_is_refused(tmp_path, mirror, published,
                                                  synthetic_mnist_dir):
    images, _ = read_mnist(synthetic_mnist_dir, "train")
    images[7, 300] ^= 1  # one pixel of one image
    target = tmp_path / "MNIST_data"
    target.mkdir()
    name = FILES["train_images"]
    header = gzip.decompress((synthetic_mnist_dir / name).read_bytes())[:16]
    write_gz(target / name, header + images.tobytes())
    changed = (target / name).read_bytes()
    with pytest.raises(DataError, match="is not the published MNIST file") as info:
        download.download_mnist(target, url=mirror[0])
    assert f"{target / name} is not the published MNIST file: the SHA-256 of its " \
        f"decompressed contents is {contents_sha256(target / name)}, the published " \
        f"file's is {published[name]}" in str(info.value)
    assert (target / name).read_bytes() == changed  # refused, not overwritten


def test_a_file_that_is_not_gzip_is_refused_with_the_reason(tmp_path, published):
    target = tmp_path / "MNIST_data"
    target.mkdir()
    (target / FILES["test_images"]).write_bytes(b"<html>a captive portal</html>")
    with pytest.raises(DataError, match="is not the published MNIST file: it is not a "
                                        "complete gzip file"):
        download.download_mnist(target, url=unreachable_url())


def test_a_file_given_as_the_directory_is_named(tmp_path):
    path = tmp_path / "some_file.txt"
    path.write_text("not a directory")
    with pytest.raises(DataError) as info:
        download.download_mnist(path, url=unreachable_url())
    assert f"--data-dir (data_dir=) names a file, not a directory: {path}." in str(info.value)
    assert "File exists" not in str(info.value)


def copy_compressed_again(source, target, name):
    """`source`'s four files in `target`, `name` compressed again at level 9."""
    target.mkdir()
    for file in FILES.values():
        shutil.copyfile(source / file, target / file)
    data = gzip.decompress((source / name).read_bytes())
    (target / name).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    assert (target / name).read_bytes() != (source / name).read_bytes()


@pytest.mark.real_mnist(reason="the published MNIST files' contents, compressed again, "
                               "must pass the check against the published hashes")
def test_genuine_mnist_compressed_again_is_accepted_and_read(tmp_path, real_mnist_dir):
    # The test images are byte for byte the published download: other bytes, same images.
    target = tmp_path / "MNIST_data"
    copy_compressed_again(real_mnist_dir, target, FILES["test_images"])
    assert download.download_mnist(target, url=unreachable_url()) == str(target)  # none fetched
    for split in ("train", "test"):
        for got, real in zip(read_mnist(target, split), read_mnist(real_mnist_dir, split)):
            assert np.array_equal(got, real)


@pytest.mark.real_mnist(reason="Fashion-MNIST's published contents, in other gzip bytes "
                               "(the copy beside the real MNIST), must pass the check")
def test_genuine_fashion_mnist_compressed_again_is_accepted(tmp_path, real_mnist_dir):
    source = real_mnist_dir.parent / "fashion_mnist"
    if not (source / FILES["test_labels"]).is_file():
        pytest.skip(f"real Fashion-MNIST not found at {source}")
    target = tmp_path / "fashion_mnist_data"
    copy_compressed_again(source, target, FILES["test_labels"])
    assert download.download_mnist(target, url=unreachable_url(),
                                   dataset="fashion_mnist") == str(target)


@pytest.mark.slow
def test_cli_download_refuses_files_that_are_not_the_published_ones(tmp_path, mirror):
    # The stand-in mirror serves synthetic files, not the published MNIST.
    run = run_keras_vae("download", "--data-dir", tmp_path / "MNIST_data", "--url", mirror[0])
    assert run.returncode == 2, run.stderr[-2000:]
    assert "does not serve the published MNIST file" in run.stderr
    assert "Traceback" not in run.stderr
    assert list((tmp_path / "MNIST_data").iterdir()) == []
