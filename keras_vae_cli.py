"""The `keras-vae` command's entry point (also `python -m keras_vae_cli`).

It sits outside the `keras_vae` package because importing that package
imports TensorFlow: `import keras_vae` registers the package's Keras classes,
so that `keras.models.load_model` reads its `.keras` files, and Keras has no
lazier way to find them. That import takes seconds and prints TensorFlow's
start-up lines. So the command first parses its flags with
`keras_vae.cli`'s parser, loaded while the package's `__init__` is held back
(`--help` and usage errors answer without TensorFlow), then runs that
`__init__` with TensorFlow's start-up lines set aside. They reach the user
with `KERAS_VAE_TF_LOG=1`, or when the import fails.
"""

import contextlib
import functools
import importlib.util
import os
import sys
import tempfile

SHOW_TF_LOG = "KERAS_VAE_TF_LOG"


def command(argv=None):
    """Parses the flags, imports keras_vae quietly, runs the subcommand; the exit status."""
    run_init = _held_back("keras_vae")
    from keras_vae import cli

    args = cli.build_parser().parse_args(argv)
    with _tensorflow_start_up_set_aside():
        run_init()
    return cli.command(args)


def _held_back(name):
    """Makes the package `name` importable for its submodules with its
    `__init__` not yet run; returns the function that runs it (nothing left
    to run if the package was imported already). The module object stays
    the same, and becomes the whole package once its `__init__` has run.
    """
    if name in sys.modules:
        return lambda: None
    spec = importlib.util.find_spec(name)
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    return functools.partial(spec.loader.exec_module, package)


@contextlib.contextmanager
def _tensorflow_start_up_set_aside():
    """Runs the block with file descriptor 2 in a temporary file, which is
    dropped if the block succeeds and copied to stderr if it fails.

    Some of TensorFlow's start-up lines (absl's "before absl::InitializeLog",
    the CUDA stubs') ignore TF_CPP_MIN_LOG_LEVEL, and they are written by C++
    straight to the descriptor. Listing the physical devices inside the block
    brings the platforms' lines (cuInit on a machine without a GPU) forward
    into it without starting TensorFlow's runtime, which strategies must
    configure first.
    """
    if os.environ.get(SHOW_TF_LOG):
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # its INFO and WARNING lines later on
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as aside:
        os.dup2(aside.fileno(), 2)
        try:
            yield
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            _restore(saved)
            aside.seek(0)
            sys.stderr.buffer.write(aside.read())
            raise
        _restore(saved)


def _restore(saved):
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


if __name__ == "__main__":
    sys.exit(command())
