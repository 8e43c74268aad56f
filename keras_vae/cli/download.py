"""`keras-vae download`: the four MNIST IDX files, checked against the
published SHA-256 of their contents."""

from keras_vae.data.sources import DATASETS


def add_parser(commands):
    parser = commands.add_parser(
        "download",
        help="download the four MNIST IDX files, checked against their published SHA-256",
        description="Download the original's MNIST files (the layout of "
        "read_data_sets('MNIST_data')), by default where train, evaluate and plot "
        "look without --data-dir.",
    )
    parser.add_argument(
        "--data-dir",
        help="where the files go (default: ~/.keras/datasets/MNIST_data, or "
        "~/.keras/datasets/fashion_mnist_data for --dataset fashion_mnist: where "
        "train looks without --data-dir)")
    parser.add_argument("--dataset", choices=DATASETS, default="mnist", help="default: mnist")
    parser.add_argument("--url", help="a mirror's directory URL (default: TFDS's mirror)")
    parser.set_defaults(run=run)


def run(args):
    from keras_vae.data.download import download_mnist

    path = download_mnist(args.data_dir, url=args.url, dataset=args.dataset)
    if args.data_dir is None:
        flag = "" if args.dataset == "mnist" else f" --dataset {args.dataset}"
        use = f"keras-vae train{flag} reads them there without --data-dir"
    else:
        use = f"pass --data-dir {args.data_dir}"
    print(f"The four {args.dataset} files are in {path}: {use}.")
