"""`keras-vae sample`: the image format its --out names, a bound on --n, and
a damaged model file named as such."""

from pathlib import Path

import numpy as np
import pytest

from keras_vae.cli import build_parser, main
from keras_vae.cli.sample import MAX_SAMPLES
from keras_vae.evaluation.grid import IMAGE_FORMATS, image_format, save_grid
from tests.conftest import run_keras_vae

MODEL = Path(__file__).parents[1] / "fixtures" / "format1" / "vae.keras"

# How each format's files begin.
MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "jpeg": b"\xff\xd8\xff",
    "tif": b"II*\x00", "tiff": b"II*\x00", "webp": b"RIFF", "pdf": b"%PDF",
    "svg": b"<?xml",
}


@pytest.mark.parametrize("extension", IMAGE_FORMATS)
def test_a_grid_is_written_in_the_format_its_extension_names(tmp_path, extension):
    path = tmp_path / f"grid.{extension}"
    save_grid(np.random.default_rng(0).random((4, 784), np.float32), path)
    assert path.read_bytes().startswith(MAGIC[extension])
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left


def test_the_format_is_named_by_the_extension_in_any_case_and_png_without_one():
    assert image_format("x.JPG") == "jpg"
    assert image_format("dir.v2/grid") == "png"
    assert image_format("grid.png") == "png"


def test_sample_writes_a_jpeg_for_a_jpg_name(tmp_path, capsys):
    out = tmp_path / "x.jpg"
    assert main(["sample", "--model", str(MODEL), "--n", "4", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(MAGIC["jpg"])
    assert f"Saved 4 samples to {out}" in capsys.readouterr().out


def test_sample_refuses_an_extension_it_cannot_write_before_loading(tmp_path, capsys):
    out = tmp_path / "x.txt"
    # The model is not even read: the refusal comes first.
    assert main(["sample", "--model", "no/such.keras", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert ("keras-vae sample: error: --out (path=): cannot write an image as .txt. Name the file "
            "with one of the extensions .png, .jpg, .jpeg, .tif, .tiff, .webp, .pdf, "
            f".svg. Received: {out}") in err
    assert not out.exists()


def test_sample_refuses_more_images_than_a_grid_holds(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["sample", "--model", "m.keras", "--n", "100000000"])
    assert info.value.code == 2
    assert ("argument --n: at most 1024 images fit in one grid (32x32); received 100000000. "
            "Draw several grids (a --seed each) for more.") in capsys.readouterr().err
    args = build_parser().parse_args(["sample", "--model", "m.keras", "--n", str(MAX_SAMPLES)])
    assert args.n == MAX_SAMPLES == 1024


def test_sample_names_a_damaged_model_file(tmp_path, capsys):
    model = tmp_path / "damaged.keras"
    model.write_bytes(MODEL.read_bytes()[:5000])
    assert main(["sample", "--model", str(model), "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert f"Cannot load {model}: it is not a readable .keras file" in err
    assert "File not found" not in err


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--n", "100000000"], "argument --n: at most 1024 images fit in one grid"),
    (["--model", "damaged.keras"], "damaged.keras: it is not a readable .keras file"),
    (["--out", "x.txt"], "--out (path=): cannot write an image as .txt"),
])
def test_the_command_exits_2_with_the_message(tmp_path, args, message):
    (tmp_path / "damaged.keras").write_bytes(b"not a zip")
    run = run_keras_vae("sample", "--model", MODEL, *args, cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert message in run.stderr and "Traceback" not in run.stderr
