"""A deadline for a multi-worker cluster to form.

`MultiWorkerMirroredStrategy()` waits in C++ until every worker has joined,
holding the interpreter: no Python thread, signal handler or timeout of
TensorFlow's (its cluster registration timeout does not cover this wait) can
end it. So a small process of its own watches instead: if the wait is not
over by the deadline, it names the workers that do not answer, and kills the
waiting process (TensorFlow catches SIGTERM; SIGKILL is the signal it cannot).

    python keras_vae/distribute/join_watchdog.py PID SECONDS NAME=HOST:PORT ...

runs the watcher; `watch_join` starts it from the waiting process.
"""

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys


@contextlib.contextmanager
def watch_join(peers, seconds):
    """Kills this process with a clear message if the `with` body (the
    cluster's forming) is still running after `seconds`.

    Args:
        peers: dict of the other workers, name (e.g. "worker 1") to "host:port".
        seconds: float, the deadline; None: no deadline.
    """
    if seconds is None:
        yield
        return
    watcher = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), str(os.getpid()), str(seconds),
         *(f"{name}={address}" for name, address in peers.items())],
        stdin=subprocess.PIPE)
    try:
        yield
    finally:
        watcher.stdin.close()  # the watcher's cue to leave quietly
        watcher.wait()


def _answers(address, timeout=2.0):
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _watch(pid, seconds, peers):
    """Waits for the end of stdin (the cluster formed, or the process ended)
    up to `seconds`; past them, says why and kills process `pid`."""
    ended, _, _ = select.select([sys.stdin], [], [], seconds)
    if ended:
        return
    silent = [f"{name} ({address})" for name, address in peers.items()
              if not _answers(address)]
    if silent:
        why = (f"nothing answers at {', '.join(silent)}. Start every worker within "
               f"{seconds:g} s of the first, and check that this machine reaches each "
               "address (host, port, firewall).")
    else:
        why = ("every worker answers, but not all joined this cluster. Give every worker "
               "the same --workers list (TF_CONFIG cluster), each its own --worker-index.")
    sys.stderr.write(f"keras-vae: error: the cluster did not form within {seconds:g} s: "
                     f"{why}\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    _pid, _seconds, *_peers = sys.argv[1:]
    _watch(int(_pid), float(_seconds), dict(peer.split("=", 1) for peer in _peers))
