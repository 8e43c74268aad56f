"""`keras-vae parity`: the port trained beside the original TF1 graph, compared bit for bit."""

from keras_vae.training.config import positive_int


def add_parser(commands):
    parser = commands.add_parser(
        "parity",
        help="train beside the original TF1 graph and compare them bit for bit",
        description="Train the port and the original TF1 graph (Session.run) "
        "from the same weights, batches and noise, and print how each variable "
        "differs. Exits 0 only when all are bit-identical.",
    )
    parser.add_argument("--data-dir", required=True,
                        help="directory of the four MNIST IDX .gz files")
    parser.add_argument("--steps", type=positive_int, default=500, help="default: 500")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument(
        "--path", choices=("train", "fit"), default="train",
        help="train: what `keras-vae train` runs (batches drawn in-graph, 100 steps "
        "per call cut by grids and checkpoints, the sampler's own noise), compared "
        "after every call; fit: Keras' one step per call on the reference's "
        "next_batch batches and fed noise, compared after every step (default: train)",
    )
    parser.set_defaults(run=run)


def run(args):
    from keras_vae.parity import compare_train_run, compare_training

    compare, path = {
        "train": (compare_train_run, "keras-vae train's training"),
        "fit": (compare_training, "model.fit, one step per call,"),
    }[args.path]
    print(f"Training keras_vae ({path}) and the TF1 graph (Session.run) for "
          f"{args.steps} steps, seed {args.seed}...", flush=True)
    report = compare(args.data_dir, steps=args.steps, seed=args.seed)
    print(report.format())
    return 0 if report.identical else 1
