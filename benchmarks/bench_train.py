"""Training speed: the TF1 script, keras_vae's loops and commands, a JAX peer,
and two limits of the machine, each in a fresh process of its own.

    python benchmarks/bench_train.py --data-dir MNIST_data

Every loop trains from seed 0, batch 64, on `--data-dir`'s MNIST: `--warmup`
steps, then `--steps` timed ones, its steady state:
- tf1-script: the seed's TF1 script as written (legacy_tf1.vae_tf1's `main`:
  its own `sess.run` loop on `feed_dict` batches, and a sample grid every
  1,000 steps), with TF1's ref variables, as the original made them;
- cli: `keras-vae train`, the faithful mode, a grid every 1,000 steps too;
- cli-fast: `keras-vae train --fast`;
- faithful: `VAE().compile(steps_per_execution=100)`, `fit` on `load_mnist`;
- fast: `VAE().compile(fast=True)`, the same `fit`;
- jax-step, jax-scan: the JAX peer (benchmarks/jax_peer.py): one jitted step
  per Python iteration, or one jitted `lax.scan` of 100 steps per call.
The three commands print `Iter: N` at every 1,000th step: their steady state
is the steps between the `Iter:` lines of steps `--warmup` and `--warmup +
--steps` (rounded out to whole thousands) over the time between the lines'
arrival (the commands run with unbuffered output), so start-up, data
loading and tracing are left out and the grids of those steps are in. The
in-process loops time those steps (when whole thousands, as by default):
fit's calls of 100 steps, from the end of the one that reaches `--warmup`
to the end of the last; the JAX loops, from the warm-up's end to the last
step's result. The JAX loops are skipped, with a line saying so, when JAX is
not installed (`pip install -e '.[bench]'`).

Two limits of the machine, together in a fresh process of their own, each
timed for a second after a warm-up: peak-matmul, TensorFlow's float32
GFLOP/s on a 2048x2048 product; step-matmuls, one training step's matmuls
alone at this model's shapes and batch 64 (the forward's five, their weight
gradients, and their input gradients but the first layer's, no other op
but three small sums), 1,000 steps per call of one XLA-compiled loop (XLA
compiles fast mode's steps) in which each step's weight gradients are the
next step's weights, so that each step needs the last, as in training, and
XLA can neither drop nor hoist a matmul: the realistic floor of a step. Its
values are zeros, which stay finite and normal as they are fed back; a
matmul's time does not depend on its values (measured here: the same loop,
updating the weights by 1e-9 times their gradients instead, ran as fast on
random values as on zeros).

`--rounds` rounds run every loop and the limits once, their order rotated
each round. These machines drift, so the ratios are paired: the median over
the rounds of each round's ratio. Each loop's peak RSS is kept too.

`--baseline DIR` measures another checkout of keras-vae beside this one, in
the same rounds (its own `keras_vae` and its own bench_train.py children):
each keras-vae loop and command of DIR runs right before or after this
checkout's (the order alternating), as `baseline <loop>`, and the paired
ratios `<loop> / baseline <loop>` compare the two codes in one sitting.
`--only` runs some loops alone, e.g. `--only faithful,fast,cli,cli-fast`.
"""

import argparse
import functools
import importlib.metadata
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("tf1-script", "cli", "cli-fast")  # timed from their `Iter:` lines
JAX_LOOPS = ("jax-step", "jax-scan")
LOOPS = (*SCRIPTS, "faithful", "fast", *JAX_LOOPS)
KERAS_VAE_LOOPS = ("faithful", "fast", "cli", "cli-fast")  # measured in --baseline's checkout too
LIMITS = ("peak-matmul", "step-matmuls")  # measured in one process, "limits"
ITER_EVERY = 1000  # the TF1 script's steps between `Iter:` lines (keras-vae train's default too)
CALL_STEPS = 100  # steps per call of fit (steps_per_execution) and of the JAX peer
# Paired ratios of steps/s, numerator over denominator.
RATIOS = (
    ("faithful", "tf1-script"), ("fast", "tf1-script"), ("jax-scan", "tf1-script"),
    ("jax-step", "tf1-script"), ("fast", "jax-scan"), ("fast", "jax-step"),
    ("cli", "tf1-script"), ("cli-fast", "fast"), ("cli", "faithful"),
    ("step-matmuls", "fast"),  # the fast step's time over the floor's
)
BATCH = 64
# The model's matmuls, (inputs, outputs) each, in the order of the forward.
LAYERS = ((784, 128), (128, 100), (128, 100), (100, 128), (128, 784))
PEAK_N = 2048  # the square product of peak-matmul
FLOOR_STEPS = 1000  # steps per call of step-matmuls' loop
LIMIT_SECONDS = 1.0  # each limit is timed over at least this long, after a warm-up


