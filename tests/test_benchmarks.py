"""Each benchmark runs a few steps, so that none can rot unseen."""

import json
import subprocess
import sys

from tests.conftest import REPO, checkout_env


def test_bench_train_runs_and_reports_every_mode(tmp_path, synthetic_mnist_dir):
    figures = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/bench_train.py", "--data-dir", str(synthetic_mnist_dir),
         "--steps", "5", "--rounds", "2", "--warmup", "2", "--script-iters", "3", "--repeats", "1",
         "--json", str(figures)],
        capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(figures.read_text())
    median = report["median"]
    assert set(median) == {"tf1", "keras-spe1", "faithful", "fast",
                           "tf1-script", "cli", "cli-fast"}
    assert len(report["runs"]["fast"]) == 2  # one figure per round
    for mode, values in median.items():
        assert values["steps_per_s"] > 0 and values["peak_rss_mib"] > 100, mode
        assert mode in run.stdout


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
    configs = ["one", "one-spe1", "mirrored-2", "workers-2"]  # all six take twice as long
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
        assert ("all_reduce_ms" in values) == (config in ("mirrored-2", "workers-2")), config
        assert config in run.stdout
    assert len(report["runs"]["workers-2"][0]["workers"]) == 2  # every worker's figures
    assert report["grad_bytes"] == 240_344 * 4
    estimated = {(row["link"], row["devices"]) for row in report["estimates"]}
    links = set(report["assumptions"]["links"])
    assert len(links) >= 4 and estimated == {(link, n) for link in links for n in (2, 8)}
