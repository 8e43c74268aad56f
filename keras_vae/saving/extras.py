"""The optional packages an export format needs, imported when it is asked
for, with the extra that installs them named when they are missing."""

import importlib


class MissingExtraError(ImportError):
    """An export format's packages are not installed."""


def require(module, package, extra, what):
    """Imports `module` (of the PyPI `package`), or raises `MissingExtraError`
    saying that `what` needs it and which keras-vae extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{what} needs the package {package}, which is not installed: "
            f"pip install 'keras-vae[{extra}]' installs it ({error})."
        ) from error
