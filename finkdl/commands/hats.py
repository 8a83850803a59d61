"""``finkdl hats``: a downloaded folder as a HATS catalog for LSDB, or added to one."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..catalog.build import run_hats
from ..catalog.settings import DEFAULT_ORDER, HatsConfig, Outcome
from ..errors import ConfigError
from ..output import is_object_storage, location
from .common import CONTEXT, handle_errors


@click.command("hats", context_settings=CONTEXT)
@click.argument("outdir")  # plain text: a Path would make s3://b/p s3:/b/p
@click.argument("catalog")
@click.option("--name", help="The catalog's name in its properties [default: CATALOG's folder name].")
@click.option("--ra", help="Column of the right ascension, dotted when nested [default: the "
              "survey's: candidate.ra; diaSource.ra].")
@click.option("--dec", help="Column of the declination [default: candidate.dec; diaSource.dec; "
              "ELASTiCC diaSource.decl].")
@click.option("--highest-order", type=click.IntRange(0, 19),
              help=f"Smallest pixels a crowded area is split into [default: {DEFAULT_ORDER}].")
@click.option("--pixel-threshold", type=click.IntRange(1),
              help="Most alerts in one pixel [default: about 512 MB of alerts read whole].")
@click.option("--scheduler", metavar="ADDRESS", help="A Dask scheduler to run on "
              "(tcp://host:8786) [default: a local cluster, one worker per core].")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars on stderr [default: when it is a terminal].")
@handle_errors
def hats_command(outdir: str, catalog: str, name: str | None, ra: str | None, dec: str | None,
                 highest_order: int | None, pixel_threshold: int | None, scheduler: str | None,
                 progress: bool | None) -> None:
    """Build a HATS catalog (LSDB's format) of the alerts in OUTDIR, or add them to CATALOG.

    OUTDIR is a folder or s3://BUCKET/PREFIX; CATALOG is a folder. A CATALOG that exists gets
    the alerts it does not hold yet; the pixels they do not touch are not rewritten, and the
    new version replaces the old one only once it is whole.
    """
    check_places(outdir, catalog)
    config = HatsConfig(location(outdir), Path(catalog), name, highest_order, pixel_threshold,
                        ra, dec, scheduler, sys.stderr.isatty() if progress is None else progress)
    click.echo(summary(run_hats(config)))
    click.echo(f"open it with: lsdb.read_hats({str(catalog)!r})")


def check_places(outdir: str, catalog: str) -> None:
    """A ConfigError for a place finkdl hats cannot use: the catalog is switched to its next
    version by a rename, which object storage does not have."""
    if "://" in catalog:
        raise ConfigError(f"{catalog}: the catalog is written to a folder of a local or shared "
                          "file system, not to object storage (OUTDIR may be s3://)")
    if "://" in outdir and not is_object_storage(outdir):
        raise ConfigError(f"{outdir}: finkdl hats reads a folder or s3://BUCKET/PREFIX")


def summary(outcome: Outcome) -> str:
    if not outcome.extended:
        return (f"built {outcome.catalog}: {outcome.total:,} alerts in {outcome.pixels:,} "
                f"pixels, {outcome.seconds:.0f} s")
    return (f"added {outcome.added:,} alerts to {outcome.catalog} ({outcome.skipped:,} already "
            f"there): {outcome.total:,} alerts in {outcome.pixels:,} pixels, "
            f"{outcome.rewritten:,} written, {outcome.seconds:.0f} s")
