"""The VAE trains under tf.distribute: two logical CPUs stand in for two GPUs,
and two processes on localhost for two machines."""

import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import REPO, checkout_env, free_ports
from tests.distributed_run import reference_path
from tests.distributed_step import FORMS

# Every test runs strategies in processes of their own: the whole suite only.
pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from keras_vae.model import VAE
    from keras_vae.training.callbacks import SampleGrid

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = VAE()
        model.compile()
    x = np.random.default_rng(0).random((256, 784)).astype(np.float32)
    before = model.Q_W1.numpy()
    model.fit(x, batch_size=64, epochs=2, verbose=0,
              callbacks=[SampleGrid(sys.argv[1], every=4, verbose=False)])
    print(model.optimizer.iterations.numpy(), model.optimizer._beta_1_power.numpy(),
          np.array_equal(before, model.Q_W1.numpy()))
    """
)


def test_fit_under_mirrored_strategy(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    iterations, beta_1_power, unchanged = run.stdout.split()
    assert iterations == "8"
    # Advanced once per step: float32(0.9) (2.7e-8 off 0.9, relatively) to the
    # 9th power, 8 roundings in their one order: within 0.9**9 * (9 * 2.7e-8 +
    # 8 U) = 2.8e-7 of 0.9**9 (U, float32's unit roundoff); a step more or
    # less is 0.04 away.
    assert abs(float(beta_1_power) - 0.9**9) < 1e-6
    assert unchanged == "False"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000.png", "001.png"]


def test_a_strategy_of_one_replica_trains_on_load_mnist(synthetic_mnist_dir):
    # --strategy mirrored on a machine of one GPU or none, a cluster of one.
    import tensorflow as tf

    from keras_vae import VAE, load_mnist

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = VAE(seed=0)
        model.compile(steps_per_execution=5)
    model.fit(load_mnist(data_dir=synthetic_mnist_dir, seed=0), steps_per_epoch=10, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 10


def _steps(out_dir, mode, workers=1):
    """Runs tests/distributed_step.py as `workers` processes; returns each one's
    {form: arrays}."""
    ports = free_ports(workers)
    runs = []
    for i in range(workers):
        (out_dir / str(i)).mkdir(parents=True)
        cluster = [str(i), ports] if mode == "worker" else []
        runs.append(subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "distributed_step.py"), str(out_dir / str(i)),
             mode, *cluster], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=checkout_env(), cwd=REPO))
    results = []
    for i, run in enumerate(runs):
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr[-3000:]
        results.append({form: dict(np.load(out_dir / str(i) / f"{form}.npz")) for form in FORMS})
    return results


# float32's unit roundoff: one rounding errs by at most U times the value.
U = 2.0**-24


def _within_rounding(single, other, exact, name):
    """`other` is `single` but for the order of float32 sums, given `exact`,
    their value in float64 (exact to ~1e-16); in norm:

        |other - exact| <= 4 |single - exact| + 16 U |exact|

    Any order of the same float32 sums rounds the same terms, so its error is
    of the size of the single-device one, which measures it on this
    machine's kernels, whatever they are. 4x: a tensor's error norm gathers
    many elements' roundings and varies little with the order (measured:
    0.6x to 1.2x, oneDNN's kernels against Eigen's included). 16 U (8
    float32 epsilons) of the value: for a single-device error small by
    chance (the loss is one number), the rounding of a sum of a few hundred
    terms in sequence (~sqrt(N) U). A real difference of the step is far
    larger: a replica's mean weighed wrong moves the gradient by ~1e-2, a
    different noise, everything by ~1e-1."""
    scale = np.linalg.norm(exact)
    single_error = np.linalg.norm(single - exact)
    # The reference is this step's: float32 rounding leaves the single-device
    # step ~1e-7 from it (the step of another noise or batch, ~1e-1), and a
    # reference far off would loosen the bound.
    assert single_error <= 2**-16 * scale, (name, "reference", single_error / scale)
    error, allowed = np.linalg.norm(other - exact), 4 * single_error + 16 * U * scale
    assert error <= allowed, (name, error / scale, allowed / scale)


def _adam_step(step, reference, name):
    """The gradient `fit` applied to weight `name` and the update it made, in
    float64, from Adam's moments after its first step: m = (1 - beta_1) g,
    v = (1 - beta_2) g^2, update = lr sqrt(1 - beta_2) / (1 - beta_1) m / (sqrt(v) + eps)
    (TF1's kernel, the beta powers at beta_1 and beta_2)."""
    lr, beta_1, beta_2, eps = (float(reference[f"adam_{k}"])
                               for k in ("learning_rate", "beta_1", "beta_2", "epsilon"))
    m, v = (step[f"adam_{k}_{name}"].astype(np.float64) for k in ("m", "v"))
    return m / (1 - beta_1), lr * np.sqrt(1 - beta_2) / (1 - beta_1) * m / (np.sqrt(v) + eps)


def _assert_same_step(single, reference, other):
    """`other`, the step of the same batch under a strategy, is the
    single-device step `single`: the loss, and each gradient summed over the
    replicas and applied by `fit`, within float32 rounding of the float64
    `reference` (`_within_rounding`); and the weights apart by no more than
    the updates those gradients made."""
    assert single.keys() == other.keys()
    for name in ["loss", *(k for k in single if k.startswith("gradient_"))]:
        _within_rounding(single[name], other[name], reference[name], name)
    # A weight's update follows from its gradient, the weights from the
    # updates; no tolerance on the weights alone is a bound. Adam's first
    # step moves a weight by ~lr whatever its gradient g, but for |g| below
    # eps / sqrt(1 - beta_2) = 3.2e-7 by up to lr sqrt(1 - beta_2) / eps = 3162
    # times g: the sum-order difference of a gradient near 0 (~1e-8) moves its
    # weight by up to ~3e-5 (Q_W1 went 1.2e-6 off in relative norm on one CPU).
    # So: the gradient `fit` applied, m / (1 - beta_1), within float32 rounding
    # like the others (one more rounding, in m); and each weight, from the same
    # initial weights, apart by the two runs' updates (computed in float64 from
    # their moments), plus the kernel's float32 roundings: 7 of the update
    # (<= lr) and one of the weight's subtraction (half an ulp) in each run,
    # counted twice over (for kernels of approximate sqrt or division):
    #     |w_other - w_single| <= |update_other - update_single| + 32 U lr + 2 ulp(w).
    lr = float(reference["adam_learning_rate"])
    for name in (k[len("weight_"):] for k in single if k.startswith("weight_")):
        (applied_single, update_single), (applied_other, update_other) = (
            _adam_step(step, reference, name) for step in (single, other))
        _within_rounding(applied_single, applied_other, reference[f"gradient_{name}"],
                         f"applied gradient_{name}")
        w_single, w_other = single[f"weight_{name}"], other[f"weight_{name}"]
        apart = np.abs(w_other.astype(np.float64) - w_single)
        ulp = np.spacing(np.maximum(np.abs(w_single), np.abs(w_other)))
        excess = apart - (np.abs(update_other - update_single) + 32 * U * lr + 2 * ulp)
        assert excess.max() <= 0, (f"weight_{name}", apart.max(), excess.max())


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    """Each form's single-device step, and its float64 reference."""
    out = tmp_path_factory.mktemp("one")
    step, = _steps(out, "one")
    return {form: (step[form], dict(np.load(out / "0" / f"{form}.reference.npz")))
            for form in FORMS}


def test_a_mirrored_step_is_the_single_device_step(tmp_path, single_device):
    mirrored, = _steps(tmp_path / "mirrored", "mirrored")
    for form in FORMS:
        _assert_same_step(*single_device[form], mirrored[form])


def test_a_two_worker_step_is_the_single_device_step(tmp_path, single_device):
    workers = _steps(tmp_path / "workers", "worker", workers=2)
    for form in FORMS:
        for worker in workers:
            _assert_same_step(*single_device[form], worker[form])


STOCK_KERAS = textwrap.dedent(
    """
    import json, os, sys
    ports = sys.argv[2].split(",")
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"localhost:{port}" for port in ports]},
        "task": {"type": "worker", "index": int(sys.argv[1])}})
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_vae import _compat
    from keras_vae import model as vae_module

    # Keras' own behaviour, without the package's two workarounds.
    _compat.logs_for_keras = lambda logs: logs
    _compat.StrategyBuildHook._maybe_symbolic_build = keras.Model._maybe_symbolic_build
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x = np.random.default_rng(0).random((64, 784)).astype(np.float32)
    for name, y in (("logs", None), ("build", np.zeros(64, np.float32))):
        with strategy.scope():
            model = vae_module.VAE(seed=0)
            model.compile()
        try:
            model.fit(x, y, batch_size=64, epochs=1, verbose=0)
            print(name, "fixed")
        except ValueError as error:
            print(name, "broken", " ".join(str(error).split())[:300])
    """
)


def test_keras_still_needs_the_multi_worker_workarounds():
    """Fails once Keras fixes what keras_vae._compat.logs_for_keras and
    _compat.StrategyBuildHook work around: then remove them."""
    ports = free_ports(2)
    runs = [subprocess.Popen([sys.executable, "-c", STOCK_KERAS, str(i), ports],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=checkout_env(), cwd=REPO) for i in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs[0][1][-3000:]
    lines = dict(line.split(" ", 1) for line in outputs[0][0].splitlines())
    assert lines["logs"].startswith("broken") and "Invalid reduction dimension 0" in lines["logs"], (
        "Keras now reduces scalar logs under MultiWorkerMirroredStrategy: remove "
        "keras_vae._compat.logs_for_keras")
    assert lines["build"].startswith("broken") and "PerReplica" in lines["build"], (
        "Keras' fit now builds from an (x, y) batch under MultiWorkerMirroredStrategy: "
        "remove keras_vae._compat.StrategyBuildHook")


def test_two_workers_train_as_one_device_step_after_step(tmp_path, synthetic_mnist_dir):
    """The same seed: the first 100 losses of 2 localhost workers (which take
    their rows of the same batches) are those of one device, within float32
    rounding of the float64 run's. Each float32 run drifts from the float64
    one by its own roundings, of the same size whatever the order of its sums
    (`_within_rounding`; measured: each ~4e-8 in relative norm, the 100
    losses within 1 ulp step by step)."""
    script = str(REPO / "tests" / "distributed_run.py")
    ports = free_ports(2)
    runs = [subprocess.Popen([sys.executable, script, str(synthetic_mnist_dir),
                              str(tmp_path / f"{name}.npy"), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=checkout_env(), cwd=REPO)
            for name, args in (("one", ["one"]), ("w0", ["worker", "0", ports]),
                               ("w1", ["worker", "1", ports]))]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr[-3000:]
    one, *workers = (np.load(tmp_path / f"{name}.npy") for name in ("one", "w0", "w1"))
    assert len(one) == 100 and one[0] > 2 * one[-1]  # it trained
    reference = np.load(reference_path(tmp_path / "one.npy"))
    for losses in workers:
        _within_rounding(one, losses, reference, "losses")


# `keras-vae ARGS`, killing itself with SIGKILL as it starts loading its checkpoint.
KILLED_AT_LOAD = """
import os, sys
from keras_vae.training import run
def killed(*args, **kwargs):
    os.kill(os.getpid(), 9)
run.load_latest = killed
from keras_vae.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _workers(tmp_path, data_dir, *args, ports=None, killed_at_load=None):
    """Runs `keras-vae train` as 2 localhost workers (worker `killed_at_load`
    killed as it starts loading); returns both CompletedProcess-likes."""
    ports = ports or free_ports(2)
    workers = ",".join(f"localhost:{port}" for port in ports.split(","))
    command = {i: ["-m", "keras_vae"] for i in range(2)}
    if killed_at_load is not None:
        command[killed_at_load] = ["-c", KILLED_AT_LOAD]
    runs = [subprocess.Popen(
        [sys.executable, *command[i], "train", "--data-dir", str(data_dir),
         "--strategy", "multi-worker", "--workers", workers, "--worker-index", str(i),
         "--out", str(tmp_path / f"out{i}"), "--save", str(tmp_path / f"model{i}.keras"),
         *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=checkout_env(),
        cwd=tmp_path) for i in range(2)]
    for run in runs:
        run.stdout_text, run.stderr_text = run.communicate(timeout=300)
    return runs


SMALL = ("--sample-every", 100, "--seed", 0, "--h-dim", 16, "--z-dim", 4, "--verbose", 0,
         "--checkpoint-every", 150)


def test_two_cli_workers_train_resume_and_only_the_chief_writes(tmp_path, synthetic_mnist_dir):
    shared = ("--checkpoint-dir", tmp_path / "ck")
    runs = _workers(tmp_path, synthetic_mnist_dir, *SMALL, *shared, "--iters", 300)
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr_text[-2000:]
    assert sorted(p.name for p in (tmp_path / "out0").iterdir()) == ["000.png", "001.png",
                                                                      "002.png"]
    assert "Iter: 200" in runs[0].stdout_text and "Iter:" not in runs[1].stdout_text
    assert not (tmp_path / "out1").exists() and not (tmp_path / "model1.keras").exists()
    assert (tmp_path / "model0.keras").is_file()
    assert sorted(p.name for p in (tmp_path / "ck").iterdir())[-1] == "ckpt-000000300.keras"
    # The same command, further: both resume from the chief's checkpoint.
    runs = _workers(tmp_path, synthetic_mnist_dir, *SMALL, *shared, "--iters", 400)
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr_text[-2000:]
    assert all("Resuming from" in run.stdout_text and "at step 300" in run.stdout_text
               for run in runs)
    assert (tmp_path / "out0" / "003.png").is_file() and not (tmp_path / "out1").exists()
    # Again, worker 1 killed as it starts loading: worker 0's load loses it
    # in a collective, which is said as such, not as damaged checkpoints.
    before = sorted(p.name for p in (tmp_path / "ck").iterdir())
    runs = _workers(tmp_path, synthetic_mnist_dir, *SMALL, *shared, "--iters", 500,
                    killed_at_load=1)
    assert runs[1].returncode == -9
    assert runs[0].returncode == 1, runs[0].stderr_text[-2000:]
    assert "lost worker 1" in runs[0].stderr_text and "damaged" not in runs[0].stderr_text
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == before


def test_a_checkpoint_dir_the_workers_do_not_share_is_refused(tmp_path, synthetic_mnist_dir):
    from tests.conftest import run_keras_vae

    (tmp_path / "other").mkdir()
    run = run_keras_vae("train", "--data-dir", synthetic_mnist_dir, *SMALL, "--iters", 150,
                        "--checkpoint-dir", tmp_path / "chief", "--out", tmp_path / "out0",
                        cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    ports = free_ports(2)
    workers = ",".join(f"localhost:{port}" for port in ports.split(","))
    runs = [subprocess.Popen(
        [sys.executable, "-m", "keras_vae", "train", "--data-dir", str(synthetic_mnist_dir),
         *map(str, SMALL), "--iters", "300", "--strategy", "multi-worker", "--workers", workers,
         "--worker-index", str(i), "--out", str(tmp_path / f"out{i}"),
         "--checkpoint-dir", str(tmp_path / ("chief" if i == 0 else "other"))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=checkout_env(),
        cwd=tmp_path) for i in range(2)]
    for run in runs:
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 2, stderr[-2000:]
        assert "found different checkpoints" in stderr and "share" in stderr
    assert sorted(p.name for p in (tmp_path / "chief").iterdir())[-1] == "ckpt-000000150.keras"


def _cli(monkeypatch, capsys, *args, tf_config=None):
    """`keras-vae ARGS` in this process (its flag checks come before any
    strategy touches TensorFlow); returns the exit status and stderr."""
    from keras_vae.cli import main

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)  # restored after the test
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        status = main([*map(str, args)])
    except SystemExit as exit:  # argparse's refusals
        status = exit.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (("--replicas", 2), "--replicas goes with --strategy mirrored"),
    (("--strategy", "multi-worker"), "needs the cluster: give --workers"),
    (("--strategy", "multi-worker", "--workers", "localhost:1,localhost:2",
      "--worker-index", 2), "--worker-index (TF_CONFIG's task index) 2 is out of range"),
    (("--strategy", "multi-worker", "--workers", "localhost:2"), "go together"),
    (("--strategy", "mirrored", "--workers", "localhost:2"), "go with --strategy multi-worker"),
    (("--strategy", "multi-worker", "--workers", "localhost"), "expected HOST:PORT"),
])
def test_bad_strategy_flags_get_a_clear_error(tmp_path, monkeypatch, capsys, flags, message):
    status, stderr = _cli(monkeypatch, capsys, "train", "--iters", 10,
                          "--out", tmp_path / "out", *flags)
    assert status == 2 and message in stderr, stderr[-1000:]
    assert not (tmp_path / "out").exists()


def test_fast_mode_trains_on_two_replicas_drawing_the_noise_of_faithful_mode(
        tmp_path, synthetic_mnist_dir):
    """XLA computes each replica's gradients from the same draws as faithful
    mode's: the logged losses agree to the printed digit."""
    from tests.conftest import run_keras_vae

    runs = {mode: run_keras_vae("train", "--data-dir", synthetic_mnist_dir, *SMALL, "--iters",
                                101, "--strategy", "mirrored", "--replicas", 2,
                                "--out", tmp_path / mode, *flags, cwd=tmp_path)
            for mode, flags in (("faithful", ()), ("fast", ("--fast",)))}
    for run in runs.values():
        assert run.returncode == 0, run.stderr[-2000:]
    assert "Iter: 100" in runs["fast"].stdout
    assert runs["fast"].stdout == runs["faithful"].stdout


def test_a_taken_port_and_a_bad_tf_config_are_named(tmp_path, monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, stderr = _cli(monkeypatch, capsys, "train", "--iters", 10, "--out",
                              tmp_path / "out", "--strategy", "multi-worker", "--workers",
                              f"localhost:{port}", "--worker-index", 0)
    assert status == 2 and f"Port {port} of this worker" in stderr, stderr
    status, stderr = _cli(monkeypatch, capsys, "train", "--iters", 10, "--strategy",
                          "multi-worker", tf_config='{"cluster": {}}')
    assert status == 2 and "TF_CONFIG is not a cluster and a task" in stderr, stderr


def test_mirrored_replicas_from_the_cli(tmp_path, synthetic_mnist_dir):
    from tests.conftest import run_keras_vae

    run = run_keras_vae("train", "--data-dir", synthetic_mnist_dir, *SMALL, "--iters", 200,
                        "--strategy", "mirrored", "--replicas", 2, "--out", tmp_path / "out",
                        "--save", tmp_path / "m.keras", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000.png", "001.png"]
    assert (tmp_path / "m.keras").is_file()


def test_stopped_and_lost_workers_stop_the_others_clearly_and_all_resume(
        tmp_path, synthetic_mnist_dir):
    import signal
    import time

    ports = free_ports(2)
    workers = ",".join(f"localhost:{port}" for port in ports.split(","))
    checkpoints = tmp_path / "ck"

    def launch(iters):
        return [subprocess.Popen(
            [sys.executable, "-m", "keras_vae", "train", "--data-dir", str(synthetic_mnist_dir),
             *map(str, SMALL), "--strategy", "multi-worker", "--workers", workers,
             "--checkpoint-dir", str(checkpoints), "--iters", str(iters), "--worker-index",
             str(i), "--out", str(tmp_path / f"out{i}")], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=checkout_env(), cwd=tmp_path)
            for i in range(2)]

    def newest():
        return max((int(p.stem.split("-")[1]) for p in checkpoints.glob("ckpt-*.json")),
                   default=0)

    def wait_for_checkpoint_after(step):
        deadline = time.monotonic() + 120
        while newest() <= step and time.monotonic() < deadline:
            time.sleep(0.2)

    # Ctrl-C on one worker: every worker stops at the same step, the chief
    # checkpoints it.
    runs = launch(1000000)
    wait_for_checkpoint_after(0)
    runs[1].send_signal(signal.SIGINT)
    stderrs = [run.communicate(timeout=90)[1] for run in runs]
    assert [run.returncode for run in runs] == [130, 130], stderrs[0][-2000:]
    stopped = newest()
    assert all(f"stopped by SIGINT after step {stopped}." in e for e in stderrs), stderrs
    assert "on every worker to resume" in stderrs[1]
    # A lost worker: the other stops within 60 s, naming it.
    runs = launch(1000000)
    wait_for_checkpoint_after(stopped)
    runs[1].kill()  # SIGKILL: worker 1 is lost
    killed = time.monotonic()
    stdout, stderr = runs[0].communicate(timeout=90)
    runs[1].communicate()
    assert time.monotonic() - killed < 60
    assert runs[0].returncode == 1, stderr[-2000:]
    assert f"at step {stopped}" in stdout
    assert f"lost worker 1 (localhost:{ports.split(',')[1]})" in stderr and "Relaunch" in stderr
    # Relaunched, both resume from the newest checkpoint and finish.
    step = newest()
    for run in launch(step + 50):
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr[-2000:]
        assert f"at step {step}" in stdout
    assert newest() == step + 50


def test_a_worker_that_never_joins_is_named_within_the_join_timeout(tmp_path):
    import time

    # Worker 0 alone, its peer's port silent; and worker 1 alone (its cluster
    # given by TF_CONFIG), its chief's port held by something that is not a
    # worker: both stop at the deadline.
    import json

    silent, = free_ports(1).split(",")
    mine = free_ports(2).split(",")
    with socket.socket() as impostor:
        impostor.bind(("localhost", 0))
        impostor.listen()
        cluster = {"worker": [f"localhost:{impostor.getsockname()[1]}", f"localhost:{mine[1]}"]}
        launches = [
            (["--workers", f"localhost:{mine[0]},localhost:{silent}", "--worker-index", "0"],
             checkout_env()),
            ([], {**checkout_env(), "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": 1}})})]
        started = time.monotonic()
        runs = [subprocess.Popen(
            [sys.executable, "-m", "keras_vae", "train", "--iters", "10", "--seed", "0",
             "--out", str(tmp_path / f"out{i}"), "--strategy", "multi-worker", *flags,
             "--join-timeout", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, cwd=tmp_path) for i, (flags, env) in enumerate(launches)]
        stderrs = [run.communicate(timeout=120)[1] for run in runs]
    assert time.monotonic() - started < 60
    assert all(run.returncode != 0 for run in runs), stderrs
    assert (f"did not form within 5 s: nothing answers at worker 1 (localhost:{silent})"
            in stderrs[0]), stderrs[0][-2000:]
    assert "every worker answers, but not all joined" in stderrs[1], stderrs[1][-2000:]
