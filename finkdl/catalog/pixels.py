"""One pixel of a catalog with a later download's alerts added: what each Dask task does.

A pixel's rows are read whole, as hats-import's reduce step and LSDB read them (the pixel
threshold bounds them). An alert already in the pixel (same survey id: the same alert is at
the same place, so in the same pixel) is not added again. A pixel grown past the threshold
is split into its four children, again until each holds at most the threshold or the
catalog's highest order is reached; only children holding alerts are written.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HEALPIX = "_healpix_29"


@dataclass(frozen=True)
class Merged:
    """What became of one pixel of the new alerts."""

    written: tuple[tuple[int, int], ...]  # (order, pixel) of the files written
    kept: tuple[int, int] | None  # the old file, linked unchanged, when nothing was added
    added: int
    skipped: int
    added_cells: dict[int, int]  # added alerts per pixel of the catalog's point map


def first_of_each(table: pa.Table, key: str) -> pa.Table:
    """``table`` without the later rows of a repeated ``key``."""
    if table.num_rows == 0 or pc.count_distinct(table[key]).as_py() == table.num_rows:
        return table
    indexed = table.append_column("__row", pa.array(np.arange(table.num_rows)))
    firsts = indexed.group_by(key, use_threads=False).aggregate([("__row", "min")])["__row_min"]
    return table.take(np.sort(firsts.to_numpy()))


def split(table: pa.Table, order: int, pixel: int, threshold: int, highest: int
          ) -> list[tuple[tuple[int, int], pa.Table]]:
    """The pixel's rows, or its children's when they are more than ``threshold``."""
    if table.num_rows <= threshold or order >= highest:
        return [((order, pixel), table)]
    child = pc.shift_right(table[HEALPIX], 2 * (29 - order - 1)).to_numpy()
    out = []
    for value in np.unique(child):
        out += split(table.filter(pa.array(child == value)), order + 1, int(value), threshold,
                     highest)
    return out


def write_pixel(table: pa.Table, root: Path, order: int, pixel: int, id_column: str) -> None:
    """The pixel's file, written as hats-import writes one: sorted, row groups as hats splits."""
    from hats.io import file_io, paths
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.spatial_index import split_to_row_groups

    ordering = [(HEALPIX, "ascending"), (id_column, "ascending")]
    table = table.sort_by(ordering)
    kwargs = file_io.get_parquet_write_table_kwargs(table.schema, write_table_kwargs={
        "sorting_columns": pq.SortingColumn.from_ordering(table.schema, ordering)})
    kwargs.pop("row_group_size", None)
    target = Path(paths.pixel_catalog_file(root, HealpixPixel(order, pixel)).path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(target, table.schema, **kwargs) as writer:
        for group in split_to_row_groups(table, {}, order):
            writer.write_table(group)


def merge_pixel(old: str | None, new: str, root: str, order: int, pixel: int, id_column: str,
                threshold: int, highest: int, map_order: int) -> Merged:
    """Pixel (``order``, ``pixel``) of the new version under ``root``: the old file's rows
    (None: a pixel new to the catalog) and the new alerts of file ``new`` not already there."""
    incoming = pq.read_table(new)
    before = pq.read_table(old) if old else None
    fresh = first_of_each(incoming, id_column)
    if before is not None:
        fresh = fresh.filter(pc.invert(pc.is_in(fresh[id_column], before[id_column])))
    skipped = incoming.num_rows - fresh.num_rows
    if fresh.num_rows == 0:
        return Merged((), (order, pixel) if old else None, 0, skipped, {})
    if before is not None:
        fresh = fresh.select(before.column_names).cast(before.schema)
        rows = pa.concat_tables([before.replace_schema_metadata(None),
                                 fresh.replace_schema_metadata(None)])
        rows = rows.replace_schema_metadata(before.schema.metadata)
    else:
        rows = fresh
    pieces = split(rows, order, pixel, threshold, highest)
    for (o, p), piece in pieces:
        write_pixel(piece, Path(root), o, p, id_column)
    cells, counts = np.unique(pc.shift_right(fresh[HEALPIX], 2 * (29 - map_order)).to_numpy(),
                              return_counts=True)
    return Merged(tuple(p for p, _ in pieces), None, fresh.num_rows, skipped,
                  dict(zip(cells.tolist(), counts.tolist())))
