"""Schemaless Avro message values → one Arrow table, keeping apart what will not decode.

fastavro is the reference decoder: every value is read on its own, so a corrupt message is
isolated with its reason and never takes its neighbours down with it.

A value holds at most one array item or map entry per byte of it, all its arrays and maps
together: what a worker builds from a batch stays in proportion to the batch's bytes.
Items that take bytes never go past it (fastavro runs out of bytes first); items that take none
(an array of nulls or of empty records) would let a 4 KB value hold a billion of them. Where a
schema allows those, fastavro reads a value only once the C decoder has read it past to its last
byte within the bound (``finkdl.program.read_past``); any other value is set aside unread.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Sequence

import fastavro
import pyarrow as pa

from .program import TOO_MANY_ITEMS, UNREADABLE, read_past
from .schema import Schema


@dataclass(frozen=True)
class Undecodable:
    """A value that could not be decoded: its index in the batch and why."""

    index: int
    reason: str


@dataclass
class Decoded:
    """The decoded rows of a batch; ``indices`` maps each row back to its value."""

    table: pa.Table
    indices: list[int]
    bad: list[Undecodable] = field(default_factory=list)


def read_record(value: bytes, schema: Schema) -> dict:
    """Decode one schemaless Avro value; trailing bytes mean it was not written with this schema."""
    stream = io.BytesIO(value)
    record = fastavro.schemaless_reader(stream, schema.parsed, None)
    if stream.tell() != len(value):
        raise ValueError(f"{len(value) - stream.tell()} bytes left over after the record")
    return record


def decode_values(values: Sequence[bytes], schema: Schema, target: pa.Schema) -> Decoded:
    """Decode a batch with fastavro and build its Arrow table in ``target``'s types."""
    records, indices, bad = [], [], []
    read = read_past(values, schema) or [None] * len(values)
    for i, (value, status) in enumerate(zip(values, read)):
        if status == TOO_MANY_ITEMS:
            bad.append(Undecodable(i, "more array items and map entries than bytes"))
            continue
        if status == UNREADABLE:
            bad.append(Undecodable(i, "not Avro of this schema: it does not read to exactly its last byte"))
            continue
        try:
            records.append(read_record(value, schema))
            indices.append(i)
        except Exception as exc:  # any failure means this one value is kept raw
            bad.append(Undecodable(i, f"{type(exc).__name__}: {exc}"[:300]))
    try:
        table = pa.Table.from_pylist(records, schema=target)
    except (pa.ArrowException, TypeError, ValueError):
        table, indices, bad = _convert_one_by_one(records, indices, bad, target)
    return Decoded(table, indices, bad)


def _convert_one_by_one(records: list[dict], indices: list[int], bad: list[Undecodable],
                        target: pa.Schema) -> tuple[pa.Table, list[int], list[Undecodable]]:
    """Slow path: find the records Arrow refuses, so only those are set aside."""
    kept, kept_indices = [], []
    for record, index in zip(records, indices):
        try:
            pa.Table.from_pylist([record], schema=target)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            bad.append(Undecodable(index, f"not convertible to Arrow: {exc}"[:300]))
            continue
        kept.append(record)
        kept_indices.append(index)
    bad.sort(key=lambda u: u.index)
    return pa.Table.from_pylist(kept, schema=target), kept_indices, bad
