"""Arrow schemas of different alert schema versions → one schema, or the conflict that forbids it.

Fink's alert schema changed over the years (2019-2021 vs 2022+): fields came and went, ints
became longs, floats became doubles, records gained fields. A folder reads as one table only
if all its files share one schema, so versions are merged: a field missing from one version
is kept (it reads as null there), numbers widen to a common type (int → long → double,
float → double), a timestamp or date meeting text becomes text (Fink's 2019-2021 alerts carry
``timestamp`` as a timestamp, later ones as text: ``TIME_TEXT`` is the text Fink writes, so
both eras read alike), nullability is relaxed, and records, lists of records and maps' values
are merged field by field. Anything else (a string that became a double) has no common type:
that is a conflict, and finkdl refuses rather than guess.

One walk over both schemas gives the merged schema and every difference met, so
``finkdl schema --diff`` and the refusal always agree on what changed.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .errors import SchemaError

ADDED, REMOVED, WIDENED, AS_TEXT, CONFLICT = "added", "removed", "widened", "as text", "conflict"
# What each kind of change does to the rows of the side that had the field otherwise.
RULES = {
    ADDED: "a field of the new side only: null in the old side's rows",
    REMOVED: "a field of the old side only: null in the new side's rows",
    WIDENED: "numbers widen (int → long → double, float → double; a long beyond 2**53 made double is rounded)",
    AS_TEXT: "times become UTC text as Fink writes it, e.g. 2020-03-18 14:05:42.981000",
    CONFLICT: "no type holds both",
}


@dataclass(frozen=True)
class Change:
    """One difference between an old and a new schema, at a dotted path (``candidate.fid``)."""

    path: str
    kind: str
    old: pa.DataType | None = None
    new: pa.DataType | None = None


def merge_schemas(old: pa.Schema, new: pa.Schema) -> tuple[pa.Schema, list[Change]]:
    """The schema holding both, and what differs (a conflict keeps the old type in place)."""
    fields, changes = _merge_fields(list(old), list(new), "")
    return pa.schema(fields), changes


def merge_types(old: pa.DataType, new: pa.DataType, path: str = "") -> tuple[pa.DataType, list[Change]]:
    """The common type of two versions of one field; items of lists and maps keep the path."""
    if old.equals(new):
        return old, []
    if pa.types.is_struct(old) and pa.types.is_struct(new):
        fields, changes = _merge_fields(list(old), list(new), path)
        return pa.struct(fields), changes
    if pa.types.is_list(old) and pa.types.is_list(new):
        item, changes = _merge_field(old.value_field, new.value_field, path)
        return pa.list_(item), changes
    if pa.types.is_map(old) and pa.types.is_map(new) and old.key_type.equals(new.key_type):
        item, changes = _merge_field(old.item_field, new.item_field, path)
        return pa.map_(old.key_field, item), changes
    if any(_is_time(a) and pa.types.is_string(b) for a, b in ((old, new), (new, old))):
        return pa.string(), [Change(path, AS_TEXT, old, new)]
    common = _common_scalar(old, new)
    if common is None:
        return old, [Change(path, CONFLICT, old, new)]
    return common, [Change(path, WIDENED, old, new)]


def _is_time(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) or pa.types.is_date(kind)


def _common_scalar(old: pa.DataType, new: pa.DataType) -> pa.DataType | None:
    """null → anything; int → long; int or long with a float → double; float → double."""
    if pa.types.is_null(old) or pa.types.is_null(new):
        return new if pa.types.is_null(old) else old
    numbers = [pa.types.is_signed_integer(t) or pa.types.is_floating(t) for t in (old, new)]
    if not all(numbers):
        return None
    if pa.types.is_floating(old) != pa.types.is_floating(new):
        return pa.float64()
    return old if old.bit_width >= new.bit_width else new


def _merge_field(old: pa.Field, new: pa.Field, path: str) -> tuple[pa.Field, list[Change]]:
    kind, changes = merge_types(old.type, new.type, path)
    return old.with_type(kind).with_nullable(old.nullable or new.nullable), changes


def _merge_fields(old: list[pa.Field], new: list[pa.Field], path: str) -> tuple[list[pa.Field], list[Change]]:
    """Old fields in their order, then the new ones; a field of one side only becomes nullable."""
    new_by_name = {f.name: f for f in new}
    old_names = {f.name for f in old}
    fields, changes = [], []
    for f in old:
        where = f"{path}.{f.name}" if path else f.name
        if f.name in new_by_name:
            merged, found = _merge_field(f, new_by_name[f.name], where)
            fields.append(merged)
            changes += found
        else:
            fields.append(f.with_nullable(True))
            changes.append(Change(where, REMOVED, old=f.type))
    for f in new:
        if f.name not in old_names:
            fields.append(f.with_nullable(True))
            changes.append(Change(f"{path}.{f.name}" if path else f.name, ADDED, new=f.type))
    return fields, changes


def merge_or_refuse(old: pa.Schema, new: pa.Schema, old_name: str, new_name: str) -> pa.Schema:
    """The merged schema, or a SchemaError naming each conflict by its path and both types."""
    merged, changes = merge_schemas(old, new)
    conflicts = [c for c in changes if c.kind == CONFLICT]
    if conflicts:
        first = conflicts[0]
        others = f" (and {len(conflicts) - 1} more field(s))" if len(conflicts) > 1 else ""
        raise SchemaError(f"field {first.path!r} is {first.old} in {old_name} but {first.new} "
                          f"in {new_name}: no type holds both{others}",
                          hint=f"leave them out with --drop-columns {','.join(c.path for c in conflicts)}, "
                               "or download into a separate --outdir")
    return merged
