"""Files that can be trusted: written atomically (a file or directory appears
whole under its name, or not at all), and checked by their SHA-256."""

import contextlib
import hashlib
import os
import shutil


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path beside `path`, renamed to `path` when the block succeeds.

    The temporary, `.{name}.tmp-{pid}{suffix}`, is in `path`'s directory, so
    the rename stays on one file system and is atomic. If the block or the
    rename fails, the temporary (file or directory) is removed and `path`
    keeps what it held. A crash mid-write leaves the previous `path`.

    Args:
        path: str or `os.PathLike`, the file or directory to write.
        suffix: str, ends the temporary's name, for writers that pick the
            format from it (`".keras"`). Defaults to `""`.
    """
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    tmp = os.path.join(parent, f".{name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        if os.path.isdir(tmp) and os.path.isdir(path):
            _replace_directory(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.remove(tmp)


def _replace_directory(new, path):
    """Renames the directory `new` to the existing directory `path`.

    One rename cannot replace a non-empty directory: the old one is moved
    aside, the new one renamed in (the old put back if that fails), then the
    old one removed.
    """
    parent, name = os.path.split(path)
    old = os.path.join(parent, f".{name}.old-{os.getpid()}")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)  # the previous directory stays in place
        raise
    shutil.rmtree(old)


def sha256(path):
    """The SHA-256 hex digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
