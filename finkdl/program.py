"""A writer schema compiled into a program for the C decoder (finkdl/_avro.c).

A program is the schema's types in pre-order, one node per Arrow array. ``finkdl.fastdecode``
decodes batches with it (whole, or one column alone: ``projection``); ``read_past`` reads
values past with it, without storing anything, to tell the reference decoder
(``finkdl.decode``) which values it may read (see there: the bound on items per value).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import pyarrow as pa

from . import _avro
from .arrow_schema import type_names
from .schema import Schema

# Node kinds, as numbered in _avro.c.
(NULL, BOOL, INT, LONG, FLOAT, DOUBLE, STRING, BYTES, FIXED, ENUM, DECIMAL_BYTES, DECIMAL_FIXED,
 RECORD, ARRAY, MAP, BOUNDED_INT, BOUNDED_LONG) = range(17)
# What the decoder does with a node's values, as numbered in _avro.c: stores them, reads past
# them, or stores them and reads nothing after them in the value.
STORED, SKIPPED, LAST = range(3)
_PRIMITIVES = {"null": NULL, "boolean": BOOL, "int": INT, "long": LONG, "float": FLOAT,
               "double": DOUBLE, "string": STRING, "bytes": BYTES}
# Logical types whose Arrow type (finkdl.arrow_schema) holds the very integers Avro writes, with
# the integers fastavro turns into Python's dates and times: years 1 to 9999, a time within its
# day (fastavro reads a negative time as another time of the day).
_LOGICAL = {("long", "timestamp-millis"): (BOUNDED_LONG, -62135596800000, 253402300799999),
            ("long", "timestamp-micros"): (BOUNDED_LONG, -62135596800000000, 253402300799999999),
            ("int", "date"): (BOUNDED_INT, -719162, 2932896),
            ("int", "time-millis"): (BOUNDED_INT, 0, 86400000 - 1),
            ("long", "time-micros"): (BOUNDED_LONG, 0, 86400000000 - 1)}
# What read_past tells of a value, as numbered in _avro.c.
READ, TOO_MANY_ITEMS, UNREADABLE = range(3)
_MAX_DEPTH = 64  # a named type that contains itself has no flat program


@dataclass(frozen=True)
class Program:
    """A schema as the C decoder reads it."""

    nodes: tuple[tuple, ...]  # kind, union size, null branch, arg, children, skipped[, extra]
    ends: tuple[int, ...]  # node → the index after its subtree


class _Unsupported(Exception):
    """The schema uses something the program cannot express: the reference decodes it."""


@lru_cache(maxsize=32)
def compiled(text: str, logical: bool = True) -> Program | None:
    """The program of a schema, or None when the reference decoder must read it; without
    ``logical``, logical types are read as the types they annotate (enough to read past them)."""
    nodes: list[tuple] = []
    try:
        _compile(json.loads(text), {}, nodes, 0, logical)
    except (_Unsupported, KeyError, TypeError, ValueError):
        return None
    return Program(tuple(nodes), _ends(nodes))


def read_past(values: Sequence[bytes], schema: Schema) -> list[int] | None:
    """What reading each value past gives (READ, TOO_MANY_ITEMS, UNREADABLE), where the
    schema's arrays can hold items that take no bytes; None where they cannot: every value
    then holds fewer items than bytes, or fastavro runs out of bytes reading it."""
    program = _past(schema.text)
    return None if program is None else _avro.read_past(program.nodes, values)


@lru_cache(maxsize=32)
def _past(text: str) -> Program | None:
    """A program that reads whole values past, storing nothing, for a schema whose arrays can
    hold items that take no bytes; else None."""
    program = compiled(text, logical=False)
    if program is None or not any(n[0] == ARRAY and _takes_no_bytes(program, i + 1)
                                  for i, n in enumerate(program.nodes)):
        return None
    root = program.nodes[0]
    return Program((root,) + tuple(n[:5] + (SKIPPED,) + n[6:] for n in program.nodes[1:]), program.ends)


def _takes_no_bytes(program: Program, i: int) -> bool:
    """True when node i's values are written as no bytes at all: nulls, fixed of size 0, records
    of such fields (a union writes its branch)."""
    kind, union_size, _, arg = program.nodes[i][:4]
    if union_size:
        return False
    if kind == RECORD:
        return all(_takes_no_bytes(program, c) for c in _children(program, i))
    return kind == NULL or (kind in (FIXED, DECIMAL_FIXED) and arg == 0)


def _children(program: Program, i: int) -> list[int]:
    """The indices of node i's children."""
    children, child = [], i + 1
    for _ in range(program.nodes[i][4]):
        children.append(child)
        child = program.ends[child]
    return children


