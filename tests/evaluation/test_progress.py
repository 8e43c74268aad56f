"""keras_vae.progress: Keras' Progbar on a terminal, plain lines elsewhere
(evaluate's progress bar; training's may use it too)."""

import io

import keras
import pytest

from keras_vae import progress
from keras_vae.progress import PlainProgress, progress_bar

CONTROL = ("\x1b", "\r", "\b")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_keras_progbar_and_a_pipe_plain_lines(monkeypatch, capsys):
    assert isinstance(progress_bar(3), PlainProgress)  # capsys: not a terminal
    monkeypatch.setattr("sys.stdout", _Terminal())
    bar = progress_bar(3, unit_name="batch")
    assert isinstance(bar, keras.utils.Progbar) and bar.unit_name == "batch"


def test_plain_lines_at_each_tenth_and_the_end(capsys):
    bar = progress_bar(100, unit_name="batch")
    for step in range(1, 101):
        bar.add(1, values=[("loss", step), ("lr", step)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == [
        f"batch {n}/100" for n in range(10, 101, 10)]
    # Averaged over the steps; at the end, as Progbar does, the values given
    # (Keras' fit gives then the epoch's means).
    assert lines[-2].endswith(" - loss: 45.5000 - lr: 45.5000")
    assert lines[-1].endswith(" - loss: 100.0000 - lr: 100.0000")
    assert "ETA" in lines[0] and "ETA" not in lines[-1]
    assert not any(c in "".join(lines) for c in CONTROL)


def test_stateful_values_are_shown_as_given(capsys):
    bar = PlainProgress(4, stateful_metrics=["lr"])
    for step in range(1, 5):
        bar.update(step, values=[("loss", step), ("lr", step)])
    assert capsys.readouterr().out.splitlines()[-2].endswith(" - loss: 2.0000 - lr: 3.0000")


def test_without_a_target_a_line_after_some_seconds_and_at_the_end(monkeypatch, capsys):
    clock = iter(range(0, 1000, 10))  # each reading 10 s after the last
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    bar = PlainProgress(None)
    for step in range(1, 7):
        bar.update(step)
    bar.update(7, finalize=True)
    # Read at 0 (start); steps at 10, 20, ...: a line once 30 s have passed.
    assert capsys.readouterr().out.splitlines() == ["step 3 - 30s", "step 6 - 60s",
                                                    "step 7 - 70s"]


@pytest.mark.parametrize("verbose, lines", [(0, []), (2, ["step 5/5"])])
def test_verbose_0_is_silent_and_2_one_line_at_the_end(capsys, verbose, lines):
    bar = progress_bar(5, verbose=verbose)
    for _ in range(5):
        bar.add(1)
    assert [line.split(" - ")[0] for line in capsys.readouterr().out.splitlines()] == lines


def test_both_kinds_of_metrics_are_refused_by_name():
    with pytest.raises(ValueError, match="at most one of stateful_metrics and stateless"):
        PlainProgress(3, stateful_metrics=["a"], stateless_metrics=["b"])
