"""A whole batch of schemaless Avro values → one Arrow table, decoded in C (finkdl/_avro.c).

A writer schema is compiled once into a program (finkdl.program). The C decoder walks every
value of a batch through it and hands back the batch through the Arrow C data interface, its
buffers becoming Arrow arrays without another copy (figures: bench/results.md).

fastavro (``finkdl.decode``) stays the reference and the fallback: a batch holding a value
that does not decode to exactly its last byte goes to ``decode_values``, which isolates that
value; so does a batch whose maps repeat a key (fastavro keeps the last value, Arrow would
keep both), one holding a value the reference reads otherwise or refuses (a date or timestamp
beyond Python's years 1-9999, a time outside its day, a decimal beyond its precision), and
every batch of a schema the program cannot express (a union of two non-null types, a logical
type it does not know (finkdl.program), decimals wider than 38 digits or 16 bytes).

A value holds at most one array item or map entry per byte of it, all its arrays and maps
together (``finkdl.decode``): only items that take no bytes (nulls, empty records) can go past
it, and they could otherwise make a few bytes hold billions of them. The C decoder refuses such
a value, and ``finkdl.program.read_past`` tells the reference which values to set aside before fastavro.
"""
from __future__ import annotations

from typing import Sequence

import pyarrow as pa

from . import _avro
from .decode import Decoded, decode_values
from .program import Program, compiled, projection
from .schema import Schema


def decode_batch(values: Sequence[bytes], schema: Schema, target: pa.Schema,
                 only: str | None = None) -> Decoded:
    """Decode a batch in one go, else with the reference decoder, which isolates bad values.

    With ``only``, a column's dotted path through records (``candidate.jd``), the table may
    hold that column alone: what comes before it in a value is read past, not stored, and what
    comes after it is not read (a worker's labels, read as messages arrive). Values are then
    only checked as far as that reading needs; the whole decode checks the rest.
    """
    projected = projection(schema.text, target, only) if values and only else None
    if projected is not None:
        code, target = projected
    else:
        code = compiled(schema.text) if values else None
    table = _decode(values, code, target) if code is not None else None
    if table is None:
        return decode_values(values, schema, target)
    return Decoded(table, list(range(len(values))))


def _decode(values: Sequence[bytes], program: Program, target: pa.Schema) -> pa.Table | None:
    """The batch as ``target``, or None when a value does not decode or a map repeats a key."""
    out = _avro.decode(program.nodes, values)
    if isinstance(out, int):  # the index of the first such value
        return None
    batch = pa.RecordBatch._import_from_c_capsule(target.__arrow_c_schema__(), out)
    table = pa.Table.from_batches([batch], schema=target)
    table.validate()
    return table
