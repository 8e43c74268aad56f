"""Serving speed: each signature of the exports in its own runtime, beside
the Keras model's own methods, each runtime in a fresh process of its own.

    python benchmarks/bench_serving.py --model results/mnist-100k.keras
    python benchmarks/bench_serving.py --rounds 1 --calls 3    # a quick look

The signatures are the random-free five every format holds (`encode`,
`decode`, `reconstruct`, `sample_from_z`, `reconstruct_sampled`;
`keras_vae/saving/signatures.py`), in four runtimes:
- keras: `keras_vae.load_model`, each signature written with the model's
  methods as a Python user writes it (`model.encode`, `model.decode`,
  `model.reconstruct`, which returns the probabilities alone,
  `model.decode(z)[0]`, and `model.decode(model.reparameterize(z_mu,
  z_logvar, eps))`), wrapped in a `tf.function` with a fixed input signature
  (float32 `(None, width)`), as a server would;
- saved_model: `tf.saved_model.load(DIR).signatures[name]`, the export's
  own shape checks included;
- litert: `ai_edge_litert.interpreter.Interpreter(model_path=...)
  .get_signature_runner(name)`, with the XNNPACK delegate LiteRT applies
  by default;
- onnx: `onnxruntime.InferenceSession(<name>.onnx,
  providers=["CPUExecutionProvider"])`, one session per signature.
Each call takes numpy arrays and returns numpy arrays (TensorFlow's outputs
converted with `.numpy()`), as a server receives and sends them. The inputs
are the same in every runtime: x uniform in [0, 1), z and eps standard
normal, drawn once with seed 0.

Without `--model`, the script saves a freshly initialised
`keras_vae.VAE(seed=0)`: the speed does not depend on the weights (the same
ops on the same shapes), so any model of the same sizes gives the same
figures. The exports are written with `model.export(..., format=...)` (each
checks itself) into a temporary directory. A runtime whose packages are
missing is skipped, with a line naming the extra that installs them
(`pip install 'keras-vae[litert]'`, `pip install 'keras-vae[onnx]'`).

Each measurement makes WARMUP untimed calls, then `--calls` calls timed
one by one: at batch 1, the latency (the median seconds per call and the
90th percentile); at batch 256, the throughput (256 images over the median
call's seconds). `--rounds` rounds run every runtime once, each in a fresh
process (`--worker RUNTIME`, which prints its figures as JSON), the order of
the runtimes rotated by one from round to round; the figures reported are
the medians over the rounds of each round's figure.

Threads: `--threads N` (default: the cores this process may use) is given
to every runtime: TensorFlow's intra-op and inter-op thread pools (keras and
saved_model), LiteRT's `num_threads` (its XNNPACK delegate's too), ONNX
Runtime's `intra_op_num_threads` (its execution is sequential, its default,
so it has no inter-op pool). `--threads 0` leaves each its default:
TensorFlow's and ONNX Runtime's are a thread per core, LiteRT's Python
interpreter one thread.
"""

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIMES = ("keras", "saved_model", "litert", "onnx")
# Each signature's inputs, by name: keras_vae.saving.signatures.INPUTS's, written out
# because the LiteRT and ONNX workers must not import keras_vae (and so TensorFlow).
SIGNATURES = {
    "encode": ("x",),
    "decode": ("z",),
    "reconstruct": ("x",),
    "sample_from_z": ("z",),
    "reconstruct_sampled": ("x", "eps"),
}
BATCH = 256  # the throughput's batch; the latency's is 1
WARMUP = 10  # untimed calls before each measurement
# Where each runtime's file is, in the temporary directory.
EXPORTS = {"saved_model": "saved_model", "litert": "vae.tflite", "onnx": "onnx"}
INPUTS = "inputs.npz"
PACKAGES = ("tensorflow", "keras", "ai-edge-litert", "onnxruntime", "tf2onnx")


def pin_tensorflow(threads):
    """Gives TensorFlow's intra- and inter-op pools `threads` threads (0: its default)."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def as_numpy(outputs):
    """TensorFlow's outputs (a tensor, a tuple or a dict of them) as numpy arrays."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda tensor: tensor.numpy(), outputs)


