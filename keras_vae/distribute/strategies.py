"""The tf.distribute strategy of `keras-vae train --strategy`: one device, every
GPU (or N logical CPUs) of this machine, or one worker of several machines.

TensorFlow's own engine does the work; this module only builds the strategy
from the flags, with clear errors for a cluster that cannot be, and says
which worker is the chief (the one that writes grids, models and logs).
"""

import json
import os
import re
import socket

from keras_vae.distribute.join_watchdog import watch_join

KINDS = ("one", "mirrored", "multi-worker")


def make_strategy(kind="one", replicas=None, workers=None, worker_index=None,
                  join_timeout=60):
    """The strategy for `kind`; call it before TensorFlow uses any device.

    Args:
        kind: `"one"`, `"mirrored"` or `"multi-worker"`.
        replicas: int or None, for `"mirrored"` on a machine without GPUs:
            split the CPU into this many logical devices. Defaults to `None`:
            every GPU, or the one CPU.
        workers: list of `"host:port"` or None, for `"multi-worker"`: the
            cluster, in the same order on every worker. Defaults to `None`:
            `$TF_CONFIG` describes it.
        worker_index: int or None, this worker's place in `workers`.
        join_timeout: float or None, for `"multi-worker"`: seconds for every
            worker to join. Past them this process is killed (SIGKILL:
            TensorFlow waits where Python cannot raise) after a message
            naming the workers that do not answer. None: no limit.

    Raises:
        ValueError: the flags contradict each other, a worker index is out
            of range, `$TF_CONFIG` is unusable, or this worker's port is taken.
    """
    import tensorflow as tf

    if kind not in KINDS:
        raise ValueError(f"Expected --strategy to be one of {', '.join(KINDS)}. "
                         f"Received: {kind!r}")
    if replicas is not None and kind != "mirrored":
        raise ValueError("--replicas goes with --strategy mirrored.")
    if (workers is not None or worker_index is not None) and kind != "multi-worker":
        raise ValueError("--workers and --worker-index go with --strategy multi-worker.")
    if kind == "one":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return _mirrored(tf, replicas)
    if workers is not None or worker_index is not None:
        if workers is None or worker_index is None:
            raise ValueError("--workers and --worker-index go together: the cluster, "
                             "and this worker's place in it (from 0).")
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": list(workers)},
            "task": {"type": "worker", "index": worker_index},
        })
    cluster, task_type, index = _check_tf_config()
    peers = {f"{job} {i}": address for job in ("chief", "worker")
             for i, address in enumerate(cluster.get(job, ())) if (job, i) != (task_type, index)}
    with watch_join(peers, join_timeout):
        return tf.distribute.MultiWorkerMirroredStrategy()


class WorkerLostError(RuntimeError):
    """A worker of the cluster stopped answering during training."""


def lost_workers(strategy, error):
    """`error` (a `tf.errors.UnavailableError` of a collective) as a
    `WorkerLostError` naming the other workers it reports, or None when it
    names none."""
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict()
    named = set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", str(error)))
    others = sorted((job, int(task)) for job, task in named
                    if (job, int(task)) != (resolver.task_type, resolver.task_id)
                    and job in spec and int(task) < len(spec[job]))
    if not others:
        return None
    names = ", ".join(f"{job} {task} ({spec[job][task]})" for job, task in others)
    return WorkerLostError(
        f"lost {names}: it stopped answering (crashed, killed or unreachable), so "
        "training stopped. Relaunch every worker with the same command to resume from "
        "the newest checkpoint in --checkpoint-dir.")


def gatherer(strategy):
    """A function of an int returning every replica's, in replica order: one
    all-gather, traced once (run eagerly, a collective across workers costs
    tens of milliseconds)."""
    import tensorflow as tf

    def gather_value(value):
        return tf.distribute.get_replica_context().all_gather(value[None], axis=0)

    gather = tf.function(lambda value: strategy.experimental_local_results(
        strategy.run(gather_value, args=(value,)))[0])
    return lambda value: gather(tf.constant(value, tf.int64)).numpy().tolist()


def is_multi_worker(strategy):
    """Whether `strategy` spans several processes (a cluster of workers)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is not None and bool(resolver.cluster_spec().jobs)


def is_chief(strategy):
    """Whether this process writes the run's files: always, but for the
    workers of a multi-worker cluster other than the chief (worker 0, or the
    task of type "chief")."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if "chief" in resolver.cluster_spec().jobs:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def _mirrored(tf, replicas):
    gpus = tf.config.list_physical_devices("GPU")
    if replicas is None:
        return tf.distribute.MirroredStrategy()
    if gpus:
        raise ValueError(f"--replicas splits the CPU of a machine without GPUs; this one "
                         f"has {len(gpus)}, which mirrored uses. Drop --replicas.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])


def _check_tf_config():
    """Refuses a `$TF_CONFIG` TensorFlow would fail on late or obscurely;
    returns its cluster, task type and index."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError("--strategy multi-worker needs the cluster: give --workers "
                         "HOST:PORT,HOST:PORT,... and --worker-index I, or set TF_CONFIG.")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, index = task["type"], int(task["index"])
        members = cluster[task_type]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"TF_CONFIG is not a cluster and a task ({type(error).__name__}: {error}). "
            'Expected e.g. {"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}.') from None
    if not 0 <= index < len(members):
        raise ValueError(
            f"--worker-index (TF_CONFIG's task index) {index} is out of range: the "
            f"cluster has {len(members)} {task_type}s, indexed from 0 to {len(members) - 1}.")
    host, _, port = members[index].rpartition(":")
    if not port.isdigit() or not host:
        raise ValueError(f"Expected HOST:PORT for each worker. Received: {members[index]!r}")
    with socket.socket() as probe:  # this worker's server must be able to listen there
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", int(port)))
        except OSError as error:
            raise ValueError(
                f"Port {port} of this worker ({members[index]}) is not free: "
                f"{error.strerror}. Choose another port in --workers (TF_CONFIG).") from None
    return cluster, task_type, index
