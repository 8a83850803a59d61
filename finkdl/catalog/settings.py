"""What ``finkdl hats`` is asked to do, and what it did: plain data every step shares."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ORDER = 8  # pixels down to 14′ across; see README for why not hats-import's 10


@dataclass(frozen=True)
class HatsConfig:
    """What ``finkdl hats`` was asked to do."""

    outdir: str | Path  # a folder, or s3://bucket/prefix (read through pyarrow's S3)
    catalog: Path
    name: str | None = None
    highest_order: int | None = None  # None: the catalog's, or DEFAULT_ORDER for a new one
    pixel_threshold: int | None = None  # None: the catalog's, or from the alerts' size
    ra: str | None = None
    dec: str | None = None
    scheduler: str | None = None
    progress: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a run did, for the command's last lines."""

    catalog: Path
    extended: bool
    added: int  # alerts written
    skipped: int  # alerts already in the catalog
    total: int
    pixels: int
    rewritten: int  # pixels written by this run (all of them for a new catalog)
    seconds: float
