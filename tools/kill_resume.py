"""Kills `keras-vae train` with SIGKILL at several points, resumes it each time,
and checks that it ends bit-identical to an uninterrupted run.

    python tools/kill_resume.py --data-dir ../shared/data/mnist

Prints one line per kill and a verdict; exits 0 only when the final weights,
optimizer state and sampler state are bit-identical to the uninterrupted
run's, and the sample grids are numbered 000..N with none missing, none
written twice, each the same picture as the uninterrupted run's.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

ITERS, EVERY, CHECKPOINT_EVERY = 600, 50, 70


def train_command(data_dir, run_dir):
    return [
        sys.executable, "-m", "keras_vae", "train", "--data-dir", data_dir,
        "--iters", str(ITERS), "--sample-every", str(EVERY),
        "--checkpoint-every", str(CHECKPOINT_EVERY),
        "--checkpoint-dir", os.path.join(run_dir, "checkpoints"),
        "--out", os.path.join(run_dir, "out"), "--seed", "7", "--verbose", "0",
        "--save", os.path.join(run_dir, "final.keras"),
    ]


def run_until(command, kill_after_iter, delay):
    """Runs `command`; SIGKILLs it `delay` s after it prints `Iter: kill_after_iter`."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    for line in proc.stdout:
        if kill_after_iter is not None and line.strip() == f"Iter: {kill_after_iter}":
            time.sleep(delay)
            proc.kill()
            break
    proc.wait()
    return proc.returncode


def grid_stamps(out_dir):
    """{name: (inode, mtime_ns)} of the grids, to see any rewritten later."""
    if not os.path.isdir(out_dir):
        return {}
    return {
        name: (os.stat(os.path.join(out_dir, name)).st_ino,
               os.stat(os.path.join(out_dir, name)).st_mtime_ns)
        for name in os.listdir(out_dir) if name.endswith(".png")
    }


def compare_models(path_a, path_b):
    """Names of the variables (model, optimizer, sampler) that differ."""
    import numpy as np

    from keras_vae.saving import load_model

    a, b = load_model(path_a), load_model(path_b)
    pairs = [*zip(a.weights, b.weights), *zip(a.optimizer.variables, b.optimizer.variables),
             (a.seed_generator.state, b.seed_generator.state)]
    return [x.path for x, y in pairs if not np.array_equal(x.numpy(), y.numpy())]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the four MNIST IDX .gz files")
    parser.add_argument("--kills", type=int, nargs="+", default=[120, 300, 450],
                        help="kill after these Iter: lines (multiples of 50 below 600)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill delays")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    root = tempfile.mkdtemp(prefix="keras-vae-kill-")
    reference, interrupted = os.path.join(root, "reference"), os.path.join(root, "interrupted")

    status = run_until(train_command(args.data_dir, reference), None, 0)
    if status != 0:
        print(f"the uninterrupted run failed (exit {status})")
        return 1
    seen = {}
    for kill in [k - k % EVERY for k in args.kills]:
        delay = rng.uniform(0.0, 0.4)
        run_until(train_command(args.data_dir, interrupted), kill, delay)
        stamps = grid_stamps(os.path.join(interrupted, "out"))
        rewritten = sorted(n for n in seen if stamps.get(n) != seen[n])
        seen.update(stamps)
        checkpoints = sorted(os.listdir(os.path.join(interrupted, "checkpoints")))
        print(f"killed {delay:.2f} s after Iter: {kill}; grids {len(stamps)}, "
              f"checkpoints {[c for c in checkpoints if c.endswith('.json')]}; "
              f"rewritten grids: {rewritten or 'none'}")
        if rewritten:
            return 1
    status = run_until(train_command(args.data_dir, interrupted), None, 0)
    if status != 0:
        print(f"the resumed run failed (exit {status})")
        return 1

    problems = []
    final_stamps = grid_stamps(os.path.join(interrupted, "out"))
    expected = [f"{i:03d}.png" for i in range((ITERS - 1) // EVERY + 1)]
    if sorted(final_stamps) != expected:
        problems.append(f"grids {sorted(final_stamps)}, expected {expected[0]}..{expected[-1]}")
    problems += [f"{n} rewritten" for n in seen if final_stamps.get(n) != seen[n]]
    for name in expected:
        with open(os.path.join(reference, "out", name), "rb") as f, \
                open(os.path.join(interrupted, "out", name), "rb") as g:
            if f.read() != g.read():
                problems.append(f"{name} differs from the uninterrupted run's")
    differing = compare_models(os.path.join(reference, "final.keras"),
                               os.path.join(interrupted, "final.keras"))
    problems += [f"{name} differs" for name in differing]
    if problems:
        print("verdict: DIFFERENT: " + "; ".join(problems))
        return 1
    print(f"verdict: BIT-IDENTICAL: after {len(args.kills)} kills and resumes, all weights, "
          f"optimizer and sampler state equal the uninterrupted run's; grids "
          f"{expected[0]}..{expected[-1]}, none missing or rewritten ({root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
