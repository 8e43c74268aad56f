"""A crash during an atomic write leaves the previous good file.

Each writer first writes a good file, then a second write crashes: halfway
(the real writer writes, its temporary output is cut to half, an exception
is raised) or at the rename that would put the new output in place (an
OSError). The previous file must keep its bytes (and a model still load),
and no temporary file may be left behind.
"""

import collections
import errno
import json
import os
from unittest import mock

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

from keras_vae.saving import atomic

from keras_vae.training import checkpoints

from keras_vae.evaluation.grid import save_grid
from keras_vae.model import VAE
from keras_vae.saving import saved_model
from keras_vae.saving.export import export
from keras_vae.saving.keras_file import load_model, save_model
from keras_vae.training.checkpoints import list_checkpoints, load_latest, save_checkpoint


class Crash(Exception):
    """The crash injected halfway through a write."""


def small_vae(seed, step=0):
    """A compiled VAE(h_dim=8, z_dim=2), its weights drawn from `seed`, at `step`."""
    keras.utils.set_random_seed(seed)
    model = VAE(h_dim=8, z_dim=2, seed=seed)
    model.compile()
    model.optimizer.build(model.trainable_variables)  # as after a step: its state is saved
    model.optimizer.iterations.assign(step)
    return model


# Each writes version 1 (the good file) or 2 (the one that crashes) into
# `directory`, and returns the model it wrote, if any.


def write_grid(directory, version):
    save_grid(np.random.default_rng(version).random((16, 784)), directory / "000.png")


def write_model(directory, version):
    model = small_vae(version)
    save_model(model, directory / "vae.keras")
    return model


def write_record(directory, version):
    checkpoints._write_json(str(directory / "ckpt-000000001.json"), {"step": version})


def write_checkpoint(directory, version):
    model = small_vae(version, step=version)
    save_checkpoint(model, str(directory), {"seed": version})
    return model


def write_export(directory, version):
    export(small_vae(version), directory / "saved", overwrite=True)


def write_export_by_two_renames(directory, version):
    """As `write_export` where directories cannot be exchanged in one step."""
    with mock.patch.object(atomic, "_exchange", return_value=False):
        write_export(directory, version)


def load_vae_file(directory):
    """The model in the `.keras` file `write_model` writes."""
    return load_model(directory / "vae.keras")


def load_checkpoint(directory):
    """The newest checkpoint's model, once sure it is the step-1 one."""
    assert [step for step, _, _ in list_checkpoints(str(directory))] == [1]
    checkpoint, model = load_latest(str(directory))
    assert checkpoint.step == 1
    return model


Writer = collections.namedtuple("Writer", "write, produces, installs, load", defaults=[None])
WRITERS = {
    # produces: the (owner, name) of the call that writes the bytes;
    # installs: whether a rename's destination is the one that puts the output in place.
    "save_grid": Writer(write_grid, (Figure, "savefig"),
                        lambda dst: dst.endswith("000.png")),
    "save_model": Writer(write_model, (VAE, "save"),
                         lambda dst: dst.endswith("vae.keras"), load_vae_file),
    "checkpoint_record": Writer(write_record, (json, "dump"),
                                lambda dst: dst.endswith(".json")),
    # A checkpoint's record is renamed last: that rename makes it complete (a
    # crash there leaves the new `.keras` file, unreferenced, beside the old one).
    "save_checkpoint": Writer(write_checkpoint, (VAE, "save"),
                              lambda dst: dst.endswith(".json"), load_checkpoint),
    # With overwrite: the new export and the previous one exchange names...
    "export": Writer(write_export, (saved_model, "_write_metadata"),
                     lambda dst: os.path.basename(dst) == "saved"),
    # ...or the previous one is moved aside, then the new one renamed in.
    "export_by_two_renames": Writer(write_export_by_two_renames, (saved_model, "_write_metadata"),
                                    lambda dst: os.path.basename(dst) == "saved"),
}


