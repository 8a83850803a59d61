"""The files of one flush: one per label, filled while the alerts arrive, then made durable.

A flush covers one offset range of one Kafka partition and writes one file per label (plus
one in ``_quarantine`` for values that would not decode). Its files fill under temporary
names while the alerts arrive (``Spool``); only when ``finish`` returns are the alerts on
disk under their final names, and only then may their offsets be committed (finkdl.commit).
"""
from __future__ import annotations

import io
import json
import os
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .avrobin import block, container_header
from .buffer import Flush
from .conform import conform
from .errors import OutputError
from .naming import QUARANTINE_DIR, file_name
from .partitioning import Label, Partitioning, column, drop_label_columns, label_dir
from .storage import Storage

QUARANTINE_SCHEMA = pa.schema([
    ("topic", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()),
    ("timestamp_ms", pa.int64()), ("key", pa.binary()), ("value", pa.binary()),
    ("reason", pa.string()),
])


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    rows: int
    bytes: int
    label: str


class Spool:
    """The files of one flush while its alerts arrive: one temporary file per label.

    The worker appends what its buffer holds as row groups whenever the buffer grows past a
    few MB, so memory stays bounded however large the flush (the file) is. ``finish`` closes
    the files and publishes them; ``discard`` removes them. A crash leaves them as temporaries
    of the partition, which its next owner removes before resuming. Avro output keeps the raw
    values until ``finish`` (its header holds the row count).
    """

    def __init__(self, storage: Storage, topic: str, partition: int, first: int,
                 part: Partitioning, fmt: str, schema_text: str, topic_id: str | None = None) -> None:
        self.storage, self.topic, self.partition, self.first = storage, topic, partition, first
        self.topic_id = topic_id  # kept in every file: tells an earlier topic of the same name
        self.part, self.fmt, self.schema_text = part, fmt, schema_text
        self.sinks: dict[Label, _ParquetSink | _AvroSink] = {}

    def add(self, groups: dict[Label, list[pa.Table]], raw: dict[Label, list[bytes]] | None,
            schema: pa.Schema | None) -> None:
        """Append each label's rows to its file (opened on first use); Parquet tables are cast
        to ``schema``, the folder's (finkdl.folder)."""
        with self._failing_cleanly(self.storage.root):
            for label, chunks in groups.items():
                sink = self.sinks.get(label)
                if sink is None:
                    sink = self.sinks[label] = self._open(label)
                if isinstance(sink, _AvroSink):
                    sink.add(raw[label])
                else:
                    sink.add([drop_label_columns(c, self.part) for c in chunks], schema)

    def finish(self, flush: Flush, schema: pa.Schema | None) -> list[WrittenFile]:
        """Put every file of the flush in place durably, its rows all added (``add``)."""
        n_files = len(self.sinks) + (1 if flush.bad else 0)
        meta = {"finkdl.topic": flush.topic, "finkdl.partition": str(flush.partition),
                "finkdl.first_offset": str(flush.first), "finkdl.last_offset": str(flush.last),
                "finkdl.messages": str(flush.messages), "finkdl.files": str(n_files),
                **({"finkdl.topic_id": self.topic_id} if self.topic_id else {})}
        name = file_name(flush.partition, flush.first, flush.last, n_files, self.fmt, flush.topic)
        written, moves = [], []
        for label, sink in self.sinks.items():
            path = sink.tmp.with_name(name)
            with self._failing_cleanly(path.parent):
                size = sink.close({**meta, "finkdl.rows": str(sink.rows)})
                if schema is not None and isinstance(sink, _ParquetSink) and not sink.schema.equals(schema):
                    rewrite(self.storage, sink.tmp, schema)  # the folder's schema widened meanwhile
            written.append(WrittenFile(path, sink.rows, size, label_name(label)))
            moves.append((sink.tmp, path))
        with self._failing_cleanly(self.storage.root):
            self.storage.publish(moves)
        self.sinks.clear()
        if flush.bad:
            table = quarantine_table(flush)
            path = self.storage.root / QUARANTINE_DIR / file_name(
                flush.partition, flush.first, flush.last, n_files, "parquet", flush.topic, "quarantine")
            size = self.storage.write_durably(path, lambda f: write_parquet(
                f, [table], {**meta, "finkdl.rows": str(table.num_rows)}))
            written.append(WrittenFile(path, table.num_rows, size, QUARANTINE_DIR))
        return written

    def discard(self) -> None:
        """Remove the files written so far (their range will be read again)."""
        for sink in self.sinks.values():
            sink.abort()
        self.storage.delete(sink.tmp for sink in self.sinks.values())
        self.sinks.clear()

    def _open(self, label: Label) -> _ParquetSink | _AvroSink:
        folder = label_dir(self.part, label)
        where = self.storage.root / folder if folder else self.storage.root
        # Named as a range of one offset, file count 0: a temporary of this partition to
        # anyone resuming it (Storage.temporaries), never a data file.
        tmp = self.storage.new_file(where / file_name(self.partition, self.first, self.first, 0,
                                                      self.fmt, self.topic))
        if self.fmt == "avro":
            return _AvroSink(tmp, self.schema_text)
        return _ParquetSink(tmp, self.storage)

    @contextmanager
    def _failing_cleanly(self, folder: Path) -> Iterator[None]:
        """A file that cannot be written takes the whole flush with it: no half of it stays."""
        try:
            yield
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {folder}: {exc.strerror or exc}",
                              hint="free some space or choose another --outdir; nothing past "
                                   "the files already on disk was committed, rerun to resume") from exc
        except OutputError:
            self.discard()
            raise


