"""A finkdl folder prepared as hats-import's input: its files, the catalog's schema, its
reader, and what a first pass over its positions found (rows, a position in every row).

The pass reads the two position columns alone (a few MB for millions of alerts), so a folder
with alerts that have no position is refused before anything is written.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ..errors import ConfigError
from ..look.alerts import Alerts, open_alerts, scan
from ..surveys import Survey
from .nested import nested_schema
from .position import DEC, RA, Position, position_for
from .reader import Files, FolderReader, uncompressed

FOOTERS = 8  # files whose footers are read at once


@dataclass(frozen=True)
class Source:
    """The alerts of a folder, ready for hats-import."""

    outdir: str  # a folder, or s3://bucket/prefix
    survey: Survey
    position: Position
    schema: pa.Schema  # the catalog's columns, without hats' _healpix_29
    files: tuple[str, ...]  # as hats-import is given them (s3://bucket/key in S3)
    rows: int
    bytes_per_row: int  # uncompressed, as Parquet counts it
    reader: FolderReader


def open_source(outdir: str | Path, ra: str | None = None, dec: str | None = None) -> Source:
    """The folder at ``outdir`` as hats-import's input, or a ConfigError saying why not."""
    alerts = open_alerts(outdir)
    position = position_for(alerts.survey, alerts.dataset.schema, ra, dec)
    data = pa.schema([f for f in alerts.dataset.schema if f.name not in alerts.keys])
    labels = pa.schema([f for f in alerts.dataset.schema if f.name in alerts.keys])
    schema = pa.schema(list(nested_schema(data)) + list(labels) + [pa.field(RA, pa.float64()),
                                                     pa.field(DEC, pa.float64())])
    rows = check_positions(alerts, position)
    opener = files_of(alerts)
    per_file = {opener.name(f.path): ds.get_partition_keys(f.partition_expression)
                for f in alerts.dataset.get_fragments()}
    files = tuple(sorted(per_file))
    with ThreadPoolExecutor(FOOTERS) as pool:  # in S3 each footer costs two round trips
        size = sum(pool.map(lambda name: uncompressed(opener.open(name)), files))
    reader = FolderReader(schema, data, per_file, position, opener)
    return Source(alerts.outdir, alerts.survey, position, schema, files, rows,
                  max(1, size // max(1, rows)), reader)


def check_positions(alerts: Alerts, position: Position) -> int:
    """The number of alerts, once every one is known to have a position on the sky."""
    rows = missing = outside = 0
    for _file, batch in scan(alerts, {RA: position.ra, DEC: position.dec}):
        rows += batch.num_rows
        missing += pc.sum(pc.or_(pc.is_null(batch[RA]), pc.is_null(batch[DEC]))).as_py() or 0
        dec = batch[DEC].cast(pa.float64())
        outside += pc.sum(pc.or_(pc.less(dec, -90.0), pc.greater(dec, 90.0))).as_py() or 0
    if rows == 0:
        raise ConfigError(f"{alerts.outdir} holds no alerts", hint="nothing to catalog")
    if missing:
        raise ConfigError(f"{missing:,} of the {rows:,} alerts of {alerts.outdir} have no sky "
                          f"position ({position.ra}, {position.dec} null)",
                          hint="name other columns with --ra and --dec")
    if outside:
        raise ConfigError(f"{outside:,} alerts of {alerts.outdir} have a {position.dec} outside "
                          "[-90, 90]", hint="is it a declination in degrees? see --dec")
    return rows


def files_of(alerts: Alerts) -> Files:
    """How the folder's files are opened, here and on the Dask workers."""
    from ..objectstore import ObjectStore  # boto3 itself is imported only to read s3://

    if isinstance(alerts.storage, ObjectStore):
        return Files(s3=True, endpoint=alerts.storage.endpoint)
    return Files()


def default_threshold(bytes_per_row: int, pixel_bytes: int = 512 * 2**20) -> int:
    """Rows per pixel so that a pixel holds about ``pixel_bytes`` once read (hats-import's
    reduce step and LSDB read a pixel whole): 1,000,000 for light alerts, fewer with
    cutouts and long histories; never fewer than 1,000."""
    return max(1_000, min(1_000_000, pixel_bytes // max(1, bytes_per_row)))
