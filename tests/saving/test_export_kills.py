"""kill -9 at each stage of an overwriting export, and during a checkpoint's
write: the target always holds a complete export, and the next export or
run leaves no temporary behind.

The killed process is `keras-vae export` (or `train`) with a few of
keras_vae's functions wrapped to announce, on stdout, each stage they
complete and then wait for a line on stdin: the test reads the events as
they happen and sends SIGKILL at the one it is after, as
`tools/kill_resume.py` does with the files a run writes.
"""

import json
import os
import signal
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from keras_vae.model import VAE
from keras_vae.saving import saved_model
from keras_vae.saving.export import export
from keras_vae.saving.keras_file import save_model
from tests.conftest import REPO, checkout_env

# The command, its stages announced. argv: how directories are replaced
# ("exchange" or "two_renames"), then the command's own arguments.
ANNOUNCED = """
import os, sys
from keras_vae.saving import atomic, export, saved_model, self_check
from keras_vae.saving import keras_file
from keras_vae import model as vae_model

def announce(event, function):
    def announced(*args, **kwargs):
        result = function(*args, **kwargs)
        print("@", event, os.path.basename(os.fspath(args[-1])), flush=True)
        sys.stdin.readline()  # the test kills this process, or lets it go on
        return result
    return announced

how, *command = sys.argv[1:]
saved_model.write = announce("written", saved_model.write)
self_check.check = announce("checked", self_check.check)
if how == "two_renames":
    atomic._exchange = lambda a, b: False
atomic._exchange = announce("exchanged", atomic._exchange)
atomic.os = type(sys)("os_announced")
atomic.os.__dict__.update(os.__dict__)
atomic.os.replace = announce("renamed", os.replace)
vae_model.VAE.save = announce("wrote", vae_model.VAE.save)
from keras_vae.training import run
run.load_latest = announce("loaded", run.load_latest)

from keras_vae.cli import main
sys.exit(main(command))
"""


def run_until(event, how, *command):
    """Runs `command` with its stages announced, and SIGKILLs it once it
    announces `event` (a prefix of the line); returns the lines it announced."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ANNOUNCED, how, *map(str, command)], cwd=REPO,
        env=checkout_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        if not line.startswith("@ "):  # the command's own output
            continue
        seen.append(line[2:].strip())
        if seen[-1].startswith(event):
            proc.send_signal(signal.SIGKILL)
            break
        proc.stdin.write("\n")
        proc.stdin.flush()
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL, (event, seen, proc.stderr.read()[-2000:])
    return seen


def vae(steps):
    """A VAE whose SavedModel records `steps` training steps, so exports tell apart."""
    keras.utils.set_random_seed(steps)
    model = VAE(h_dim=8, z_dim=2, seed=steps)
    model.compile()
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(steps)
    return model


def training_steps(path):
    """The steps recorded by the complete SavedModel at `path`, once it loads
    with every signature."""
    loaded = tf.saved_model.load(str(path))
    assert {"encode", "decode", "sample", "reconstruct_sampled"} <= set(loaded.signatures)
    with open(path / saved_model.METADATA) as f:
        return json.load(f)["training_steps"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """`old.keras` (1 step) and `new.keras` (2 steps), in a directory of their own."""
    root = tmp_path_factory.mktemp("models")
    for name, steps in (("old", 1), ("new", 2)):
        save_model(vae(steps), root / f"{name}.keras")
    return root


# (how directories are replaced, the stage killed, whose export the target then holds)
STAGES = [
    ("exchange", "written", 1),  # being checked
    ("exchange", "checked", 1),  # checked, not yet in place
    ("exchange", "exchanged", 2),  # in place, the old one not yet removed
    ("two_renames", "renamed saved", 2),  # in place, the old one not yet removed
]


@pytest.mark.slow
@pytest.mark.parametrize("how, event, holds", STAGES)
def test_a_kill_at_any_stage_of_an_overwrite_leaves_a_complete_export(
        how, event, holds, models, tmp_path):
    target = tmp_path / "saved"
    export(vae(1), target)
    seen = run_until(event, how, "export", "--model", models / "new.keras",
                     "--out", target, "--overwrite")
    assert training_steps(target) == holds, seen
    assert any(name.startswith(".saved.") for name in os.listdir(tmp_path))  # it was mid-way

    export(vae(3), target, overwrite=True)
    assert os.listdir(tmp_path) == ["saved"]
    assert training_steps(target) == 3


@pytest.mark.slow
def test_a_kill_between_two_renames_leaves_the_old_export_whole_and_the_next_puts_it_back(
        models, tmp_path):
    target = tmp_path / "saved"
    export(vae(1), target)
    seen = run_until("renamed .saved.old-", "two_renames", "export", "--model",
                     models / "new.keras", "--out", target, "--overwrite")
    (aside,) = [path for path in tmp_path.iterdir() if path.name.startswith(".saved.old-")]
    assert not target.exists() and training_steps(aside) == 1, seen

    with pytest.raises(FileExistsError):  # the old one comes back first, so it is refused
        export(vae(3), target)
    assert sorted(os.listdir(tmp_path)) == ["saved"]
    assert training_steps(target) == 1


@pytest.mark.slow
def test_a_kill_during_a_checkpoint_write_leaves_no_temporary_once_the_next_run_starts(
        tmp_path, synthetic_mnist_dir):
    checkpoints = tmp_path / "checkpoints"
    train = ["train", "--data-dir", synthetic_mnist_dir, "--iters", 60, "--checkpoint-every", 20,
             "--checkpoint-dir", checkpoints, "--out", tmp_path / "grids", "--verbose", 0,
             "--seed", 0]
    run_until("wrote .ckpt-000000040.keras.tmp-", "exchange", *train)
    complete = ["ckpt-000000020.json", "ckpt-000000020.keras"]
    left = sorted(set(os.listdir(checkpoints)) - set(complete))
    assert len(left) == 1 and ".tmp-" in left[0], left  # killed mid-write

    # The next run is killed once it has loaded the checkpoint of step 20,
    # before it trains or writes anything.
    assert run_until("loaded", "exchange", *train) == ["loaded checkpoints"]
    assert sorted(os.listdir(checkpoints)) == complete
