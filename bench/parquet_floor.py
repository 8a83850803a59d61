"""The Parquet floor: what writing a topic's alerts to Parquet with pyarrow costs at least.

``raw_ceiling.py --parquet DIR`` hands each batch it reads to a ``ParquetFloor``, which
decodes it with finkdl's decoder and appends it to one uncompressed Parquet file per
partition, without statistics, labels, fsync, commits or a consumer group. finkdl does all
of these besides (and compresses), so the floor shows how much of the distance between finkdl
and the raw ceiling is writing Parquet itself.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from finkdl.arrow_schema import arrow_schema
from finkdl.config import Connection
from finkdl.fastdecode import decode_batch
from finkdl.plan import find_schema
from finkdl.schema import Schema


def schema_of(servers: str, group_id: str, topic: str) -> Schema:
    """The topic's writer schema, found as finkdl's front end finds it."""
    return find_schema(Connection(servers, group_id), topic, timeout=10)[0]


class ParquetFloor:
    """Each partition's batches, decoded as they come, appended to one plain Parquet file."""

    def __init__(self, schema: Schema, outdir: Path) -> None:
        self.schema, self.arrow, self.outdir = schema, arrow_schema(schema.avro), outdir
        self.writers: dict[int, pq.ParquetWriter] = {}

    def add(self, batches: dict[int, list[bytes]]) -> None:
        for p, values in batches.items():
            table = decode_batch(values, self.schema, self.arrow).table
            if p not in self.writers:
                self.writers[p] = pq.ParquetWriter(self.outdir / f"{p}.parquet", table.schema,
                                                   compression="none", use_dictionary=False,
                                                   write_statistics=False)
            self.writers[p].write_table(table)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
