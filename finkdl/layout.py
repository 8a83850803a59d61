"""What of each alert is kept (--columns, --drop-cutouts), and the shape it is written in.

The alert id (``candid``, ``diaSourceId``, ``alertId``: finkdl.surveys) is always kept, so
``finkdl verify`` can still prove there is no duplicate; so is the --partition-by column,
since the folders are cut from it. The projection is a schema: tables are cut to it by
``finkdl.conform``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pyarrow as pa

from .arrow_schema import arrow_schema
from .config import DownloadConfig
from .errors import ConfigError
from .partitioning import Partitioning, partitioning_for
from .schema import Schema
from .surveys import SURVEYS, id_columns

CUTOUTS = tuple(dict.fromkeys(c for s in SURVEYS.values() for c in s.cutouts))

_Tree = dict  # name → subtree of the fields kept below it, or None for the whole field


def select(schema: pa.Schema, columns: Sequence[str] = (), drop: Sequence[str] = (),
           keep: Sequence[str] = (), strict: bool = True) -> pa.Schema:
    """``schema`` cut to ``columns`` (dotted paths into records and lists of records) and
    ``keep``, every column when none is listed; then without the ``drop`` paths.

    ``strict`` refuses listed columns the schema lacks (a later schema version may lack some:
    they read as null there), and dropping what ``keep`` needs.
    """
    if strict:
        check_columns(schema, columns, drop, keep)
    fields = list(schema)
    if columns:
        fields = _pick(fields, _tree([*columns, *keep]))
    if drop:
        fields = _omit(fields, _tree(drop))
    return pa.schema(fields)


def check_columns(schema: pa.Schema, columns: Sequence[str], drop: Sequence[str] = (),
                  keep: Sequence[str] = ()) -> None:
    """Refuse, at once, columns the alerts do not have (naming those that do), and columns
    both kept and dropped."""
    unknown = [c for c in [*columns, *drop] if _children(schema, c.split(".")) is None]
    if unknown:
        parent = unknown[0].rpartition(".")[0]
        names = _children(schema, parent.split(".")) if parent else None
        where = f"columns in {parent}" if names else "columns that exist"
        names = names or [f.name for f in schema]
        raise ConfigError(f"these alerts have no column {', '.join(map(repr, unknown))}",
                          hint=f"{where}: {', '.join(names)}; nested ones are dotted, like candidate.jd")
    both = [c for c in columns if any(_within(c, d) for d in drop)]
    if both:
        raise ConfigError(f"--columns keeps {', '.join(both)}, which the columns left out "
                          f"({', '.join(drop)}) remove", hint="name each column in one option only")
    needed = [k for k in keep if any(_within(k, d) for d in drop)]
    if needed:
        raise ConfigError(f"{', '.join(needed)} cannot be left out: finkdl keeps the alert id, "
                          "so `finkdl verify` can check duplicates, and the --partition-by column",
                          hint="leave other columns out")


def _within(path: str, ancestor: str) -> bool:
    """``path`` is ``ancestor`` or lies inside it."""
    return path == ancestor or path.startswith(ancestor + ".")


def _children(schema: pa.Schema, path: list[str]) -> list[str] | None:
    """Field names below a path ([] for a leaf), or None when the path does not exist."""
    fields = list(schema)
    for name in path:
        found = next((f for f in fields if f.name == name), None)
        if found is None:
            return None
        fields = _subfields(found.type)
    return [f.name for f in fields]


def _subfields(kind: pa.DataType) -> list[pa.Field]:
    if pa.types.is_list(kind):
        kind = kind.value_type
    return list(kind) if pa.types.is_struct(kind) else []


def _tree(paths: Sequence[str]) -> _Tree:
    tree: _Tree = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node = tree
        for name in parents:
            node = node.setdefault(name, {})
            if node is None:  # the whole parent is already kept
                break
        else:
            node[leaf] = None
    return tree


def _pick(fields: list[pa.Field], tree: _Tree) -> list[pa.Field]:
    """The fields named in ``tree``, in schema order, records and lists cut to their subtree."""
    return [f if tree[f.name] is None else f.with_type(_cut(f.type, tree[f.name]))
            for f in fields if f.name in tree]


def _cut(kind: pa.DataType, tree: _Tree, pick=None) -> pa.DataType:
    """A record (or list of records) cut to its fields in ``tree`` (``pick``: _pick or _omit)."""
    pick = pick or _pick
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_cut(kind.value_type, tree, pick)))
    return pa.struct(pick(list(kind), tree)) if pa.types.is_struct(kind) else kind


def _omit(fields: list[pa.Field], tree: _Tree) -> list[pa.Field]:
    """The fields without those named in ``tree``, records and lists cut below them."""
    return [f if tree.get(f.name, ...) is ... else f.with_type(_cut(f.type, tree[f.name], _omit))
            for f in fields if not (f.name in tree and tree[f.name] is None)]


@dataclass(frozen=True, eq=False)
class Layout:
    """How alerts of one writer schema are kept: decoded in ``decoded``'s types, cut to
    ``kept`` (what the buffer holds, partition column included), written as ``written``
    (without the Hive keys, which the folder names carry)."""

    schema: Schema
    part: Partitioning
    decoded: pa.Schema
    kept: pa.Schema

    @property
    def written(self) -> pa.Schema:
        return pa.schema([f for f in self.kept if f.name not in self.part.keys])


def layout_for(schema: Schema, cfg: DownloadConfig, strict: bool = True) -> Layout:
    """The layout of one writer schema under the run's --partition-by and column options."""
    part = partitioning_for(cfg.partition_by, cfg.survey, schema)
    decoded = arrow_schema(schema.avro)
    ids = [name for name in id_columns() if name in decoded.names]
    keep = [*ids, *filter(None, [part.source])]
    cutouts = [c for c in CUTOUTS if c in decoded.names] if cfg.drop_cutouts else []
    drop = [*cfg.drop_columns, *cutouts]
    kept = select(decoded, cfg.columns, drop, keep=keep, strict=strict)
    return Layout(schema, part, decoded, kept)
