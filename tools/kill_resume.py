"""Kills `keras-vae train` with SIGKILL at several points, resumes it each time,
and checks that it ends bit-identical to an uninterrupted run.

    python tools/kill_resume.py --data-dir MNIST_data

Each kill waits for an event in the run's checkpoint directory, polled every
2 ms, and sends SIGKILL the moment it sees it. Kills 1, 3, 5, ... wait for a
new complete checkpoint (its record `ckpt-NNNNNNNNN.json` appears) of a step
at or after their `--kills` step; kills 2, 4, ... for a checkpoint being
written (the temporary `.keras` file that `keras_vae.saving.save_model`
writes first appears), so that they land mid-write. A kill counts only if it
landed mid-training: the process was still running (exit status -SIGKILL),
the newest complete checkpoint is past the step the run resumed from and
short of the end, and a mid-write kill's temporary file is still there (the
write never finished). Each resumed run must resume from the newest complete
checkpoint the kill left.

Prints one "killed ..." line per kill that landed and a verdict; exits 0 only
when the final weights, optimizer state and sampler state are bit-identical
to the uninterrupted run's, and the sample grids are numbered 000..N with
none missing, none written twice, each the same picture as the uninterrupted
run's. Exits 1, saying why, when a kill missed or anything differs.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ITERS, EVERY, CHECKPOINT_EVERY = 600, 50, 70
POLL_SECONDS = 0.002
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
RECORD = re.compile(r"ckpt-(\d{9,})\.json")
# save_model writes `.{name}.tmp-{pid}.keras`, then renames it to `name`.
TEMP_KERAS = re.compile(r"\.ckpt-(\d{9,})\.keras\.tmp-(\d+)\.keras")
RESUMED = re.compile(r"^Resuming from .* at step (\d+)\.$", re.MULTILINE)


def train_command(data_dir, run_dir, seed, fast=False):
    return [
        sys.executable, "-m", "keras_vae", "train", "--data-dir", data_dir,
        "--iters", str(ITERS), "--sample-every", str(EVERY),
        "--checkpoint-every", str(CHECKPOINT_EVERY),
        "--checkpoint-dir", os.path.join(run_dir, "checkpoints"),
        "--out", os.path.join(run_dir, "out"), "--seed", str(seed), "--verbose", "0",
        "--save", os.path.join(run_dir, "final.keras"), *(["--fast"] if fast else []),
    ]


def new_record(names, pid, target):
    """The name of a complete checkpoint record of step >= `target`, or None."""
    for name in sorted(names):
        match = RECORD.fullmatch(name)
        if match and int(match.group(1)) >= target:
            return name
    return None


def mid_write(names, pid, target):
    """The name of process `pid`'s temporary `.keras` file of a checkpoint of
    step >= `target`, or None. Other pids' are stale files of earlier kills."""
    for name in sorted(names):
        match = TEMP_KERAS.fullmatch(name)
        if match and int(match.group(2)) == pid and int(match.group(1)) >= target:
            return name
    return None


EVENTS = [("record", new_record), ("mid-write", mid_write)]  # taken in turn


def listdir(directory):
    """The names in `directory`; none if it is not there yet."""
    return set(os.listdir(directory)) if os.path.isdir(directory) else set()


def run_and_kill(command, checkpoint_dir, event, target, log_path):
    """Runs `command` and SIGKILLs it as soon as `event` sees a new file in
    `checkpoint_dir`; returns the finished process and that file's name (None:
    the run ended first)."""
    before = listdir(checkpoint_dir)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=ENV)
    while proc.poll() is None:
        seen = event(listdir(checkpoint_dir) - before, proc.pid, target)
        if seen:
            proc.kill()  # does nothing if the process has exited meanwhile
            proc.wait()
            return proc, seen
        time.sleep(POLL_SECONDS)
    return proc, None


def run(command, log_path):
    """Runs `command` to its end; returns its exit status."""
    with open(log_path, "w") as log:
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=ENV).returncode


def resumed_from(log_path):
    """The step a run's log says it resumed from; 0 for a fresh run."""
    with open(log_path) as f:
        match = RESUMED.search(f.read())
    return int(match.group(1)) if match else 0


def newest_checkpoint(checkpoint_dir):
    """The step of the newest complete checkpoint (the newest record), or 0."""
    steps = [int(m.group(1)) for m in map(RECORD.fullmatch, listdir(checkpoint_dir)) if m]
    return max(steps, default=0)


def why_missed(proc, seen, kind, target, start, expected_start, checkpoint_dir):
    """Why a kill did not land mid-training, or None if it did."""
    if seen is None:
        return (f"the run ended (exit {proc.returncode}) before a {kind} event at "
                f"step >= {target}")
    if proc.returncode != -signal.SIGKILL:
        return f"the run had already exited (status {proc.returncode}) when it was killed"
    if start != expected_start:
        return (f"the run resumed from step {start}, not from the newest checkpoint, "
                f"{expected_start}")
    newest = newest_checkpoint(checkpoint_dir)
    if not start < newest < ITERS:
        return (f"the newest complete checkpoint, step {newest}, is not between the "
                f"run's first step, {start}, and its end, {ITERS}")
    if kind == "mid-write" and not os.path.exists(os.path.join(checkpoint_dir, seen)):
        return f"{seen} was gone: the checkpoint's write had finished before the kill"
    return None