class _ParquetSink:
    """One label's Parquet file, open for appending row groups."""

    def __init__(self, tmp: Path, storage: Storage) -> None:
        self.tmp, self.storage, self.rows = tmp, storage, 0
        self.written_back = 0  # bytes of the file whose writeback has been started
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None

    def add(self, tables: list[pa.Table], schema: pa.Schema | None) -> None:
        if self.writer is None:  # Arrow's own file, not a Python one: writes keep off the GIL
            self.schema = schema if schema is not None else tables[0].schema
            self.writer = parquet_writer(str(self.tmp), self.schema, tables[0])
        tables = [conform(t, self.schema) for t in tables]
        self.writer.write_table(pa.concat_tables(tables), row_group_size=ROW_GROUP_ROWS)
        self.rows += sum(t.num_rows for t in tables)
        self.written_back = self.storage.written_back(self.tmp, self.written_back)

    def close(self, meta: dict[str, str]) -> int:
        """Write the footer and give the file's size; the caller fsyncs."""
        self.writer.add_key_value_metadata(meta)
        self.writer.close()
        return self.tmp.stat().st_size

    def abort(self) -> None:
        try:
            if self.writer is not None:
                self.writer.close()
        except Exception:  # a writer that failed mid-way may not close: the file goes anyway
            pass


class _AvroSink:
    """One label's Avro file: values kept until the header, which holds the counts, is known."""

    def __init__(self, tmp: Path, schema_text: str) -> None:
        self.tmp, self.schema_text, self.rows = tmp, schema_text, 0
        self.values: list[bytes] = []

    def add(self, values: list[bytes]) -> None:
        self.values.extend(values)
        self.rows = len(self.values)

    def close(self, meta: dict[str, str]) -> int:
        """Write the whole file and give its size; the caller fsyncs."""
        with open(self.tmp, "wb") as f:
            write_avro(f, self.schema_text, self.values, meta)
            return f.tell()

    def abort(self) -> None:
        """Nothing is open until ``close``."""


def label_name(label: tuple) -> str:
    """A label as people read it in summaries: values joined by '/', null shown as (null)."""
    return "/".join("(null)" if v is None else str(v) for v in label)


def quarantine_table(flush: Flush) -> pa.Table:
    """Undecodable messages, raw, with where they came from and why they failed."""
    bad = flush.bad
    return pa.Table.from_pydict({
        "topic": [flush.topic] * len(bad), "partition": [flush.partition] * len(bad),
        "offset": [b.offset for b in bad], "timestamp_ms": [b.timestamp_ms for b in bad],
        "key": [b.key for b in bad], "value": [b.value for b in bad],
        "reason": [b.reason for b in bad],
    }, schema=QUARANTINE_SCHEMA)


ROW_GROUP_ROWS = 50_000
BIG_ROW_BYTES = 16 * 1024  # alerts with cutouts: ~50 KB


def parquet_writer(sink: io.RawIOBase | str, schema: pa.Schema, sample: pa.Table) -> pq.ParquetWriter:
    """zstd level 1 without dictionaries: on alerts (mostly distinct floats) dictionaries cost
    time and make files bigger. Binary columns (cutouts) get snappy, which costs little on the
    small row groups a spool writes, or nothing when ``sample``, the file's first rows, shows
    they do not shrink (gzipped FITS).

    Rows as large as alerts with cutouts make row groups of a few dozen rows (a worker's
    buffers are bounded in bytes), hence pages of a few hundred bytes, on which zstd's set-up
    for each page costs more than the compressing: such files get snappy throughout.
    Figures for each choice: bench/results.md."""
    codecs, levels = _compression(schema)
    codecs = {path: "none" if codec == "snappy" and _incompressible(sample, path) else codec
              for path, codec in codecs.items()}
    if sample.num_rows and sample.nbytes / sample.num_rows > BIG_ROW_BYTES:
        codecs = {path: "snappy" if codec == "zstd" else codec for path, codec in codecs.items()}
        levels = {}
    # Min and max of cutouts are never stored (values past 4 KB are dropped from statistics)
    # but would be computed all the same; those of a list's items (a light curve's history)
    # select no row group a reader could skip, and cost a tenth of the writing.
    statistics = [path for path in _outside_lists(schema) if codecs.get(path) != "none"]
    return pq.ParquetWriter(sink, with_pandas_metadata(schema), compression=codecs,
                            compression_level=levels or None, use_dictionary=False,
                            write_statistics=statistics)


_NULLABLE = {pa.int8(): "Int8", pa.int16(): "Int16", pa.int32(): "Int32", pa.int64(): "Int64"}


