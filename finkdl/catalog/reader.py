"""The folder's files as hats-import reads its input: one file at a time, in bounded chunks.

hats-import maps each input file to HEALPix pixels (reading only ``ra`` and ``dec``), then
splits it into per-pixel shards (reading every column). This reader serves both from
finkdl's own ``part-…`` files, with no flat copy of the folder on disk: ``ra`` and ``dec`` are
the survey's position columns, the Hive labels come from the file's folder, and every file
is read in the folder's schema, so that files of several schema versions make shards of one
schema. It is pickled and sent to the Dask workers, so it holds plain data only.

A folder in object storage (``s3://bucket/prefix``) is read through pyarrow's S3 file system:
hats-import is given each file as ``s3://bucket/key`` (it hands the names to the reader
untouched, and checks nothing), and the reader opens ``bucket/key`` in that file system.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
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


@dataclass(frozen=True)
class Files:
    """Where a folder's files are opened: this file system, or the S3 server at ``endpoint``
    (None: AWS's own). Only the endpoint goes to the Dask workers, in the reader hats-import
    pickles into a file: each process makes its S3 file system from the standard AWS chain
    it inherits (the variables, a profile), so no secret is written down."""

    s3: bool = False
    endpoint: str | None = None

    def name(self, path: str) -> str:
        """The name hats-import is given for a path of the folder's dataset (``bucket/key``
        in S3, as pyarrow's S3 file system names objects)."""
        return f"s3://{path}" if self.s3 else path

    def open(self, name: str) -> pq.ParquetFile:
        if not self.s3:
            return pq.ParquetFile(name)
        return pq.ParquetFile(name.removeprefix("s3://"), filesystem=_s3(self.endpoint))


@lru_cache(maxsize=4)
def _s3(endpoint: str | None) -> object:
    """One S3 file system per process and endpoint: every file of a task opens through it."""
    from ..s3client import arrow_filesystem
    return arrow_filesystem(endpoint)


def chunk_rows(source: pq.ParquetFile, target: int = CHUNK_BYTES) -> int:
    """Rows of ``source`` holding about ``target`` uncompressed bytes (cutouts and histories
    make an alert weigh from 1 kB to 100 kB)."""
    per_row = max(1, uncompressed(source) // max(1, source.metadata.num_rows))
    return max(1, min(source.metadata.num_rows or 1, target // per_row))


def uncompressed(source: pq.ParquetFile) -> int:
    """The file's bytes once read, as its footer counts them (no page is read)."""
    meta = source.metadata
    return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))


class FolderReader(InputReader):
    """Reads a finkdl file as a table of the catalog's columns (``schema``): the folder's data
    columns (histories in LSDB's nested layout), its Hive labels (``labels``: file → key →
    value), then ``ra`` and ``dec``; ``files`` opens them."""

    def __init__(self, schema: pa.Schema, data: pa.Schema, labels: dict[str, dict[str, object]],
                 position: Position, files: Files = Files(), chunk_bytes: int = CHUNK_BYTES
                 ) -> None:
        self.schema = schema
        self.data = data
        self.labels = labels
        self.position = position
        self.files = files
        self.chunk_bytes = chunk_bytes

    def read(self, input_file, read_columns=None) -> Iterator[pa.Table]:
        path = str(input_file)
        source = self.files.open(path)
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
