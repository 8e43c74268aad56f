"""Training speed under each tf.distribute strategy, the all-reduce's share of
a step, and what more devices or machines would give.

    python benchmarks/bench_distributed.py --data-dir MNIST_data

Each configuration trains with `keras_vae.training.run.train` (the model made and
compiled under the strategy's scope, as `keras-vae train --strategy` does),
100 steps per call into TensorFlow, its batches drawn in the graph, in fresh
processes of its own, since a strategy is set once per process:
- one: one device, the CLI's own path;
- mirrored-1: `--strategy mirrored --replicas 1`, a strategy of one replica
  (which trains as one device does);
- mirrored-2: MirroredStrategy on 2 logical CPU devices, one process;
- workers-1, workers-2, workers-3: MultiWorkerMirroredStrategy, 1, 2 and 3
  processes on localhost (workers-1: the cluster's machinery without a peer);
- one-fast, mirrored-2-fast: `--fast` on one device (the XLA loop) and on 2
  mirrored replicas (XLA computes each replica's gradients).

Steps/s: the steps after the first `--warmup` (from the end of the call that
reaches it) to the end of the run, `--steps` later, over their time;
examples/s: that times the global batch, 64, which the replicas or workers
split. For workers, worker 0's (the chief's) figures; the JSON keeps each one's.

All-reduce: after training, in the same processes, a tf.function runs, through
`strategy.run`, a SUM all-reduce of ten float32 tensors shaped like the
model's gradients (240,344 values), given in one call as Keras' optimizer
reduces the gradients; in alternation with it, the same function returning
the tensors unreduced. Over `--reduce-reps` calls each, the difference of the
medians is the all-reduce's time per step; its share of the step is that
over the configuration's step.

`--rounds` rounds run every configuration in turn, their order rotated each
round; the tables show medians per configuration, and the median of each
round's ratio to one's steps/s ("paired").

Estimates: with the ring all-reduce's cost model and a stated bandwidth and
latency per link (LINKS), the step of n = 2 and 8 GPUs or machines, each as
fast as one device here: t_one / n + t_replica + t_ar(n), where t_one is
`one`'s step, t_replica what a step on several replicas costs beside its
compute and all-reduce (`strategy.run` on two replicas against one: the
run ms of mirrored-2 minus that of mirrored-1, each a call of the same
function, so that its call's own cost cancels), and t_ar(n) = 2 (n - 1) / n * bytes / bandwidth + 2 (n - 1) * latency, the ten
gradients sent as one message. The global batch stays 64, so t_one / n is
an optimistic bound.
"""

import argparse
import contextlib
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ("one", "mirrored-1", "mirrored-2", "workers-1", "workers-2", "workers-3",
           "one-fast", "mirrored-2-fast")
BATCH = 64  # the global batch of every configuration
REDUCE_WARMUP = 20  # untimed calls of each all-reduce function first
ESTIMATE_DEVICES = (2, 8)
# (what it links, bandwidth in bytes/s, latency in s per message): stated, not measured.
LINKS = {
    "PCIe 4.0 x16": ("GPUs", 25e9, 10e-6),  # no NVLink: ~25 of its 32 GB/s usable
    "NVLink 3": ("GPUs", 150e9, 5e-6),  # A100s: half of NVLink 3's 300 GB/s each way
    "10 GbE": ("machines", 1.2e9, 50e-6),  # 1.25 GB/s line rate, TCP's latency
    "InfiniBand 100G": ("machines", 12e9, 5e-6),  # 12.5 GB/s line rate, RDMA's latency
}


def processes(config):
    """How many processes `config` runs: its workers, or one."""
    return int(config.split("-")[1]) if config.startswith("workers-") else 1


def is_distributed(config):
    """Whether `config` runs under a strategy (mirrored-1 and workers-1 of one replica)."""
    return not config.startswith("one")


def make_config_strategy(config, index, ports):
    """`config`'s strategy for this process (None: train's one-device path)."""
    from keras_vae.distribute.strategies import make_strategy

    if config.startswith("one"):
        return None
    if config.startswith("mirrored-"):
        return make_strategy("mirrored", replicas=int(config.split("-")[1]))
    return make_strategy("multi-worker", workers=[f"localhost:{p}" for p in ports.split(",")],
                         worker_index=index)


