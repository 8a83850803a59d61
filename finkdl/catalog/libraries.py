"""The ``hats`` extra: hats, hats-import, lsdb and Dask, imported only by ``finkdl hats``."""
from __future__ import annotations

import importlib.util

from ..errors import ConfigError

MODULES = ("hats", "hats_import", "lsdb", "dask.distributed")


def missing() -> list[str]:
    """The extra's modules that cannot be imported here."""
    absent = []
    for name in MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # dask itself absent, asked for dask.distributed
            found = False
        if not found:
            absent.append(name.split(".")[0].replace("_", "-"))
    return absent


def require() -> None:
    """Raise a one-line ConfigError naming the extra when one of its libraries is absent."""
    absent = missing()
    if absent:
        raise ConfigError(f"finkdl hats needs {', '.join(absent)}, not installed here",
                          hint="pip install 'finkdl[hats]'")