def _ends(nodes: Sequence[tuple]) -> tuple[int, ...]:
    """For each node, the index of the node after its subtree (pre-order)."""
    ends = [0] * len(nodes)

    def walk(i: int) -> int:
        j = i + 1
        for _ in range(nodes[i][4]):
            j = walk(j)
        ends[i] = j
        return j

    walk(0)
    return tuple(ends)


@lru_cache(maxsize=32)
def projection(text: str, target: pa.Schema, only: str) -> tuple[Program, pa.Schema] | None:
    """A program that stores only the column at dotted path ``only``, and the target schema
    pruned to that column; None when the path does not run through records alone."""
    program = compiled(text)
    if program is None:
        return None
    skipped = [STORED] * len(program.nodes)
    node, fields = 0, list(target)
    for name in only.split("."):
        names = [f.name for f in fields]
        if program.nodes[node][0] != RECORD or name not in names:
            return None
        children = _children(program, node)
        k = names.index(name)
        for index, child in enumerate(children):
            skipped[child] = STORED if index == k else SKIPPED
        node, kind = children[k], fields[k].type
        fields = list(kind) if pa.types.is_struct(kind) else []
    skipped[node] = LAST  # the whole decode checks later where each value ends
    nodes = tuple(n[:5] + (skip,) + n[6:] for n, skip in zip(program.nodes, skipped))
    return Program(nodes, program.ends), pa.schema(_pruned(list(target), only.split(".")))


def _pruned(fields: list[pa.Field], path: list[str]) -> list[pa.Field]:
    """The one field at ``path``, inside the records that lead to it."""
    field = next(f for f in fields if f.name == path[0])
    if len(path) > 1:
        field = field.with_type(pa.struct(_pruned(list(field.type), path[1:])))
    return [field]


def _compile(avro: Any, named: dict[str, Any], nodes: list, depth: int, logical: bool) -> None:
    """Append the nodes of one Avro type, in pre-order; without ``logical``, those of the types
    logical types annotate."""
    if depth > _MAX_DEPTH:
        raise _Unsupported("a type that contains itself")
    union_size, null_branch = 0, -1
    if isinstance(avro, list):
        branches = [t for t in avro if t != "null"]
        if len(branches) != 1 or len(avro) > 2:
            raise _Unsupported("a union of several types")
        union_size, null_branch = len(avro), avro.index("null") if "null" in avro else -1
        avro = branches[0]
    if isinstance(avro, str):
        if avro in _PRIMITIVES:
            nodes.append((_PRIMITIVES[avro], union_size, null_branch, 0, 0, STORED))
            return
        avro = named[avro]
    kind, annotation = avro["type"], avro.get("logicalType") if logical else None
    for name in type_names(avro):
        named[name] = avro
    size = avro.get("size")
    if kind == "fixed" and (type(size) is not int or not 0 <= size < 2**31):
        raise _Unsupported(f"a fixed of size {size!r}")
    if annotation == "decimal":
        precision = avro.get("precision")
        if type(precision) is not int or not 1 <= precision <= 38:
            raise _Unsupported("a decimal wider than 38 digits")
        if kind == "bytes":
            nodes.append((DECIMAL_BYTES, union_size, null_branch, 0, 0, STORED, precision))
        elif kind == "fixed" and size <= 16:
            nodes.append((DECIMAL_FIXED, union_size, null_branch, size, 0, STORED, precision))
        else:
            raise _Unsupported("a decimal wider than 16 bytes")
        return
    if annotation is not None:
        if (kind, annotation) not in _LOGICAL:
            raise _Unsupported(f"logical type {annotation}")
        bounded, low, high = _LOGICAL[kind, annotation]
        nodes.append((bounded, union_size, null_branch, 0, 0, STORED, (low, high)))
        return
    if kind == "record":
        nodes.append((RECORD, union_size, null_branch, 0, len(avro["fields"]), STORED))
        for field in avro["fields"]:
            _compile(field["type"], named, nodes, depth + 1, logical)
    elif kind in ("array", "map"):
        nodes.append((ARRAY if kind == "array" else MAP, union_size, null_branch, 0, 1, STORED))
        _compile(avro["items" if kind == "array" else "values"], named, nodes, depth + 1, logical)
    elif kind == "enum":
        symbols = tuple(str(symbol).encode() for symbol in avro["symbols"])
        nodes.append((ENUM, union_size, null_branch, len(symbols), 0, STORED, symbols))
    elif kind == "fixed":
        nodes.append((FIXED, union_size, null_branch, size, 0, STORED))
    elif kind in _PRIMITIVES:
        nodes.append((_PRIMITIVES[kind], union_size, null_branch, 0, 0, STORED))
    else:
        raise _Unsupported(f"type {kind}")