def measure(config, data_dir, warmup, steps, reduce_reps, index=0, ports=None):
    """Trains `config` in this process (as worker `index`); its figures."""
    strategy = make_config_strategy(config, index, ports)  # before TensorFlow uses a device
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_vae.training.run import train

    class StepTimes(keras.callbacks.Callback):
        """(steps done, time) at the start and at the end of each call."""

        def on_train_begin(self, logs=None):
            self.marks = [(0, time.perf_counter())]

        def on_train_batch_end(self, batch, logs=None):
            self.marks.append((int(self.model.optimizer.iterations.numpy()), time.perf_counter()))

    timer, iters = StepTimes(), warmup + steps
    with tempfile.TemporaryDirectory() as out:
        # One grid, at step 0, before the timed steps.
        outcome = train(iters=iters, out=out, data_dir=data_dir, seed=0, sample_every=iters + 1,
                        verbose=0, strategy=strategy, callbacks=[timer],
                        fast=config.endswith("-fast"))
    if outcome.status != "completed" or outcome.step != iters:
        raise RuntimeError(f"training {outcome.status} at step {outcome.step} of {iters}")
    start_step, start = [mark for mark in timer.marks if mark[0] <= warmup][-1]
    end_step, end = timer.marks[-1]
    steps_per_s = (end_step - start_step) / (end - start)
    variables = outcome.model.trainable_variables
    figures = {
        "steps_per_s": steps_per_s, "examples_per_s": steps_per_s * BATCH,
        "timed_steps": end_step - start_step,
        "replicas": strategy.num_replicas_in_sync if strategy else 1,
        "grad_bytes": int(sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)),
        "tensorflow": tf.__version__, "keras": keras.__version__,
    }
    if is_distributed(config):
        figures.update(time_all_reduce(strategy, [v.shape for v in variables], reduce_reps))
        figures["all_reduce_share"] = figures["all_reduce_ms"] / 1e3 * steps_per_s
    return figures


def time_all_reduce(strategy, shapes, reps):
    """Median ms per call of `strategy.run` returning float32 tensors of
    `shapes` (run_ms), of the same with their SUM all-reduce (call_ms), and
    the difference (all_reduce_ms). Every worker makes the same calls."""
    import tensorflow as tf

    def replica(value, reduce):
        tensors = [tf.fill(shape, value) for shape in shapes]
        if not reduce:
            return tensors
        # One all_reduce of the list, as Keras' optimizer reduces the gradients.
        return tf.distribute.get_replica_context().all_reduce("sum", tensors)

    calls = {name: tf.function(lambda value, reduce=reduce: strategy.run(
        functools.partial(replica, reduce=reduce), args=(value,)))
        for name, reduce in (("run", False), ("call", True))}
    value = tf.constant(1.0)
    for _ in range(REDUCE_WARMUP):
        for call in calls.values():
            call(value)
    times = {name: [] for name in calls}
    for _ in range(reps):
        for name, call in calls.items():
            start = time.perf_counter()
            call(value)
            times[name].append(time.perf_counter() - start)
    ms = {f"{name}_ms": statistics.median(t) * 1e3 for name, t in times.items()}
    return {**ms, "all_reduce_ms": ms["call_ms"] - ms["run_ms"]}


