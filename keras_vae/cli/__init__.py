"""`keras-vae`: train, sample, evaluate, plot, export a SavedModel, check parity
with TF1, download MNIST; one module per subcommand.

A thin layer over the library: it parses flags, calls the library, and turns
bad input into a one-line error and exit status 2 instead of a traceback.
Parsing imports nothing of TensorFlow; each subcommand imports what it uses.
"""

import argparse
import gc
import os
import sys

from keras_vae.cli import download, evaluate, export, parity, plot, sample, train
from keras_vae.distribute.strategies import WorkerLostError

SUBCOMMANDS = (train, sample, export, evaluate, plot, download, parity)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vae",
        description="The classic TF1 MNIST variational autoencoder, in Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(commands)
    return parser


def main(argv=None):
    """Parses `argv` (default: the command line) and runs its subcommand; the exit status."""
    return run(build_parser().parse_args(argv))


def run(args):
    """Runs the parsed subcommand `args`; the exit status, a bad input's error said in a line."""
    try:
        status = args.run(args)
    except (ValueError, OSError) as error:
        print(f"keras-vae {args.command}: error: {error}", file=sys.stderr)
        return 2
    except WorkerLostError as error:  # training's failure, not bad input
        print(f"keras-vae {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("keras-vae: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # not bad input: say what, keep the traceback optional
        if os.environ.get("KERAS_VAE_TRACEBACK"):
            raise
        first_line = (str(error).strip().splitlines() or [""])[0]
        print(
            f"keras-vae {args.command}: error: {type(error).__name__}: {first_line} "
            "(set KERAS_VAE_TRACEBACK=1 to see where)",
            file=sys.stderr,
        )
        return 1
    return status or 0


def command(args=None):
    """`main` (or `run` of the parsed `args`) for a process that exits next:
    `python -m keras_vae`, and `keras_vae_cli`, the `keras-vae` command."""
    # TensorFlow's C++ INFO and WARNING lines from here on (keras_vae_cli
    # sets it before TensorFlow's import, `python -m keras_vae` cannot).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return run(args) if args is not None else main()
    finally:
        # The process ends here, its files written and closed. Python's last
        # garbage collection would walk every object TensorFlow's import made,
        # which takes longer than a short run's training: frozen, it skips them.
        gc.freeze()
