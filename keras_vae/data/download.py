"""The original's MNIST files (or Fashion-MNIST's), downloaded and checked
against the published SHA-256 of what they hold.

TFDS's `mnist` stores the images in its own shuffled order, so its
`train[5000:]` is not the original's training split. The port downloads the
four IDX `.gz` files themselves instead, from the mirror TFDS uses, and reads
them like any `--data-dir`: the original's images, in the original's order.

A file is checked by the SHA-256 of its decompressed bytes, not of its gzip
bytes: the same images compressed again (another level, another timestamp,
as copies and repackagings do) are the same file, and one changed image is
not. Each file is fetched with `keras.utils.get_file` (its progress bar) into
a temporary directory beside the target, and renamed into place only once its
contents match.
"""

import gzip
import hashlib
import os
import tempfile
import urllib.request
import zlib

from keras_vae.data.idx import FILES_FIX, DataError, require_directory

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

# The SHA-256 of each file's decompressed contents, the IDX bytes: the same
# for every compression of the published files (whose gzip bytes TFDS's
# checksums pin: 440fcabf..., 3552534a..., 8d422c7b..., f7ae60f9...).
SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Where `load_mnist(data_dir=None)` keeps them: Keras' own dataset cache.
DEFAULT_DIR = os.path.join("~", ".keras", "datasets", "MNIST_data")

# Fashion-MNIST: the same four file names and layout, from Zalando's mirror;
# the SHA-256 of the contents of the files Zalando publishes (gzip bytes:
# TFDS's `fashion_mnist` checksums 3aede38d..., a04f1713..., 346e55b9..., 67da17c7...).
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_DIR = os.path.join("~", ".keras", "datasets", "fashion_mnist_data")

# How to reach another mirror, for error messages.
MIRROR_FIX = "a mirror this machine can reach (--url of keras-vae download, url= of download_mnist)"


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

    Files already there with the published contents are kept, however they
    are compressed; a file there with other contents is an error, never
    overwritten.

    Args:
        data_dir: str or `os.PathLike`, where the files go. Defaults to
            `None`: `~/.keras/datasets/MNIST_data` (Fashion-MNIST:
            `~/.keras/datasets/fashion_mnist_data`), where `load_mnist` and
            `keras-vae train` look without a `data_dir`.
        url: str, the directory URL to fetch them from. Defaults to `None`:
            `MNIST_URL` (`FASHION_MNIST_URL`).
        dataset: `"mnist"` or `"fashion_mnist"`. Defaults to `"mnist"`.

    Returns:
        The absolute path of `data_dir`.

    Raises:
        DataError: `data_dir` is a file, a file cannot be downloaded, what it
            holds is not the published contents, or `data_dir` holds another
            file of its name.
    """
    name, default_url, hashes, default_dir = _source(dataset)
    data_dir = require_directory(
        os.path.expanduser(os.fspath(data_dir or default_dir)),
        fix=f"Pass the directory to download the four files into, or leave --data-dir "
            f"(data_dir=) out for {os.path.expanduser(default_dir)}.")
    url = url or default_url
    os.makedirs(data_dir, exist_ok=True)
    missing = [file for file in hashes
               if not _present(os.path.join(data_dir, file), hashes[file], name)]
    if missing:
        check_reachable(url + missing[0], name, fix=(
            f"Copy the four {name} files ({', '.join(hashes)}) from a machine that has "
            f"them into {data_dir}, or point --data-dir (data_dir=) at a directory that "
            f"holds them; or download them from {MIRROR_FIX}."))
    for file in missing:
        _fetch(url + file, os.path.join(data_dir, file), hashes[file], name)
    return data_dir


def _present(path, digest, name):
    """Whether `path` is there with the published contents; an error if they differ."""
    if not os.path.exists(path):
        return False
    mismatch = _mismatch(path, digest)
    if mismatch:
        raise DataError(
            f"{path} is not the published {name} file: {mismatch}. Move it aside and "
            "download again, or read your own files with --data-dir (data_dir=) instead."
        )
    return True


def _mismatch(path, digest):
    """How the gzip file at `path` differs from the published file whose
    decompressed bytes have the SHA-256 `digest`; None if it holds them."""
    contents = hashlib.sha256()
    try:
        # Streamed: the training images are 47 MB decompressed.
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                contents.update(block)
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        return f"it is not a complete gzip file ({err})"
    if contents.hexdigest() != digest:
        return (f"the SHA-256 of its decompressed contents is {contents.hexdigest()}, "
                f"the published file's is {digest}")
    return None


def check_reachable(url, what="MNIST", fix=None):
    """Fails within seconds when offline, saying what to do instead.

    Args:
        url: str, a file to ask for (a HEAD request, without retries).
        what: str, the data set's name, for the error. Defaults to `"MNIST"`.
        fix: str, what helps without a network, for the error. Defaults to
            `None`: to go online once, or to use the IDX files.
    """
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
    except OSError as err:  # URLError, timeouts, refused connections
        fix = fix or f"Go online once, or use the files instead: {FILES_FIX}"
        raise DataError(
            f"Could not download {what} (offline?): {url} cannot be reached "
            f"({type(err).__name__}: {getattr(err, 'reason', err)}). {fix}"
        ) from err


def _fetch(url, path, digest, name):
    """Downloads `url` to `path`, renamed into place once its contents' hash is `digest`."""
    import keras

    directory, file = os.path.split(path)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as tmp:
        try:
            fetched = keras.utils.get_file(file, url, cache_dir=tmp, cache_subdir="")
        except Exception as err:  # get_file raises bare Exceptions for URL errors
            raise DataError(
                f"Could not download {url}: {err}. Try again, or use the files "
                f"instead: {FILES_FIX}"
            ) from err
        mismatch = _mismatch(fetched, digest)
        if mismatch:
            raise DataError(
                f"{url} does not serve the published {name} file: {mismatch}. Download "
                f"from {MIRROR_FIX}, or use the files instead: {FILES_FIX}")
        os.replace(fetched, path)
