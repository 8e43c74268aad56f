"""Weights by the original's variable names, to move them between TF1 and Keras."""

import numpy as np

# The ten variables of the original graph, in the order it creates them.
TF1_NAMES = (
    "Q_W1",
    "Q_b1",
    "Q_W2_mu",
    "Q_b2_mu",
    "Q_W2_sigma",
    "Q_b2_sigma",
    "P_W1",
    "P_b1",
    "P_W2",
    "P_b2",
)


def get_tf1_weights(model):
    """The model's ten variables as `{name: np.ndarray}`, keyed as in the original."""
    return {name: np.array(getattr(model, name).numpy()) for name in TF1_NAMES}


def set_tf1_weights(model, weights):
    """Assigns `{name: array}` (e.g. read from a TF1 session) to the model.

    All ten names must be present with the model's shapes; nothing is assigned
    unless all of them fit.
    """
    missing = [name for name in TF1_NAMES if name not in weights]
    unknown = sorted(set(weights) - set(TF1_NAMES))
    if missing or unknown:
        raise ValueError(
            f"Expected exactly the ten variables {list(TF1_NAMES)}. "
            f"Missing: {missing}; unknown: {unknown}."
        )
    values = {}
    for name in TF1_NAMES:
        variable = getattr(model, name)
        value = np.asarray(weights[name], dtype=variable.dtype)
        if value.shape != tuple(variable.shape):
            raise ValueError(
                f"Variable {name} has shape {tuple(variable.shape)}. "
                f"Received: {name}.shape={value.shape}"
            )
        values[name] = value
    for name, value in values.items():
        getattr(model, name).assign(value)
