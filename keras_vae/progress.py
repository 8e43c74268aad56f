"""Progress bars that suit where they are shown: Keras' `Progbar` on a
terminal, plain lines when stdout is a file or a pipe.

Keras' `Progbar` redraws its line with backspaces and `\\r`, in ANSI
colours, on any POSIX system, even when stdout is piped: a log of it fills
with control characters. `progress_bar` gives it a terminal only.
"""

import sys
import time

# Off a terminal, a line each time another tenth of the target is done, or
# after this many seconds without one, and at the end.
LINES_PER_TARGET = 10
SECONDS_PER_LINE = 30.0


def progress_bar(target, verbose=1, **progbar_kwargs):
    """A progress bar of `target` steps: `keras.utils.Progbar` when stdout is
    a terminal, else a `PlainProgress`, which has its `update` and `add`.

    Args:
        target: int or None, the number of steps; None if unknown.
        verbose: int, 0 silent, 1 the bar (plain lines off a terminal), 2
            one line at the end. Defaults to `1`.
        **progbar_kwargs: `Progbar`'s other arguments (`unit_name`,
            `stateful_metrics`, ...).

    Example:

    ```python
    bar = progress_bar(len(batches), unit_name="batch")
    for batch in batches:
        bar.add(1, values=[("loss", loss_of(batch))])
    ```
    """
    if sys.stdout.isatty():
        import keras  # here, so that the command line can import this without TensorFlow

        return keras.utils.Progbar(target, verbose=verbose, **progbar_kwargs)
    return PlainProgress(target, verbose=verbose, **progbar_kwargs)


class PlainProgress:
    """`keras.utils.Progbar`'s interface, writing plain lines to stdout, such
    as `batch 300/1000 - 12s - ETA 28s - loss: 105.1234`: with verbose 1, one each
    time another tenth of the target is done (`LINES_PER_TARGET`), or after
    `SECONDS_PER_LINE` without one, and at the end; with verbose 2, one at
    the end. Values are shown as `Progbar` shows them: averaged over the
    steps, except `stateful_metrics` (or all but `stateless_metrics`), shown
    as given.

    Args:
        target: int or None, the number of steps; None if unknown.
        width, interval: `Progbar`'s, accepted so that its arguments are
            this class's too; a plain line has no bar to draw or redraw.
        verbose: int, 0 silent, 1 or 2 as above. Defaults to `1`.
        stateful_metrics, stateless_metrics: iterables of names, or None
            (at most one of them). Default to `None`: all values averaged.
        unit_name: str, what a step is called. Defaults to `"step"`.
    """

    def __init__(self, target, width=None, verbose=1, interval=None, stateful_metrics=None,
                 stateless_metrics=None, unit_name="step"):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Expected at most one of stateful_metrics and stateless_metrics. "
                             f"Received: both, {stateful_metrics!r} and {stateless_metrics!r}")
        self.target, self.verbose, self.unit_name = target, verbose, unit_name
        self._stateful = None if stateful_metrics is None else set(stateful_metrics)
        self._stateless = None if stateless_metrics is None else set(stateless_metrics)
        self._values = {}  # name: [sum, steps], shown as sum / steps
        self._seen = 0
        self._start = self._last_line = time.monotonic()
        self._lines_due = 1  # the tenths (LINES_PER_TARGET) after which the next line is due

    def update(self, current, values=None, finalize=None):
        """Records step `current` (counted from 1) and its `values`, a list of
        `(name, number)`; writes a line if one is due. `finalize`: whether this
        is the last update; defaults to `current >= target`."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or []:
            if self._averaged(name) and not finalize:
                steps = max(current - self._seen, 1)
                total, count = self._values.get(name, (0.0, 0))
                self._values[name] = [total + float(value) * steps, count + steps]
            else:
                self._values[name] = [float(value), 1]
        self._seen = current
        now = time.monotonic()
        if self.verbose == 2 and finalize or self.verbose == 1 and (
                finalize or self._tenths(current) >= self._lines_due
                or now - self._last_line >= SECONDS_PER_LINE):
            print(self._line(current, now, finalize), flush=True)
            self._last_line = now
            self._lines_due = self._tenths(current) + 1

    def add(self, n, values=None):
        """`update` at `n` steps more."""
        self.update(self._seen + n, values)

    def _averaged(self, name):
        if self._stateful is not None:
            return name not in self._stateful
        return self._stateless is None or name in self._stateless

    def _tenths(self, current):
        """The tenths of the target done (0 when it is unknown)."""
        return current * LINES_PER_TARGET // self.target if self.target else 0

    def _line(self, current, now, finalize):
        elapsed = now - self._start
        line = f"{self.unit_name} {current}" + (f"/{self.target}" if self.target else "")
        line += f" - {elapsed:.0f}s"
        if self.target and current and not finalize:
            line += f" - ETA {elapsed / current * (self.target - current):.0f}s"
        for name, (total, count) in self._values.items():
            mean = total / count
            line += f" - {name}: {mean:.4f}" if abs(mean) > 1e-3 else f" - {name}: {mean:.4e}"
        return line
