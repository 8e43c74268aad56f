"""`keras-vae download`: the four MNIST IDX files, checked against their SHA-256."""

from keras_vae.data.sources import DATASETS


def add_parser(commands):
    parser = commands.add_parser(
        "download",
        help="download the four MNIST IDX files, checked against their published SHA-256",
        description="Download the original's MNIST files (the layout of "
        "read_data_sets('MNIST_data')) for later use with --data-dir.",
    )
    parser.add_argument("--data-dir", default="MNIST_data",
                        help="where the files go (default: MNIST_data)")
    parser.add_argument("--dataset", choices=DATASETS, default="mnist", help="default: mnist")
    parser.add_argument("--url", help="a mirror's directory URL (default: TFDS's mirror)")
    parser.set_defaults(run=run)


def run(args):
    from keras_vae.data.download import download_mnist

    path = download_mnist(args.data_dir, url=args.url, dataset=args.dataset)
    print(f"The four {args.dataset} files are in {path}: pass --data-dir {args.data_dir}")
