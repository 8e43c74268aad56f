"""The original's `plot`: 16 samples as a 4x4 grid, saved as a PNG (or in
the image format the file's extension names)."""

import math
import os

import numpy as np
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from keras_vae.saving.atomic import atomic_path

# zlib level 1 rather than Pillow's default 6: the same pixels, encoded
# faster, in a file of about the same size.
PNG_OPTIONS = {"compress_level": 1}

# The formats a grid is written in, by the file's extension: matplotlib's
# own (PNG, PDF, SVG) and Pillow's (JPEG, TIFF, WebP).
IMAGE_FORMATS = ("png", "jpg", "jpeg", "tif", "tiff", "webp", "pdf", "svg")


def image_format(path):
    """The format that `path`'s extension names (any case), PNG without one.

    Raises:
        ValueError: the extension names no format of `IMAGE_FORMATS`.
    """
    extension = os.path.splitext(os.fspath(path))[1]
    file_format = extension[1:].lower() or "png"
    if file_format not in IMAGE_FORMATS:
        raise ValueError(
            f"--out (path=): cannot write an image as {extension}. Name the file with one of "
            f"the extensions {', '.join('.' + f for f in IMAGE_FORMATS)}. "
            f"Received: {os.fspath(path)}")
    return file_format


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


class GridPainter:
    """Saves grids as `save_grid` does, keeping the figure from one grid to
    the next: a training run draws many of one size, and building the 16
    axes and finding the tight bounding box costs more than drawing a grid.
    """

    def __init__(self):
        self._layout = None  # (count, pixels) of the kept figure

    def prepare(self, count, pixels):
        """Builds the figure for grids of `count` images of `pixels` pixels
        ahead of the first `save`, e.g. while a run reads its data."""
        self._build(np.zeros((count, pixels), np.float32))

    def _build(self, samples):
        self._figure = plot(samples)
        renderer = FigureCanvasAgg(self._figure).get_renderer()
        # The box bbox_inches="tight" finds, with savefig's padding.
        self._bbox = self._figure.get_tightbbox(renderer).padded(rcParams["savefig.pad_inches"])
        self._layout = (len(samples), samples[0].size)

    def save(self, samples, path):
        """Saves `plot(samples)` at `path`, the same picture as `save_grid`'s:
        the pixels of the original's `savefig(bbox_inches="tight")`, in the
        format `path`'s extension names (PNG without one)."""
        file_format = image_format(path)
        if (len(samples), samples[0].size) != self._layout:
            self._build(samples)
        else:
            for ax, sample in zip(self._figure.axes, samples):
                image = ax.images[0]
                image.set_data(sample.reshape(image_shape(sample.size)))
                image.autoscale()  # as imshow scales fresh data: its min to its max
        # Written under a temporary name and renamed into place, so a crash
        # mid-write never leaves a truncated image under the final name.
        options = {"pil_kwargs": PNG_OPTIONS} if file_format == "png" else {}
        with atomic_path(path) as tmp:
            self._figure.savefig(tmp, bbox_inches=self._bbox, format=file_format,
                                 **options)


def save_grid(samples, path):
    """Saves `plot(samples)` at `path`: the original's picture, cropped to
    the grid (savefig's `bbox_inches="tight"`), written atomically, in the
    format the extension names (`IMAGE_FORMATS`; PNG without one)."""
    GridPainter().save(samples, path)
