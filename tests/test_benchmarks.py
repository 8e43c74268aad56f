"""Each benchmark runs a few steps, so that none can rot unseen."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, checkout_env

# Each runs a benchmark in processes of its own: the whole suite only.
pytestmark = pytest.mark.slow


def test_bench_train_runs_and_reports_every_mode(tmp_path, synthetic_mnist_dir):
    figures = tmp_path / "bench.json"
    # One round of one call's steps; the commands, from their `Iter: 0` line
    # to their `Iter: 1000` line.
    run = subprocess.run(
        [sys.executable, "benchmarks/bench_train.py", "--data-dir", str(synthetic_mnist_dir),
         "--steps", "100", "--warmup", "0", "--rounds", "1", "--json", str(figures)],
        capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(figures.read_text())
    loops = {"tf1-script", "cli", "cli-fast", "faithful", "fast"}
    ratios = {"faithful / tf1-script", "fast / tf1-script", "cli / tf1-script",
              "cli-fast / fast", "cli / faithful", "step-matmuls / fast", "fast GFLOP/s / peak"}
    if importlib.util.find_spec("jax") is None:  # CI installs .[test] alone
        assert "jax-step, jax-scan: skipped, JAX is not installed" in run.stdout
        assert report["skipped"] == ["jax-step", "jax-scan"]
    else:
        loops |= {"jax-step", "jax-scan"}
        ratios |= {"jax-scan / tf1-script", "jax-step / tf1-script", "fast / jax-scan",
                   "fast / jax-step"}
        assert report["skipped"] == []
    assert set(report["runs"]) == loops | {"peak-matmul", "step-matmuls"}
    for kind in loops | {"step-matmuls"}:
        runs = report["runs"][kind]
        assert len(runs) == 1 and runs[0]["steps_per_s"] > 0, kind  # one figure per round
        assert kind in run.stdout
    for kind in loops:
        median = report["median"][kind]
        assert 0 < median["loss"] < 800 and median["peak_rss_mib"] > 100, kind
    assert report["median"]["peak-matmul"]["gflop_per_s"] > 0
    assert set(report["ratios"]) == ratios
    for name, ratio in report["ratios"].items():
        assert ratio["paired"] > 0 and len(ratio["rounds"]) == 1, name
        assert name in run.stdout


def test_bench_quality_runs_and_reports_both(tmp_path, synthetic_mnist_dir):
    figures = tmp_path / "quality.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/bench_quality.py", "--data-dir", str(synthetic_mnist_dir),
         "--steps", "20", "--draws", "1", "--json", str(figures)],
        capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    neg_elbo = json.loads(figures.read_text())["neg_elbo"]
    assert set(neg_elbo) == {"tf1", "faithful", "fast"}
    # 20 steps from a random init: far from trained (~110) and far from 0.
    assert all(150 < value < 800 for value in neg_elbo.values()), neg_elbo


def test_bench_distributed_runs_and_reports_every_configuration(tmp_path, synthetic_mnist_dir):
    figures = tmp_path / "distributed.json"
    configs = ["one", "mirrored-1", "mirrored-2", "workers-2", "mirrored-2-fast"]  # not all
    run = subprocess.run(
        [sys.executable, "benchmarks/bench_distributed.py", "--data-dir", str(synthetic_mnist_dir),
         "--steps", "20", "--warmup", "5", "--rounds", "1", "--reduce-reps", "5",
         "--configs", ",".join(configs), "--json", str(figures)],
        capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(figures.read_text())
    median = report["median"]
    assert list(median) == configs
    for config, values in median.items():
        assert values["steps_per_s"] > 0, config
        assert ("all_reduce_ms" in values) == (config != "one"), config
        assert config in run.stdout
    assert len(report["runs"]["workers-2"][0]["workers"]) == 2  # every worker's figures
    assert report["grad_bytes"] == 240_344 * 4
    estimated = {(row["link"], row["devices"]) for row in report["estimates"]}
    links = set(report["assumptions"]["links"])
    assert len(links) >= 4 and estimated == {(link, n) for link in links for n in (2, 8)}


def test_bench_startup_times_each_phase_of_a_one_step_run(synthetic_mnist_dir):
    # The phases of one run, in a process of their own as the script runs
    # them (training turns on op determinism for its whole process); the cold
    # whole-command timings are plain `keras-vae train` runs in a loop.
    run = subprocess.run(
        [sys.executable, "benchmarks/bench_startup.py", "--data-dir", str(synthetic_mnist_dir),
         "--phases", "faithful"],
        capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    marks = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"import tensorflow", "load_mnist", "VAE()", "compile", "fit"} <= set(marks)
    assert all(seconds >= 0 for seconds in marks.values()) and marks["fit"] > 0


def test_bench_startup_times_a_command_from_the_end_of_its_import(synthetic_mnist_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_startup",
                                                  REPO / "benchmarks" / "bench_startup.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for name in ("import", "train"):
        whole, after_import, stdout = bench.timed_run(
            bench.command(name, str(synthetic_mnist_dir), str(tmp_path)), checkout_env())
        # The mark comes once the import is done, before any of the command's work.
        assert 0 < after_import < whole, (name, whole, after_import)
        assert stdout.startswith("imported ")
    assert "Iter: 0" in stdout and (tmp_path / "000.png").exists()  # the command ran


def test_bench_serving_reports_every_signature_of_every_runtime(tmp_path):
    figures = tmp_path / "serving.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/bench_serving.py", "--rounds", "1", "--calls", "3",
         "--json", str(figures)],
        capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(figures.read_text())
    installed = {"litert": importlib.util.find_spec("ai_edge_litert") is not None,
                 "onnx": all(importlib.util.find_spec(m) for m in ("onnxruntime", "tf2onnx"))}
    runtimes = ["keras", "saved_model", *(name for name, found in installed.items() if found)]
    assert list(report["median"]) == runtimes
    assert set(report["skipped"]) == {name for name, found in installed.items() if not found}
    signatures = ("encode", "decode", "reconstruct", "sample_from_z", "reconstruct_sampled")
    for runtime in runtimes:
        assert len(report["runs"][runtime]) == 1, runtime  # one run per round
        for name in signatures:
            figure = report["median"][runtime][name]
            assert 0 < figure["latency_s"] <= figure["latency_p90_s"], (runtime, name)
            assert figure["images_per_s"] > 0, (runtime, name)
    # The two markdown tables: a row per signature, a column per runtime.
    assert run.stdout.count("| signature | " + " | ".join(runtimes) + " |") == 2
    for name in signatures:
        assert run.stdout.count(f"| {name} | ") == 2, name


def test_bench_serving_skips_a_runtime_whose_extra_is_missing(tmp_path):
    # A package of that name first on the path, whose import fails as a
    # missing one's does.
    (tmp_path / "ai_edge_litert").mkdir()
    (tmp_path / "ai_edge_litert" / "__init__.py").write_text(
        "raise ImportError('No module named ai_edge_litert (hidden by the test)')\n")
    env = checkout_env()
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    figures = tmp_path / "serving.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/bench_serving.py", "--rounds", "1", "--calls", "3",
         "--runtimes", "keras,litert", "--json", str(figures)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "litert: skipped" in run.stdout and "pip install 'keras-vae[litert]'" in run.stdout
    report = json.loads(figures.read_text())
    assert list(report["skipped"]) == ["litert"] and list(report["median"]) == ["keras"]


def test_bench_evaluate_reports_the_importance_sampling_beside_its_matmul_floor(
        tmp_path, synthetic_mnist_dir):
    figures = tmp_path / "evaluate.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/bench_evaluate.py", "--data-dir", str(synthetic_mnist_dir),
         "--images", "20", "--k", "300", "--batch-size", "10", "--rounds", "1",
         "--json", str(figures)],
        capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(figures.read_text())
    assert (report["images"], report["k"], report["batch_size"]) == (20, 300, 10)
    runs = {"evaluate k=K", "evaluate k=1", "floor"}
    assert set(report["runs"]) == runs
    for name in runs:
        assert len(report["runs"][name]) == 1 and report["runs"][name][0] > 0, name
        assert report["seconds"][name] > 0, name
    assert report["images_per_s"]["floor"] > 0
    # The importance sampling's time is a difference of two short runs here:
    # its sign is not tested, only that it is reported.
    assert set(report["ratios"]) == {"importance sampling / floor", "evaluate k=K / floor"}
    for name, ratio in report["ratios"].items():
        assert len(ratio["rounds"]) == 1, name
        assert name.replace("k=K", "k=300") in run.stdout
    assert report["ratios"]["evaluate k=K / floor"]["paired"] > 0


def test_bench_serving_names_the_inputs_the_exports_take():
    from keras_vae.saving import signatures

    spec = importlib.util.spec_from_file_location("bench_serving",
                                                  REPO / "benchmarks" / "bench_serving.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.SIGNATURES == {name: tuple(arg for arg, _ in inputs)
                                for name, inputs in signatures.INPUTS.items()}
