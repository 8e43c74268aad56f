"""The three export formats, checked where they are served: each loaded in
its own runtime, in a process where keras_vae cannot be imported; and the
export's check of itself, which must refuse a runtime that computes
otherwise and leave nothing behind."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_vae import cli
from keras_vae.data.batches import load_mnist
from keras_vae.data.idx import read_mnist, scale_pixels
from keras_vae.model import VAE
from keras_vae.saving import export, litert_file, onnx_files, saved_model, self_check, signatures
from keras_vae.saving.extras import MissingExtraError
from keras_vae.saving.keras_file import save_model

# Each format's target name and the module its runtime needs (None: TensorFlow).
TARGETS = {"saved_model": "vae_savedmodel", "litert": "vae.tflite", "onnx": "vae_onnx"}
RUNTIMES = {"saved_model": None, "litert": "ai_edge_litert", "onnx": "onnxruntime"}
EXTRAS = {"litert": "litert", "onnx": "onnx"}
RAW_OUTPUTS = ("prob", "z_mu", "z_logvar")  # compared absolutely (logits: to their scale)


def needs_runtime(format):
    """Skips the test where `format`'s extra is not installed, saying how to install it."""
    module = RUNTIMES[format]
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"needs the {format} extra: pip install -e '.[{EXTRAS[format]}]'")


# Runs in `python -I` from an empty directory with keras_vae made unimportable,
# as a serving process would: each format in its runtime alone (LiteRT and
# ONNX Runtime without TensorFlow). Writes every signature's outputs.
CONSUMER = """
import sys
sys.modules["keras_vae"] = None  # any import of keras_vae now fails
import numpy as np

format, path, inputs_path, outputs_path, names = sys.argv[1:]
inputs = dict(np.load(inputs_path))
args = {"encode": ["x"], "decode": ["z"], "reconstruct": ["x"], "sample_from_z": ["z"],
        "reconstruct_sampled": ["x", "eps"]}
if format == "saved_model":
    import tensorflow as tf
    signatures = tf.saved_model.load(path).signatures
    def run(name, given):
        return {k: v.numpy() for k, v in signatures[name](**given).items()}
elif format == "litert":
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path)
    def run(name, given):
        return interpreter.get_signature_runner(name)(**given)
else:
    import os
    import onnxruntime
    def run(name, given):
        session = onnxruntime.InferenceSession(os.path.join(path, name + ".onnx"),
                                               providers=["CPUExecutionProvider"])
        outputs = session.run(None, given)
        return {spec.name: value for spec, value in zip(session.get_outputs(), outputs)}
out = {}
for name in names.split(","):
    for key, value in run(name, {arg: inputs[arg] for arg in args[name]}).items():
        out[f"{name}/{key}"] = value
out["tensorflow_imported"] = np.array("tensorflow" in sys.modules)
np.savez(outputs_path, **out)
"""


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    vae = VAE(seed=0)
    vae.compile()
    vae.fit(np.random.default_rng(0).random((5 * 64, 784)).astype(np.float32),
            batch_size=64, verbose=0)
    return vae


