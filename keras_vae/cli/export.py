"""`keras-vae export`: a saved model as a SavedModel, a LiteRT file or ONNX
files that other programs can call."""

import sys

from keras_vae.training.config import positive_int

FORMATS = ("saved_model", "litert", "onnx")
# saving.saved_model.MAX_SAMPLES, here without importing TensorFlow to parse.
MAX_SAMPLES = 10_000
TITLES = {"saved_model": "a SavedModel", "litert": "a LiteRT model", "onnx": "ONNX models"}


def add_parser(commands):
    parser = commands.add_parser(
        "export",
        help="export a saved model as a SavedModel, a LiteRT file or ONNX files",
        description="Write the signatures encode, decode, reconstruct, sample_from_z and "
        "reconstruct_sampled (and, in a SavedModel, sample and serving_default), callable "
        "without keras_vae. The export is checked in its own runtime against the model "
        "before it is put at PATH; a difference fails it with nothing written.",
    )
    parser.add_argument("--model", required=True, help="a .keras file saved by train --save")
    parser.add_argument("--format", choices=FORMATS, default="saved_model",
                        help="saved_model (a directory), litert (a .tflite file, needs "
                        "keras-vae[litert]) or onnx (a directory of .onnx files, needs "
                        "keras-vae[onnx]) (default: saved_model)")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="the directory (saved_model, onnx) or .tflite file (litert) to create")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing PATH")
    parser.add_argument("--max-samples", type=positive_int, metavar="N",
                        help="saved_model only: the most images one call of the sample "
                        f"signature draws; more is refused (default: {MAX_SAMPLES:,})")
    parser.set_defaults(run=run)


def run(args):
    from keras_vae.saving.extras import MissingExtraError
    from keras_vae.saving.keras_file import load_model
    from keras_vae.saving.self_check import ExportCheckError

    model = load_model(args.model)
    try:
        model.export(args.out, format=args.format, overwrite=args.overwrite,
                     max_samples=args.max_samples)
    except (ExportCheckError, MissingExtraError) as error:  # not bad input: exit 1
        print(f"keras-vae export: error: {error}", file=sys.stderr)
        return 1
    print(f"Exported {TITLES[args.format]} to {args.out}")
    return 0
