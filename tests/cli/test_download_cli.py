"""`keras-vae download`: by default into the directory `train` reads without
--data-dir, and offline an error that says what helps."""

import numpy as np
import pytest

from keras_vae.cli import main
from keras_vae.data import download
from keras_vae.data.idx import read_mnist
from keras_vae.data.sources import read_images
from tests.conftest import run_keras_vae
from tests.data.test_download import (
    assert_offline_advice, published_hashes, serving, unreachable_url,
)
from tests.mnist_files import FILES

HASHES = {"mnist": "SHA256", "fashion_mnist": "FASHION_MNIST_SHA256"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home directory of the test's own, and a working directory apart from it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.mark.parametrize("dataset, directory, flag", [
    ("mnist", "MNIST_data", ""),
    ("fashion_mnist", "fashion_mnist_data", " --dataset fashion_mnist"),
])
def test_download_fills_the_directory_train_reads_by_default(
        home, monkeypatch, capsys, synthetic_mnist_dir, dataset, directory, flag):
    monkeypatch.setattr(download, HASHES[dataset], published_hashes(synthetic_mnist_dir))
    with serving(synthetic_mnist_dir) as (url, requested):
        assert main(["download", "--dataset", dataset, "--url", url]) == 0
    target = home / ".keras" / "datasets" / directory
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES.values())
    assert capsys.readouterr().out.splitlines()[-1] == (  # after get_file's progress
        f"The four {dataset} files are in {target}: keras-vae train{flag} reads them "
        "there without --data-dir.")
    # Where train looks without --data-dir: found there, nothing fetched (the server is gone).
    images, _ = read_images(dataset, "test")
    assert np.array_equal(images, read_mnist(synthetic_mnist_dir, "test")[0])
    assert not (home.parent / "MNIST_data").exists()  # not in the working directory


def test_download_with_data_dir_says_to_pass_it(home, monkeypatch, capsys, synthetic_mnist_dir):
    monkeypatch.setattr(download, "SHA256", published_hashes(synthetic_mnist_dir))
    with serving(synthetic_mnist_dir) as (url, _):
        assert main(["download", "--data-dir", "mine", "--url", url]) == 0
    target = home.parent / "mine"
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"The four mnist files are in {target}: pass --data-dir mine.")


def test_download_offline_says_to_copy_the_files_into_the_default_directory(home, capsys):
    assert main(["download", "--url", unreachable_url()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-vae download: error: Could not download MNIST (offline?)")
    assert_offline_advice(err, home / ".keras" / "datasets" / "MNIST_data")


def test_download_names_a_file_given_as_the_directory(home, capsys):
    (home.parent / "some_file.txt").write_text("not a directory")
    assert main(["download", "--data-dir", "some_file.txt", "--url", unreachable_url()]) == 2
    err = capsys.readouterr().err
    assert "--data-dir (data_dir=) names a file, not a directory" in err


@pytest.mark.slow
def test_the_command_offline_exits_2_with_the_advice(home):
    run = run_keras_vae("download", "--url", unreachable_url(), cwd=home.parent)
    assert run.returncode == 2, run.stderr[-2000:]
    assert_offline_advice(run.stderr, home / ".keras" / "datasets" / "MNIST_data")
    assert "Traceback" not in run.stderr
