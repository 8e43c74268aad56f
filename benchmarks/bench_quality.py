"""Test-set negative ELBO after the same training: the TF1 reference, keras_vae
faithful and keras_vae fast.

    python benchmarks/bench_quality.py --data-dir MNIST_data --steps 10000

Each trains on the original's split (`train[5000:]`) from the given seed for
`--steps` steps, in its own process; each is then scored on all 10,000 test
images, averaging `--draws` noise draws per image. Measured earlier for the
TF1 graph on this data: 145.1 after 1,000 steps, 113.8 after 5,000, 109.9 after 10,000.
"""

import argparse
import json
import os
import subprocess
import sys

MODES = ("tf1", "faithful", "fast")

TEST_BATCH = 1000


def tf1_elbo(data_dir, steps, seed, draws):
    """Trains the original graph `steps` steps; its test negative ELBO."""
    import numpy as np
    import tensorflow as tf

    from legacy_tf1 import input_data
    from legacy_tf1.vae_tf1 import build_graph

    mnist = input_data.read_data_sets(data_dir, one_hot=True, seed=seed)
    vae = build_graph(seed=seed)
    with tf.compat.v1.Session(graph=vae.graph) as sess:
        sess.run(vae.init)
        for _ in range(steps):
            sess.run(vae.solver, {vae.X: mnist.train.next_batch(64)[0]})
        images = mnist.test.images
        losses = [
            sess.run(vae.vae_loss, {vae.X: images[i : i + TEST_BATCH]})
            for _ in range(draws)
            for i in range(0, len(images), TEST_BATCH)
        ]
    return float(np.mean(losses))


def keras_elbo(data_dir, steps, seed, draws, fast=False):
    """Trains keras_vae `steps` steps through fit; its test negative ELBO."""
    import keras
    import numpy as np

    from keras_vae.data.batches import load_mnist
    from keras_vae.model import VAE

    keras.utils.set_random_seed(seed)
    model = VAE(seed=seed)
    model.compile(fast=True) if fast else model.compile(steps_per_execution=100)
    model.fit(load_mnist(data_dir=data_dir, seed=seed), steps_per_epoch=steps,
              verbose=0, shuffle=False)
    test = load_mnist("test", TEST_BATCH, data_dir, shuffle=False, repeat=False)
    losses = [model.evaluate(test, verbose=0, return_dict=True)["loss"] for _ in range(draws)]
    return float(np.mean(losses))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the four MNIST IDX .gz files")
    parser.add_argument("--steps", type=int, default=10000, help="default: 10000")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--draws", type=int, default=5, help="noise draws per image (default: 5)")
    parser.add_argument("--json", default="bench_quality.json", help="where to write the figures")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        train = tf1_elbo if args.child == "tf1" else keras_elbo
        extra = {} if args.child == "tf1" else {"fast": args.child == "fast"}
        print(json.dumps(train(args.data_dir, args.steps, args.seed, args.draws, **extra)))
        return 0

    results = {}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for mode in MODES:
        command = [sys.executable, __file__, "--child", mode, "--data-dir", args.data_dir,
                   "--steps", str(args.steps), "--seed", str(args.seed),
                   "--draws", str(args.draws)]
        run = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        results[mode] = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"{mode}: {results[mode]:.2f}", flush=True)
    print(f"test negative ELBO after {args.steps} steps (seed {args.seed}, "
          f"{args.draws} draws per image):")
    for mode, value in results.items():
        print(f"  {mode:<10}{value:8.2f}  ({value - results['tf1']:+.2f} vs tf1)")
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "neg_elbo": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
