"""The data: the original's MNIST files and batches, other data sets, the download.

- `idx`: reading the four IDX `.gz` files and scaling pixels as the original did;
- `download`: fetching those files, checked against their published SHA-256;
- `sources`: a split's images from the IDX files, a `.npz` file or TFDS;
- `stream`: each epoch's order, and the batches drawn inside a training graph;
- `batches`: `load_mnist`, the original's `next_batch(64)` as a dataset
  (`keras_vae.load_mnist`).

`batches` is not imported here: the rest reads files without TensorFlow.
"""

from keras_vae.data.download import download_mnist
from keras_vae.data.idx import IDX_FILES, IMAGE_PIXELS, DataError, read_idx, read_mnist, scale_pixels
from keras_vae.data.sources import DATASETS, default_split, image_pixels, is_npz, read_images, read_npz

__all__ = [
    "DATASETS", "IDX_FILES", "IMAGE_PIXELS", "DataError", "default_split",
    "download_mnist", "image_pixels", "is_npz", "read_idx", "read_images",
    "read_mnist", "read_npz", "scale_pixels",
]
