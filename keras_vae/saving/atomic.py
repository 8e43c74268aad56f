"""Files that can be trusted: written atomically (a file or directory appears
whole under its name, or not at all), and checked by their SHA-256."""

import contextlib
import ctypes
import errno
import hashlib
import os
import re
import shutil
import sys

# What `atomic_path` leaves beside NAME if its process dies mid-write: the
# temporary (with a writer's suffix, or a LiteRT export's intermediate
# SavedModel), and where directories cannot be exchanged the old directory.
_LEFTOVER = re.compile(
    r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:\.keras|\.savedmodel)?$")


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
    """Puts the directory `new` at the existing directory `path`.

    One rename cannot replace a non-empty directory. Where the system can,
    the two names are exchanged in one step, so `path` always holds a whole
    directory, and `new` the old one, removed next (or by the next export,
    if this process is killed first). Elsewhere the old one is moved aside
    to `.NAME.old-PID`, the new one renamed in (the old put back if that
    fails), then the old one removed: a kill between the renames leaves no
    `path`, and the old directory whole, which `clear_leftovers` puts back.
    """
    if _exchange(new, path):
        return
    parent, name = os.path.split(path)
    old = os.path.join(parent, f".{name}.old-{os.getpid()}")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)  # the previous directory stays in place
        raise
    shutil.rmtree(old)


def _exchange(a, b):
    """Exchanges the names `a` and `b` atomically: Linux's `renameat2` with
    `RENAME_EXCHANGE` (Python's `os` has no call for it, hence ctypes).
    False where the system or its file system cannot."""
    renameat2 = getattr(_libc(), "renameat2", None) if sys.platform == "linux" else None
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2  # <fcntl.h>, <linux/fs.h>
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not on this kernel or file system
        return False
    raise OSError(code, os.strerror(code), a, None, b)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def clear_leftovers(directory, name=None):
    """Tidies what writers killed mid-write left in `directory` (of `name`
    only, if given): an old directory whose replacement never arrived is
    put back under its name; other temporaries are removed. Those of a
    process still running may be in use: they are kept, and returned.
    """
    if not os.path.isdir(directory):
        return []
    kept = []
    for entry in sorted(os.listdir(directory)):
        match = _LEFTOVER.match(entry)
        if not match or name is not None and match["name"] != name:
            continue
        if _running(int(match["pid"])):
            kept.append(os.path.join(directory, entry))
            continue
        leftover, target = os.path.join(directory, entry), os.path.join(directory, match["name"])
        if match["kind"] == "old" and not os.path.lexists(target):
            os.replace(leftover, target)  # the whole previous version, back in place
        elif os.path.isdir(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            os.remove(leftover)
    return kept


def _running(pid):
    """Whether another process of id `pid` is running (this one writes nothing now)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sha256(path):
    """The SHA-256 hex digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
