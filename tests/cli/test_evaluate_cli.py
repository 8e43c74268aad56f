"""`keras-vae evaluate` as a user runs it: its JSON object, its progress bar
in a pipe, its flags."""

import json
import math

import pytest

from keras_vae.cli import build_parser
from keras_vae.cli.evaluate import verbosity
from tests.conftest import run_keras_vae
from tests.evaluation.conftest import trained_vae

CONTROL = ("\x1b", "\r", "\b")


@pytest.fixture(scope="module")
def saved(synthetic_mnist_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluate") / "m.keras"
    trained_vae(synthetic_mnist_dir).save(path)
    return path


def _evaluate(saved, data_dir, *flags):
    return run_keras_vae("evaluate", "--model", saved, "--data-dir", data_dir,
                         "--split", "test[:300]", "--k", "1,10", *flags)


@pytest.mark.slow
def test_prints_one_json_object(saved, synthetic_mnist_dir):
    run = _evaluate(saved, synthetic_mnist_dir, "--binarize", "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1, lines  # --json: no progress bar
    result = json.loads(lines[0])
    assert set(result) == {"split", "images", "neg_elbo", "recon_loss", "kl_loss", "nll",
                           "nll_se", "bits_per_dim", "binarized"}
    assert result["split"] == "test[:300]" and result["images"] == 300 and result["binarized"]
    assert set(result["nll"]) == set(result["nll_se"]) == {"1", "10"}
    assert result["nll"]["10"] < result["nll"]["1"]
    # One division in float64 either side: within 1e-15, far inside approx's 1e-6.
    assert result["bits_per_dim"] == pytest.approx(result["nll"]["10"] / (784 * math.log(2)))


@pytest.mark.slow
def test_a_piped_progress_bar_writes_plain_lines(saved, synthetic_mnist_dir):
    run = _evaluate(saved, synthetic_mnist_dir, "--batch-size", "30")
    assert run.returncode == 0, run.stderr[-2000:]
    assert not [c for c in CONTROL if c in run.stdout], run.stdout
    lines = run.stdout.splitlines()
    assert [line.split(" - ")[0] for line in lines[:10]] == [
        f"batch {n}/10" for n in range(1, 11)]
    assert lines[10] == "300 images of test[:300]:"


@pytest.mark.slow
def test_refuses_bad_sample_counts():
    run = run_keras_vae("evaluate", "--model", "m.keras", "--k", "1,0")
    assert run.returncode == 2 and "--k: expected positive integers" in run.stderr


@pytest.mark.parametrize("flags, expected", [
    ((), 1), (("--json",), 0), (("--json", "--verbose", "1"), 1), (("--verbose", "0"), 0)])
def test_json_silences_the_progress_bar_unless_verbose_is_given(flags, expected):
    args = build_parser().parse_args(["evaluate", "--model", "m.keras", *flags])
    assert verbosity(args) == expected


@pytest.mark.slow
def test_two_mirrored_replicas_give_one_devices_estimates(saved, synthetic_mnist_dir):
    # Batches of 25 images: the replicas' shares differ (12 and 13).
    results = []
    for strategy in (("--strategy", "one"), ("--strategy", "mirrored", "--replicas", "2")):
        run = _evaluate(saved, synthetic_mnist_dir, "--batch-size", "25", "--binarize", "--json",
                        *strategy)
        assert run.returncode == 0, run.stderr[-2000:]
        results.append(json.loads(run.stdout))
    one, mirrored = results
    assert mirrored["images"] == one["images"] == 300
    for name in ("neg_elbo", "recon_loss", "kl_loss", "bits_per_dim"):
        assert mirrored[name] == pytest.approx(one[name], rel=1e-4), name
    for k in ("1", "10"):
        assert mirrored["nll"][k] == pytest.approx(one["nll"][k], rel=1e-4), k
        assert mirrored["nll_se"][k] == pytest.approx(one["nll_se"][k], rel=1e-4), k


def test_replicas_go_with_the_mirrored_strategy():
    run = run_keras_vae("evaluate", "--model", "m.keras", "--replicas", "2")
    assert run.returncode == 2 and "--replicas goes with --strategy mirrored" in run.stderr
