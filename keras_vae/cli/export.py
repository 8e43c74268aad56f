"""`keras-vae export`: a saved model as a SavedModel other programs can call."""

from keras_vae.training.config import positive_int

# saving.saved_model.MAX_SAMPLES, here without importing TensorFlow to parse.
MAX_SAMPLES = 10_000


def add_parser(commands):
    parser = commands.add_parser(
        "export",
        help="export a saved model as a SavedModel other programs can call",
        description="Write a SavedModel with the signatures encode, decode, "
        "reconstruct, sample_from_z, reconstruct_sampled, sample and serving_default, "
        "callable without keras_vae.",
    )
    parser.add_argument("--model", required=True, help="a .keras file saved by train --save")
    parser.add_argument("--out", required=True, metavar="DIR", help="the directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    parser.add_argument("--max-samples", type=positive_int, default=MAX_SAMPLES, metavar="N",
                        help="the most images one call of the sample signature draws; "
                        f"more is refused (default: {MAX_SAMPLES:,})")
    parser.set_defaults(run=run)


def run(args):
    from keras_vae.saving.keras_file import load_model

    load_model(args.model).export(args.out, overwrite=args.overwrite,
                                  max_samples=args.max_samples)
    print(f"Exported a SavedModel to {args.out}")
