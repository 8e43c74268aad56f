"""The original's MNIST files, downloaded and checked against their published SHA-256.

TFDS's `mnist` stores the images in its own shuffled order, so its
`train[5000:]` is not the original's training split. The port downloads the
four IDX `.gz` files themselves instead, from the mirror TFDS uses, and reads
them like any `--data-dir`: the original's images, in the original's order.

Each file is fetched with `keras.utils.get_file` (its progress bar and hash
check) into a temporary directory beside the target and renamed into place
only once its hash matches, since `get_file` itself leaves a file that failed
the check where it wrote it.
"""

import os
import tempfile
import urllib.request

from keras_vae.atomic import sha256
from keras_vae.data import FILES_FIX, DataError

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

# The published SHA-256 of each file (TFDS's checksums for this mirror).
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# Where `load_mnist(data_dir=None)` keeps them: Keras' own dataset cache.
DEFAULT_DIR = os.path.join("~", ".keras", "datasets", "MNIST_data")


def download_mnist(data_dir=None, url=None):
    """Makes `data_dir` hold the four MNIST IDX files; returns its path.

    Files already there with their published hash are kept; a file there
    with another hash is an error, never overwritten.

    Args:
        data_dir: str or `os.PathLike`, where the files go. Defaults to
            `None`: `~/.keras/datasets/MNIST_data`.
        url: str, the directory URL to fetch them from. Defaults to `None`:
            `MNIST_URL`.

    Returns:
        The absolute path of `data_dir`.

    Raises:
        DataError: a file cannot be downloaded, its download does not match
            its published hash, or `data_dir` holds another file of its name.
    """
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir or DEFAULT_DIR)))
    url = url or MNIST_URL
    os.makedirs(data_dir, exist_ok=True)
    missing = [name for name in SHA256 if not _present(os.path.join(data_dir, name))]
    if missing:
        check_reachable(url + missing[0])
    for name in missing:
        _fetch(url + name, os.path.join(data_dir, name), SHA256[name])
    return data_dir


def _present(path):
    """Whether `path` is there with its published hash; an error if it differs."""
    if not os.path.exists(path):
        return False
    if sha256(path) != SHA256[os.path.basename(path)]:
        raise DataError(
            f"{path} is not the published MNIST file: its SHA-256 differs. Move it "
            "aside and download again, or read your own files with --data-dir "
            "(data_dir=) instead."
        )
    return True


def check_reachable(url):
    """Fails within seconds when offline, naming the way out."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
    except OSError as err:  # URLError, timeouts, refused connections
        raise DataError(
            f"Could not download MNIST (offline?): {url} cannot be reached "
            f"({type(err).__name__}: {getattr(err, 'reason', err)}). Go online once, "
            f"or use the files instead: {FILES_FIX}"
        ) from err


def _fetch(url, path, digest):
    """Downloads `url` to `path`, renamed into place once its hash is `digest`."""
    import keras

    directory, name = os.path.split(path)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as tmp:
        try:
            fetched = keras.utils.get_file(name, url, file_hash=digest,
                                           hash_algorithm="sha256", cache_dir=tmp,
                                           cache_subdir="")
        except Exception as err:  # get_file raises bare Exceptions for URL errors
            raise DataError(
                f"Could not download {url}: {err}. Try again, or use the files "
                f"instead: {FILES_FIX}"
            ) from err
        os.replace(fetched, path)
