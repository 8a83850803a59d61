"""Where each survey's alerts keep their sky position, and the columns a catalog adds for it.

hats-import and LSDB want the position as top-level columns; Fink's alerts keep it in the
observation record. The catalog gets ``ra`` and ``dec`` (degrees, float64) copied from there,
and keeps the record itself as it was.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ..errors import ConfigError
from ..look.alerts import field_type
from ..surveys import Survey

RA, DEC = "ra", "dec"  # the catalog's own position columns

# ELASTiCC's lsst.v4_1 schema spells the declination ``decl``.
POSITIONS: dict[str, tuple[str, str]] = {
    "ztf": ("candidate.ra", "candidate.dec"),
    "lsst": ("diaSource.ra", "diaSource.dec"),
    "elasticc": ("diaSource.ra", "diaSource.decl"),
}


@dataclass(frozen=True)
class Position:
    """The dotted paths ``ra`` and ``dec`` are read from."""

    ra: str
    dec: str


def position_for(survey: Survey, schema: pa.Schema, ra: str | None = None,
                 dec: str | None = None) -> Position:
    """The survey's position columns (or ``ra``/``dec`` given), checked against ``schema``."""
    default = POSITIONS.get(survey.name, (None, None))
    chosen = Position(ra or default[0] or "", dec or default[1] or "")
    for flag, path in (("--ra", chosen.ra), ("--dec", chosen.dec)):
        if not path:
            raise ConfigError(f"finkdl knows no sky position of {survey.title} alerts",
                              hint="name the columns with --ra and --dec")
        kind = field_type(schema, path)
        if kind is None:
            raise ConfigError(f"the alerts have no column {path} to read the sky position from",
                              hint=f"name another with {flag} (a dotted path, e.g. candidate.ra)")
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            raise ConfigError(f"{path} is {kind}, not a number of degrees",
                              hint=f"name another column with {flag}")
    for name in (RA, DEC):
        if name in schema.names:
            raise ConfigError(f"the alerts already have a top-level column {name!r}; the catalog "
                              "adds its own", hint="rename it or leave it out with --columns")
    return chosen
