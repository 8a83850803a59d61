"""Avro schema → Arrow schema, so every batch of a topic has exactly the same Arrow types.

Every field is nullable: that keeps files written from different batches (and later
from other schema versions) readable as one table.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from .errors import SchemaError
from .schema import AvroSchema

_PRIMITIVES = {
    "null": pa.null(), "boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(),
    "float": pa.float32(), "double": pa.float64(), "bytes": pa.binary(), "string": pa.string(),
}
_LOGICAL = {
    "timestamp-millis": pa.timestamp("ms", tz="UTC"), "timestamp-micros": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(), "time-millis": pa.time32("ms"), "time-micros": pa.time64("us"),
}


def arrow_schema(avro: AvroSchema) -> pa.Schema:
    """The Arrow schema of a top-level Avro record."""
    return pa.schema(_record_fields(avro, {}))


def _record_fields(record: dict, named: dict[str, pa.DataType]) -> list[pa.Field]:
    return [pa.field(f["name"], arrow_type(f["type"], named, f["name"])) for f in record["fields"]]


def arrow_type(avro_type: Any, named: dict[str, pa.DataType] | None = None,
               where: str = "") -> pa.DataType:
    """The Arrow type of one Avro type; ``named`` resolves references to named types."""
    named = {} if named is None else named
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVES:
            return _PRIMITIVES[avro_type]
        if avro_type in named:
            return named[avro_type]
        raise SchemaError(f"field {where!r} refers to unknown Avro type {avro_type!r}")
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1:
            raise SchemaError(f"field {where!r} is a union of several types ({avro_type}), "
                              "which finkdl cannot store as one column")
        return arrow_type(branches[0], named, where)
    kind = avro_type.get("type")
    logical = avro_type.get("logicalType")
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    if logical == "decimal":
        return pa.decimal128(avro_type["precision"], avro_type.get("scale", 0))
    if kind == "record":
        result = pa.struct(_record_fields(avro_type, named))
    elif kind == "array":
        result = pa.list_(arrow_type(avro_type["items"], named, where))
    elif kind == "map":
        result = pa.map_(pa.string(), arrow_type(avro_type["values"], named, where))
    elif kind == "enum":
        result = pa.string()
    elif kind == "fixed":
        result = pa.binary(avro_type["size"])
    else:
        return arrow_type(kind, named, where)
    for name in type_names(avro_type):
        named[name] = result
    return result


def type_names(avro_type: dict) -> list[str]:
    """The names by which later fields may refer to a named type (record, enum, fixed)."""
    if "name" not in avro_type:
        return []
    name, namespace = avro_type["name"], avro_type.get("namespace")
    return [name, name.split(".")[-1]] + ([f"{namespace}.{name}"] if namespace else [])