def keras_callers(model_path, exports, threads):
    """The signatures written with the Keras model's methods, each a `tf.function`."""
    tf = pin_tensorflow(threads)
    import keras_vae

    model = keras_vae.load_model(model_path)
    x = tf.TensorSpec([None, model.x_dim], tf.float32)
    z = tf.TensorSpec([None, model.z_dim], tf.float32)

    def sample_from_z(z):
        return model.decode(z)[0]

    def reconstruct_sampled(x, eps):
        z_mu, z_logvar = model.encode(x)
        return model.decode(model.reparameterize(z_mu, z_logvar, eps))

    functions = {
        "encode": tf.function(model.encode, input_signature=[x]),
        "decode": tf.function(model.decode, input_signature=[z]),
        "reconstruct": tf.function(model.reconstruct, input_signature=[x]),
        "sample_from_z": tf.function(sample_from_z, input_signature=[z]),
        "reconstruct_sampled": tf.function(reconstruct_sampled, input_signature=[x, z]),
    }
    return {name: numpy_caller(function) for name, function in functions.items()}


def saved_model_callers(model_path, exports, threads):
    """The SavedModel's signatures, loaded in TensorFlow."""
    tf = pin_tensorflow(threads)
    loaded = tf.saved_model.load(os.path.join(exports, EXPORTS["saved_model"]))
    return {name: numpy_caller(loaded.signatures[name]) for name in SIGNATURES}


def numpy_caller(function):
    """`function` taking numpy arrays by name and returning numpy arrays."""
    return lambda **inputs: as_numpy(function(**inputs))


def litert_callers(model_path, exports, threads):
    """The `.tflite` file's signature runners, from one interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=os.path.join(exports, EXPORTS["litert"]),
                              num_threads=threads or None)
    return {name: interpreter.get_signature_runner(name) for name in SIGNATURES}


def onnx_callers(model_path, exports, threads):
    """A session per signature's `.onnx` file, on ONNX Runtime's CPU."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return {name: session_caller(onnxruntime.InferenceSession(
                os.path.join(exports, EXPORTS["onnx"], f"{name}.onnx"), options,
                providers=["CPUExecutionProvider"]))
            for name in SIGNATURES}


def session_caller(session):
    """An ONNX Runtime `session` taking numpy arrays by name; its outputs, a list."""
    return lambda **inputs: session.run(None, inputs)


CALLERS = {"keras": keras_callers, "saved_model": saved_model_callers,
           "litert": litert_callers, "onnx": onnx_callers}


def timed_calls(call, inputs, calls):
    """Seconds of each of `calls` calls of `call(**inputs)`, after WARMUP untimed ones."""
    for _ in range(WARMUP):
        call(**inputs)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call(**inputs)
        times.append(time.perf_counter() - start)
    return times


def worker(runtime, model_path, exports, calls, threads):
    """Each signature's figures in `runtime`, measured in this process."""
    import numpy as np

    arrays = dict(np.load(os.path.join(exports, INPUTS)))
    figures = {}
    for name, call in CALLERS[runtime](model_path, exports, threads).items():
        one = timed_calls(call, {k: arrays[k][:1] for k in SIGNATURES[name]}, calls)
        many = timed_calls(call, {k: arrays[k] for k in SIGNATURES[name]}, calls)
        figures[name] = {
            "latency_s": statistics.median(one),
            "latency_p90_s": statistics.quantiles(one, n=10, method="inclusive")[-1],
            "batch_s": statistics.median(many),
            "images_per_s": BATCH / statistics.median(many),
        }
    return figures


def prepare(model_path, runtimes, exports):
    """Writes the inputs and the exports `runtimes` need into `exports`;
    the Keras model's path and the skipped runtimes' reasons."""
    import numpy as np

    import keras_vae
    from keras_vae.saving.extras import MissingExtraError

    if model_path:
        model = keras_vae.load_model(model_path)
    else:
        model = keras_vae.VAE(seed=0)
        model_path = os.path.join(exports, "model.keras")
        keras_vae.save_model(model, model_path)
    rng = np.random.default_rng(0)
    np.savez(os.path.join(exports, INPUTS),
             x=rng.random((BATCH, model.x_dim), dtype=np.float32),
             z=rng.standard_normal((BATCH, model.z_dim), dtype=np.float32),
             eps=rng.standard_normal((BATCH, model.z_dim), dtype=np.float32))
    skipped = {}
    for runtime in runtimes:
        if runtime in EXPORTS:
            try:
                model.export(os.path.join(exports, EXPORTS[runtime]), format=runtime)
            except MissingExtraError as error:
                skipped[runtime] = str(error)
    return model_path, skipped