def flop_per_step():
    """A training step's matmul FLOP: forward, weight gradients, and input
    gradients of all layers but the first (its input is the data)."""
    per_use = [2 * BATCH * inputs * outputs for inputs, outputs in LAYERS]
    return 3 * sum(per_use) - per_use[0]


def command_window(warmup, steps):
    """The steps of the `Iter:` lines a command is timed between: `warmup`
    and `warmup + steps`, rounded out to whole ITER_EVERY."""
    return warmup // ITER_EVERY * ITER_EVERY, -(-(warmup + steps) // ITER_EVERY) * ITER_EVERY


def tf1_script(data_dir, iters):
    """Runs the TF1 script's `main` as written, its variables TF1's ref variables."""
    from legacy_tf1 import vae_tf1

    # main builds its graph with the module's build_graph, which makes
    # resource variables unless told otherwise.
    vae_tf1.build_graph = functools.partial(vae_tf1.build_graph, use_resource=False)
    with tempfile.TemporaryDirectory() as out:
        return vae_tf1.main(["--data-dir", data_dir, "--iters", str(iters), "--out", out,
                             "--seed", "0"])


def keras_loop(mode, data_dir, warmup, steps):
    """Steps/s of `fit` in `mode` ("faithful" or "fast") over the steps after
    `warmup`, from the ends of its calls; and the last step's loss."""
    import keras

    from keras_vae.data.batches import load_mnist
    from keras_vae.model import VAE

    keras.utils.set_random_seed(0)
    model = VAE(seed=0)
    if mode == "fast":
        model.compile(fast=True)
    else:
        model.compile(steps_per_execution=CALL_STEPS)
    marks = []  # (steps done, time, loss)
    clock = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: marks.append((0, time.perf_counter(), None)),
        on_train_batch_end=lambda batch, logs: marks.append(
            (int(model.optimizer.iterations.numpy()), time.perf_counter(),
             float(logs["step_loss"]))))
    model.fit(load_mnist(data_dir=data_dir, seed=0), steps_per_epoch=warmup + steps,
              verbose=0, callbacks=[clock])
    return steady_state(marks, warmup, warmup + steps)


