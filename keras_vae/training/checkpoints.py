"""Checkpoints of a training run: written atomically, verified when resuming.

A checkpoint is two files: `ckpt-NNNNNNNNN.keras` (weights, optimizer state,
step counter, the sampler's state) and `ckpt-NNNNNNNNN.json` (the format
version, the step, the `.keras` file's SHA-256 and the run's configuration).
The JSON is written last, so it marks a complete checkpoint; the hash catches
a `.keras` file damaged later.
"""

import dataclasses
import glob
import json
import os
import re
import sys
import warnings
import zipfile

import numpy as np

from keras_vae.saving import formats
from keras_vae.saving.atomic import atomic_path, clear_leftovers, sha256
from keras_vae.saving.formats import FormatVersionError, check_format_version
from keras_vae.saving.keras_file import load_model, save_model

_RECORD = re.compile(r"ckpt-(\d{9,})\.json$")


class CheckpointError(ValueError):
    """A checkpoint directory holds no usable checkpoint, or one of another run."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A checkpoint found on disk: its step, files and the run's configuration."""

    step: int
    model_path: str
    config: dict


def save_checkpoint(model, directory, config, keep=2):
    """Writes a checkpoint of `model` at its current step; keeps the `keep` newest.

    Refuses weights that are not finite: a diverged run never overwrites its
    last good checkpoint.

    Args:
        model: a compiled `keras_vae.VAE`.
        directory: str, the checkpoint directory (created if missing).
        config: dict, what a resumed run must match (JSON-serialisable).
        keep: int, how many checkpoints to keep. Defaults to `2`, so that a
            damaged newest one leaves an older one to resume from.

    Returns:
        The `Checkpoint` written.
    """
    if not all(np.isfinite(w.numpy()).all() for w in model.weights):
        raise ValueError("Refusing to checkpoint weights that are NaN or infinite.")
    os.makedirs(directory, exist_ok=True)
    tidy(directory)
    step = int(model.optimizer.iterations.numpy())
    stem = os.path.join(directory, f"ckpt-{step:09d}")
    save_model(model, stem + ".keras")
    record = {
        "format_version": formats.FORMAT_VERSION,
        "step": step,
        "sha256": sha256(stem + ".keras"),
        "config": config,
    }
    _write_json(stem + ".json", record)
    for old in list_checkpoints(directory)[:-keep]:
        os.remove(old[1])  # the record first: a half-pruned checkpoint is no checkpoint
        if os.path.exists(old[2]):
            os.remove(old[2])
    return Checkpoint(step, stem + ".keras", config)


def list_checkpoints(directory):
    """`[(step, json_path, keras_path)]` of the checkpoint records, oldest first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(directory), "ckpt-*.json")):
        match = _RECORD.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path, path[: -len(".json")] + ".keras"))
    return sorted(found)


def load_latest(directory, warn=None):
    """The newest usable checkpoint in `directory` and its model, or None if none.

    A checkpoint whose record cannot be read, whose `.keras` file is missing,
    does not match its hash (truncated, overwritten) or does not load is
    skipped with a warning, and the next older one is tried. One of a newer
    format is not skipped: resuming from an older one would drop its steps.

    Args:
        directory: str, the checkpoint directory.
        warn: callable taking a message, or None: print to stderr.

    Returns:
        `(Checkpoint, model)`, or `None` when the directory holds no checkpoint.

    Raises:
        CheckpointError: there are checkpoints, but none is usable.
        FormatVersionError: the newest record is of a format this keras_vae
            cannot read (written by a newer one).
    """
    warn = warn or (lambda message: print(message, file=sys.stderr))
    found = list_checkpoints(directory)
    for step, json_path, keras_path in reversed(found):
        try:
            with open(json_path) as f:
                record = json.load(f)
            check_format_version(
                record.get("format_version", 1), f"The checkpoint record {json_path}"
            )
            if not os.path.isfile(keras_path):
                raise ValueError(f"{keras_path} is missing")
            if sha256(keras_path) != record["sha256"]:
                raise ValueError(
                    f"{keras_path} does not match the hash recorded when it was "
                    "written (truncated or overwritten)"
                )
            model = load_model(keras_path)
        except FormatVersionError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            warn(f"Warning: skipping the damaged checkpoint at step {step}: {error}")
            continue
        return Checkpoint(step, keras_path, record["config"]), model
    if found:
        raise CheckpointError(
            f"No usable checkpoint in {directory}: all {len(found)} are damaged "
            "(see the warnings above). Move the directory aside to start afresh."
        )
    return None


def tidy(directory):
    """Removes the partial files of writers killed mid-checkpoint from
    `directory`; names those of processes still running, which may be
    another run's."""
    kept = clear_leftovers(directory)
    if kept:
        warnings.warn(f"{directory} holds files another running process may be writing, "
                      f"left in place: {', '.join(map(os.path.basename, kept))}. Two runs "
                      "sharing one --checkpoint-dir would overwrite each other's checkpoints.")


def _write_json(path, value):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(value, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