def with_pandas_metadata(schema: pa.Schema) -> pa.Schema:
    """``schema`` telling pandas to read its top-level integer columns as nullable integers.

    pandas reads an integer column holding a null as float64 by default, which changes every
    64-bit id past 2**53 (a ZTF ``candid``, an LSST ``diaSourceId``). The ``pandas`` metadata
    pyarrow writes for a DataFrame says which pandas type each column had; naming
    ``Int64`` there makes ``pandas.read_parquet`` give the ids exactly, with their nulls, in
    every file alike whether or not it holds a null. Other readers ignore it."""
    columns = [{"name": f.name, "field_name": f.name, "pandas_type": str(f.type),
                "numpy_type": _NULLABLE[f.type], "metadata": None}
               for f in schema if f.type in _NULLABLE]
    if not columns:
        return schema
    meta = {"index_columns": [], "column_indexes": [], "columns": columns,
            "creator": {"library": "finkdl"}, "pandas_version": "2.0.0"}
    return schema.with_metadata({**(schema.metadata or {}), b"pandas": json.dumps(meta).encode()})


def _incompressible(sample: pa.Table, path: str, probe_bytes: int = 1 << 16) -> bool:
    """True when the first 64 KB of a binary column do not shrink by a tenth under snappy,
    which compresses 64 KB fragments one by one: one tells as much as more would, at every
    file opened. The probe comes from the first chunk holding data, rather than from the chunks
    joined, which would copy megabytes of cutouts to look at 64 KB of them."""
    try:
        chunks = column(sample, path).chunks
    except (KeyError, TypeError, pa.ArrowException):  # a column inside a list: left compressed
        return False
    for chunk in chunks:
        data = chunk.buffers()[2] if pa.types.is_binary(chunk.type) else None
        if data is not None and data.size:
            probe = data.slice(0, min(data.size, probe_bytes))
            return pa.compress(probe, codec="snappy").size > 0.9 * probe.size
    return False


@lru_cache(maxsize=32)
def _outside_lists(schema: pa.Schema) -> tuple[str, ...]:
    """Parquet paths of the leaf columns of ``schema`` that are in no list or map."""
    def leaves(kind: pa.DataType, path: str) -> list[str]:
        if pa.types.is_struct(kind):
            return [p for field in kind for p in leaves(field.type, f"{path}.{field.name}")]
        return [] if pa.types.is_list(kind) or pa.types.is_map(kind) else [path]
    return tuple(p for field in schema for p in leaves(field.type, field.name))


@lru_cache(maxsize=32)
def _compression(schema: pa.Schema) -> tuple[dict[str, str], dict[str, int]]:
    """Codec (and level) per Parquet column of ``schema``."""
    probe = io.BytesIO()
    pq.write_table(schema.empty_table(), probe)
    columns = pq.ParquetFile(pa.py_buffer(probe.getvalue())).metadata.schema
    binary = {c.path for c in columns
              if c.physical_type == "BYTE_ARRAY" and c.logical_type.type == "NONE"}
    codecs = {c.path: "snappy" if c.path in binary else "zstd" for c in columns}
    return codecs, {path: 1 for path, codec in codecs.items() if codec == "zstd"}


def write_parquet(sink: io.RawIOBase, chunks: Sequence[pa.Table], meta: dict[str, str]) -> None:
    """One Parquet file of ``chunks``, its ``finkdl.*`` facts in the file's key-value metadata."""
    with parquet_writer(sink, chunks[0].schema, chunks[0]) as out:
        for chunk in chunks:
            out.write_table(chunk, row_group_size=ROW_GROUP_ROWS)
        out.add_key_value_metadata(meta)


def rewrite(storage: Storage, path: Path, schema: pa.Schema) -> None:
    """A Parquet file in ``schema``, under its same name, with its ``finkdl.*`` metadata."""
    with storage.open(path) as f, pq.ParquetFile(f) as source:
        meta = {k.decode(): v.decode() for k, v in (source.metadata.metadata or {}).items()
                if k.startswith(b"finkdl.")}
        tables = [conform(source.read_row_group(i), schema) for i in range(source.num_row_groups)]
    storage.write_durably(path, lambda sink: write_parquet(sink, tables or [schema.empty_table()], meta))


def write_avro(sink: io.RawIOBase, schema_text: str, values: Sequence[bytes],
               meta: dict[str, str]) -> None:
    """An Avro container file whose data block is the messages' own bytes, deflated.

    Schemaless values joined are exactly a container's data block, so nothing is re-encoded.
    """
    sync = os.urandom(16)
    header = {b"avro.schema": schema_text.encode(), b"avro.codec": b"deflate",
              **{k.encode(): v.encode() for k, v in meta.items()}}
    sink.write(container_header(header, sync))
    for start in range(0, len(values), 10_000):
        chunk = values[start:start + 10_000]
        data = zlib.compress(b"".join(chunk), 1)[2:-4]  # raw deflate, as Avro specifies
        sink.write(block(len(chunk), data, sync))
