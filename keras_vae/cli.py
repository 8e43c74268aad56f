"""`keras-vae`: train, sample, evaluate, export a SavedModel, check parity with
TF1, download MNIST.

A thin layer over the library: it parses flags, calls the library, and turns
bad input into a one-line error and exit status 2 instead of a traceback.
"""

import argparse
import gc
import math
import os
import signal
import sys

from keras_vae.strategies import KINDS as STRATEGIES
from keras_vae.strategies import WorkerLostError

PLOTS = ("reconstructions", "interpolation", "manifold", "latent", "curves")

# load_mnist's datasets; not imported from keras_vae.data, so that --help
# answers without importing TensorFlow.
DATASETS = ("mnist", "fashion_mnist")


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def sample_counts(text):
    """argparse type: comma-separated positive integers, e.g. 1,100,5000."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, got {text!r}")
    return counts


def positive_float(text):
    """argparse type: a finite number > 0."""
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text):
    """argparse type: a finite number >= 0."""
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_data_flags(parser, verb, recorded=False):
    """--data-dir, and --dataset or --data: which images to `verb`."""
    default = ("default: the model's training data" if recorded
               else "default: mnist, or a resumed run's own")
    parser.add_argument(
        "--data-dir",
        help="directory of the four IDX .gz files (MNIST's layout, the original's "
        "MNIST_data/); default: download them once into ~/.keras/datasets",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--dataset", choices=DATASETS, help=f"the images to {verb} ({default})")
    which.add_argument(
        "--data", metavar="FILE.npz",
        help="your own images instead: a .npz file with x_train and x_test (uint8, "
        "or floats in [0, 1]; any image shape), and optionally y_train and y_test",
    )


def chosen_data(args, model=None):
    """The `dataset` argument of load_mnist that the flags name; without them,
    the model's record, or None (train: the run's own)."""
    if args.data:
        if not args.data.endswith(".npz"):
            raise ValueError(f"--data {args.data}: expected a .npz file.")
        return args.data
    if args.dataset or model is None:
        return args.dataset
    return model.trained_with.get("dataset", "mnist")


def index_pair(text):
    """argparse type: two indices >= 0, e.g. 0,1."""
    try:
        pair = tuple(int(part) for part in text.split(","))
    except ValueError:
        pair = ()
    if len(pair) != 2 or min(pair) < 0:
        raise argparse.ArgumentTypeError(f"expected two indices >= 0 like 0,1, got {text!r}")
    return pair


def host_ports(text):
    """argparse type: HOST:PORT,HOST:PORT,... (the workers of a cluster)."""
    workers = text.split(",")
    for worker in workers:
        host, _, port = worker.rpartition(":")
        if not host or not port.isdigit():
            raise argparse.ArgumentTypeError(
                f"expected HOST:PORT,HOST:PORT,..., got {worker!r} in {text!r}")
    return workers


def keras_path(text):
    """argparse type: a path ending in .keras, the format Keras 3 saves."""
    if not text.endswith(".keras"):
        raise argparse.ArgumentTypeError(f"expected a path ending in .keras, got {text!r}")
    return text


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vae",
        description="The classic TF1 MNIST variational autoencoder, in Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train on MNIST, saving a sample grid every --sample-every steps",
        description="Train on the original's split of MNIST (the last 55,000 "
        "training images), printing Iter:/Loss: and saving OUT/000.png, "
        "OUT/001.png, ... every --sample-every steps, as the original did.",
    )
    add_data_flags(train, "train on")
    train.add_argument(
        "--iters", type=positive_int, default=1_000_000,
        help="training steps (default: 1000000, as the original)",
    )
    train.add_argument("--batch-size", type=positive_int, default=64, help="default: 64")
    train.add_argument(
        "--sample-every", type=positive_int, default=1000,
        help="steps between sample grids and Iter:/Loss: lines (default: 1000)",
    )
    train.add_argument("--out", default="out", help="directory for the grids (default: out/)")
    train.add_argument(
        "--seed", type=int,
        help="makes the run reproducible (default: drawn, and kept with the checkpoints)",
    )
    train.add_argument(
        "--checkpoint-dir", metavar="DIR",
        help="keep checkpoints here; the same command run again resumes from the newest",
    )
    train.add_argument(
        "--checkpoint-every", type=positive_int, default=1000,
        help="steps between checkpoints (default: 1000)",
    )
    train.add_argument("--z-dim", type=positive_int, default=100, help="latent size (default: 100)")
    train.add_argument("--h-dim", type=positive_int, default=128, help="hidden units (default: 128)")
    train.add_argument(
        "--save", type=keras_path, metavar="PATH", help="save the trained model (.keras)"
    )
    train.add_argument(
        "--export", metavar="DIR", help="also export the trained model as a SavedModel"
    )
    train.add_argument(
        "--overwrite", action="store_true",
        help="a fresh run replaces the grids already in --out, and an existing --export",
    )
    train.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1,
        help="Keras' fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch",
    )
    train.add_argument(
        "--binarize", action="store_true", default=None,
        help="dynamic binarization: each pixel drawn as Bernoulli(intensity) every "
        "time an image is used, keyed by seed and step (default: the original's "
        "continuous pixels)",
    )
    train.add_argument("--learning-rate", type=positive_float, metavar="LR",
                       help="Adam's step size (default: 0.001, as the original)")
    train.add_argument("--beta", type=non_negative_float,
                       help="the KL term's weight in the loss (default: 1, as the original)")
    train.add_argument(
        "--log-dir", metavar="DIR",
        help="write TensorBoard events (loss, reconstruction, KL, the sample grids) "
        "and DIR/metrics.csv every --sample-every steps; a resumed run continues them",
    )
    train.add_argument(
        "--eval-every", type=positive_int, metavar="N",
        help="with --log-dir: also log the test split's negative ELBO every N steps "
        "(a multiple of --sample-every)",
    )
    train.add_argument(
        "--strategy", choices=STRATEGIES, default="one",
        help="one: one device (default); mirrored: every GPU of this machine, or "
        "--replicas logical CPUs; multi-worker: one worker of a cluster "
        "(--workers and --worker-index, or TF_CONFIG)",
    )
    train.add_argument("--replicas", type=positive_int, metavar="N",
                       help="with --strategy mirrored on a machine without GPUs: N CPU replicas")
    train.add_argument("--workers", type=host_ports, metavar="HOST:PORT,...",
                       help="with --strategy multi-worker: every worker, in the same order "
                       "on each")
    train.add_argument("--worker-index", type=int, metavar="I",
                       help="with --workers: this worker's place in the list, from 0 (0 is "
                       "the chief, which writes the grids, logs, checkpoints and --save)")
    train.add_argument("--join-timeout", type=positive_float, default=60, metavar="SECONDS",
                       help="with --strategy multi-worker: seconds for every worker to join; "
                       "past them this worker stops, naming those that do not answer "
                       "(default: 60)")
    train.add_argument(
        "--fast", action="store_true",
        help="fast mode: statistically the same training, not bit for bit, its "
        "steps compiled by XLA, faster (the README gives the measured speed) "
        "(default: faithful, the TF1 graph's bits)",
    )
    train.set_defaults(run=run_train)

    sample = commands.add_parser(
        "sample", help="draw images from a saved model into one grid PNG"
    )
    sample.add_argument("--model", required=True, help="a .keras file saved by train --save")
    sample.add_argument("--n", type=positive_int, default=16, help="images (default: 16)")
    sample.add_argument("--out", default="grid.png", help="PNG path (default: grid.png)")
    sample.add_argument("--seed", type=int, help="the same seed draws the same images")
    sample.set_defaults(run=run_sample)

    export = commands.add_parser(
        "export",
        help="export a saved model as a SavedModel other programs can call",
        description="Write a SavedModel with the signatures encode, decode, "
        "reconstruct, sample and serving_default, callable without keras_vae.",
    )
    export.add_argument("--model", required=True, help="a .keras file saved by train --save")
    export.add_argument("--out", required=True, metavar="DIR", help="the directory to create")
    export.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    export.set_defaults(run=run_export)

    evaluate = commands.add_parser(
        "evaluate",
        help="the negative ELBO and -log p(x) (importance-weighted) of a saved model",
        description="Over a whole split: the negative ELBO with its reconstruction "
        "and KL terms, and the importance-weighted estimate of -log p(x) (Burda et "
        "al., 2016) for each k, with its standard error over images.",
    )
    evaluate.add_argument("--model", required=True, help="a .keras file saved by train --save")
    add_data_flags(evaluate, "evaluate on", recorded=True)
    evaluate.add_argument("--split", default="test", help="default: test")
    evaluate.add_argument("--k", type=sample_counts, default=(1, 100, 5000),
                          help="importance samples, comma-separated (default: 1,100,5000)")
    evaluate.add_argument("--binarize", action=argparse.BooleanOptionalAction,
                          help="draw each pixel as Bernoulli(intensity) first (default: "
                          "as the model was trained)")
    evaluate.add_argument("--seed", type=int, default=0, help="seeds every draw (default: 0)")
    evaluate.add_argument("--batch-size", type=positive_int, default=100,
                          help="images at a time (default: 100)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=run_evaluate)

    plot = commands.add_parser(
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
    plot.add_argument("kind", choices=PLOTS, metavar="KIND", help=", ".join(PLOTS))
    plot.add_argument("--model", help="a .keras file saved by train --save (all but curves)")
    plot.add_argument("--log-dir", metavar="DIR", help="a run's --log-dir (curves)")
    add_data_flags(plot, "draw from", recorded=True)
    plot.add_argument("--n", type=positive_int,
                      help="images (reconstructions: 10), steps (interpolation: 10), "
                      "grid side (manifold: 20), or test images (latent: all)")
    plot.add_argument("--pair", type=index_pair, default=(0, 1), metavar="I,J",
                      help="interpolation: the two test images (default: 0,1)")
    plot.add_argument("--out", required=True, metavar="FILE.png", help="the PNG to write")
    plot.set_defaults(run=run_plot)

    download = commands.add_parser(
        "download",
        help="download the four MNIST IDX files, checked against their published SHA-256",
        description="Download the original's MNIST files (the layout of "
        "read_data_sets('MNIST_data')) for later use with --data-dir.",
    )
    download.add_argument("--data-dir", default="MNIST_data",
                          help="where the files go (default: MNIST_data)")
    download.add_argument("--dataset", choices=DATASETS, default="mnist",
                          help="default: mnist")
    download.add_argument("--url", help="a mirror's directory URL (default: TFDS's mirror)")
    download.set_defaults(run=run_download)

    parity = commands.add_parser(
        "parity",
        help="train beside the original TF1 graph and compare them bit for bit",
        description="Train the port and the original TF1 graph (Session.run) "
        "from the same weights, batches and noise, and print how each variable "
        "differs. Exits 0 only when all are bit-identical.",
    )
    parity.add_argument(
        "--data-dir", required=True, help="directory of the four MNIST IDX .gz files"
    )
    parity.add_argument("--steps", type=positive_int, default=500, help="default: 500")
    parity.add_argument("--seed", type=int, default=0, help="default: 0")
    parity.add_argument(
        "--path", choices=("train", "fit"), default="train",
        help="train: what `keras-vae train` runs (batches drawn in-graph, 100 steps "
        "per call cut by grids and checkpoints, the sampler's own noise), compared "
        "after every call; fit: Keras' one step per call on the reference's "
        "next_batch batches and fed noise, compared after every step (default: train)",
    )
    parity.set_defaults(run=run_parity)
    return parser


def run_train(args):
    from keras_vae.saving import save_model
    from keras_vae.strategies import is_chief, make_strategy
    from keras_vae.training import train

    # Checks the flags for any kind; one device runs without a strategy.
    strategy = make_strategy(args.strategy, args.replicas, args.workers, args.worker_index,
                             args.join_timeout)
    strategy = None if args.strategy == "one" else strategy
    chief = strategy is None or is_chief(strategy)
    if args.export and chief:
        _check_export_target(args.export, args.overwrite)
    outcome = train(
        args.iters, out=args.out, data_dir=args.data_dir, seed=args.seed,
        batch_size=args.batch_size, h_dim=args.h_dim, z_dim=args.z_dim,
        sample_every=args.sample_every, checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every, overwrite=args.overwrite,
        verbose=args.verbose, fast=args.fast, dataset=chosen_data(args),
        binarize=args.binarize, learning_rate=args.learning_rate, beta=args.beta,
        log_dir=args.log_dir, eval_every=args.eval_every, strategy=strategy,
    )
    if outcome.status == "diverged":
        kept = (
            f"The last good checkpoint, {outcome.checkpoint}, is kept."
            if outcome.checkpoint else "No checkpoint was written."
        )
        print(
            f"keras-vae train: error: training diverged: the loss at step "
            f"{outcome.diverged_at} is NaN or infinite, so training stopped. {kept}",
            file=sys.stderr,
        )
        return 1
    if outcome.status == "interrupted":
        name = signal.Signals(outcome.signal).name
        again = ("run the same command again"
                 f"{' on every worker' if args.strategy == 'multi-worker' else ''} to resume.")
        if outcome.checkpoint:
            where = f"Checkpoint written to {outcome.checkpoint}; {again}"
        elif args.checkpoint_dir and not chief:
            where = f"The chief writes the checkpoints; {again}"
        else:
            where = "Nothing was saved: give --checkpoint-dir to make a run resumable."
        print(f"keras-vae train: stopped by {name} after step {outcome.step}. {where}",
              file=sys.stderr)
        return 128 + outcome.signal
    if not chief:  # the chief saves and exports
        return 0
    if args.save:
        save_model(outcome.model, args.save)
        print(f"Saved the model to {args.save}")
    if args.export:
        outcome.model.export(args.export, overwrite=args.overwrite)
        print(f"Exported a SavedModel to {args.export}")
    return 0


def run_sample(args):
    import keras

    from keras_vae.grid import save_grid
    from keras_vae.saving import load_model

    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    model = load_model(args.model)
    prob = model.sample(args.n, seed=args.seed)
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    save_grid(keras.ops.convert_to_numpy(prob), args.out)
    print(f"Saved {args.n} samples to {args.out}")


def run_export(args):
    from keras_vae.saving import load_model

    load_model(args.model).export(args.out, overwrite=args.overwrite)
    print(f"Exported a SavedModel to {args.out}")


def _check_export_target(path, overwrite):
    """Fails before training when the export at its end would be refused."""
    if os.path.exists(path) and not overwrite:
        raise ValueError(
            f"{path} already exists. Choose another directory, or pass --overwrite "
            "to replace it."
        )


def run_evaluate(args):
    import json

    from keras_vae.data import load_mnist
    from keras_vae.evaluation import evaluate
    from keras_vae.saving import load_model

    model = load_model(args.model)
    data = load_mnist(args.split, args.batch_size, args.data_dir, shuffle=False, repeat=False,
                      dataset=chosen_data(args, model))
    binarize = model.trained_with.get("binarize", False) if args.binarize is None else args.binarize
    result = evaluate(model, data, k=args.k, seed=args.seed, binarize=binarize,
                      split=args.split, verbose=0 if args.json else 1)
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


def run_plot(args):
    from keras_vae import plots

    needs = "--log-dir" if args.kind == "curves" else "--model"
    if getattr(args, needs[2:].replace("-", "_")) is None:
        raise ValueError(f"plot {args.kind} needs {needs}.")
    if args.kind == "curves":
        plots.curves(args.log_dir, args.out)
        print(f"Saved the curves of {args.log_dir} to {args.out}")
        return
    from keras_vae.data import read_images, scale_pixels
    from keras_vae.saving import load_model

    model = load_model(args.model)
    if args.kind == "manifold":
        plots.manifold(model, args.out, n=args.n or 20)
    else:
        images, labels = read_images(chosen_data(args, model), "test", args.data_dir)
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
    print(f"Saved the {args.kind} of {args.model} to {args.out}")


def run_download(args):
    from keras_vae.download import download_mnist

    path = download_mnist(args.data_dir, url=args.url, dataset=args.dataset)
    print(f"The four {args.dataset} files are in {path}: pass --data-dir {args.data_dir}")


def run_parity(args):
    from keras_vae.parity import compare_train_run, compare_training

    compare, path = {
        "train": (compare_train_run, "keras-vae train's training"),
        "fit": (compare_training, "model.fit, one step per call,"),
    }[args.path]
    print(
        f"Training keras_vae ({path}) and the TF1 graph (Session.run) for "
        f"{args.steps} steps, seed {args.seed}...",
        flush=True,
    )
    report = compare(args.data_dir, steps=args.steps, seed=args.seed)
    print(report.format())
    return 0 if report.identical else 1


def main(argv=None):
    """Entry point of the `keras-vae` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # TensorFlow's C++ INFO and WARNING lines from here on; those of its import
    # come before any code of this package can set it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        status = args.run(args)
    except (ValueError, OSError) as error:
        print(f"keras-vae {args.command}: error: {error}", file=sys.stderr)
        return 2
    except WorkerLostError as error:  # training's failure, not bad input
        print(f"keras-vae {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("keras-vae: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # not bad input: say what, keep the traceback optional
        if os.environ.get("KERAS_VAE_TRACEBACK"):
            raise
        first_line = (str(error).strip().splitlines() or [""])[0]
        print(
            f"keras-vae {args.command}: error: {type(error).__name__}: {first_line} "
            "(set KERAS_VAE_TRACEBACK=1 to see where)",
            file=sys.stderr,
        )
        return 1
    return status or 0


def command():
    """The `keras-vae` command's entry point: `main`, then a quick exit."""
    try:
        return main()
    finally:
        # The process ends here, its files written and closed. Python's last
        # garbage collection would walk every object TensorFlow's import made,
        # which takes longer than a short run's training: frozen, it skips them.
        gc.freeze()
