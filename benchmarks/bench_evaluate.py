"""Evaluation speed: `keras_vae.evaluate`'s importance sampling at k = 5,000
beside its matmul floor, measured in the same process, rounds rotated.

    python benchmarks/bench_evaluate.py --model results/mnist-100k.keras --data-dir MNIST_data
    python benchmarks/bench_evaluate.py --images 20 --k 50 --rounds 1    # a quick look

Three things are timed on the same `--images` images (the first of the test
split of `--data-dir`'s MNIST, or without it uniform random pixels drawn
with seed 0: the speed does not depend on them), in batches of
`--batch-size` (100, `keras-vae evaluate`'s default), read into memory
first so that no data loading is timed:
- evaluate k=K: `keras_vae.evaluate(model, batches, k=(K,))` (`--k`,
  5,000 by default), the whole call: the ELBO, the importance sampling and
  the means;
- evaluate k=1: the same with `k=(1,)`;
- floor: the matmuls of evaluate k=K's importance sampling alone, by
  `tf.matmul` at exactly its shapes and counts, on random data: per batch,
  the encoder's three (`x @ Q_W1`, `h @ Q_W2_mu`, `h @ Q_W2_sigma`) in one
  call of a `tf.function`; per call of the importance sampling
  (`keras_vae.evaluation.estimates.call_shapes`: each call decodes some
  images' draws), the decoder's two (`z @ P_W1`, `h @ P_W2`, draws rows
  each) in one call of a `tf.function`, as the evaluation makes one call
  of its own.
The importance sampling's time is evaluate k=K's less evaluate k=1's (so
its K - 1 draws past the first per image; the ELBO, the means and the
iteration over the batches cancel); its images per second are the images
over that time. The ratio to the floor is the criterion of the issue: at
most 2. evaluate k=K's whole time over the floor is printed too.

Each round runs the three once, their order rotated by one from round to
round, after an untimed run of each (tracing and XLA compilation). The
figures are the medians over `--rounds` rounds, the ratios paired: the
median over the rounds of each round's ratio.

Without `--model`, a freshly initialised `keras_vae.VAE(seed=0)` (784-128-100)
is measured: the speed does not depend on the weights (the same ops on the
same shapes).
"""

import argparse
import importlib.metadata
import json
import os
import statistics
import sys
import time

RUNS = ("evaluate k=K", "evaluate k=1", "floor")
PACKAGES = ("tensorflow", "keras", "keras-vae")


def load_images(data_dir, images, batch_size, x_dim):
    """The first `images` test images of `data_dir` (or random pixels), as a
    list of float32 batches in memory."""
    import numpy as np
    import tensorflow as tf

    if data_dir is None:
        pixels = np.random.default_rng(0).random((images, x_dim), dtype=np.float32)
        return [tf.constant(pixels[a:a + batch_size]) for a in range(0, images, batch_size)]
    from keras_vae.data.batches import load_mnist

    data = load_mnist(f"test[:{images}]", batch_size, data_dir, shuffle=False, repeat=False)
    batches = [tf.constant(batch) for batch in data]
    found = sum(len(batch) for batch in batches)
    if found != images:
        raise SystemExit(f"--images {images}: the test split of {data_dir} has {found}")
    return batches


def evaluation(model, batches, k):
    """A run of `keras_vae.evaluate` at the numbers of draws `k`."""
    import keras_vae

    return lambda: keras_vae.evaluate(model, batches, k=k)


def matmul_floor(model, batches, k):
    """A run of the importance sampling's matmuls at `k` draws, alone (see
    the module docstring), on random data made beforehand."""
    import tensorflow as tf

    from keras_vae.evaluation.estimates import call_shapes

    @tf.function
    def encoder(x, h):
        return (tf.matmul(x, model.Q_W1), tf.matmul(h, model.Q_W2_mu),
                tf.matmul(h, model.Q_W2_sigma))

    @tf.function
    def decoder(z, h):
        return tf.matmul(z, model.P_W1), tf.matmul(h, model.P_W2)

    inputs = {}  # random inputs, one pair per shape

    def random(rows, width_a, width_b):
        if (rows, width_a, width_b) not in inputs:
            inputs[rows, width_a, width_b] = (tf.random.normal((rows, width_a), seed=1),
                                              tf.random.normal((rows, width_b), seed=2))
        return inputs[rows, width_a, width_b]

    calls = []  # (function, its inputs), in the evaluation's order
    for batch in batches:
        calls.append((encoder, random(len(batch), model.x_dim, model.h_dim)))
        for _, images, _, draws in call_shapes(k, len(batch), model.x_dim):
            calls.append((decoder, random(images * draws, model.z_dim, model.h_dim)))

    def run():
        for function, (a, b) in calls:
            outputs = function(a, b)
        return outputs  # each call returns once its matmuls are done (eager runs synchronously)

    return run