def served_outputs(format, path, given, tmp_path):
    """Every random-free signature's outputs from `path`, run by `CONSUMER`."""
    np.savez(tmp_path / "inputs.npz", **given)
    workdir = tmp_path / "empty"
    workdir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    run = subprocess.run(
        [sys.executable, "-I", "-c", CONSUMER, format, path, tmp_path / "inputs.npz",
         tmp_path / "outputs.npz", ",".join(signatures.NAMES)],
        capture_output=True, text=True, cwd=workdir, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = dict(np.load(tmp_path / "outputs.npz"))
    assert out.pop("tensorflow_imported") == (format == "saved_model")
    return out


def assert_agree(vae, format, path, images, tmp_path):
    """Every signature of the export at `path`, served, within 1e-5 of `vae`."""
    rng = np.random.default_rng(5)
    given = {"x": images, "z": rng.standard_normal((len(images), vae.z_dim), np.float32),
             "eps": rng.standard_normal((len(images), vae.z_dim), np.float32)}
    served = served_outputs(format, path, given, tmp_path)
    expected = {f"{name}/{key}": np.asarray(value)
                for name, _, outputs in self_check.cases(vae, given) for key, value in outputs.items()}
    assert set(served) == set(expected)
    for key, value in expected.items():
        output = key.split("/")[1]
        assert served[key].shape == value.shape, key
        if output in RAW_OUTPUTS:
            gap = np.max(np.abs(served[key].astype(np.float64) - value))
        else:  # logits
            gap = self_check.difference(output, served[key], value)
        assert gap <= 1e-5, (format, key, gap)


@pytest.mark.slow
@pytest.mark.parametrize("format", list(TARGETS))
def test_each_format_runs_without_keras_vae_and_agrees_with_the_model(
        format, model, tmp_path, synthetic_mnist_dir):
    needs_runtime(format)
    path = model.export(tmp_path / TARGETS[format], format=format)
    images, _ = read_mnist(synthetic_mnist_dir, "test")
    assert_agree(model, format, path, scale_pixels(images[:256]), tmp_path)


@pytest.mark.slow
@pytest.mark.real_mnist(reason="criterion: every format agrees with the model on real digits")
def test_on_real_test_images_every_format_agrees_with_the_model(real_mnist_dir, tmp_path):
    keras.utils.set_random_seed(0)
    vae = VAE(seed=0)
    vae.compile()
    vae.fit(load_mnist("train", 64, real_mnist_dir, seed=0), steps_per_epoch=300, verbose=0)
    images, _ = read_mnist(real_mnist_dir, "test")
    for format, target in TARGETS.items():
        needs_runtime(format)
        work = tmp_path / format
        work.mkdir()
        path = vae.export(work / target, format=format)
        assert_agree(vae, format, path, scale_pixels(images[:256]), work)


def changed_copy(vae):
    """`vae` with its output bias moved by 1e-3: a model that computes otherwise."""
    copy = VAE(h_dim=vae.h_dim, z_dim=vae.z_dim)
    for name in VAE.WEIGHTS:
        getattr(copy, name).assign(getattr(vae, name) + (1e-3 if name == "P_b2" else 0.0))
    return copy


def write_computing_otherwise(monkeypatch, format):
    """Makes `format`'s writer write another model than the one exported,
    as a runtime computing otherwise would look to the check."""
    writer = export.FORMATS[format]
    write = writer.write
    monkeypatch.setattr(writer, "write",
                        lambda vae, path, **options: write(changed_copy(vae), path, **options))


@pytest.mark.parametrize("format", list(TARGETS))
def test_an_export_computing_otherwise_fails_and_leaves_the_target_absent(
        format, model, tmp_path, monkeypatch):
    needs_runtime(format)
    write_computing_otherwise(monkeypatch, format)
    target = tmp_path / TARGETS[format]
    with pytest.raises(self_check.ExportCheckError, match="away from the Keras model"):
        model.export(target, format=format)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("format", list(TARGETS))
def test_the_command_exits_1_on_a_failed_check_and_keeps_the_previous_export(
        format, model, tmp_path, monkeypatch, capsys):
    needs_runtime(format)
    save_model(model, tmp_path / "vae.keras")
    target = tmp_path / TARGETS[format]
    model.export(target, format=format)
    before = sorted(os.listdir(tmp_path))
    write_computing_otherwise(monkeypatch, format)
    status = cli.main(["export", "--model", str(tmp_path / "vae.keras"), "--format", format,
                       "--out", str(target), "--overwrite"])
    assert status == 1
    assert "away from the Keras model" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == before  # the old export, and no temporary
    monkeypatch.undo()
    served = export.FORMATS[format].runner(str(target), export.FORMATS[format].require_runtime())
    given = self_check.inputs(model, rows=8)
    assert self_check.check(served, self_check.cases(model, given), "the export") <= 1e-5


@pytest.mark.parametrize("format, module", [("litert", "ai_edge_litert.interpreter"),
                                            ("onnx", "onnxruntime"), ("onnx", "tf2onnx")])
def test_a_missing_extra_is_named_and_nothing_is_written(format, module, model, tmp_path,
                                                         monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # its import now fails
    target = tmp_path / TARGETS[format]
    with pytest.raises(MissingExtraError, match=rf"pip install 'keras-vae\[{format}\]'"):
        model.export(target, format=format)
    save_model(model, tmp_path / "vae.keras")
    status = cli.main(["export", "--model", str(tmp_path / "vae.keras"), "--format", format,
                       "--out", str(target)])
    assert status == 1
    assert f"keras-vae[{format}]" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["vae.keras"]


@pytest.mark.parametrize("format, target, expected", [
    ("litert", "vae", "ends in .tflite"),
    ("litert", "vae_dir/", "ends in .tflite"),
    ("saved_model", "vae.tflite", "A SavedModel is a directory"),
    ("onnx", "vae.onnx", "An ONNX export is a directory"),
    ("pickle", "vae", "choose one of saved_model, litert, onnx"),
])
def test_a_target_the_format_cannot_take_is_refused_before_writing(
        format, target, expected, model, tmp_path):
    with pytest.raises(ValueError, match=expected):
        export.export(model, os.path.join(tmp_path, target), format=format)
    assert os.listdir(tmp_path) == []


def test_max_samples_is_refused_for_formats_without_sample(model, tmp_path, capsys):
    with pytest.raises(ValueError, match="has none"):
        model.export(tmp_path / "vae_onnx", format="onnx", max_samples=5)
    save_model(model, tmp_path / "vae.keras")
    status = cli.main(["export", "--model", str(tmp_path / "vae.keras"), "--format", "litert",
                       "--out", str(tmp_path / "vae.tflite"), "--max-samples", "5"])
    assert status == 2
    assert "max_samples bounds the SavedModel's `sample`" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["vae.keras"]


def test_keras_name_of_the_saved_model_format_gives_ours(model, tmp_path):
    path = model.export(tmp_path / "saved", format="tf_saved_model")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.path.isfile(os.path.join(path, saved_model.METADATA))  # ours, not Keras'


def test_the_formats_of_the_command_are_the_librarys():
    from keras_vae.cli import export as command

    assert command.FORMATS == tuple(export.FORMATS)
    assert set(command.TITLES) == set(export.FORMATS)
    assert {litert_file, onnx_files, saved_model} == set(export.FORMATS.values())
