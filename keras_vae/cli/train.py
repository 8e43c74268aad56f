"""`keras-vae train`: a training run, fresh or resumed (`keras_vae.training.run`)."""

import signal
import sys

from keras_vae.cli.flags import add_run_flags, run_config

HELP = "train on MNIST, saving a sample grid every --sample-every steps"
DESCRIPTION = (
    "Train on the original's split of MNIST (the last 55,000 training images), printing "
    "Iter:/Loss: and saving OUT/000.png, OUT/001.png, ... every --sample-every steps, as "
    "the original did.")


def add_parser(commands):
    parser = commands.add_parser("train", help=HELP, description=DESCRIPTION)
    add_run_flags(parser)
    parser.set_defaults(run=run)


def run(args):
    from keras_vae.distribute.strategies import is_chief, make_strategy
    from keras_vae.training.run import train

    config = run_config(args)
    # Checks the flags for any kind; one device runs without a strategy.
    strategy = make_strategy(config.strategy, config.replicas, config.workers,
                             config.worker_index, config.join_timeout)
    strategy = None if config.strategy == "one" else strategy
    outcome = train(config, strategy=strategy)
    if outcome.status == "diverged":
        kept = (f"The last good checkpoint, {outcome.checkpoint}, is kept."
                if outcome.checkpoint else "No checkpoint was written.")
        print(f"keras-vae train: error: training diverged: the loss at step "
              f"{outcome.diverged_at} is NaN or infinite, so training stopped. {kept}",
              file=sys.stderr)
        return 1
    if outcome.status == "interrupted":
        chief = strategy is None or is_chief(strategy)
        print(f"keras-vae train: stopped by {signal.Signals(outcome.signal).name} after step "
              f"{outcome.step}. {_where(outcome, config, chief)}", file=sys.stderr)
        return 128 + outcome.signal
    return 0


def _where(outcome, config, chief):
    """What an interrupted run kept, and how to resume it (`chief`: whether
    this process writes the run's files)."""
    again = ("run the same command again"
             f"{' on every worker' if config.strategy == 'multi-worker' else ''} to resume.")
    if outcome.checkpoint:
        return f"Checkpoint written to {outcome.checkpoint}; {again}"
    if config.checkpoint_dir and not chief:
        return f"The chief writes the checkpoints; {again}"
    return "Nothing was saved: give --checkpoint-dir to make a run resumable."
