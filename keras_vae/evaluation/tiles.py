"""Images laid out side by side as one picture, pixel for pixel.

The pixel-exact PNGs of `plots` (with grey separators) and the `samples`
image `TrainingLog` writes to TensorBoard (without) are both drawn by `tile`.
"""

import numpy as np


def tile(images, rows, cols, shape, separator=0, fill=0.0):
    """`rows * cols` images laid out in a grid as one float32 picture.

    Image `k` (in row-major order) goes to row `k // cols`, column
    `k % cols`, each pixel copied as it is: nothing is scaled or resampled.
    Neighbouring tiles are `separator` pixels apart, filled with `fill`;
    there is no border around the grid.

    Args:
        images: array-like of `rows * cols * height * width` values, the
            images one after another, e.g. `(rows * cols, x_dim)` or
            `(rows, cols, x_dim)`.
        rows, cols: ints, the grid's shape.
        shape: `(height, width)` of each image.
        separator: int, pixels between neighbouring tiles. Defaults to `0`.
        fill: float, the value of the separator pixels. Defaults to `0.0`.

    Returns:
        float32 `(rows * (height + separator) - separator,
        cols * (width + separator) - separator)`.
    """
    height, width = shape
    tiles = np.asarray(images, np.float32).reshape(rows, cols, height, width)
    # Each tile padded with `separator` pixels right and below, then the
    # padding of the last row and column cut off.
    padded = np.full((rows, cols, height + separator, width + separator), fill, np.float32)
    padded[:, :, :height, :width] = tiles
    canvas = padded.transpose(0, 2, 1, 3).reshape(
        rows * (height + separator), cols * (width + separator))
    return np.ascontiguousarray(
        canvas[:rows * (height + separator) - separator, :cols * (width + separator) - separator])