def free_ports(count):
    """`count` localhost ports free now (bound to port 0, then released)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("localhost", 0))
        return ",".join(str(s.getsockname()[1]) for s in sockets)


def run_together(commands, env, timeout):
    """Runs `commands` at once; the JSON each prints last. Stops all of them
    when one fails or `timeout` seconds pass, and raises with its error output."""
    with contextlib.ExitStack() as stack:
        outs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in commands]
        errs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in commands]
        procs = [subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=REPO, text=True)
                 for command, out, err in zip(commands, outs, errs)]
        deadline = time.monotonic() + timeout
        try:
            while (any(p.poll() is None for p in procs) and time.monotonic() < deadline
                   and not any(p.returncode for p in procs)):
                time.sleep(0.1)
        finally:
            failed = next((i for i, p in enumerate(procs) if p.returncode), None)
            running = [i for i, p in enumerate(procs) if p.poll() is None]
            for i in running:  # a worker waits for a failed peer's collectives
                procs[i].kill()
                procs[i].wait()
        if failed is not None or running:
            i = failed if failed is not None else running[0]
            errs[i].seek(0)
            what = (f"failed (exit status {procs[i].returncode})" if failed is not None
                    else f"timed out after {timeout} s")
            raise RuntimeError(f"{' '.join(commands[i][2:])} {what}: {errs[i].read()[-3000:]}")
        answers = []
        for out in outs:
            out.seek(0)
            answers.append(json.loads(out.read().strip().splitlines()[-1]))
        return answers


def run_config(config, args, env):
    """One run of `config` in fresh processes: worker 0's figures, with every
    worker's under "workers" for the multi-worker configurations."""
    n = processes(config)
    ports = free_ports(n) if config.startswith("workers-") else ""
    commands = [[sys.executable, __file__, "--worker", config, "--index", str(i),
                 "--ports", ports, "--data-dir", args.data_dir, "--steps", str(args.steps),
                 "--warmup", str(args.warmup), "--reduce-reps", str(args.reduce_reps)]
                for i in range(n)]
    answers = run_together(commands, env, args.timeout)
    return {**answers[0], "workers": answers} if config.startswith("workers-") else answers[0]


def summarize(runs):
    """Medians per configuration of each figure across rounds, and the ratio
    of steps/s to one's: of the medians, and "paired", the median of the
    ratios within each round, steadier when the machine's speed drifts."""
    keys = ("steps_per_s", "examples_per_s", "run_ms", "call_ms", "all_reduce_ms",
            "all_reduce_share")
    summary = {config: {key: statistics.median(run[key] for run in config_runs)
                        for key in keys if key in config_runs[0]}
               for config, config_runs in runs.items()}
    if "one" in summary:
        for config, figures in summary.items():
            figures["x_one"] = figures["steps_per_s"] / summary["one"]["steps_per_s"]
            figures["paired_x_one"] = statistics.median(
                run["steps_per_s"] / one["steps_per_s"]
                for run, one in zip(runs[config], runs["one"]))
    return summary


def estimate(t_one, t_replica, grad_bytes):
    """The estimated step of each link and device count (see the docstring)."""
    rows = []
    for link, (_, bandwidth, latency) in LINKS.items():
        for n in ESTIMATE_DEVICES:
            t_ar = 2 * (n - 1) / n * grad_bytes / bandwidth + 2 * (n - 1) * latency
            step = t_one / n + t_replica + t_ar
            rows.append({"link": link, "devices": n, "all_reduce_ms": t_ar * 1e3,
                         "step_ms": step * 1e3, "steps_per_s": 1 / step, "x_one": t_one / step})
    return rows


def print_measured(summary, args, machine):
    print(f"\n{machine}; medians of {args.rounds} rounds of {args.steps} steps after "
          f"{args.warmup}, batch {BATCH}")
    print(f"{'config':<16}{'steps/s':>9}{'examples/s':>12}{'x one':>7}{'paired':>8}{'step ms':>9}"
          f"{'run ms':>8}{'all-reduce ms':>15}{'of step':>9}")
    for config, f in summary.items():
        x_one = f"{f['x_one']:>7.2f}{f['paired_x_one']:>8.2f}" if "x_one" in f else f"{'':>15}"
        reduce = (f"{f['run_ms']:>8.3f}{f['all_reduce_ms']:>15.3f}{f['all_reduce_share']:>9.0%}"
                  if "all_reduce_ms" in f else f"{'-':>8}{'-':>15}{'-':>9}")
        print(f"{config:<16}{f['steps_per_s']:>9.0f}{f['examples_per_s']:>12.0f}{x_one}"
              f"{1e3 / f['steps_per_s']:>9.3f}{reduce}")
    print("(run ms: a call of strategy.run without the all-reduce; all-reduce ms: what the "
          "all-reduce of the gradients adds to it)")


def print_findings(summary, cpus):
    """A few sentences, each derived from the figures measured."""
    print(f"\nAll replicas and workers here share the same {cpus} CPU cores.")
    for config, f in summary.items():
        if is_distributed(config) and "x_one" in f:
            print(f"{config}: {f['x_one']:.2f}x one's steps/s; its all-reduce "
                  f"{f['all_reduce_ms']:.3f} ms, {f['all_reduce_share']:.0%} of its step.")


