"""`keras-vae sample`: images drawn from a saved model, as one grid PNG."""

import os

from keras_vae.training.config import positive_int


def add_parser(commands):
    parser = commands.add_parser("sample", help="draw images from a saved model into one grid PNG")
    parser.add_argument("--model", required=True, help="a .keras file saved by train --save")
    parser.add_argument("--n", type=positive_int, default=16, help="images (default: 16)")
    parser.add_argument("--out", default="grid.png", help="PNG path (default: grid.png)")
    parser.add_argument("--seed", type=int, help="the same seed draws the same images")
    parser.set_defaults(run=run)


def run(args):
    import keras

    from keras_vae.evaluation.grid import save_grid
    from keras_vae.saving.keras_file import load_model

    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    model = load_model(args.model)
    prob = model.sample(args.n, seed=args.seed)
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    save_grid(keras.ops.convert_to_numpy(prob), args.out)
    print(f"Saved {args.n} samples to {args.out}")
