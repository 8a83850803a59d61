"""A whole batch of schemaless Avro values → one Arrow table in one call to DataFusion.

The values of a batch, concatenated, are the data block of an Avro Object Container File:
with a header in front, DataFusion's Avro reader decodes them in Rust 10-40 times faster than
fastavro + ``pa.Table.from_pylist``. The fastavro decoder (``finkdl.decode``) stays the
reference and the fallback: it isolates the values that do not decode.

A block only knows its record count and byte size, not where each record ends, so one corrupt
value would shift every record after it, and DataFusion's reader spins forever when a block
has bytes left once its count is used up. Hence each value is followed by a random 16-byte
mark, read as an extra column: the rows are kept only when every mark comes back in place,
which proves each value ended exactly where it should (a misaligned read matches 128 random
bits by chance only). The block announces more records than it holds so that the reader runs
out of bytes (an error, in a read we never ask for) before it runs out of count (the spin);
the first batch, sized to the number of values, is all we take from it.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
from datafusion import SessionConfig, SessionContext

from .decode import Decoded, decode_values
from .schema import Schema

_MARK = "finkdl_mark"
_MARK_SIZE = 16
_TMP_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Logical types both decoders turn into the same Arrow values; fastavro and DataFusion read
# the others differently (uuid: text vs 16 bytes; local timestamps, durations…).
_SAME_LOGICAL = {"timestamp-millis", "timestamp-micros", "date", "time-millis", "time-micros", "decimal"}


@dataclass(frozen=True)
class _Container:
    """What a batch needs around it to be an Avro container file DataFusion reads."""

    header: bytes
    sync: bytes
    maps: tuple[str, ...]  # the columns holding maps, whose keys must not repeat


def decode_batch(values: Sequence[bytes], schema: Schema, target: pa.Schema) -> Decoded:
    """Decode a batch in one go, else with the reference decoder, which isolates bad values."""
    container = _container(schema.text, target) if values else None
    if container is None:
        return decode_values(values, schema, target)
    try:
        table = _read(values, container, target)
    except Exception:  # DataFusion reports a corrupt value in many ways; fastavro finds it
        table = None
    if table is None:
        return decode_values(values, schema, target)
    return Decoded(table, list(range(len(values))))


@lru_cache(maxsize=32)
def _container(text: str, target: pa.Schema) -> _Container | None:
    """The container for a schema, or None when DataFusion cannot give exactly ``target``."""
    avro = json.loads(text)
    if (_logical_types(avro) - _SAME_LOGICAL) or _MARK in {f["name"] for f in avro["fields"]}:
        return None
    mark = {"name": _MARK, "type": {"type": "fixed", "name": "mark", "namespace": "finkdl.fastdecode",
                                    "size": _MARK_SIZE}}
    marked = dict(avro, fields=[*avro["fields"], mark])
    sync = os.urandom(16)
    meta = {b"avro.schema": json.dumps(marked).encode(), b"avro.codec": b"null"}
    header = b"Obj\x01" + _long(len(meta)) + b"".join(
        _long(len(k)) + k + _long(len(v)) + v for k, v in meta.items()) + _long(0) + sync
    container = _Container(header, sync, tuple(f.name for f in target if _holds_map(f.type)))
    try:
        read = _with_file([header], lambda path: SessionContext().read_avro(path).schema())
        empty = pa.Table.from_batches([], schema=read).drop_columns([_MARK])
        empty.cast(target)
    except Exception:  # a schema DataFusion cannot read, or types that do not cast to target
        return None
    return container


def _read(values: Sequence[bytes], container: _Container, target: pa.Schema) -> pa.Table | None:
    """The batch as ``target``, or None when the marks show a value was misread."""
    n = len(values)
    marks = os.urandom(_MARK_SIZE * n)
    size = sum(map(len, values)) + len(marks)
    # Every record holds a mark, so a count above the byte size can never be used up.
    parts = [container.header, _long(n + size), _long(size), *([b""] * (2 * n)), container.sync]
    parts[3:-1:2] = values
    parts[4:-1:2] = [marks[i:i + _MARK_SIZE] for i in range(0, len(marks), _MARK_SIZE)]
    batches = _with_file(parts, lambda path: _first_rows(path, n))
    table = pa.Table.from_batches(batches)
    if table.num_rows != n:
        return None
    got = table.column(_MARK).combine_chunks()
    start = got.offset * _MARK_SIZE
    if got.null_count or got.buffers()[1][start:start + len(marks)].to_pybytes() != marks:
        return None
    table = table.drop_columns([_MARK]).cast(target)
    if any(_has_duplicate_keys(table.column(name).combine_chunks()) for name in container.maps):
        return None
    return table


def _first_rows(path: str, n: int) -> list[pa.RecordBatch]:
    """Batches up to ``n`` rows, without asking for the read past them that must fail."""
    ctx = SessionContext(SessionConfig().with_batch_size(n))
    batches, rows = [], 0
    for batch in ctx.read_avro(path).execute_stream():
        batches.append(batch.to_pyarrow())
        rows += batches[-1].num_rows
        if rows >= n:
            break
    return batches


def _with_file(parts: list[bytes], use: Any) -> Any:
    """Run ``use(path)`` on a short-lived file made of ``parts`` (DataFusion reads paths)."""
    fd, path = tempfile.mkstemp(suffix=".avro", dir=_TMP_DIR)
    try:
        with os.fdopen(fd, "wb") as f:
            f.writelines(parts)
        return use(path)
    finally:
        os.unlink(path)


def _has_duplicate_keys(array: pa.Array) -> bool:
    """True when a map repeats a key: fastavro keeps only the last value, DataFusion all."""
    kind = array.type
    if pa.types.is_struct(kind):
        return any(_has_duplicate_keys(array.field(i)) for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        offsets = array.offsets.to_numpy()
        keys = array.keys.slice(offsets[0], offsets[-1] - offsets[0])
        owners = np.repeat(np.arange(len(array)), np.diff(offsets))
        pairs = pa.table({"owner": owners, "key": keys}).group_by(["owner", "key"]).aggregate([])
        return pairs.num_rows != len(keys) or _has_duplicate_keys(array.items)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_duplicate_keys(array.flatten())
    return False


def _holds_map(kind: pa.DataType) -> bool:
    if pa.types.is_map(kind):
        return True
    return any(_holds_map(kind.field(i).type) for i in range(kind.num_fields))


def _logical_types(node: Any) -> set[str]:
    """Every ``logicalType`` named anywhere in an Avro schema."""
    if isinstance(node, dict):
        found = {node["logicalType"]} if isinstance(node.get("logicalType"), str) else set()
        return found.union(*(_logical_types(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_logical_types(v) for v in node))
    return set()


def _long(n: int) -> bytes:
    """Avro's zig-zag varint encoding of a long."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
