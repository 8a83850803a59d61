"""Look at what a download brought: a summary and plots (``finkdl show``), the cutouts as
FITS or PNG (``finkdl cutouts``) and an object's light curve (``finkdl lightcurve``).

The summary needs only pyarrow; plots, PNGs and FITS headers need the ``show`` extra
(matplotlib, astropy), imported through :func:`need` so that its absence is a one-line error
saying what to install rather than a traceback.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import ConfigError


def need(module: str) -> ModuleType:
    """``module`` imported, or a ConfigError naming the extra that brings it (exit 2, as for
    the hats extra: the install, not the folder, is what to change)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ConfigError(f"this needs {package}, which is not installed ({exc})",
                          hint="pip install 'finkdl[show]'") from exc
