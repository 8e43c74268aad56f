"""An export's check of itself: each signature, run in the export's own
runtime, against the Keras model on inputs the check makes itself, so that
exporting needs no data."""

import numpy as np

from keras_vae.saving import signatures

ROWS = 256
TOLERANCE = 1e-5
# Logits are unbounded sums of ~h_dim terms, which runtimes add in their own
# order: theirs is the difference relative to the largest logit of the batch
# (absolute below 1). Probabilities, means and log-variances, absolute.
RELATIVE = frozenset({"logits"})


class ExportCheckError(RuntimeError):
    """An export's runtime computes something else than the Keras model."""


def inputs(model, rows=ROWS, seed=0):
    """The check's inputs: seeded uniform images `x`, and N(0, I) codes `z` and noise `eps`."""
    rng = np.random.default_rng(seed)
    return {"x": rng.uniform(size=(rows, model.x_dim)).astype(np.float32),
            "z": rng.standard_normal((rows, model.z_dim)).astype(np.float32),
            "eps": rng.standard_normal((rows, model.z_dim)).astype(np.float32)}


def cases(model, given):
    """(signature, its inputs, the Keras model's outputs) for the random-free signatures."""
    functions = signatures.random_free(model, checked=False)
    found = []
    for name, function in functions.items():
        arguments = {arg: given[arg] for arg, _ in signatures.INPUTS[name]}
        found.append((name, arguments, function(**arguments)))
    return found


def difference(output, got, expected):
    """The largest difference of `got` from `expected`, as `TOLERANCE` measures it."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        return np.inf
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0))) if output in RELATIVE else 1.0
    return float(np.max(np.abs(got - expected) / scale, initial=0.0))


def check(run, checked_cases, what):
    """Raises `ExportCheckError` naming the first output of `checked_cases`
    that `run(signature, inputs)` computes farther than `TOLERANCE` from the
    Keras model, or that it lacks; returns the largest difference otherwise.

    `what` names the export in the message: "the ONNX export", say.
    """
    largest = 0.0
    for name, arguments, expected in checked_cases:
        got = run(name, arguments)
        for output, value in expected.items():
            if output not in got:
                raise ExportCheckError(f"{what}'s signature `{name}` has no output `{output}`.")
            gap = difference(output, got[output], value)
            if not gap <= TOLERANCE:
                raise ExportCheckError(
                    f"{what}'s signature `{name}` computes `{output}` {gap:.3g} away from the "
                    f"Keras model (the limit is {TOLERANCE:g}) on the check's own inputs: "
                    "its runtime does not compute what the model does. Nothing was written.")
            largest = max(largest, gap)
    return largest