def timed(run):
    """Seconds of one `run()`."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(args):
    """Each round's seconds of the three runs (see the module docstring)."""
    import keras_vae

    model = keras_vae.load_model(args.model) if args.model else keras_vae.VAE(seed=0)
    batches = load_images(args.data_dir, args.images, args.batch_size, model.x_dim)
    runs = {"evaluate k=K": evaluation(model, batches, (args.k,)),
            "evaluate k=1": evaluation(model, batches, (1,)),
            "floor": matmul_floor(model, batches, args.k)}
    for name, run in runs.items():  # traces and compiles
        print(f"warm-up: {name} ({timed(run):.1f} s)", flush=True)
    seconds = {name: [] for name in runs}
    for round_ in range(args.rounds):
        shift = round_ % len(RUNS)
        for name in RUNS[shift:] + RUNS[:shift]:
            seconds[name].append(timed(runs[name]))
            print(f"round {round_ + 1}/{args.rounds}: {name} {seconds[name][-1]:.2f} s",
                  flush=True)
    return seconds


def summarize(seconds, images):
    """Medians of each run's seconds, the importance sampling's, its images
    per second and the floor's, and the paired ratios."""
    sampling = [a - b for a, b in zip(seconds["evaluate k=K"], seconds["evaluate k=1"])]
    rounds = {**seconds, "importance sampling": sampling}
    median = {name: statistics.median(values) for name, values in rounds.items()}
    ratios = {
        "importance sampling / floor": [a / b for a, b in zip(sampling, seconds["floor"])],
        "evaluate k=K / floor": [a / b for a, b in zip(seconds["evaluate k=K"],
                                                       seconds["floor"])],
    }
    return {
        "seconds": median,
        "images_per_s": {name: images / median[name] if median[name] > 0 else None
                         for name in ("importance sampling", "floor")},
        "ratios": {name: {"paired": statistics.median(values), "rounds": values}
                   for name, values in ratios.items()},
    }


def report(summary, args):
    """The figures, as lines of text."""
    seconds, rates = summary["seconds"], summary["images_per_s"]
    lines = [f"\n{args.images} images, k = {args.k}, batches of {args.batch_size}; "
             f"medians over {args.rounds} round{'s' * (args.rounds > 1)}:"]
    for name in (*RUNS, "importance sampling"):
        lines.append(f"  {name.replace('k=K', f'k={args.k}')}: {seconds[name]:.2f} s")
    lines.append(f"  importance sampling: {_rate(rates['importance sampling'])}; "
                 f"its matmuls alone (floor): {_rate(rates['floor'])}")
    for name, ratio in summary["ratios"].items():
        lines.append(f"  {name.replace('k=K', f'k={args.k}')}: {ratio['paired']:.2f} "
                     f"(paired median)")
    return "\n".join(lines)


def _rate(images_per_s):
    """A rate for the report; none when the time it comes from was not positive."""
    return "none (no time measured)" if images_per_s is None else f"{images_per_s:.1f} images/s"


def versions():
    """The versions of the packages measured."""
    return {package: importlib.metadata.version(package) for package in PACKAGES}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a trained .keras model (default: a fresh VAE(seed=0))")
    parser.add_argument("--data-dir", help="MNIST's IDX .gz files (default: random pixels)")
    parser.add_argument("--images", type=int, default=1000, help="default: 1000")
    parser.add_argument("--k", type=int, default=5000, help="importance samples (default: 5000)")
    parser.add_argument("--batch-size", type=int, default=100, help="default: 100")
    parser.add_argument("--rounds", type=int, default=5, help="default: 5")
    parser.add_argument("--json", help="where to write the figures, if anywhere")
    args = parser.parse_args(argv)
    if min(args.images, args.k, args.batch_size, args.rounds) < 1:
        parser.error("--images, --k, --batch-size and --rounds must be at least 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"model: {args.model}" if args.model else
          "model: a freshly initialised VAE(seed=0); the speed does not depend on the weights")
    seconds = measure(args)
    summary = summarize(seconds, args.images)
    print(report(summary, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "data_dir": args.data_dir, "images": args.images,
                       "k": args.k, "batch_size": args.batch_size, "rounds": args.rounds,
                       "versions": versions(), "runs": seconds, **summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
