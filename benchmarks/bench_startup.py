"""How soon `keras-vae` answers, and what `keras-vae train --iters 1` spends
beyond `import tensorflow`.

    python benchmarks/bench_startup.py --data-dir MNIST_data
    python benchmarks/bench_startup.py --answers-only

First the answers that need no TensorFlow: `keras-vae --help`, `keras-vae
train --help` and a usage error (`train --iters x`), each run as the console
script runs it (`python -m keras_vae_cli`), beside `python -c pass`, rounds
rotated; the medians, and each beyond `pass`'s median.

Whole commands, in turn, `--repeats` times, each from a cold start when this
process may drop the page cache (root on Linux; otherwise warm, and said):
- import: `python -c "import tensorflow"`, exiting as the command does
  (`keras_vae.cli.command` freezes the garbage collector first, which skips
  the last collection's walk through TensorFlow's objects);
- train, train-fast: `python -m keras_vae train --iters 1` (faithful, `--fast`).
Each notes the moment its `import tensorflow` returns; its time beyond the
import is from then to its exit, since the import's own time varies by up to
a second from run to run. Beyond = the median of train's minus the median of
import's (the span of a process that only imports and exits).

Then, once per mode and also cold, the same command in a process that times
its phases by wrapping the functions `keras_vae.training.run.train` calls:
importing TensorFlow, then keras_vae, reading the data (`load_mnist`, in a
thread beside the next three), building the model (`VAE`), `compile`, in
fast mode `warm_up` (XLA's compile), and `fit` (tracing, faithful mode's
first call, the one step and the step-0 grid), and the rest ("other":
argument checks, the run's files; not the interpreter's exit). Side by side
phases add up to more than the time they took.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("import", "train", "train-fast")
# The answers: argv after `python`, and the exit status each gives.
ANSWERS = {
    "pass": (["-c", "pass"], 0),
    "--help": (["-m", "keras_vae_cli", "--help"], 0),
    "train --help": (["-m", "keras_vae_cli", "train", "--help"], 0),
    "usage error": (["-m", "keras_vae_cli", "train", "--iters", "x"], 2),
}


def drop_caches():
    """Empties the page cache, so that the next start reads its files from
    disk; False when this process may not."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


# A command, marking on stdout the moment its `import tensorflow` returned.
MARKED = """import time, tensorflow
print("imported", repr(time.time()), flush=True)
"""


def command(name, data_dir, out):
    if name == "import":
        return [sys.executable, "-c", MARKED + "import gc; gc.freeze()"]
    argv = ["keras-vae", "train", "--iters", "1", "--seed", "0", "--data-dir", data_dir,
            "--out", out, "--overwrite", "--verbose", "0",
            *(["--fast"] if name == "train-fast" else [])]
    # What the `keras-vae` command runs.
    return [sys.executable, "-c", MARKED + f"import runpy, sys; sys.argv = {argv!r}; "
            "runpy.run_module('keras_vae_cli', run_name='__main__', alter_sys=True)"]


def answers(repeats, env):
    """Seconds each of `ANSWERS` takes, `repeats` rounds, each round's order
    rotated by one."""
    times = {name: [] for name in ANSWERS}
    names = list(ANSWERS)
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            argv, status = ANSWERS[name]
            start = time.perf_counter()
            run = subprocess.run([sys.executable, *argv], capture_output=True, env=env, cwd=REPO)
            times[name].append(time.perf_counter() - start)
            if run.returncode != status:
                raise RuntimeError(f"{name} exited {run.returncode}, not {status}: "
                                   f"{run.stderr.decode()[-2000:]}")
    return times


def report_answers(times):
    """Prints the answers' medians and each beyond `python -c pass`'s; returns them."""
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"answers, medians of {len(times['pass'])} (s), and beyond `python -c pass`:")
    for name, seconds in median.items():
        print(f"  {name:<14}{seconds:>7.3f} {seconds - median['pass']:>+7.3f}", flush=True)
    return {name: {"median": seconds, "beyond_pass": seconds - median["pass"], "runs": times[name]}
            for name, seconds in median.items()}


def timed_run(argv, env):
    """Seconds `argv` takes from start to exit, and from its mark (if any) to
    exit; its stdout."""
    start = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
    ended = time.time()
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {run.stderr[-2000:]}")
    marks = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("imported ")]
    return elapsed, ended - float(marks[0]) if marks else None, run.stdout


