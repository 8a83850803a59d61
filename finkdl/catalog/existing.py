"""A catalog ``finkdl hats`` wrote before, and whether a folder's alerts can be added to it.

finkdl records in the catalog's ``properties`` what it needs to add the next download the same
way: the survey, where the position was read, the highest order, and (hats' own) the pixel
threshold and the id column. A folder of another survey, position or schema is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..errors import ConfigError
from .position import Position
from .source import Source

SURVEY, POSITION, ORDER = "finkdl_survey", "finkdl_position", "finkdl_highest_order"
HEALPIX = "_healpix_29"


@dataclass(frozen=True)
class Existing:
    """The catalog as it is on disk."""

    path: Path
    properties: object  # hats.catalog.TableProperties
    pixels: tuple  # hats HealpixPixel, one per file
    schema: pa.Schema  # without hats' _healpix_29
    survey: str
    id_column: str
    position: Position
    highest_order: int
    threshold: int


def finkdl_properties(source: Source, highest_order: int) -> dict[str, str]:
    """What a new catalog's ``properties`` say of its alerts, besides hats-import's."""
    return {SURVEY: source.survey.name, POSITION: f"{source.position.ra} {source.position.dec}",
            ORDER: str(highest_order), "hats_cols_survey_id": source.survey.id_column}


def open_existing(catalog: Path) -> Existing | None:
    """The catalog at ``catalog``, None if there is nothing there, or a ConfigError if what is
    there is not a catalog ``finkdl hats`` made."""
    if not catalog.exists() or (catalog.is_dir() and not any(catalog.iterdir())):
        return None
    import hats
    from hats.io.validation import is_valid_catalog

    if not catalog.is_dir() or not is_valid_catalog(catalog):
        raise ConfigError(f"{catalog} is not a HATS catalog (no hats.properties, partition list "
                          "and dataset/ of Parquet files)",
                          hint="give a new folder, or a catalog finkdl hats made")
    opened = hats.read_hats(catalog)
    info = opened.catalog_info
    extra = info.extra_dict()
    if SURVEY not in extra or getattr(opened, "get_healpix_pixels", None) is None:
        raise ConfigError(f"{catalog} is a HATS catalog finkdl did not make (no {SURVEY} in its "
                          "properties): finkdl adds alerts only to its own",
                          hint="give a new folder to build a catalog in")
    ra, dec = str(extra[POSITION]).split()
    schema = opened.schema.remove_metadata()
    keep = pa.schema([f for f in schema if f.name != HEALPIX])
    return Existing(catalog, info, tuple(opened.get_healpix_pixels()), keep, str(extra[SURVEY]),
                    str(extra.get("hats_cols_survey_id")), Position(ra, dec),
                    int(extra[ORDER]), int(info.hats_max_rows))


def check_fits(current: Existing, source: Source, config) -> None:
    """A ConfigError if the folder's alerts cannot join the catalog as they are."""
    where = f"{source.outdir}"
    if source.survey.name != current.survey:
        raise ConfigError(f"{where} holds {source.survey.title} alerts, {current.path} "
                          f"{current.survey} alerts", hint="build a catalog of its own")
    if source.position != current.position:
        raise ConfigError(f"{current.path} takes positions from {current.position.ra} and "
                          f"{current.position.dec}, not {source.position.ra} and "
                          f"{source.position.dec}", hint="leave out --ra and --dec")
    if config.highest_order is not None and config.highest_order != current.highest_order:
        raise ConfigError(f"{current.path} was built with --highest-order "
                          f"{current.highest_order}", hint="leave out --highest-order")
    if config.pixel_threshold is not None and config.pixel_threshold != current.threshold:
        raise ConfigError(f"{current.path} was built with --pixel-threshold {current.threshold}",
                          hint="leave out --pixel-threshold")
    difference = schema_difference(current.schema, source.schema)
    if difference:
        raise ConfigError(f"the alerts of {where} do not have the columns of {current.path}: "
                          f"{difference}", hint="a folder of another schema version makes a "
                          "catalog of its own")


def schema_difference(catalog: pa.Schema, folder: pa.Schema) -> str | None:
    """The first way ``folder``'s columns differ from ``catalog``'s, or None."""
    for field in catalog:
        if field.name not in folder.names:
            return f"no column {field.name}"
        if not folder.field(field.name).type.equals(field.type):
            return f"{field.name} is {folder.field(field.name).type}, not {field.type}"
    extra = [n for n in folder.names if n not in catalog.names]
    return f"column {extra[0]} is not in the catalog" if extra else None
