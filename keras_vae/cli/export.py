"""`keras-vae export`: a saved model as a SavedModel other programs can call."""


def add_parser(commands):
    parser = commands.add_parser(
        "export",
        help="export a saved model as a SavedModel other programs can call",
        description="Write a SavedModel with the signatures encode, decode, "
        "reconstruct, sample and serving_default, callable without keras_vae.",
    )
    parser.add_argument("--model", required=True, help="a .keras file saved by train --save")
    parser.add_argument("--out", required=True, metavar="DIR", help="the directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    parser.set_defaults(run=run)


def run(args):
    from keras_vae.saving.keras_file import load_model

    load_model(args.model).export(args.out, overwrite=args.overwrite)
    print(f"Exported a SavedModel to {args.out}")
