"""The pictures to look at after training, saved as images (PNG, or the format
the file's extension names).

Reconstructions, a walk between two codes and the 2-D manifold are drawn
pixel for pixel (one PNG pixel per image pixel, no axes), so they show what
the decoder gives and no resampling. The latent scatter and the loss curves
are matplotlib figures of fixed size. All are built on a bare `Figure` or
written by `matplotlib.image.imsave`, never pyplot, and every file is written
through `atomic_path`, so a crash never leaves a half-written PNG.
"""

import csv
import math
import os
import statistics

import keras
import matplotlib
import matplotlib.image
import numpy as np
from matplotlib.figure import Figure

from keras_vae.evaluation.grid import image_format
from keras_vae.evaluation.tiles import tile
from keras_vae.saving.atomic import atomic_path

# Between the tiles of a pixel-exact picture: 2 pixels of mid-grey, which
# stands out from both the black background and the white strokes.
SEPARATOR = 2
SEPARATOR_GREY = 0.5

# Pixels are stored as the nearest of the 256 grey levels, so a PNG read back
# with `matplotlib.image.imread` is within 0.5/255 (plus float32 rounding) of
# the drawn values.
PNG_TOLERANCE = 0.5 / 255 + 1e-6

# The file `train --log-dir` writes (`keras_vae.training.logs.TrainingLog`)
# and `curves` reads, and its columns in order. Defined here, below training,
# so that both can import them.
METRICS_CSV = "metrics.csv"
METRICS_COLUMNS = ("step", "loss", "recon_loss", "kl_loss", "test_neg_elbo")


def reconstructions(model, images, path):
    """Saves the inputs (top row) above their reconstructions (bottom row).

    The reconstructions are `model.reconstruct(images)`: P(X|z)'s pixel
    probabilities at the posterior's mean. For n images of side s (s*s =
    x_dim, 28 for MNIST) the PNG is `2*s + 2` by `n*s + 2*(n - 1)` pixels:
    58x298 for ten MNIST images.

    Args:
        model: a `keras_vae.VAE`.
        images: float `(n, x_dim)` in [0, 1].
        path: str or `os.PathLike`, the PNG to write.

    Returns:
        The canvas drawn: float32 `(rows, cols)` in [0, 1].
    """
    side = _side(model.x_dim)
    images = np.asarray(images, np.float32)
    reconstructed = keras.ops.convert_to_numpy(model.reconstruct(images))
    canvas = _canvas(np.stack([images, reconstructed]), 2, len(images), side)
    _save_canvas(canvas, path)
    return canvas


def interpolation(model, first, second, path, steps=10):
    """Saves the decodings of a straight walk in z from one image's code to another's.

    Each image is encoded alone to its posterior mean, z_first and z_second;
    the walk takes `steps` evenly spaced points from z_first to z_second,
    both included, and decodes each to P(X|z)'s pixel probabilities. The
    PNG is one row of tiles of side s: `s` by `steps*s + 2*(steps - 1)`
    pixels, 28x298 for MNIST and 10 steps.

    Args:
        model: a `keras_vae.VAE`.
        first, second: float `(x_dim,)` in [0, 1], the two images.
        path: str or `os.PathLike`, the PNG to write.
        steps: int >= 2, points on the walk. Defaults to `10`.

    Returns:
        A tuple `(canvas, decoded)`: the float32 canvas drawn and the decoded
        probabilities, float32 `(steps, x_dim)`.
    """
    side = _side(model.x_dim)
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (both ends), got {steps}")
    z_first, z_second = (
        keras.ops.convert_to_numpy(model.encode(np.asarray(x, np.float32)[None])[0])[0]
        for x in (first, second)
    )
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    z = (1 - t) * z_first + t * z_second  # exactly z_first at t=0, z_second at t=1
    decoded = keras.ops.convert_to_numpy(model.decode(z)[0])
    canvas = _canvas(decoded, 1, steps, side)
    _save_canvas(canvas, path)
    return canvas, decoded


