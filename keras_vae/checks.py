"""Argument checks shared by the library's entry points."""

import numpy as np


def check_count(name, value, minimum=1):
    """Raises a ValueError naming `name` unless `value` is an int >= `minimum`."""
    if (
        not isinstance(value, (int, np.integer))
        or isinstance(value, bool)
        or value < minimum
    ):
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"Expected {name} to be {kind}. Received: {name}={value!r}")
