"""A table in exactly a given schema: how every file of a folder gets the folder's schema.

The schema is a merge of versions (finkdl.merge), so it holds everything the table holds, in
types at least as wide: a field the table lacks becomes null, numbers widen, and records,
lists and maps are rebuilt child by child around their own validity (a null record stays
null, an empty list stays empty), times meeting text become text (finkdl.merge). Fields the schema does not have are left out: that is how
``--columns`` projects a table, with the same function.
"""
from __future__ import annotations

import pyarrow as pa


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s fields, in its order and types."""
    if table.schema.equals(schema):
        return table
    names = set(table.column_names)
    columns = [_chunked(table.column(f.name), f.type) if f.name in names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _chunked(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    return pa.chunked_array([conform_array(chunk, target) for chunk in column.chunks], type=target)


def conform_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    """One array in ``target``'s type, which is the array's own or a widening of it."""
    kind = array.type
    if kind.equals(target):
        return array
    if pa.types.is_struct(kind) and pa.types.is_struct(target):
        have = {kind.field(i).name for i in range(kind.num_fields)}
        children = [conform_array(array.field(f.name), f.type) if f.name in have
                    else pa.nulls(len(array), f.type) for f in target]
        return pa.StructArray.from_arrays(children, fields=list(target), mask=array.is_null())
    if pa.types.is_map(kind) and pa.types.is_map(target):
        offsets, entries = _entries(array)
        items = conform_array(entries.field(1), target.item_type)
        return pa.MapArray.from_arrays(offsets, entries.field(0), items, type=target, mask=array.is_null())
    if pa.types.is_list(kind) and pa.types.is_list(target):
        offsets, values = _entries(array)
        return pa.ListArray.from_arrays(offsets, conform_array(values, target.value_type),
                                        type=target, mask=array.is_null())
    if pa.types.is_string(target) and (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        return time_text(array)
    # Widening a long to a double rounds beyond 2**53: the price of one type for both versions.
    lossy = pa.types.is_integer(kind) and pa.types.is_floating(target)
    return array.cast(target, safe=not lossy)


def time_text(array: pa.Array) -> pa.Array:
    """Timestamps as the UTC text Fink writes (``2020-03-18 14:05:42.981000``: microseconds,
    no zone), dates as ``2020-03-18``."""
    import pyarrow.compute as pc  # where used: see finkdl.partitioning
    if pa.types.is_date(array.type):
        return pc.strftime(array.cast(pa.timestamp("s")), format="%Y-%m-%d")
    utc = array.cast(pa.timestamp("us", tz="UTC")) if array.type.tz else array.cast(pa.timestamp("us"))
    return pc.strftime(utc, format="%Y-%m-%d %H:%M:%S")


def _entries(array: pa.ListArray) -> tuple[pa.Array, pa.Array]:
    """Offsets from 0 and the child values they index: a slice's own part of its child."""
    offsets = array.offsets
    start, end = offsets[0], offsets[-1]
    values = array.values.slice(start.as_py(), end.as_py() - start.as_py())
    import pyarrow.compute as pc  # where used: see finkdl.partitioning
    return pc.subtract(offsets, start), values