def peak_matmul():
    """TensorFlow's float32 GFLOP/s on a PEAK_N-square product, after two untimed."""
    import tensorflow as tf

    a, b = (tf.random.normal((PEAK_N, PEAK_N), seed=seed) for seed in (1, 2))
    for _ in range(2):
        tf.matmul(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < LIMIT_SECONDS:
        tf.matmul(a, b)  # eager: done when it returns
        count += 1
    elapsed = time.perf_counter() - start
    return {"gflop_per_s": count * 2 * PEAK_N**3 / elapsed / 1e9}


def step_matmuls():
    """The time of one step's matmuls alone (see the module docstring), in
    calls of FLOOR_STEPS steps of one XLA loop, after one untimed call."""
    import tensorflow as tf

    # Zeros: fed back as weights, nonzero gradients would overflow or go
    # subnormal (slow) within a few steps.
    x = tf.zeros((BATCH, LAYERS[0][0]))
    weights = [tf.zeros(shape) for shape in LAYERS]

    def step(i, weights):
        q1, q_mu, q_sigma, p1, p2 = weights
        h = x @ q1
        z_mu, z_logvar = h @ q_mu, h @ q_sigma
        z = z_mu + z_logvar
        h_p = z @ p1
        logits = h_p @ p2
        # Backward from the logits, standing in for the loss's gradient; the
        # two heads get different gradients, as in training.
        d_h_p = tf.matmul(logits, p2, transpose_b=True)
        d_mu = tf.matmul(d_h_p, p1, transpose_b=True)
        d_logvar = d_mu + z_logvar
        d_h = (tf.matmul(d_mu, q_mu, transpose_b=True)
               + tf.matmul(d_logvar, q_sigma, transpose_b=True))
        # The weight gradients are the next step's weights.
        return i + 1, [tf.matmul(a, d, transpose_a=True) for a, d in
                       ((x, d_h), (h, d_mu), (h, d_logvar), (z, d_h_p), (h_p, logits))]

    @tf.function(jit_compile=True)
    def steps(weights):
        return tf.while_loop(lambda i, _: i < FLOOR_STEPS, step, (0, weights))[1]

    steps(weights)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < LIMIT_SECONDS:
        steps(weights)
        calls += 1
    step_s = (time.perf_counter() - start) / (calls * FLOOR_STEPS)
    return {"steps_per_s": 1 / step_s, "gflop_per_s": flop_per_step() / step_s / 1e9}


def child_figures(kind, args):
    """Runs `kind` (an in-process loop, or "limits") in this process; its figures."""
    if kind == "limits":
        return {"peak-matmul": peak_matmul(), "step-matmuls": step_matmuls()}
    if kind in JAX_LOOPS:
        from jax_peer import train  # benchmarks/, this script's directory

        return train(kind.removeprefix("jax-"), args.data_dir, args.warmup, args.steps)
    return keras_loop(kind, args.data_dir, args.warmup, args.steps)


def steady_state(marks, first, last):
    """Steps/s between the marks (steps, time, loss) of steps `first` and
    `last`, and the loss at `last`."""
    times = {step: (t, loss) for step, t, loss in marks}
    if first not in times or last not in times:
        raise RuntimeError(f"no mark at step {first} or {last}: marks at "
                           f"{sorted(times)[:5]}...{sorted(times)[-5:]}")
    return {"steps_per_s": (last - first) / (times[last][0] - times[first][0]),
            "loss": times[last][1]}


def iter_marks(lines):
    """(step, arrival time, loss) of each `Iter: N` line and the `Loss:` line after it."""
    marks, step = [], None
    for t, line in lines:
        if match := re.fullmatch(r"Iter: (\d+)", line.strip()):
            step, arrived = int(match[1]), t
        elif step is not None and (match := re.fullmatch(r"Loss: (\S+)", line.strip())):
            marks.append((step, arrived, float(match[1])))
            step = None
    return marks


def run_process(command, env, timeout, repo=REPO):
    """Runs `command` in the checkout `repo`; its stdout lines, each with the
    time it arrived, and its peak RSS in MiB. Raises with its error output if
    it fails."""
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env,
                                cwd=repo, text=True)
        started, timer = time.perf_counter(), threading.Timer(timeout, proc.kill)
        timer.start()
        lines = [(time.perf_counter(), line) for line in proc.stdout]
        # This child's own rusage (RUSAGE_CHILDREN would give the largest
        # peak of all the children so far).
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            stderr.seek(0)
            what = (f"timed out after {timeout} s" if time.perf_counter() - started >= timeout
                    else f"failed (exit status {proc.returncode})")
            raise RuntimeError(f"{' '.join(command[1:])} {what}: {stderr.read()[-3000:]}")
    return lines, usage.ru_maxrss / 1024


def checkout_env(repo):
    """The environment of a child that imports `repo`'s keras_vae."""
    path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}


def measure(kind, args, repo=REPO):
    """One run of `kind` in a fresh process, with the checkout `repo`'s code:
    the figures of each loop or limit it measured, a loop's with its peak RSS."""
    first, last = command_window(args.warmup, args.steps)
    iters = last + 1  # up to the `Iter:` line of step `last`
    common = ["--data-dir", args.data_dir, "--warmup", str(args.warmup),
              "--steps", str(args.steps)]
    script = os.path.join(repo, "benchmarks", "bench_train.py")
    with tempfile.TemporaryDirectory() as out:
        if kind == "tf1-script":
            command = [sys.executable, "-u", script, "--child", kind, *common]
        elif kind in SCRIPTS:
            command = [sys.executable, "-u", "-m", "keras_vae", "train", "--data-dir",
                       args.data_dir, "--iters", str(iters), "--out", out, "--seed", "0",
                       "--verbose", "0", *(["--fast"] if kind == "cli-fast" else [])]
        else:
            command = [sys.executable, script, "--child", kind, *common]
        lines, peak_rss = run_process(command, checkout_env(repo), args.timeout, repo)
    if kind == "limits":
        return json.loads(lines[-1][1])
    if kind in SCRIPTS:
        figures = steady_state(iter_marks(lines), first, last)
    else:
        figures = json.loads(lines[-1][1])
    return {kind: {**figures, "peak_rss_mib": peak_rss}}