def print_estimates(estimates, t_one, t_replica, grad_bytes):
    print(f"\nEstimates (not measured), n devices each as fast as one device here: gradients "
          f"{grad_bytes:,} bytes per step;\n  step = t_one / n + t_replica + t_ar(n), with "
          f"t_one = {t_one * 1e3:.3f} ms (one's step), t_replica = {t_replica * 1e3:.3f} ms "
          "(strategy.run on 2 replicas beyond 1: mirrored-2's run ms minus mirrored-1's);\n"
          "  t_ar(n) = 2 (n-1)/n bytes / "
          "bandwidth + 2 (n-1) latency (ring all-reduce, the gradients as one message).\n"
          "  The global batch stays 64, so t_one / n is an optimistic bound. Links as stated:")
    for link, (kind, bandwidth, latency) in LINKS.items():
        print(f"  {link}, between {kind}: {bandwidth / 1e9:g} GB/s, {latency * 1e6:g} us")
    print(f"{'link':<17}{'n':>3}{'all-reduce ms':>15}{'step ms':>9}{'steps/s':>9}{'x one':>7}")
    for row in estimates:
        print(f"{row['link']:<17}{row['devices']:>3}{row['all_reduce_ms']:>15.3f}"
              f"{row['step_ms']:>9.3f}{row['steps_per_s']:>9.0f}{row['x_one']:>7.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="MNIST IDX files")
    parser.add_argument("--steps", type=int, default=2000,
                        help="timed steps of each run, after the warm-up (default: 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="default: 200")
    parser.add_argument("--rounds", type=int, default=3, help="default: 3")
    parser.add_argument("--reduce-reps", type=int, default=500,
                        help="timed calls of each all-reduce function (default: 500)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma-separated, of {', '.join(CONFIGS)} (default: all)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds each run may take (default: 600)")
    parser.add_argument("--json", default="bench_distributed.json",
                        help="where to write the figures")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--ports", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args.data_dir, args.warmup, args.steps,
                                 args.reduce_reps, args.index, args.ports)))
        return 0
    configs = tuple(args.configs.split(","))
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown --configs {', '.join(sorted(unknown))}; expected some of "
                     f"{', '.join(CONFIGS)}")

    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}
    runs = {config: [] for config in configs}
    for round_ in range(args.rounds):
        shift = round_ % len(configs)
        for config in configs[shift:] + configs[:shift]:
            runs[config].append(run_config(config, args, env))
            print(f"round {round_ + 1}/{args.rounds} {config}: "
                  f"{runs[config][-1]['steps_per_s']:.0f} steps/s", flush=True)

    summary = summarize(runs)
    first = runs[configs[0]][0]
    cpus = os.cpu_count()
    machine = f"{cpus} CPUs, TensorFlow {first['tensorflow']}, Keras {first['keras']}"
    grad_bytes = first["grad_bytes"]
    print_measured(summary, args, machine)
    print_findings(summary, cpus)
    report = {"args": vars(args), "machine": {"cpus": cpus, "tensorflow": first["tensorflow"],
                                              "keras": first["keras"]},
              "grad_bytes": grad_bytes, "median": summary, "runs": runs}
    if {"one", "mirrored-1", "mirrored-2"} <= set(summary):
        t_one = 1 / summary["one"]["steps_per_s"]
        t_replica = (summary["mirrored-2"]["run_ms"] - summary["mirrored-1"]["run_ms"]) / 1e3
        report["estimates"] = estimate(t_one, t_replica, grad_bytes)
        report["assumptions"] = {
            "links": {link: {"between": kind, "bandwidth_bytes_per_s": b, "latency_s": lat}
                      for link, (kind, b, lat) in LINKS.items()},
            "t_one_s": t_one, "t_replica_s": t_replica,
            "model": "step = t_one / n + t_replica + 2 (n-1)/n bytes / bandwidth "
                     "+ 2 (n-1) latency",
        }
        print_estimates(report["estimates"], t_one, t_replica, grad_bytes)
    else:
        print("\n(no estimates: they need the configurations one, mirrored-1 and mirrored-2)")
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\n(data: {args.data_dir}; figures in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