def run_worker(runtime, args, model_path, exports):
    """One run of `runtime` in a fresh process: its figures per signature."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)}
    command = [sys.executable, os.path.abspath(__file__), "--worker", runtime,
               "--model", model_path, "--exports", exports, "--calls", str(args.calls),
               "--threads", str(args.threads)]
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=args.timeout)
    if run.returncode != 0:
        raise RuntimeError(f"the {runtime} worker failed (exit status {run.returncode}): "
                           f"{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def summarize(runs):
    """The median over the rounds of each figure, per runtime and signature."""
    return {runtime: {name: {key: statistics.median(run[name][key] for run in rounds)
                             for key in rounds[0][name]}
                      for name in SIGNATURES}
            for runtime, rounds in runs.items()}


def table(median, rounds):
    """The medians as two markdown tables: latency at batch 1, throughput at BATCH."""
    runtimes = list(median)
    head = "| signature | " + " | ".join(runtimes) + " |\n|" + " --- |" * (len(runtimes) + 1)
    latency = "\n".join(
        f"| {name} | " + " | ".join(f"{1e6 * median[r][name]['latency_s']:.0f} "
                                    f"({1e6 * median[r][name]['latency_p90_s']:.0f})"
                                    for r in runtimes) + " |"
        for name in SIGNATURES)
    throughput = "\n".join(
        f"| {name} | " + " | ".join(f"{median[r][name]['images_per_s']:,.0f}"
                                    for r in runtimes) + " |"
        for name in SIGNATURES)
    over = f"the median over {rounds} round{'s' * (rounds > 1)}"
    return (f"Batch 1, µs per call: median (90th percentile), {over}\n\n{head}\n{latency}"
            f"\n\nBatch {BATCH}, images/s from the median call, {over}\n\n{head}\n{throughput}")


def versions():
    """The versions of the packages measured that are installed."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a trained .keras model (default: a fresh VAE(seed=0))")
    parser.add_argument("--rounds", type=int, default=5, help="default: 5")
    parser.add_argument("--calls", type=int, default=200,
                        help="timed calls per measurement (default: 200)")
    parser.add_argument("--runtimes", type=lambda text: tuple(text.split(",")), default=RUNTIMES,
                        help=f"comma-separated, of {', '.join(RUNTIMES)} (default: all)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads of every runtime; 0 leaves each its default "
                        "(default: the cores this process may use)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds each worker may take (default: 600)")
    parser.add_argument("--json", help="where to write the figures, if anywhere")
    parser.add_argument("--worker", choices=RUNTIMES, help=argparse.SUPPRESS)
    parser.add_argument("--exports", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 2 or args.threads < 0:
        parser.error("--rounds must be at least 1, --calls at least 2, --threads at least 0")
    unknown = [runtime for runtime in args.runtimes if runtime not in RUNTIMES]
    if unknown:
        parser.error(f"--runtimes: unknown {unknown}; choose from {', '.join(RUNTIMES)}")
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.exports, args.calls, args.threads)))
        return 0

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with tempfile.TemporaryDirectory() as exports:
        model_path, skipped = prepare(args.model, args.runtimes, exports)
        print(f"model: {args.model}" if args.model else
              "model: a freshly initialised VAE(seed=0); the speed does not depend on the weights")
        for runtime, reason in skipped.items():
            print(f"{runtime}: skipped: {reason}", flush=True)
        runtimes = [runtime for runtime in args.runtimes if runtime not in skipped]
        if not runtimes:
            print("no runtime left to measure")
            return 1
        runs = {runtime: [] for runtime in runtimes}
        for round_ in range(args.rounds):
            shift = round_ % len(runtimes)
            for runtime in runtimes[shift:] + runtimes[:shift]:
                start = time.perf_counter()
                runs[runtime].append(run_worker(runtime, args, model_path, exports))
                print(f"round {round_ + 1}/{args.rounds}: {runtime} "
                      f"({time.perf_counter() - start:.1f} s)", flush=True)
    median = summarize(runs)
    print("\n" + table(median, args.rounds))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "rounds": args.rounds, "calls": args.calls,
                       "warmup": WARMUP, "threads": args.threads, "batch": BATCH,
                       "versions": versions(), "skipped": skipped, "runs": runs,
                       "median": median}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
