"""`keras-vae plot`: one picture of a saved model, or of a run's logs, as a PNG."""

from keras_vae.cli.flags import add_data_flags, data_of, index_pair
from keras_vae.training.config import positive_int

PLOTS = ("reconstructions", "interpolation", "manifold", "latent", "curves")


def add_parser(commands):
    parser = commands.add_parser(
        "plot",
        help="pictures of a saved model (reconstructions, interpolation, manifold, "
        "latent) or of a run's logs (curves)",
        description="Save one picture as a PNG. reconstructions: --n test images "
        "above their reconstructions (2x28+2 by n*30-2 pixels). interpolation: a "
        "walk in z, in --n steps, between the codes of test images --pair I,J "
        "(28 by n*30-2 pixels). manifold: the decoded --n x --n grid over the "
        "normal's quantiles of a --z-dim 2 model's latent space (n*30-2 pixels "
        "square). latent: the test set's z means in 2-D (PCA for z-dim > 2), "
        "coloured by label (600x600). curves: loss, reconstruction, KL and test "
        "negative ELBO against steps, from train --log-dir's metrics.csv (1000x450).",
    )
    parser.add_argument("kind", choices=PLOTS, metavar="KIND", help=", ".join(PLOTS))
    parser.add_argument("--model", help="a .keras file saved by train --save (all but curves)")
    parser.add_argument("--log-dir", metavar="DIR", help="a run's --log-dir (curves)")
    add_data_flags(parser, "draw from", "default: the model's training data")
    parser.add_argument("--n", type=positive_int,
                        help="images (reconstructions: 10), steps (interpolation: 10), "
                        "grid side (manifold: 20), or test images (latent: all)")
    parser.add_argument("--pair", type=index_pair, default=(0, 1), metavar="I,J",
                        help="interpolation: the two test images (default: 0,1)")
    parser.add_argument("--out", required=True, metavar="FILE.png",
                        help="the image to write, in the format its extension names "
                        "(.png, .jpg, .pdf, .svg, ...)")
    parser.set_defaults(run=run)


def run(args):
    from keras_vae.evaluation import plots

    needs = "--log-dir" if args.kind == "curves" else "--model"
    if getattr(args, needs[2:].replace("-", "_")) is None:
        raise ValueError(f"plot {args.kind} needs {needs}.")
    if args.kind == "curves":
        plots.curves(args.log_dir, args.out)
        print(f"Saved the curves of {args.log_dir} to {args.out}")
        return
    from keras_vae.saving.keras_file import load_model

    model = load_model(args.model)
    if args.kind == "manifold":
        plots.manifold(model, args.out, n=args.n or 20)
    else:
        _plot_test_images(plots, model, args)
    print(f"Saved the {args.kind} of {args.model} to {args.out}")


def _plot_test_images(plots, model, args):
    """The pictures drawn from test images: reconstructions, interpolation, latent."""
    from keras_vae.data.idx import scale_pixels
    from keras_vae.data.sources import read_images

    images, labels = read_images(data_of(args, model), "test", args.data_dir)
    images = scale_pixels(images) if images.dtype.kind == "u" else images
    if args.kind == "reconstructions":
        plots.reconstructions(model, images[:args.n or 10], args.out)
    elif args.kind == "interpolation":
        if max(args.pair) >= len(images):
            raise ValueError(f"--pair: there are {len(images)} test images, so the "
                             f"indices go up to {len(images) - 1}. Received: {args.pair}")
        first, second = (images[i] for i in args.pair)
        plots.interpolation(model, first, second, args.out, steps=args.n or 10)
    else:
        if labels is None:
            raise ValueError("plot latent colours the codes by label: the data "
                             "has none (add y_test to the .npz file).")
        plots.latent(model, images[:args.n], labels[:args.n], args.out)
