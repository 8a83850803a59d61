"""``finkdl hats``: a folder's alerts as a new HATS catalog, or added to an existing one.

hats-import does the work (map the positions to HEALPix, choose the pixels, split the rows
into per-pixel shards, write one Parquet file per pixel, then ``_metadata``, the partition
list and ``properties``); finkdl gives it the folder through :class:`.reader.FolderReader`,
a Dask client, and the catalog's settings, which it records in ``properties`` so that the
next download is added the same way.
"""
from __future__ import annotations

import re
import time

from ..errors import ConfigError
from . import libraries
from .settings import HatsConfig, Outcome


def catalog_name(config: HatsConfig) -> str:
    """``--name``, or the catalog folder's name made of the characters hats-import allows."""
    name = config.name or re.sub(r"[^A-Za-z0-9._-]", "_", config.catalog.name)
    if config.name and re.search(r"[^A-Za-z0-9._-]", name):
        raise ConfigError(f"--name {name!r}: a catalog name is letters, digits, '.', '_', '-'")
    return name


def run_hats(config: HatsConfig) -> Outcome:
    """Build ``config.catalog`` from ``config.outdir``, or add the folder's alerts to it."""
    libraries.require()
    from . import existing, fresh
    from .source import open_source
    from .versions import locked

    catalog = config.catalog
    name = catalog_name(config)
    if catalog.exists() and not catalog.is_dir():
        raise ConfigError(f"{catalog} is a file, not a HATS catalog")
    current = existing.open_existing(catalog)  # None: nothing there yet
    source = open_source(config.outdir, config.ra, config.dec)
    if current is not None:
        existing.check_fits(current, source, config)
    start = time.monotonic()
    with locked(catalog):  # an interrupted run's leftovers are cleared: look again
        current = existing.open_existing(catalog)
        if current is None:
            outcome = fresh.build(config, name, source)
        else:
            existing.check_fits(current, source, config)
            from .extend import extend
            outcome = extend(config, current, source)
    return Outcome(**{**outcome.__dict__, "seconds": time.monotonic() - start})
