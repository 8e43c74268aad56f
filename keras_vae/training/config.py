"""The settings of a training run, each defined once: its type, default and
help text, and whether it belongs to the run or to this invocation.

A *run* setting (seed, batch size, dimensions, data, learning rate, ...) is
recorded with each checkpoint and compared when the run resumes: a resumed
run must be the run it continues. Left unset (None), it is the resumed
run's own, or for a fresh run its default. An *invocation* setting
(`--iters`, `--out`, `--verbose`, ...) is this command's alone: a longer
`--iters` extends a run.

`keras-vae train`'s flags are made from these fields (`keras_vae.cli.flags`),
and `keras_vae.training.run.train` takes a `RunConfig`. Adding a setting
means adding a field here and, if it is a flag, its help text. This module
imports nothing of TensorFlow, so the flags can be parsed without it.
"""

import argparse
import dataclasses
import math

from keras_vae.distribute.strategies import KINDS as STRATEGIES

RUN = "run"
INVOCATION = "invocation"


# Parsers of flag values: argparse types, shared by every subcommand.

def positive_int(text):
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def finite_float(text):
    """A finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text):
    """A finite number > 0."""
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text):
    """A finite number >= 0."""
    value = finite_float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def host_ports(text):
    """HOST:PORT,HOST:PORT,... (the workers of a cluster), as a list."""
    workers = text.split(",")
    for worker in workers:
        host, _, port = worker.rpartition(":")
        if not host or not port.isdigit():
            raise argparse.ArgumentTypeError(
                f"expected HOST:PORT,HOST:PORT,..., got {worker!r} in {text!r}")
    return workers


def keras_path(text):
    """A path ending in .keras, the format Keras 3 saves."""
    if not text.endswith(".keras"):
        raise argparse.ArgumentTypeError(f"expected a path ending in .keras, got {text!r}")
    return text


def setting(kind, help, default=None, fresh=None, flag=True, **argparse_kwargs):
    """A field of `RunConfig`.

    Args:
        kind: `RUN` or `INVOCATION`.
        help: str, the flag's help text (and the field's documentation).
        default: the field's default: for a run setting None, "unset".
        fresh: for a run setting, its value in a fresh run when unset.
        flag: bool, whether `keras-vae train` has a flag for it; a run
            setting without one is derived from the others.
        **argparse_kwargs: how argparse reads the flag (`type`, `choices`, ...).
    """
    metadata = {"kind": kind, "help": help, "fresh": fresh, "flag": flag,
                "argparse": argparse_kwargs}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What `keras-vae train` does: the run's settings and this invocation's.

    Example:

    >>> config = RunConfig(iters=5000, data_dir="MNIST_data", seed=0)
    >>> outcome = keras_vae.training.run.train(config)
    """

    # The run: recorded with each checkpoint, compared when resuming.
    seed: int | None = setting(
        RUN, "makes the run reproducible (default: drawn, and kept with the checkpoints)",
        type=int)
    batch_size: int | None = setting(RUN, "images per step (default: 64)", fresh=64,
                                     type=positive_int)
    h_dim: int | None = setting(RUN, "hidden units (default: 128)", fresh=128, type=positive_int)
    z_dim: int | None = setting(RUN, "latent size (default: 100)", fresh=100, type=positive_int)
    sample_every: int | None = setting(
        RUN, "steps between sample grids and Iter:/Loss: lines (default: 1000)", fresh=1000,
        type=positive_int)
    dataset: str | None = setting(
        RUN, "the images to train on: mnist or fashion_mnist (--dataset), or your own "
        ".npz file (--data) (default: mnist, or a resumed run's own)", fresh="mnist")
    split: str | None = setting(
        RUN, "the training images (default: train[5000:], the original's last 55,000; "
        "all of train for a .npz file)")
    data_sha256: str | None = setting(
        RUN, "a .npz file's SHA-256, which a resumed run must match", flag=False)
    binarize: bool | None = setting(
        RUN, "dynamic binarization: each pixel drawn as Bernoulli(intensity) every time an "
        "image is used, keyed by seed and step (default: the original's continuous pixels)",
        fresh=False, action="store_true", default=None)
    learning_rate: float | None = setting(
        RUN, "Adam's step size (default: 0.001, as the original)", fresh=1e-3,
        type=positive_float, metavar="LR")
    beta: float | None = setting(
        RUN, "the KL term's weight in the loss (default: 1, as the original)", fresh=1.0,
        type=non_negative_float)

    # This invocation.
    iters: int = setting(INVOCATION, "training steps of the run, in all (default: 1000000, "
                         "as the original)", 1_000_000, type=positive_int)
    data_dir: str | None = setting(
        INVOCATION, "directory of the four IDX .gz files (MNIST's layout, the original's "
        "MNIST_data/); default: download them once into ~/.keras/datasets")
    out: str = setting(INVOCATION, "directory for the grids (default: out/)", "out")
    checkpoint_dir: str | None = setting(
        INVOCATION, "keep checkpoints here; the same command run again resumes from the "
        "newest", metavar="DIR")
    checkpoint_every: int = setting(INVOCATION, "steps between checkpoints (default: 1000)",
                                    1000, type=positive_int)
    overwrite: bool = setting(
        INVOCATION, "a fresh run replaces the grids already in --out, the logs in --log-dir, "
        "and an existing --export", False, action="store_true")
    verbose: int = setting(
        INVOCATION, "Keras' fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch",
        1, type=int, choices=(0, 1, 2))
    fast: bool = setting(
        INVOCATION, "fast mode: statistically the same training, not bit for bit, its steps "
        "compiled by XLA, faster (default: faithful, the TF1 graph's bits)", False,
        action="store_true")
    log_dir: str | None = setting(
        INVOCATION, "write TensorBoard events (loss, reconstruction, KL, the sample grids) "
        "and DIR/metrics.csv every --sample-every steps; a resumed run continues them",
        metavar="DIR")
    eval_every: int | None = setting(
        INVOCATION, "with --log-dir: also log the test split's negative ELBO every N steps "
        "(a multiple of --sample-every)", type=positive_int, metavar="N")
    save: str | None = setting(INVOCATION, "save the trained model (.keras)", type=keras_path,
                               metavar="PATH")
    export: str | None = setting(INVOCATION, "also export the trained model as a SavedModel",
                                 metavar="DIR")
    strategy: str = setting(
        INVOCATION, "one: one device (default); mirrored: every GPU of this machine, or "
        "--replicas logical CPUs; multi-worker: one worker of a cluster (--workers and "
        "--worker-index, or TF_CONFIG)", "one", choices=STRATEGIES)
    replicas: int | None = setting(
        INVOCATION, "with --strategy mirrored on a machine without GPUs: N CPU replicas",
        type=positive_int, metavar="N")
    workers: list | None = setting(
        INVOCATION, "with --strategy multi-worker: every worker, in the same order on each",
        type=host_ports, metavar="HOST:PORT,...")
    worker_index: int | None = setting(
        INVOCATION, "with --workers: this worker's place in the list, from 0 (0 is the "
        "chief, which writes the grids, logs, checkpoints and --save)", type=int, metavar="I")
    join_timeout: float = setting(
        INVOCATION, "with --strategy multi-worker: seconds for every worker to join; past "
        "them this worker stops, naming those that do not answer (default: 60)", 60.0,
        type=positive_float, metavar="SECONDS")

    @classmethod
    def fields_of(cls, kind):
        """The fields of `kind` (`RUN` or `INVOCATION`), in order."""
        return [f for f in dataclasses.fields(cls) if f.metadata["kind"] == kind]

    def record(self):
        """The run settings, as recorded with each checkpoint (JSON)."""
        return {f.name: getattr(self, f.name) for f in self.fields_of(RUN)}

    def resumed(self, record):
        """This config with each unset run setting taken from a checkpoint's
        `record` (a setting it lacks, from before the setting existed, takes
        the fresh default, which was then the only choice)."""
        return dataclasses.replace(self, **{
            f.name: record.get(f.name, f.metadata["fresh"])
            for f in self.fields_of(RUN) if getattr(self, f.name) is None})

    def fresh(self):
        """This config with each unset run setting at its fresh-run default."""
        return dataclasses.replace(self, **{
            f.name: f.metadata["fresh"] for f in self.fields_of(RUN)
            if getattr(self, f.name) is None})

    def conflict(self, record):
        """The first run setting set here that the checkpointed run's `record`
        contradicts, as `(name, recorded value, value here)`, or None."""
        for f in self.fields_of(RUN):
            value = getattr(self, f.name)
            stored = record.get(f.name, f.metadata["fresh"])
            if value is not None and value != stored:
                return f.name, stored, value
        return None