def crash_halfway(monkeypatch, owner, name):
    """Makes `owner.name` write its output, cut it to half, and raise Crash."""
    write = getattr(owner, name)

    def write_half_then_crash(*args, **kwargs):
        write(*args, **kwargs)
        cut_to_half(args[1])  # the output: a path, or an open file
        raise Crash(f"crashed halfway through {name}")

    monkeypatch.setattr(owner, name, write_half_then_crash)


def cut_to_half(output):
    """Truncates a written file, given its path or open file, to half its size."""
    if hasattr(output, "fileno"):
        output.flush()
        os.ftruncate(output.fileno(), os.fstat(output.fileno()).st_size // 2)
    else:
        os.truncate(output, os.path.getsize(output) // 2)


def crash_at_rename(monkeypatch, installs):
    """Makes `os.replace` and the exchange of two names, as the writers'
    `keras_vae.saving.atomic` calls them, raise OSError, once, at the rename
    that would put the new output in place."""
    crashed = []

    def or_crash(rename):
        def rename_or_crash(src, dst):
            if not crashed and installs(os.fspath(dst)):
                crashed.append(dst)
                raise OSError(errno.EIO, "crashed at the rename", os.fspath(dst))
            return rename(src, dst)
        return rename_or_crash

    monkeypatch.setattr(atomic.os, "replace", or_crash(os.replace))
    monkeypatch.setattr(atomic, "_exchange", or_crash(atomic._exchange))


def contents(root):
    """{relative path: bytes} of every file under `root`."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*") if path.is_file()
    }


def temporaries(root):
    """Files and directories under `root` named as the writers' temporaries."""
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*")
        if path.name.startswith(".") or ".tmp-" in path.name
    )


@pytest.mark.parametrize("crash", ["halfway", "at_rename"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_crash_during_a_write_leaves_the_previous_file(writer, crash, tmp_path, monkeypatch):
    write, produces, installs, load = WRITERS[writer]
    good = write(tmp_path, 1)
    before = contents(tmp_path)
    if crash == "halfway":
        crash_halfway(monkeypatch, *produces)
        expected = pytest.raises(Crash)
    else:
        crash_at_rename(monkeypatch, installs)
        expected = pytest.raises(OSError, match="crashed at the rename")
    with expected:
        write(tmp_path, 2)
    monkeypatch.undo()

    after = contents(tmp_path)
    assert {name: after.get(name) for name in before} == before
    assert temporaries(tmp_path) == []
    if load:
        for loaded, written in zip(load(tmp_path).weights, good.weights):
            np.testing.assert_array_equal(loaded.numpy(), written.numpy())


def _dead_pid():
    """The id of a process that has ended."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_checkpoint_clears_what_a_killed_writer_left_and_names_a_running_ones(tmp_path):
    dead, running = _dead_pid(), os.getppid()  # pytest's parent is running
    left = tmp_path / f".ckpt-000000350.keras.tmp-{dead}.keras"
    left.write_bytes(b"half a zip")
    (tmp_path / f".ckpt-000000350.json.tmp-{dead}").write_text("{")
    busy = tmp_path / f".ckpt-000000400.keras.tmp-{running}.keras"
    busy.write_bytes(b"being written")
    with pytest.warns(UserWarning, match=busy.name):
        save_checkpoint(small_vae(0, step=7), str(tmp_path), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        busy.name, "ckpt-000000007.json", "ckpt-000000007.keras"]


def test_an_export_puts_back_the_old_one_a_killed_overwrite_moved_aside(tmp_path):
    target, dead = tmp_path / "saved", _dead_pid()
    export(small_vae(1), target)
    # Killed between the two renames: the old export aside, no target.
    os.replace(target, tmp_path / f".saved.old-{dead}")
    (tmp_path / f".saved.tmp-{_dead_pid()}").mkdir()
    with pytest.raises(FileExistsError):  # the old one is back, so it is refused
        export(small_vae(2), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]
    assert (target / saved_model.METADATA).is_file()
    export(small_vae(2), target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]