def leftovers(*directories):
    """Files a kill left behind: temporary files, and `.keras` files whose
    record was never written or already pruned."""
    found = []
    for directory in directories:
        names = listdir(directory)
        found += [name for name in names if ".tmp-" in name]
        found += [name for name in names if re.fullmatch(r"ckpt-\d+\.keras", name)
                  and name[: -len(".keras")] + ".json" not in names]
    return sorted(found)


def grid_stamps(out_dir):
    """{name: (inode, mtime_ns)} of the grids, to see any rewritten later."""
    return {
        name: (os.stat(os.path.join(out_dir, name)).st_ino,
               os.stat(os.path.join(out_dir, name)).st_mtime_ns)
        for name in listdir(out_dir) if name.endswith(".png")
    }


def compare_models(path_a, path_b):
    """Names of the variables (model, optimizer, sampler) that differ."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from keras_vae.saving.keras_file import load_model

    a, b = load_model(path_a), load_model(path_b)
    pairs = [*zip(a.weights, b.weights), *zip(a.optimizer.variables, b.optimizer.variables),
             (a.seed_generator.state, b.seed_generator.state)]
    return [x.path for x, y in pairs if not np.array_equal(x.numpy(), y.numpy())]


def tail(log_path, lines=20):
    """The last lines of a run's log, to show why it failed."""
    with open(log_path) as f:
        return "".join(f.readlines()[-lines:])


def compare_with_reference(reference, interrupted, seen):
    """What differs between the two runs' grids and final models."""
    problems = []
    final_stamps = grid_stamps(os.path.join(interrupted, "out"))
    expected = [f"{i:03d}.png" for i in range((ITERS - 1) // EVERY + 1)]
    if sorted(final_stamps) != expected:
        problems.append(f"grids {sorted(final_stamps)}, expected {expected[0]}..{expected[-1]}")
    problems += [f"{n} rewritten" for n in seen if final_stamps.get(n) != seen[n]]
    for name in sorted(set(expected) & set(final_stamps)):
        with open(os.path.join(reference, "out", name), "rb") as f, \
                open(os.path.join(interrupted, "out", name), "rb") as g:
            if f.read() != g.read():
                problems.append(f"{name} differs from the uninterrupted run's")
    differing = compare_models(os.path.join(reference, "final.keras"),
                               os.path.join(interrupted, "final.keras"))
    return problems + [f"{name} differs" for name in differing]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the four MNIST IDX .gz files")
    parser.add_argument(
        "--kills", type=int, nargs="+", default=[120, 300, 450],
        help=f"kill at the first checkpoint event at or after these steps (checkpoints "
        f"every {CHECKPOINT_EVERY} of {ITERS} steps); odd kills wait for a complete "
        "checkpoint, even ones for a checkpoint mid-write",
    )
    parser.add_argument("--seed", type=int, default=7, help="the training runs' seed")
    parser.add_argument("--fast", action="store_true",
                        help="train in fast mode (keras-vae train --fast), both runs")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="keras-vae-kill-")
    reference, interrupted = os.path.join(root, "reference"), os.path.join(root, "interrupted")
    os.makedirs(interrupted)
    checkpoints, out = os.path.join(interrupted, "checkpoints"), os.path.join(interrupted, "out")
    command = train_command(args.data_dir, interrupted, args.seed, args.fast)

    os.makedirs(reference)
    log = os.path.join(reference, "run.log")
    status = run(train_command(args.data_dir, reference, args.seed, args.fast), log)
    if status != 0:
        print(f"the uninterrupted run failed (exit {status}):\n{tail(log)}")
        return 1
    seen, expected_start = {}, 0
    for i, target in enumerate(args.kills):
        kind, event = EVENTS[i % len(EVENTS)]
        log = os.path.join(interrupted, f"run-{i + 1}.log")
        proc, name = run_and_kill(command, checkpoints, event, target, log)
        start = resumed_from(log)
        missed = why_missed(proc, name, kind, target, start, expected_start, checkpoints)
        if missed:
            print(f"kill {i + 1} ({kind}, step >= {target}) did not land mid-training: "
                  f"{missed}\n{tail(log)}")
            return 1
        expected_start = newest_checkpoint(checkpoints)
        stamps = grid_stamps(out)
        rewritten = sorted(n for n in seen if stamps.get(n) != seen[n])
        seen.update(stamps)
        print(f"killed run {i + 1} on {kind} event {name}: it had resumed from step "
              f"{start}, left step {expected_start} as its newest complete checkpoint; "
              f"grids {len(stamps)}, rewritten grids: {rewritten or 'none'}")
        if rewritten:
            return 1
    log = os.path.join(interrupted, "run-final.log")
    status = run(command, log)
    if status != 0 or resumed_from(log) != expected_start:
        print(f"the resumed run failed (exit {status}, resumed from step "
              f"{resumed_from(log)}, expected {expected_start}):\n{tail(log)}")
        return 1

    problems = compare_with_reference(reference, interrupted, seen)
    if problems:
        print("verdict: DIFFERENT: " + "; ".join(problems))
        return 1
    print(f"left behind by the kills: {leftovers(checkpoints, out) or 'nothing'}")
    print(f"verdict: BIT-IDENTICAL: after {len(args.kills)} kills and resumes, all weights, "
          f"optimizer and sampler state equal the uninterrupted run's; grids "
          f"000..{(ITERS - 1) // EVERY:03d}, none missing or rewritten ({root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
