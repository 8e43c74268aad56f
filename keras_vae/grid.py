"""The original's `plot`: 16 samples as a 4x4 grid, saved as a PNG."""

import math

from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from keras_vae.atomic import atomic_path


def image_shape(x_dim):
    """How to show an image of `x_dim` pixels: a square when `x_dim` is one
    (28x28 for MNIST), else a strip of one row."""
    side = math.isqrt(x_dim)
    return (side, side) if side * side == x_dim else (1, x_dim)


def plot(samples):
    """A figure of 28x28 images in the original's layout: 4x4 for 16 samples.

    Other counts get the nearest square-ish grid at the same scale. Built on a
    bare `Figure` rather than pyplot: the same picture, without touching the
    caller's matplotlib backend or pyplot's figure list.
    """
    cols = math.ceil(math.sqrt(len(samples)))
    rows = math.ceil(len(samples) / cols)
    fig = Figure(figsize=(cols, rows))
    gs = GridSpec(rows, cols, figure=fig, wspace=0.05, hspace=0.05)
    for i, sample in enumerate(samples):
        ax = fig.add_subplot(gs[i])
        ax.axis("off")
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_aspect("equal")
        ax.imshow(sample.reshape(image_shape(sample.size)), cmap="Greys_r")
    return fig


def save_grid(samples, path):
    """Saves `plot(samples)` as a PNG at `path`, as the original did.

    The file is written under a temporary name and renamed into place, so a
    crash mid-write never leaves a truncated PNG under the final name.
    """
    with atomic_path(path) as tmp:
        plot(samples).savefig(tmp, bbox_inches="tight", format="png")