def manifold(model, path, n=20):
    """Saves the decodings of an n x n grid over a 2-D latent space.

    Each axis of z takes the standard normal's quantiles at n probabilities
    evenly spaced from 0.05 to 0.95, so the grid covers the prior P(z) as
    its mass lies. z[0] grows left to right and z[1] bottom to top, as on a
    plot. The PNG is `n*s + 2*(n - 1)` pixels square for tiles of side s:
    598x598 for MNIST and n = 20.

    Args:
        model: a `keras_vae.VAE` with `z_dim == 2`.
        path: str or `os.PathLike`, the PNG to write.
        n: int, tiles per side. Defaults to `20`.

    Returns:
        The canvas drawn: float32 `(rows, cols)` in [0, 1].

    Raises:
        ValueError: the model's z is not 2-D.
    """
    if model.z_dim != 2:
        raise ValueError(
            f"manifold needs a model trained with --z-dim 2, this one has z_dim="
            f"{model.z_dim}; use `plot latent` to see its codes in 2-D instead"
        )
    side = _side(model.x_dim)
    quantiles = [
        statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)
    ]
    z = np.array(
        [[z0, z1] for z1 in reversed(quantiles) for z0 in quantiles], np.float32
    )
    decoded = keras.ops.convert_to_numpy(model.decode(z)[0])
    canvas = _canvas(decoded, n, n, side)
    _save_canvas(canvas, path)
    return canvas


def latent(model, images, labels, path):
    """Saves the posterior means of `images` as a 2-D scatter coloured by label.

    The points are the means themselves for `z_dim == 2`; their first two
    principal components (projections of the centred means on the top two
    right singular vectors) for `z_dim > 2`; and, for `z_dim == 1`, the label
    (across) against the mean (up). Each distinct label gets one of
    matplotlib's "tab10" colours, in sorted order (repeating after ten),
    drawn opaque. The PNG is 600x600 pixels (6x6 inches at 100 dpi).

    Args:
        model: a `keras_vae.VAE`.
        images: float `(n, x_dim)` in [0, 1].
        labels: int `(n,)`.
        path: str or `os.PathLike`, the PNG to write.

    Returns:
        A tuple `(points, colours)`: the float `(n, 2)` points drawn and a
        dict label -> (r, g, b) colour in [0, 1].
    """
    z_mu = keras.ops.convert_to_numpy(model.encode(np.asarray(images, np.float32))[0])
    labels = np.asarray(labels)
    if model.z_dim == 1:
        points = np.column_stack([labels, z_mu[:, 0]]).astype(np.float32)
        axis_names = ("label", "z")
    elif model.z_dim == 2:
        points = z_mu
        axis_names = ("z[0]", "z[1]")
    else:
        centred = z_mu - z_mu.mean(axis=0)
        _, _, v_t = np.linalg.svd(centred, full_matrices=False)
        points = centred @ v_t[:2].T
        axis_names = ("principal component 1", "principal component 2")

    tab10 = matplotlib.colormaps["tab10"].colors
    colours = {
        label.item(): tab10[i % len(tab10)] for i, label in enumerate(np.unique(labels))
    }
    fig = Figure(figsize=(6, 6), dpi=100)
    ax = fig.add_subplot()
    for label, colour in colours.items():
        at = labels == label
        ax.scatter(
            points[at, 0], points[at, 1], s=6, color=colour, linewidths=0, label=str(label)
        )
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(f"posterior means of {len(points)} images (z_dim={model.z_dim})")
    ax.legend(title="label", markerscale=3, loc="best")
    _save_figure(fig, path)
    return points, colours


