"""`keras-vae sample`: images drawn from a saved model, as one grid image."""

import argparse
import math
import os

from keras_vae.training.config import positive_int

# The most images one grid holds: 32x32, a picture of about 2500x2500 pixels
# that takes some 10 s and 400 MB to draw. Far more (--n 100000000) would
# end in an out-of-memory error after minutes.
MAX_SAMPLES = 1024


def sample_count(text):
    """argparse type: the images of one grid, 1 to `MAX_SAMPLES`."""
    count = positive_int(text)
    if count > MAX_SAMPLES:
        side = math.isqrt(MAX_SAMPLES)
        raise argparse.ArgumentTypeError(
            f"at most {MAX_SAMPLES} images fit in one grid ({side}x{side}); received "
            f"{count}. Draw several grids (a --seed each) for more.")
    return count


def add_parser(commands):
    parser = commands.add_parser("sample", help="draw images from a saved model into one grid")
    parser.add_argument("--model", required=True, help="a .keras file saved by train --save")
    parser.add_argument("--n", type=sample_count, default=16,
                        help=f"images, at most {MAX_SAMPLES} (default: 16)")
    parser.add_argument(
        "--out", default="grid.png",
        help="the image to write, in the format its extension names: .png, .jpg, .pdf, "
        ".svg and others (default: grid.png)")
    parser.add_argument("--seed", type=int, help="the same seed draws the same images")
    parser.set_defaults(run=run)


def run(args):
    import keras

    from keras_vae.evaluation.grid import image_format, save_grid
    from keras_vae.saving.keras_file import load_model

    image_format(args.out)  # an extension it cannot write is refused before any work
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    model = load_model(args.model)
    prob = model.sample(args.n, seed=args.seed)
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    save_grid(keras.ops.convert_to_numpy(prob), args.out)
    print(f"Saved {args.n} samples to {args.out}")
