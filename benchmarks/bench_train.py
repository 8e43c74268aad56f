"""Training speed and peak memory: the TF1 reference beside keras_vae, in turn.

    python benchmarks/bench_train.py --data-dir ../shared/data/mnist

Training loops, all four built in one process after `--warmup` steps each,
then timed in `--rounds` rounds of `--steps` steps each, the modes in turn
(their order rotated each round), so that all see the same machine:
- tf1: the original graph (legacy_tf1), `sess.run([solver, vae_loss])` with a
  `feed_dict` from `next_batch(64)`, as the original script ran;
- keras-spe1: `VAE().compile()`, `fit` on `load_mnist`, Keras' default of
  one step per call into TensorFlow;
- faithful: the same with `compile(steps_per_execution=100)`: batches drawn
  in-graph, 100 steps per call, the same bits (what `keras-vae train` runs);
- fast: `compile(fast=True)`, the loop compiled by XLA (`keras-vae train --fast`).
Each loop's peak RSS is measured apart, in a fresh process of its own.

Whole commands, `--script-iters` steps each, timed from start to exit (so
including start-up and data loading), the three in turn `--repeats` times;
peak RSS of the process:
- tf1-script: `python -m legacy_tf1.vae_tf1`, the reference script;
- cli: `keras-vae train`; cli-fast: `keras-vae train --fast`.

The table shows each mode's median and two ratios to the TF1 reference: the
ratio of the medians, and "paired", the median of the ratios within each
round (or repeat), steadier when the machine's speed drifts.
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
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOPS = ("tf1", "keras-spe1", "faithful", "fast")
SCRIPTS = ("tf1-script", "cli", "cli-fast")


def make_loop(mode, data_dir):
    """Builds `mode`'s training; returns `run(n)`, which trains `n` more steps."""
    import numpy as np
    import tensorflow as tf

    if data_dir:
        images = None
    else:
        images = np.random.default_rng(0).random((55000, 784), np.float32)
    if mode == "tf1":
        from legacy_tf1 import input_data
        from legacy_tf1.vae_tf1 import build_graph

        if data_dir:
            train = input_data.read_data_sets(data_dir, one_hot=True, seed=0).train
            next_batch = lambda: train.next_batch(64)[0]  # noqa: E731
        else:
            next_batch = lambda: images[np.random.randint(0, 55000 - 64):][:64]  # noqa: E731
        vae = build_graph(seed=0)
        sess = tf.compat.v1.Session(graph=vae.graph)
        sess.run(vae.init)

        def run(n):
            for _ in range(n):
                sess.run([vae.solver, vae.vae_loss], {vae.X: next_batch()})

        return run

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
        dataset = tf.data.Dataset.from_tensor_slices(images).repeat().batch(64)
    return lambda n: model.fit(dataset, steps_per_epoch=n, verbose=0, shuffle=False)


def time_loops(data_dir, warmup, steps, rounds):
    """Steps/s of each loop, one figure per round, the loops in turn."""
    loops = {mode: make_loop(mode, data_dir) for mode in LOOPS}
    for run in loops.values():
        run(warmup)
    speeds = {mode: [] for mode in LOOPS}
    for round_ in range(rounds):
        shift = round_ % len(LOOPS)
        for mode in LOOPS[shift:] + LOOPS[:shift]:
            start = time.perf_counter()
            loops[mode](steps)
            speeds[mode].append(steps / (time.perf_counter() - start))
    return speeds


def loop_peak_rss(mode, data_dir, steps):
    """Peak RSS (MiB) of a fresh process that trains `mode` for `steps` steps."""
    make_loop(mode, data_dir)(steps)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def _child(args, env, *child_args):
    """Runs this script as a child with `child_args`; its JSON answer."""
    command = [sys.executable, __file__, *child_args, "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--rounds", str(args.rounds)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    run = subprocess.run(command, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(child_args)} failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="MNIST IDX files; default: synthetic data "
                        "(and no whole-command measurements)")
    parser.add_argument("--steps", type=int, default=1000,
                        help="timed steps of each loop in each round (default: 1000)")
    parser.add_argument("--rounds", type=int, default=7, help="default: 7")
    parser.add_argument("--warmup", type=int, default=300, help="default: 300")
    parser.add_argument("--script-iters", type=int, default=3000,
                        help="steps of each whole command (default: 3000; 0 skips them)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each whole command (default: 3)")
    parser.add_argument("--json", default="bench_train.json", help="where to write the figures")
    parser.add_argument("--child", choices=("loops", *LOOPS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "loops":
        print(json.dumps(time_loops(args.data_dir, args.warmup, args.steps, args.rounds)))
        return 0
    if args.child:
        print(json.dumps(loop_peak_rss(args.child, args.data_dir, args.warmup + args.steps)))
        return 0

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    speeds = _child(args, env, "--child", "loops")
    # Peak memory does not depend on the machine's speed: these run at once.
    with ThreadPoolExecutor(len(LOOPS)) as pool:
        peak_rss = dict(zip(LOOPS, pool.map(lambda m: _child(args, env, "--child", m), LOOPS)))
    # As runs, for the summary below: one per round.
    results = {mode: [{"steps_per_s": v, "peak_rss_mib": peak_rss[mode]} for v in speeds[mode]]
               for mode in LOOPS}
    for mode in LOOPS:
        print(f"{mode}: {', '.join(f'{v:.0f}' for v in speeds[mode])} steps/s", flush=True)
    if args.data_dir and args.script_iters:
        results.update({mode: [] for mode in SCRIPTS})
        for repeat in range(args.repeats):
            for mode in SCRIPTS:
                results[mode].append(run_script(mode, args.data_dir, args.script_iters, env))
                print(f"repeat {repeat + 1}/{args.repeats} {mode}: "
                      f"{results[mode][-1]['steps_per_s']:.0f} steps/s", flush=True)

    summary = {
        mode: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for mode, runs in results.items()
    }
    # The machines drift, so each ratio is also taken within its round (or
    # repeat), against the TF1 reference of the same round, and the median
    # of those is shown.
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
    print(f"\n(loops: medians of {args.rounds} rounds of {args.steps} steps after "
          f"{args.warmup}, in one process; commands: medians of {args.repeats} runs of "
          f"{args.script_iters} steps from start to exit, against tf1-script; "
          f"data: {args.data_dir or 'synthetic'}; figures in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