def describe(kind, figures):
    """One run's figure, for the progress lines."""
    if kind == "peak-matmul":
        return f"{figures['gflop_per_s']:.0f} GFLOP/s"
    if kind == "step-matmuls":
        return f"{1e3 / figures['steps_per_s']:.3f} ms per step"
    return f"{figures['steps_per_s']:.0f} steps/s, loss {figures['loss']:.1f}"


def paired(runs, numerator, denominator):
    """Each round's ratio of the steps/s of `numerator` to `denominator`."""
    return [a["steps_per_s"] / b["steps_per_s"]
            for a, b in zip(runs[numerator], runs[denominator])]


def summarize(runs, flop):
    """Medians of each figure, the paired ratios, and the fast loop's share of the peak."""
    median = {kind: {key: statistics.median(run[key] for run in kind_runs)
                     for key in kind_runs[0] if isinstance(kind_runs[0][key], (int, float))}
              for kind, kind_runs in runs.items()}
    pairs = [*RATIOS, *((kind, f"baseline {kind}") for kind in KERAS_VAE_LOOPS)]
    ratios = {f"{a} / {b}": paired(runs, a, b) for a, b in pairs if a in runs and b in runs}
    if "fast" in runs and "peak-matmul" in runs:
        ratios["fast GFLOP/s / peak"] = [
            fast["steps_per_s"] * flop / (peak["gflop_per_s"] * 1e9)
            for fast, peak in zip(runs["fast"], runs["peak-matmul"])]
    return median, {name: {"paired": statistics.median(values), "rounds": values}
                    for name, values in ratios.items()}


def print_loops(runs, median):
    print("\nLoops: steps/s of each round's run, their median and its step time; medians "
          "of the peak RSS and of the loss of the last step's batch (the commands': "
          "their last Loss line's)")
    rounds = max(len(kind_runs) for kind_runs in runs.values())
    print(f"{'loop':<18}{'runs':<{6 * rounds}}{'median':>8}{'step ms':>9}"
          f"{'RSS MiB':>9}{'loss':>8}")
    for kind, kind_runs in runs.items():
        if kind.removeprefix("baseline ") in LOOPS:
            f = median[kind]
            values = "".join(f"{run['steps_per_s']:>6.0f}" for run in kind_runs)
            print(f"{kind:<18}{values}{f['steps_per_s']:>8.0f}{1e3 / f['steps_per_s']:>9.3f}"
                  f"{f['peak_rss_mib']:>9.0f}{f['loss']:>8.1f}")


def print_limits(runs, median, flop):
    print(f"\nLimits, each round's and the median:\npeak-matmul: TensorFlow float32 "
          f"{PEAK_N}x{PEAK_N} product, GFLOP/s: "
          + " ".join(f"{run['gflop_per_s']:.0f}" for run in runs["peak-matmul"])
          + f"; median {median['peak-matmul']['gflop_per_s']:.0f}")
    print(f"step-matmuls: one step's {len(LAYERS) * 3 - 1} matmuls at batch {BATCH}, "
          f"{flop / 1e6:.2f} MFLOP, ms per step: "
          + " ".join(f"{1e3 / run['steps_per_s']:.3f}" for run in runs["step-matmuls"])
          + f"; median {1e3 / median['step-matmuls']['steps_per_s']:.3f} "
          f"({median['step-matmuls']['gflop_per_s']:.0f} GFLOP/s)")


def print_ratios(ratios):
    print("\nRatios of steps/s, paired: the median of the rounds' ratios, and their range")
    print(f"{'ratio':<28}{'paired':>8}{'rounds':>16}")
    for name, r in ratios.items():
        low, high = min(r["rounds"]), max(r["rounds"])
        if name == "fast GFLOP/s / peak":
            print(f"{name:<28}{r['paired']:>8.1%}{f'{low:.1%}-{high:.1%}':>16}")
        else:
            print(f"{name:<28}{r['paired']:>8.2f}{f'{low:.2f}-{high:.2f}':>16}")
    if "step-matmuls / fast" in ratios:
        print("(step-matmuls / fast: the fast loop's step time over the matmuls-alone floor)")


