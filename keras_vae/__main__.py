"""`python -m keras_vae`, the same as the `keras-vae` command."""

import sys

from keras_vae.cli import command

sys.exit(command())