def read_metrics(log_dir):
    """The columns of `log_dir/metrics.csv`, as written by `train --log-dir`.

    Returns:
        A dict column -> float64 array, one value per row, NaN where a field
        is empty (`test_neg_elbo` on steps where it was not measured).

    Raises:
        ValueError: the file is missing, holds no rows, or lacks a column.
    """
    path = os.path.join(os.fspath(log_dir), METRICS_CSV)
    written_by = "`keras-vae train --log-dir DIR` writes it, one row per logged step"
    if not os.path.isfile(path):
        raise ValueError(f"{path} not found: {written_by}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} holds no metrics: {written_by}")
    missing = [c for c in METRICS_COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}: {written_by}")
    return {
        c: np.array([float(row[c]) if row[c] else math.nan for row in rows])
        for c in METRICS_COLUMNS
    }


def curves(log_dir, path):
    """Saves the training curves of `log_dir/metrics.csv` against the step.

    Two axes side by side, in nats: on the left the training loss (the
    negative ELBO of a batch), its reconstruction term and, on the rows
    where it was measured, the test set's negative ELBO; on the right the KL
    term, which is much smaller. Lines are labelled with the CSV's column
    names; the left axis is scaled to the points after the first (an
    untrained model's loss is several times the rest). The PNG is 1000x450
    pixels (10x4.5 inches at 100 dpi).

    Args:
        log_dir: str or `os.PathLike`, the directory holding `metrics.csv`.
        path: str or `os.PathLike`, the PNG to write.

    Returns:
        The `matplotlib.figure.Figure` drawn.

    Raises:
        ValueError: see `read_metrics`.
    """
    metrics = read_metrics(log_dir)
    step = metrics["step"]
    fig = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
    elbo_ax, kl_ax = fig.subplots(1, 2, sharex=True)
    for column in ("loss", "recon_loss"):
        elbo_ax.plot(step, metrics[column], label=column)
    measured = ~np.isnan(metrics["test_neg_elbo"])
    if measured.any():
        elbo_ax.plot(step[measured], metrics["test_neg_elbo"][measured],
                     "o-" if measured.sum() <= 30 else "-", label="test_neg_elbo")
    # The first point, an untrained model's, would flatten the rest: the
    # scale fits the later ones.
    later = np.concatenate([metrics[c][1:] for c in ("loss", "recon_loss", "test_neg_elbo")])
    if len(step) > 2 and np.isfinite(later).any():
        low, high = np.nanmin(later), np.nanmax(later)
        elbo_ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    kl_ax.plot(step, metrics["kl_loss"], color="C3", label="kl_loss")
    elbo_ax.set_title("negative ELBO and its reconstruction term")
    kl_ax.set_title("KL(Q(z|X) || P(z))")
    for ax in (elbo_ax, kl_ax):
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("nats")
        ax.grid(alpha=0.3)
        ax.legend()
    _save_figure(fig, path)
    return fig


def _side(x_dim):
    """The side of a square image of `x_dim` pixels."""
    side = math.isqrt(x_dim)
    if side * side != x_dim:
        raise ValueError(
            f"x_dim={x_dim} is not a perfect square, so its images cannot be drawn "
            "as square tiles"
        )
    return side


def _canvas(images, rows, cols, side):
    """`rows * cols` square images of side `side` as one grey picture, mid-grey
    separators between them (see `tile`)."""
    return tile(images, rows, cols, (side, side), SEPARATOR, SEPARATOR_GREY)


def _save_canvas(canvas, path):
    """Writes `canvas` (values in [0, 1]) as an image in the format `path`'s
    extension names (PNG without one), one pixel per value.

    Each value becomes the nearest 8-bit grey, written as equal R, G and B,
    not through a colormap: matplotlib's 256-entry "gray" map truncates, so
    a value would read back up to 1.9/255 off.
    """
    grey = np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8)
    file_format = image_format(path)
    with _atomic_file(path) as tmp:
        matplotlib.image.imsave(tmp, np.stack([grey] * 3, axis=-1), format=file_format)


def _save_figure(fig, path):
    """Writes `fig` at its own size and dpi, in the format `path`'s extension names."""
    file_format = image_format(path)
    with _atomic_file(path) as tmp:
        fig.savefig(tmp, format=file_format, dpi=fig.dpi)


def _atomic_file(path):
    """`atomic_path(path)`, its directory made first if missing."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return atomic_path(path)
