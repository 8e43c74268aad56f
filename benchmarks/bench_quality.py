"""Test-set negative ELBO after the same training, for the TF1 reference and keras_vae.

    python benchmarks/bench_quality.py --data-dir ../shared/data/mnist --steps 10000

Both train on the original's split (`train[5000:]`) from the given seed for
`--steps` steps; each is then scored on all 10,000 test images, averaging
`--draws` noise draws per image. Measured earlier for the TF1 graph on this
data: 145.1 after 1,000 steps, 113.8 after 5,000, 109.9 after 10,000.
"""

import argparse
import json
import sys

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


def keras_elbo(data_dir, steps, seed, draws, compile_kwargs=None):
    """Trains keras_vae `steps` steps through fit; its test negative ELBO."""
    import keras
    import numpy as np

    from keras_vae.data import load_mnist
    from keras_vae.model import VAE

    keras.utils.set_random_seed(seed)
    model = VAE(seed=seed)
    model.compile(**(compile_kwargs or {}))
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
    args = parser.parse_args(argv)

    results = {
        "tf1": tf1_elbo(args.data_dir, args.steps, args.seed, args.draws),
        "faithful": keras_elbo(args.data_dir, args.steps, args.seed, args.draws),
    }
    print(f"test negative ELBO after {args.steps} steps (seed {args.seed}, "
          f"{args.draws} draws per image):")
    for mode, value in results.items():
        print(f"  {mode:<10}{value:8.2f}  ({value - results['tf1']:+.2f} vs tf1)")
    with open(args.json, "w") as f:
        json.dump({"args": vars(args), "neg_elbo": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
