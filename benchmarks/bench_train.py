"""Training speed and peak memory: the TF1 reference beside keras_vae, in turn.

    python benchmarks/bench_train.py --data-dir ../shared/data/mnist

Each measurement runs in a fresh process (so its peak RSS is its own), the
modes strictly alternating, and repeats `--repeats` times; the table shows
the medians and each mode's ratio to the TF1 reference of the same run, both
as the ratio of the medians and as the median of the ratios within each
repeat ("paired", steadier when the machine's speed drifts).

Training loops, timed after `--warmup` steps:
- tf1: the original graph (legacy_tf1), `sess.run([solver, vae_loss])` with a
  `feed_dict` from `next_batch(64)`, as the original script ran;
- keras-spe1: `VAE().compile()`, `fit` on `load_mnist`, Keras' default of
  one step per call into TensorFlow;
- faithful: the same with `compile(steps_per_execution=100)`: batches drawn
  in-graph, 100 steps per call, the same bits (what `keras-vae train` runs);
- fast: `compile(fast=True)`, the loop compiled by XLA (`keras-vae train --fast`).

Whole commands, `--script-iters` steps each, timed from start to exit (so
including start-up and data loading); peak RSS of the process:
- tf1-script: `python -m legacy_tf1.vae_tf1`, the reference script;
- cli: `keras-vae train`; cli-fast: `keras-vae train --fast`.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOPS = ("tf1", "keras-spe1", "faithful", "fast")
SCRIPTS = ("tf1-script", "cli", "cli-fast")


def measure(mode, data_dir, warmup, steps):
    """Runs `steps` timed steps of `mode` after `warmup`; returns steps/s and peak RSS."""
    import numpy as np

    import tensorflow as tf

    if mode == "tf1":
        from legacy_tf1 import input_data
        from legacy_tf1.vae_tf1 import build_graph

        if data_dir:
            train = input_data.read_data_sets(data_dir, one_hot=True, seed=0).train
            next_batch = lambda: train.next_batch(64)[0]  # noqa: E731
        else:
            images = np.random.default_rng(0).random((55000, 784), np.float32)
            next_batch = lambda: images[np.random.randint(0, 55000 - 64):][:64]  # noqa: E731
        vae = build_graph(seed=0)
        with tf.compat.v1.Session(graph=vae.graph) as sess:
            sess.run(vae.init)

            def run(n):
                for _ in range(n):
                    sess.run([vae.solver, vae.vae_loss], {vae.X: next_batch()})

            run(warmup)
            start = time.perf_counter()
            run(steps)
            elapsed = time.perf_counter() - start
    else:
        import keras

        from keras_vae.data import load_mnist
        from keras_vae.model import VAE

        keras.utils.set_random_seed(0)
        model = VAE(seed=0)
        if mode == "fast":
            model.compile(fast=True)
        else:
            model.compile(steps_per_execution=100 if mode == "faithful" else 1)
        if data_dir:
            dataset = load_mnist(data_dir=data_dir, seed=0)
        else:
            images = np.random.default_rng(0).random((55000, 784), np.float32)
            dataset = tf.data.Dataset.from_tensor_slices(images).repeat().batch(64)
        model.fit(dataset, steps_per_epoch=warmup, verbose=0, shuffle=False)
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, verbose=0, shuffle=False)
        elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"steps_per_s": steps / elapsed, "peak_rss_mib": peak_mib}


def run_script(mode, data_dir, iters, env):
    """Runs the whole command of `mode`; its steps/s (start to exit) and peak RSS."""
    with tempfile.TemporaryDirectory() as out:
        if mode == "tf1-script":
            command = [sys.executable, "-m", "legacy_tf1.vae_tf1", "--data-dir", data_dir,
                       "--iters", str(iters), "--out", out, "--seed", "0"]
        else:
            command = [sys.executable, "-m", "keras_vae", "train", "--data-dir", data_dir,
                       "--iters", str(iters), "--out", out, "--seed", "0", "--verbose", "0",
                       *(["--fast"] if mode == "cli-fast" else [])]
        with tempfile.TemporaryFile() as stderr:
            start = time.perf_counter()
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr,
                                    env=env, cwd=REPO)
            # This child's own rusage: RUSAGE_CHILDREN would give the largest
            # peak of all the children so far.
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            stderr.seek(0)
            errors = stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed ({proc.returncode}): {errors[-2000:]}")
    return {"steps_per_s": iters / elapsed, "peak_rss_mib": usage.ru_maxrss / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="MNIST IDX files; default: synthetic data "
                        "(and no whole-command measurements)")
    parser.add_argument("--steps", type=int, default=3000, help="timed steps (default: 3000)")
    parser.add_argument("--warmup", type=int, default=300, help="default: 300")
    parser.add_argument("--script-iters", type=int, default=3000,
                        help="steps of each whole command (default: 3000; 0 skips them)")
    parser.add_argument("--repeats", type=int, default=3, help="default: 3")
    parser.add_argument("--json", default="bench_train.json", help="where to write the figures")
    parser.add_argument("--child", choices=LOOPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.data_dir, args.warmup, args.steps)))
        return 0

    modes = LOOPS + (SCRIPTS if args.data_dir and args.script_iters else ())
    results = {mode: [] for mode in modes}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for repeat in range(args.repeats):
        for mode in modes:
            if mode in SCRIPTS:
                results[mode].append(run_script(mode, args.data_dir, args.script_iters, env))
            else:
                command = [sys.executable, __file__, "--child", mode, "--steps", str(args.steps),
                           "--warmup", str(args.warmup)]
                if args.data_dir:
                    command += ["--data-dir", args.data_dir]
                run = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
                results[mode].append(json.loads(run.stdout.strip().splitlines()[-1]))
            print(f"repeat {repeat + 1}/{args.repeats} {mode}: "
                  f"{results[mode][-1]['steps_per_s']:.0f} steps/s", flush=True)

    summary = {
        mode: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for mode, runs in results.items()
    }
    # The machines drift, so each ratio is also taken within its repeat,
    # against the TF1 run just before it, and the median of those is shown.
    for mode, runs in results.items():
        reference = results["tf1-script" if mode in SCRIPTS else "tf1"]
        summary[mode]["paired_ratio"] = statistics.median(
            run["steps_per_s"] / ref["steps_per_s"] for run, ref in zip(runs, reference))
    print(f"\n{'mode':<12}{'steps/s':>9}{'x TF1':>8}{'paired':>8}{'peak RSS MiB':>14}{'x TF1':>8}")
    for mode, figures in summary.items():
        reference = summary["tf1-script" if mode in SCRIPTS else "tf1"]
        print(f"{mode:<12}{figures['steps_per_s']:>9.0f}"
              f"{figures['steps_per_s'] / reference['steps_per_s']:>8.2f}"
              f"{figures['paired_ratio']:>8.2f}"
              f"{figures['peak_rss_mib']:>14.0f}"
              f"{figures['peak_rss_mib'] / reference['peak_rss_mib']:>8.2f}")
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "median": summary, "runs": results}, f, indent=2)
    print(f"\n(medians of {args.repeats}; loops: {args.steps} steps after {args.warmup}; "
          f"commands: {args.script_iters} steps from start to exit, against tf1-script; "
          f"data: {args.data_dir or 'synthetic'}; figures in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
