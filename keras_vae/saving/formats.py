"""The format version of every file keras_vae writes: `.keras` files,
checkpoint records and SavedModel metadata."""

from keras_vae.version import __version__

# The format of `.keras` files, checkpoint records and SavedModel metadata.
# Raise it when a change would stop an older keras_vae reading them, and keep
# reading the older versions. Files from before it was recorded are version 1.
FORMAT_VERSION = 1


class FormatVersionError(ValueError):
    """A file is of a format version this keras_vae cannot read."""


def check_format_version(version, what):
    """Raises `FormatVersionError` unless this keras_vae reads format `version`.

    Args:
        version: the format version recorded in the file.
        what: str, the file, to name in the message (e.g. `"The saved VAE"`).
    """
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise FormatVersionError(
            f"{what} is of a newer or unknown format: this keras_vae ({__version__}) "
            f"reads format version {FORMAT_VERSION} and older. Upgrade keras_vae to "
            f"read it. Received: format_version={version!r}"
        )


def save_variables(store, variables):
    """Writes `variables` into a `.keras` file's variable store, by position,
    with the format version they are laid out in: unlike the config, the
    version asks nothing of `__init__` or `from_config`."""
    store["format_version"] = FORMAT_VERSION
    for i, variable in enumerate(variables):
        store[str(i)] = variable


def load_variables(store, variables, what="The saved VAE"):
    """Assigns `variables` from a store `save_variables` wrote, after checking
    its format version (files from before it was stored are version 1)."""
    keys = set(store.keys())
    version = int(store["format_version"]) if "format_version" in keys else 1
    check_format_version(version, what)
    keys.discard("format_version")
    if len(keys) != len(variables):
        raise ValueError(
            f"Expected {len(variables)} saved variables (the ten weights and "
            f"the sampler's state). Received: {len(keys)}. The file "
            "was not saved by this version of keras_vae's VAE."
        )
    for i, variable in enumerate(variables):
        variable.assign(store[str(i)])
