"""The command answers at once and quietly: `--help` and usage errors without
TensorFlow, TensorFlow's start-up lines set aside unless asked for, plain
progress lines when the output is not a terminal."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, checkout_env

ANSWERS = """
import json, sys
import keras_vae_cli
statuses = []
for argv in json.loads(sys.argv[1]):
    try:
        statuses.append(keras_vae_cli.command(argv))
    except SystemExit as done:  # argparse's answer
        statuses.append(done.code)
print(json.dumps([statuses, sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")]))
"""

SUBCOMMANDS = ("train", "sample", "export", "evaluate", "plot", "download", "parity")

# TensorFlow's C++ log lines ("I0000 00:00:... file.cc:12] ..."), and absl's
# and the CUDA stubs' lines that TF_CPP_MIN_LOG_LEVEL does not silence.
TF_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|cuInit|cudart", re.M)


def test_help_and_usage_errors_answer_without_tensorflow():
    argvs = [["--help"], *([name, "--help"] for name in SUBCOMMANDS), [],
             ["no-such-command"], ["train", "--iters", "x"], ["train", "--strategy", "bogus"],
             ["sample", "--n", "0", "--model", "m.keras"], ["evaluate"]]
    run = subprocess.run([sys.executable, "-c", ANSWERS, json.dumps(argvs)], capture_output=True,
                         text=True, cwd=REPO, env=checkout_env(), timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    statuses, tensorflow = json.loads(run.stdout.strip().splitlines()[-1])
    assert statuses == [0] * (1 + len(SUBCOMMANDS)) + [2] * 6, run.stderr[-3000:]
    assert tensorflow == []
    assert "--data-dir" in run.stdout and "usage: keras-vae train" in run.stderr


def test_a_failing_tensorflow_import_shows_its_error(tmp_path):
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os\nos.write(2, b'native start-up line\\n')\n"
        "raise ImportError('this TensorFlow is broken')\n")
    env = checkout_env()
    env["PYTHONPATH"] = os.pathsep.join((str(tmp_path), env["PYTHONPATH"]))
    run = subprocess.run([sys.executable, "-m", "keras_vae_cli", "sample", "--model", "m.keras"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert run.returncode != 0
    assert "native start-up line" in run.stderr and "this TensorFlow is broken" in run.stderr


def _train(tmp_path, data_dir, *flags, **env):
    """`keras-vae train` for 3 steps, its output piped; TF_CPP_MIN_LOG_LEVEL unset."""
    env = {**checkout_env(), **env}
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    return subprocess.run(
        [sys.executable, "-m", "keras_vae_cli", "train", "--iters", "3", "--data-dir", data_dir,
         "--out", tmp_path / "out", "--overwrite", *flags],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)


@pytest.mark.slow
def test_a_default_run_hides_tensorflows_start_up_and_writes_plain_progress(
        synthetic_mnist_dir, tmp_path):
    quiet = _train(tmp_path, synthetic_mnist_dir)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert not TF_LINE.search(quiet.stderr), quiet.stderr[-3000:]
    assert "Iter: 0" in quiet.stdout and "3/3" in quiet.stdout
    assert not re.search("[\x1b\r\b]", quiet.stdout), repr(quiet.stdout[-500:])
    # Under a strategy, fit takes Keras' own path, with the same plain lines.
    mirrored = _train(tmp_path, synthetic_mnist_dir, "--strategy", "mirrored", "--replicas", "2")
    assert mirrored.returncode == 0 and not TF_LINE.search(mirrored.stderr), mirrored.stderr
    assert "3/3" in mirrored.stdout and not re.search("[\x1b\r\b]", mirrored.stdout)
    shown = _train(tmp_path, synthetic_mnist_dir, KERAS_VAE_TF_LOG="1")
    assert shown.returncode == 0 and TF_LINE.search(shown.stderr), shown.stderr[-3000:]