def phases(data_dir, out, fast):
    """Runs `keras-vae train --iters 1` in this process; seconds per phase
    (a phase met twice adds up)."""
    marks, spans = {}, []
    start = time.perf_counter()
    import tensorflow  # noqa: F401  (timed: the import itself)

    marks["import tensorflow"] = time.perf_counter() - start
    start = time.perf_counter()
    import keras_vae  # noqa: F401  (timed: the import itself)
    import keras_vae.training.run as run
    from keras_vae.cli import main

    marks["import keras_vae"] = time.perf_counter() - start

    def timing(name, function):
        def wrapper(*args, **kwargs):
            begun = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spans.append((begun, time.perf_counter()))
                marks[name] = marks.get(name, 0.0) + spans[-1][1] - begun
        return wrapper

    vae = run.VAE
    vae.compile = timing("compile", vae.compile)
    vae.fit = timing("fit", vae.fit)
    run.VAE = timing("VAE()", vae)  # the names train() calls, where it looks them up
    run.load_mnist = timing("load_mnist", run.load_mnist)
    run.warm_up = timing("warm_up", run.warm_up)
    argv = ["train", "--iters", "1", "--seed", "0", "--data-dir", data_dir, "--out", out,
            "--overwrite", "--verbose", "0", *(["--fast"] if fast else [])]
    start = time.perf_counter()
    if main(argv) != 0:
        raise RuntimeError("keras-vae train failed")
    marks["other"] = time.perf_counter() - start - covered(spans)
    return marks


def covered(spans):
    """Seconds within at least one of the `(start, end)` spans: phases that
    ran side by side (fast mode reads the data while XLA compiles) count once."""
    total, reached = 0.0, float("-inf")
    for begun, ended in sorted(spans):
        total += max(0.0, ended - max(begun, reached))
        reached = max(reached, ended)
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="MNIST IDX files (all but --answers-only)")
    parser.add_argument("--answers-only", action="store_true",
                        help="only the answers that need no TensorFlow")
    parser.add_argument("--repeats", type=int, default=5, help="default: 5")
    parser.add_argument("--json", default="bench_startup.json",
                        help="where to write the figures")
    parser.add_argument("--phases", choices=("faithful", "fast"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)}
    if args.answers_only:
        answered = report_answers(answers(args.repeats, env))
        with open(args.json, "w") as f:
            json.dump({"answers": answered}, f, indent=2)
        return 0
    if not args.data_dir:
        parser.error("--data-dir is required, except with --answers-only")
    if args.phases:
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(phases(args.data_dir, out, args.phases == "fast")))
        return 0
    answered = report_answers(answers(args.repeats, env))
    with tempfile.TemporaryDirectory() as out:
        cold = drop_caches()
        times = {name: [] for name in COMMANDS}
        after = {name: [] for name in COMMANDS}  # from the end of the import to the exit
        for repeat in range(args.repeats):
            for name in COMMANDS:
                drop_caches()
                whole, rest, _ = timed_run(command(name, args.data_dir, out), env)
                times[name].append(whole)
                after[name].append(rest)
            print(f"repeat {repeat + 1}/{args.repeats}: " + ", ".join(
                f"{n} {t[-1]:.2f} s ({after[n][-1]:.2f} after the import)"
                for n, t in times.items()), flush=True)
        breakdown = {}
        for mode in ("faithful", "fast"):
            drop_caches()
            stdout = timed_run([sys.executable, __file__, "--data-dir", args.data_dir,
                                "--phases", mode], env)[2]
            breakdown[mode] = json.loads(stdout.strip().splitlines()[-1])
    median = {name: statistics.median(t) for name, t in times.items()}
    median_after = {name: statistics.median(t) for name, t in after.items()}
    print(f"\n{'cold' if cold else 'warm (the page cache could not be dropped)'} starts, "
          f"medians of {args.repeats}, whole command and after its import:")
    for name in COMMANDS:
        print(f"  {name:<11}{median[name]:>7.2f} s {median_after[name]:>7.2f} s  (runs: "
              f"{', '.join(f'{t:.2f}' for t in after[name])})")
    beyond = {mode: median_after[name] - median_after["import"]
              for mode, name in (("faithful", "train"), ("fast", "train-fast"))}
    for mode, seconds in beyond.items():
        print(f"  beyond import tensorflow, {mode}: {seconds:.2f} s")
    print("\nphases of one cold run each (s):")
    names = list(dict.fromkeys(name for marks in breakdown.values() for name in marks))
    print(f"  {'phase':<20}{'faithful':>9}{'fast':>9}")
    for name in names:
        print(f"  {name:<20}" + "".join(f"{breakdown[m].get(name, 0):>9.2f}" for m in breakdown))
    with open(args.json, "w") as f:
        json.dump({"answers": answered, "cold": cold, "repeats": args.repeats, "runs": times, "median": median,
                   "after_import": after, "median_after_import": median_after,
                   "beyond_import": beyond, "phases": breakdown}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