def chosen_kinds(args, installed):
    """`(kind, checkout, label)` of each run a round makes: every loop (or
    `--only`'s) and the limits, and with `--baseline` its checkout's runs of
    the keras-vae loops beside this one's."""
    names = args.only or (*LOOPS, "limits")
    unknown = [name for name in names if name not in (*LOOPS, "limits")]
    if unknown:
        raise SystemExit(f"--only: unknown loops {unknown}; choose from {', '.join(LOOPS)}")
    if "jax" not in installed and any(name in JAX_LOOPS for name in names):
        print(f"{', '.join(JAX_LOOPS)}: skipped, JAX is not installed "
              "(pip install -e '.[bench]'); their ratios are left out", flush=True)
        names = tuple(name for name in names if name not in JAX_LOOPS)
    kinds = []
    for i, name in enumerate(names):
        runs = [(name, REPO, "")]
        if args.baseline and name in KERAS_VAE_LOOPS:
            runs.append((name, os.path.abspath(args.baseline), "baseline "))
        kinds.extend(runs if i % 2 == 0 else runs[::-1])
    return tuple(kinds)


def versions():
    """The versions measured: TensorFlow, Keras, and JAX if installed."""
    names = ("tensorflow", "keras", "jax")
    return {name: importlib.metadata.version(name) for name in names
            if importlib.util.find_spec(name) is not None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the four MNIST IDX .gz files")
    parser.add_argument("--steps", type=int, default=5000,
                        help=f"timed steps of each run, a multiple of {CALL_STEPS}; the "
                        f"commands', rounded out to whole {ITER_EVERY}s (default: 5000)")
    parser.add_argument("--warmup", type=int, default=1000,
                        help=f"steps before them, a multiple of {CALL_STEPS} (default: 1000)")
    parser.add_argument("--rounds", type=int, default=7, help="default: 7")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds each run may take (default: 600)")
    parser.add_argument("--json", default="bench_train.json", help="where to write the figures")
    parser.add_argument("--baseline", metavar="DIR",
                        help="another keras-vae checkout to measure beside this one")
    parser.add_argument("--only", type=lambda text: tuple(text.split(",")),
                        help=f"these loops alone, comma-separated, of {', '.join(LOOPS)}")
    parser.add_argument("--child", choices=(*LOOPS, "limits"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps <= 0 or args.steps % CALL_STEPS or args.warmup < 0 or args.warmup % CALL_STEPS:
        parser.error(f"--steps and --warmup must be multiples of {CALL_STEPS} (the steps of "
                     "a call), --steps above 0")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.child == "tf1-script":
        return tf1_script(args.data_dir, command_window(args.warmup, args.steps)[1] + 1)
    if args.child:
        print(json.dumps(child_figures(args.child, args)))
        return 0

    installed = versions()
    kinds = chosen_kinds(args, installed)
    runs = {}
    for round_ in range(args.rounds):
        shift = round_ % len(kinds)
        for kind, repo, label in kinds[shift:] + kinds[:shift]:
            # With --baseline, the two checkouts' runs of a loop alternate in order.
            for name, figures in measure(kind, args, repo).items():
                runs.setdefault(label + name, []).append(figures)
                print(f"round {round_ + 1}/{args.rounds} {label}{name}: "
                      f"{describe(name, figures)}", flush=True)

    flop = flop_per_step()
    median, ratios = summarize(runs, flop)
    machine = f"{os.cpu_count()} CPUs, " + ", ".join(f"{k} {v}" for k, v in installed.items())
    first, last = command_window(args.warmup, args.steps)
    print(f"\n{machine}; {args.rounds} rounds; each run {args.steps} timed steps after "
          f"{args.warmup} (the commands: from step {first} to {last}), batch {BATCH}, "
          "in a fresh process")
    print_loops(runs, median)
    if all(limit in runs for limit in LIMITS):
        print_limits(runs, median, flop)
    print_ratios(ratios)
    measured = {kind for kind, _, _ in kinds}
    report = {"args": vars(args), "machine": {"cpus": os.cpu_count(), **installed},
              "flop_per_step": flop, "skipped": [k for k in LOOPS if k not in measured],
              "median": median, "ratios": ratios, "runs": runs}
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\n(data: {args.data_dir}; figures in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
