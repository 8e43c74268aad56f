"""The original's MNIST files (or Fashion-MNIST's), downloaded and checked
against their published SHA-256.

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

from keras_vae.data.idx import FILES_FIX, DataError
from keras_vae.saving.atomic import sha256

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

# Fashion-MNIST: the same four file names and layout, from Zalando's mirror
# (TFDS's `fashion_mnist` checksums).
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FASHION_MNIST_DIR = os.path.join("~", ".keras", "datasets", "fashion_mnist_data")


def _source(dataset):
    """(name, url, hashes, default directory) of `dataset`, read when called, so
    that the module's values can be changed (tests point them at a local server)."""
    if dataset == "mnist":
        return "MNIST", MNIST_URL, SHA256, DEFAULT_DIR
    if dataset == "fashion_mnist":
        return "Fashion-MNIST", FASHION_MNIST_URL, FASHION_MNIST_SHA256, FASHION_MNIST_DIR
    raise ValueError(
        f'Expected dataset "mnist" or "fashion_mnist". Received: dataset={dataset!r}')


def download_mnist(data_dir=None, url=None, dataset="mnist"):
    """Makes `data_dir` hold the four IDX files of `dataset`; returns its path.

    Files already there with their published hash are kept; a file there
    with another hash is an error, never overwritten.

    Args:
        data_dir: str or `os.PathLike`, where the files go. Defaults to
            `None`: `~/.keras/datasets/MNIST_data` (Fashion-MNIST:
            `~/.keras/datasets/fashion_mnist_data`).
        url: str, the directory URL to fetch them from. Defaults to `None`:
            `MNIST_URL` (`FASHION_MNIST_URL`).
        dataset: `"mnist"` or `"fashion_mnist"`. Defaults to `"mnist"`.

    Returns:
        The absolute path of `data_dir`.

    Raises:
        DataError: a file cannot be downloaded, its download does not match
            its published hash, or `data_dir` holds another file of its name.
    """
    name, default_url, hashes, default_dir = _source(dataset)
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir or default_dir)))
    url = url or default_url
    os.makedirs(data_dir, exist_ok=True)
    missing = [file for file in hashes
               if not _present(os.path.join(data_dir, file), hashes[file], name)]
    if missing:
        check_reachable(url + missing[0], name)
    for file in missing:
        _fetch(url + file, os.path.join(data_dir, file), hashes[file])
    return data_dir


def _present(path, digest, name):
    """Whether `path` is there with its published hash; an error if it differs."""
    if not os.path.exists(path):
        return False
    if sha256(path) != digest:
        raise DataError(
            f"{path} is not the published {name} file: its SHA-256 differs. Move it "
            "aside and download again, or read your own files with --data-dir "
            "(data_dir=) instead."
        )
    return True


def check_reachable(url, what="MNIST"):
    """Fails within seconds when offline, naming the way out."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
    except OSError as err:  # URLError, timeouts, refused connections
        raise DataError(
            f"Could not download {what} (offline?): {url} cannot be reached "
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
