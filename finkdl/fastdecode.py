"""A whole batch of schemaless Avro values → one Arrow table, decoded by DataFusion in Rust.

The values of a batch, concatenated, are the data block of an Avro Object Container File:
with a header in front, DataFusion's Avro reader decodes them 2-30 times faster than fastavro
+ ``pa.Table.from_pylist``. The fastavro decoder (``finkdl.decode``) stays the reference and the
fallback: whenever the fast path fails or cannot vouch for its rows, the batch goes to
``decode_values``, which isolates the values that do not decode.

A block only knows its record count and byte size, not where each record ends, so a corrupt
value would shift every record after it and could still yield the right number of rows; and
DataFusion's reader spins forever when a block has bytes left once its count is used up.
Hence each value is followed by a random 16-byte mark, read as an extra column: the rows are
kept only when every mark comes back in place, which proves each value was read to exactly its
last byte (a misread matches 128 random bits by chance only). The block announces more records
than its bytes can hold, so the reader runs out of bytes (an error, in a read never asked for)
before it runs out of count (the spin); only the first ``len(values)`` rows are pulled.

Where the fast path still differs from the reference: a ``[T, "null"]`` union tag other than
0 or 1 reads as null (fastavro rejects the value), and a date or timestamp beyond Python's
years 1-9999 is kept (fastavro cannot build it). Only a value damaged inside yet read to its
exact length gets there, e.g. bytes lost within a cutout whose length prefix then swallows the
tags that follow; values cut short, padded or run together are caught by the marks.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import pyarrow as pa
from datafusion import SessionConfig, SessionContext

from .avrobin import container_header, long_bytes
from .decode import Decoded, decode_values
from .schema import Schema

_T = TypeVar("_T")

_MARK = "finkdl_mark"
_MARK_SIZE = 16
_SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Logical types both decoders turn into the same Arrow values; they differ on the others
# (uuid: fastavro gives text, DataFusion 16 bytes; local timestamps, durations…).
_SAME_LOGICAL = {"timestamp-millis", "timestamp-micros", "date", "time-millis", "time-micros", "decimal"}


@dataclass(frozen=True)
class _Container:
    """What a batch needs around it to be an Avro container file, for one schema."""

    header: bytes
    sync: bytes
    maps: tuple[str, ...]  # columns holding maps, whose keys must not repeat


def decode_batch(values: Sequence[bytes], schema: Schema, target: pa.Schema) -> Decoded:
    """Decode a batch in one go, else with the reference decoder, which isolates bad values."""
    container = _container(schema.text, target) if values else None
    if container is None:
        return decode_values(values, schema, target)
    try:
        table = _read(values, container, target)
    except Exception:  # DataFusion reports a bad value in many ways; fastavro pins it down
        table = None
    if table is None:
        return decode_values(values, schema, target)
    return Decoded(table, list(range(len(values))))


@lru_cache(maxsize=32)
def _container(text: str, target: pa.Schema) -> _Container | None:
    """The container for a schema, or None when DataFusion's types cannot become ``target``."""
    avro = json.loads(text)
    if _logical_types(avro) - _SAME_LOGICAL or _MARK in {f["name"] for f in avro["fields"]}:
        return None
    mark = {"type": "fixed", "name": "mark", "namespace": "finkdl.fastdecode", "size": _MARK_SIZE}
    marked = dict(avro, fields=[*avro["fields"], {"name": _MARK, "type": mark}])
    sync = os.urandom(16)
    meta = {b"avro.schema": json.dumps(marked).encode(), b"avro.codec": b"null"}
    header = container_header(meta, sync)
    try:
        read = _with_file([header], lambda path: SessionContext().read_avro(path).schema())
        pa.Table.from_batches([], schema=read).drop_columns([_MARK]).cast(target)
    except Exception:  # a schema DataFusion cannot read, or a type that does not cast to target
        return None
    return _Container(header, sync, tuple(f.name for f in target if _holds_map(f.type)))


def _read(values: Sequence[bytes], container: _Container, target: pa.Schema) -> pa.Table | None:
    """The batch as ``target``, or None when the rows cannot be vouched for."""
    n = len(values)
    marks = os.urandom(_MARK_SIZE * n)
    size = sum(map(len, values)) + len(marks)
    # A record holds at least its mark, so a count of n + size is never used up.
    parts = [container.header, long_bytes(n + size), long_bytes(size), *([b""] * (2 * n)), container.sync]
    parts[3:-1:2] = values
    parts[4:-1:2] = [marks[i:i + _MARK_SIZE] for i in range(0, len(marks), _MARK_SIZE)]
    table = pa.Table.from_batches(_with_file(parts, lambda path: _first_rows(path, n)))
    if table.num_rows != n:
        return None
    read_marks = table.column(_MARK).combine_chunks()
    start = read_marks.offset * _MARK_SIZE
    if read_marks.null_count or read_marks.buffers()[1][start:start + len(marks)].to_pybytes() != marks:
        return None
    table = table.drop_columns([_MARK]).cast(target)
    if any(_repeats_keys(table.column(name).combine_chunks()) for name in container.maps):
        return None
    return table


def _first_rows(path: str, n: int) -> list[pa.RecordBatch]:
    """The batches holding the first ``n`` rows, without asking for the read that must fail."""
    ctx = SessionContext(SessionConfig().with_batch_size(n).with_target_partitions(1))
    batches, rows = [], 0
    for batch in ctx.read_avro(path).execute_stream():
        batches.append(batch.to_pyarrow())
        rows += batches[-1].num_rows
        if rows >= n:
            break
    return batches


def _with_file(parts: list[bytes], use: Callable[[str], _T]) -> _T:
    """``use(path)`` on a file made of ``parts``, deleted right after: DataFusion reads paths.

    In memory (/dev/shm) when there is room: Docker gives /dev/shm only 64 MB by default.
    """
    size = sum(map(len, parts))
    where = _SHM if _SHM and shutil.disk_usage(_SHM).free > 2 * size else None
    fd, path = tempfile.mkstemp(suffix=".avro", dir=where)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(parts))  # one copy and one call: writelines costs a call per part
        return use(path)
    finally:
        os.unlink(path)


def _repeats_keys(array: pa.Array) -> bool:
    """True when a map repeats a key: fastavro keeps the last value only, DataFusion all."""
    kind = array.type
    if pa.types.is_map(kind):
        offsets = array.offsets.to_numpy()
        keys = array.keys.slice(offsets[0], offsets[-1] - offsets[0])
        owners = np.repeat(np.arange(len(array)), np.diff(offsets))
        pairs = pa.table({"owner": owners, "key": keys}).group_by(["owner", "key"]).aggregate([])
        return pairs.num_rows != len(keys) or _repeats_keys(array.items)
    if pa.types.is_struct(kind):
        return any(_repeats_keys(array.field(i)) for i in range(kind.num_fields))
    if pa.types.is_list(kind):
        return _repeats_keys(array.flatten())
    return False


def _holds_map(kind: pa.DataType) -> bool:
    return pa.types.is_map(kind) or any(_holds_map(kind.field(i).type) for i in range(kind.num_fields))


def _logical_types(node: Any) -> set[str]:
    """Every ``logicalType`` named anywhere in an Avro schema."""
    if isinstance(node, dict):
        found = {node["logicalType"]} if isinstance(node.get("logicalType"), str) else set()
        return found.union(*(_logical_types(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_logical_types(v) for v in node))
    return set()
