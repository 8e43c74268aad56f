"""The flags the subcommands share, defined once, and `train`'s flags made
from `RunConfig`'s fields."""

import argparse
import dataclasses

from keras_vae.data.sources import DATASETS
from keras_vae.training.config import INVOCATION, RUN, RunConfig


def sample_counts(text):
    """argparse type: comma-separated positive integers, e.g. 1,100,5000."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, got {text!r}")
    return counts


def index_pair(text):
    """argparse type: two indices >= 0, e.g. 0,1."""
    try:
        pair = tuple(int(part) for part in text.split(","))
    except ValueError:
        pair = ()
    if len(pair) != 2 or min(pair) < 0:
        raise argparse.ArgumentTypeError(f"expected two indices >= 0 like 0,1, got {text!r}")
    return pair


def npz_path(text):
    """argparse type: the path of a .npz file."""
    if not text.endswith(".npz"):
        raise argparse.ArgumentTypeError(f"expected a .npz file, got {text!r}")
    return text


def add_data_flags(parser, verb, default, data_dir=True):
    """--data-dir (unless `data_dir` is False), and --dataset or --data (both
    into `dataset`): which images to `verb`."""
    if data_dir:
        parser.add_argument("--data-dir", help=_help("data_dir"))
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--dataset", choices=DATASETS, help=f"the images to {verb} ({default})")
    which.add_argument(
        "--data", dest="dataset", type=npz_path, metavar="FILE.npz",
        help="your own images instead: a .npz file with x_train and x_test (uint8, "
        "or floats in [0, 1]; any image shape), and optionally y_train and y_test",
    )


def add_run_flags(parser):
    """A flag for each field of `RunConfig` (`--data` too, for `dataset`), in
    two groups: the run's settings and this command's."""
    groups = {
        RUN: parser.add_argument_group(
            "the run", "recorded with its checkpoints: a resumed run takes those left out "
            "from its record, and refuses one given otherwise"),
        INVOCATION: parser.add_argument_group(
            "this command", "may differ when a run resumes: a longer --iters extends it"),
    }
    for field in dataclasses.fields(RunConfig):
        group = groups[field.metadata["kind"]]
        if field.name == "dataset":
            add_data_flags(group, "train on", "default: mnist", data_dir=False)
        elif field.metadata["flag"]:
            group.add_argument(_flag(field.name), dest=field.name, default=field.default,
                               help=field.metadata["help"], **field.metadata["argparse"])


def run_config(args):
    """The `RunConfig` that `train`'s parsed flags describe."""
    return RunConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)
                        if f.metadata["flag"]})


def _flag(name):
    return "--" + name.replace("_", "-")


def _help(name):
    return next(f.metadata["help"] for f in dataclasses.fields(RunConfig) if f.name == name)


def data_of(args, model):
    """The `dataset` the flags name, or else the one `model` was trained on."""
    return args.dataset or model.trained_with.get("dataset", "mnist")
