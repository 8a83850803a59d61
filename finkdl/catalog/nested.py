"""Histories (``prv_candidates``, ``prvDiaSources``: lists of records) in LSDB's nested layout.

nested-pandas, hence LSDB, stores a nested column as a record of lists, one list per field,
all of a row's lists of the same length; that is what lets LSDB read ``prv_candidates.jd``
alone (a list of records makes its column projection fail). The catalog keeps each history
so: the same values, field by field. A null history stays null; an entry of a history that
was null becomes an entry whose fields are all null.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def is_history(kind: pa.DataType) -> bool:
    """A list of records."""
    return (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and \
        pa.types.is_struct(kind.value_type)


def nested_type(kind: pa.DataType) -> pa.DataType:
    """The record of lists a list of records is stored as (other types unchanged)."""
    if not is_history(kind):
        return kind
    record = kind.value_type
    return pa.struct([pa.field(f.name, pa.list_(f.type)) for f in record])


def nested_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, nested_type(f.type), f.nullable) for f in schema])


def to_nested(array: pa.Array) -> pa.Array:
    """A list-of-records array as a record-of-lists array of the same rows."""
    if not is_history(array.type):
        return array
    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array([to_nested(c) for c in array.chunks],
                                type=nested_type(array.type))
    array = array.cast(pa.list_(array.type.value_type)) if pa.types.is_large_list(array.type) \
        else array
    offsets = array.offsets  # start of each row; a null row's list is empty
    start = offsets[0].as_py()
    values = array.values.slice(start, offsets[-1].as_py() - start)
    offsets = pc.subtract(offsets, start).cast(pa.int32())
    record = array.type.value_type
    lists = [pa.ListArray.from_arrays(offsets, values.field(i)) for i in range(record.num_fields)]
    return pa.StructArray.from_arrays(lists, fields=list(nested_type(array.type)),
                                      mask=array.is_null())
