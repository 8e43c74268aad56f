"""`keras-vae evaluate`: the negative ELBO and -log p(x) of a saved model."""

import argparse
import json

from keras_vae.cli.flags import add_data_flags, data_of, sample_counts
from keras_vae.training.config import positive_int


def add_parser(commands):
    parser = commands.add_parser(
        "evaluate",
        help="the negative ELBO and -log p(x) (importance-weighted) of a saved model",
        description="Over a whole split: the negative ELBO with its reconstruction "
        "and KL terms, and the importance-weighted estimate of -log p(x) (Burda et "
        "al., 2016) for each k, with its standard error over images.",
    )
    parser.add_argument("--model", required=True, help="a .keras file saved by train --save")
    add_data_flags(parser, "evaluate on", "default: the model's training data")
    parser.add_argument("--split", default="test", help="default: test")
    parser.add_argument("--k", type=sample_counts, default=(1, 100, 5000),
                        help="importance samples, comma-separated (default: 1,100,5000)")
    parser.add_argument("--binarize", action=argparse.BooleanOptionalAction,
                        help="draw each pixel as Bernoulli(intensity) first (default: "
                        "as the model was trained)")
    parser.add_argument("--seed", type=int, default=0,
                        help="keys every draw, with each image's index in the split (default: 0)")
    parser.add_argument("--batch-size", type=positive_int, default=100,
                        help="images at a time; the estimates do not depend on it (default: 100)")
    parser.add_argument("--strategy", choices=("one", "mirrored"), default="one",
                        help="one: this device; mirrored: every GPU, or --replicas logical "
                        "CPUs, each estimating its share of a batch's images, the same "
                        "estimates (default: one)")
    parser.add_argument("--replicas", type=positive_int,
                        help="with --strategy mirrored on a machine without GPUs: N CPU replicas")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", type=int, choices=(0, 1),
                        help="0 silent, 1 progress bar (plain lines when stdout is not a "
                        "terminal) (default: 1, or 0 with --json)")
    parser.set_defaults(run=run)


def run(args):
    from keras_vae.data.batches import load_mnist
    from keras_vae.distribute.strategies import make_strategy
    from keras_vae.evaluation.estimates import evaluate
    from keras_vae.saving.keras_file import load_model

    with make_strategy(args.strategy, args.replicas).scope():
        model = load_model(args.model)
    data = load_mnist(args.split, args.batch_size, args.data_dir, shuffle=False, repeat=False,
                      dataset=data_of(args, model))
    binarize = model.trained_with.get("binarize", False) if args.binarize is None else args.binarize
    result = evaluate(model, data, k=args.k, seed=args.seed, binarize=binarize,
                      split=args.split, verbose=verbosity(args))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['images']} images of {args.split}"
          + (", binarized" if result["binarized"] else "") + ":")
    print(f"  negative ELBO {result['neg_elbo']:.3f} nats "
          f"(reconstruction {result['recon_loss']:.3f}, KL {result['kl_loss']:.3f})")
    for k, nll in result["nll"].items():
        print(f"  -log p(x), k = {k}: {nll:.3f} +- {result['nll_se'][k]:.3f} nats")
    print(f"  bits per dimension: {result['bits_per_dim']:.4f}")


def verbosity(args):
    """--verbose as given, else 1, or 0 with --json: one JSON object alone."""
    if args.verbose is not None:
        return args.verbose
    return 0 if args.json else 1
