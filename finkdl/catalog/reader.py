"""The folder's files as hats-import reads its input: one file at a time, in bounded chunks.

hats-import maps each input file to HEALPix pixels (reading only ``ra`` and ``dec``), then
splits it into per-pixel shards (reading every column). This reader serves both from
finkdl's own ``part-…`` files, with no flat copy of the folder on disk: ``ra`` and ``dec`` are
the survey's position columns, the Hive labels come from the file's folder, and every file
is read in the folder's schema, so that files of several schema versions make shards of one
schema. It is pickled and sent to the Dask workers, so it holds plain data only.
"""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..conform import conform
from ..partitioning import column
from .libraries import require
from .nested import to_nested
from .position import DEC, RA, Position

require()  # the hats extra, named in one line where it is missing: the reader subclasses its class
from hats_import.catalog.file_readers import InputReader  # noqa: E402

CHUNK_BYTES = 64 * 2**20  # uncompressed bytes of a chunk, whatever an alert weighs


def chunk_rows(source: pq.ParquetFile, target: int = CHUNK_BYTES) -> int:
    """Rows of ``source`` holding about ``target`` uncompressed bytes (cutouts and histories
    make an alert weigh from 1 kB to 100 kB)."""
    meta = source.metadata
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    per_row = max(1, size // max(1, meta.num_rows))
    return max(1, min(meta.num_rows or 1, target // per_row))


class FolderReader(InputReader):
    """Reads a finkdl file as a table of the catalog's columns (``schema``): the folder's data
    columns (histories in LSDB's nested layout), its Hive labels (``labels``: file → key →
    value), then ``ra`` and ``dec``."""

    def __init__(self, schema: pa.Schema, data: pa.Schema, labels: dict[str, dict[str, object]],
                 position: Position, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.schema = schema
        self.data = data
        self.labels = labels
        self.position = position
        self.chunk_bytes = chunk_bytes

    def read(self, input_file, read_columns=None) -> Iterator[pa.Table]:
        path = str(input_file)
        source = pq.ParquetFile(path)
        wanted = read_columns or self.schema.names
        sky = {RA: self.position.ra, DEC: self.position.dec}
        stored = [n for n in self.data.names if n in wanted and n in source.schema_arrow.names]
        leaves = [p for n, p in sky.items() if n in wanted]
        columns = list(dict.fromkeys(stored + leaves))
        for batch in source.iter_batches(batch_size=chunk_rows(source, self.chunk_bytes),
                                         columns=columns):
            yield self._table(pa.Table.from_batches([batch]), path, wanted)

    def _table(self, raw: pa.Table, path: str, wanted: list[str]) -> pa.Table:
        data = conform(raw.select([n for n in raw.column_names if n in self.data.names]),
                       pa.schema([f for f in self.data if f.name in wanted]))
        labels = self.labels.get(path, {})
        arrays = []
        for field in self.schema:
            if field.name not in wanted:
                continue
            if field.name in data.column_names:
                arrays.append(to_nested(data.column(field.name)))
            elif field.name in (RA, DEC):
                leaf = self.position.ra if field.name == RA else self.position.dec
                arrays.append(column(raw, leaf).cast(pa.float64()))
            else:
                value = pa.scalar(labels.get(field.name), type=field.type)
                arrays.append(pa.chunked_array([pa.repeat(value, raw.num_rows)]))
        return pa.Table.from_arrays(arrays, schema=pa.schema([f for f in self.schema
                                                              if f.name in wanted]))
