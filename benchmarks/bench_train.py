"""Training speed and peak memory: the TF1 reference beside keras_vae, in turn.

    python benchmarks/bench_train.py --data-dir ../shared/data/mnist

Each measurement runs in a fresh process (so its peak RSS is its own), the
modes strictly alternating, and repeats `--repeats` times; the table shows
the medians and each mode's ratio to the TF1 reference of the same run.

Modes:
- tf1: the original graph (legacy_tf1), `sess.run([solver, vae_loss])` with a
  `feed_dict` from `next_batch(64)`, as the original script ran;
- faithful: `VAE().compile()`, `model.fit` on `load_mnist`, one step per
  execution (the default);
- faithful-spe: the same with `compile(steps_per_execution=--spe)`: the
  same arithmetic (the parity tests' bits), fewer trips through Python.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

MODES = ("tf1", "faithful", "faithful-spe")


def measure(mode, data_dir, warmup, steps, spe):
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
        model = VAE()
        model.compile(steps_per_execution=spe if mode == "faithful-spe" else 1)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="MNIST IDX files; default: synthetic data")
    parser.add_argument("--steps", type=int, default=2000, help="timed steps (default: 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="default: 200")
    parser.add_argument("--repeats", type=int, default=3, help="default: 3")
    parser.add_argument("--spe", type=int, default=50, help="steps per execution (default: 50)")
    parser.add_argument("--json", default="bench_train.json", help="where to write the figures")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.data_dir, args.warmup, args.steps, args.spe)))
        return 0

    results = {mode: [] for mode in MODES}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for repeat in range(args.repeats):
        for mode in MODES:
            command = [sys.executable, __file__, "--child", mode, "--steps", str(args.steps),
                       "--warmup", str(args.warmup), "--spe", str(args.spe)]
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
    reference = summary["tf1"]
    print(f"\n{'mode':<14}{'steps/s':>9}{'x TF1':>8}{'peak RSS MiB':>14}{'x TF1':>8}")
    for mode, figures in summary.items():
        print(f"{mode:<14}{figures['steps_per_s']:>9.0f}"
              f"{figures['steps_per_s'] / reference['steps_per_s']:>8.2f}"
              f"{figures['peak_rss_mib']:>14.0f}"
              f"{figures['peak_rss_mib'] / reference['peak_rss_mib']:>8.2f}")
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "median": summary, "runs": results}, f, indent=2)
    print(f"\n(medians of {args.repeats}; data: {args.data_dir or 'synthetic'}; "
          f"figures in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
