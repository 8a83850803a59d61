"""Which Hive folder each alert goes to: labels, time columns, and safe folder names.

Everything here is a pure function of an Arrow table, so it is tested without disk or broker.
A null label goes to ``key=(null)``, and an alert without an observation time to
``year=0/month=0/day=0``: every reader then reads the folder alike. No layout keeps a true null
for all of them: files beside the ``key=`` folders are skipped by Spark without a word and
refused by polars and DuckDB; Hive's ``__HIVE_DEFAULT_PARTITION__`` breaks pandas, whose
partition dictionaries cannot hold a null.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np
import pyarrow as pa

from .errors import ConfigError, SchemaError
from .schema import AvroSchema, Schema, column_paths
from .surveys import SURVEYS, survey, surveys_with

# A column names a time when a word of its name does (``midpointMjdTai``: midpoint, mjd, tai),
# not a few letters inside one (``shape_flag_not_contained``); ZTF glues ``jd`` to the event
# (``jdstarthist``). A word saying span or spread makes it a duration (``delta_time``,
# ``peri_time_unc``); ``exptime`` is one word, and not a time.
_TIME_WORDS = frozenset({"jd", "mjd", "tai", "time", "timestamp", "date", "datetime", "epoch"})
_TIME_PREFIXES = ("jd", "mjd")
_DURATION_WORDS = frozenset({"delta", "dt", "unc", "err", "sigma", "duration", "elapsed", "span"})
_NUMBERS = frozenset({"int", "long", "float", "double"})
_TIME_LOGICAL = frozenset({"date", "timestamp-millis", "timestamp-micros", "local-timestamp-millis",
                           "local-timestamp-micros"})
TIME_KEYS = ("year", "month", "day")
NULL_LABEL = "(null)"  # the folder of a null label, as summaries show it too
NULL_TIME = 0  # year, month and day of an alert without an observation time
MAX_SEGMENT_BYTES = 200

Label = tuple


@dataclass(frozen=True)
class Partitioning:
    """How a table is split: ``keys`` are the Hive names, ``source`` the column read."""

    keys: tuple[str, ...] = ()
    source: str | None = None
    day_offset: float | None = None

    @property
    def is_time(self) -> bool:
        return self.day_offset is not None


def partitioning_for(partition_by: str, survey_name: str, schema: Schema) -> Partitioning:
    """Check the requested partitioning against the schema; refuse unknown columns at once."""
    if partition_by in ("none", "", None):
        return Partitioning()
    available = column_paths(schema.avro)
    if partition_by == "time":
        chosen = survey(survey_name)
        if chosen.time_column not in available:
            raise SchemaError(*_no_time_column(chosen.name, available, schema.avro))
        return Partitioning(keys=TIME_KEYS, source=chosen.time_column, day_offset=chosen.day_offset)
    labels = label_paths(schema.avro)
    if partition_by not in available:
        raise ConfigError(f"these alerts have no column {partition_by!r} to partition by",
                          hint=_label_hint(labels, schema.fields))
    if partition_by not in labels:
        raise ConfigError(f"column {partition_by!r} holds a record, a list, a map or bytes: its "
                          "values cannot name folders", hint=_label_hint(labels, schema.fields))
    return Partitioning(keys=(partition_by,), source=partition_by)


def label_paths(avro: AvroSchema, prefix: str = "") -> list[str]:
    """Columns, dotted, whose values can name a folder: single values (text, numbers, flags,
    enums), reached through records only."""
    found = []
    for field in avro.get("fields", []):
        name, kind = prefix + field["name"], _unwrap(field["type"])
        base = kind.get("type") if isinstance(kind, dict) else kind
        if base == "record":
            found.extend(label_paths(kind, name + "."))
        elif base in _SCALARS:
            found.append(name)
    return found


def _no_time_column(survey_name: str, available: list[str], schema_avro: AvroSchema) -> tuple[str, str]:
    """The message and hint for alerts lacking the survey's observation time."""
    chosen = survey(survey_name)
    message = (f"--partition-by time reads the observation time from {chosen.time_column!r} "
               f"({chosen.title} alerts, --survey {chosen.name}), which the schema of these "
               "alerts does not have")
    timelike = time_like_columns(schema_avro)
    hint = (f"time-like columns they have: {', '.join(timelike[:12])}; partition by one with "
            "--partition-by COLUMN" if timelike else
            "they have no time-like column: partition by a label, or not at all")
    other = [s for s in SURVEYS.values() if s.time_column in available]
    if other:
        hint += f"; or, as these look like {other[0].title} alerts, --survey {other[0].name}"
    return message, hint


def time_like_columns(avro: AvroSchema, prefix: str = "") -> list[str]:
    """Columns, dotted, that hold an observation time: numbers or timestamps, reached through
    records only (an array holds many), whose name has a time word and no duration word."""
    found = []
    for field in avro.get("fields", []):
        name, kind = prefix + field["name"], _unwrap(field["type"])
        if isinstance(kind, dict) and kind.get("type") == "record":
            found.extend(time_like_columns(kind, name + "."))
        elif _is_time_value(kind) and _names_a_time(field["name"]):
            found.append(name)
    return found


_SCALARS = {"string", "int", "long", "float", "double", "boolean", "enum"}


def _unwrap(kind: object) -> object:
    """The type of a nullable field (``["null", T]``), else the type as written."""
    if isinstance(kind, list):
        branches = [k for k in kind if k != "null"]
        return branches[0] if len(branches) == 1 else kind
    return kind


def _is_time_value(kind: object) -> bool:
    if isinstance(kind, dict):
        return kind.get("logicalType") in _TIME_LOGICAL or (
            "logicalType" not in kind and kind.get("type") in _NUMBERS)
    return kind in _NUMBERS


def _names_a_time(name: str) -> bool:
    """``midpointMjdTai``, ``jd``, ``jdstarthist``, ``epoch_mjd``: yes; ``exptime``,
    ``delta_time``, ``shape_flag_not_contained``: no."""
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]
    if _DURATION_WORDS.intersection(words):
        return False
    return any(w in _TIME_WORDS or w.startswith(_TIME_PREFIXES) for w in words)


def _label_hint(labels: list[str], top_level: list[str]) -> str:
    """Label columns of the surveys these alerts look like, else the columns that can be labels."""
    usual = list(dict.fromkeys(c for s in surveys_with(top_level) for c in s.label_columns if c in labels))
    others = [c for c in top_level if c in labels and c not in usual]
    some = ", ".join(others[:10]) + (f", … ({len(others) - 10} more)" if len(others) > 10 else "")
    if usual:
        return (f"label columns these alerts carry: {', '.join(usual)} (or time, or another column "
                f"of single values: {some or 'dotted ones inside records'})")
    return f"columns of single values: {some}"


def _compute():
    """pyarrow.compute, imported on first use: the front end, which plans and never groups
    rows, starts faster without it (workers find it preloaded)."""
    import pyarrow.compute
    return pyarrow.compute


def column(table: pa.Table, path: str) -> pa.ChunkedArray:
    """A column by dotted path through struct fields (``candidate.jd``)."""
    head, *rest = path.split(".")
    array = table.column(head)
    for name in rest:
        array = _compute().struct_field(array, name)
    return array


def label_columns(table: pa.Table, part: Partitioning) -> list[pa.ChunkedArray]:
    """One array per Hive key, aligned with the table's rows."""
    if not part.keys:
        return []
    values = column(table, part.source)
    if not part.is_time:
        return [values]
    pc = _compute()
    unix_days = pc.subtract(pc.cast(values, pa.float64()), part.day_offset)
    micros = pc.cast(pc.floor(pc.multiply(unix_days, 86_400_000_000.0)), pa.int64())
    stamps = pc.cast(micros, pa.timestamp("us"))
    return [pc.year(stamps), pc.month(stamps), pc.day(stamps)]


def group_rows(table: pa.Table, part: Partitioning) -> dict[Label, np.ndarray]:
    """Row indices of each label, in table order; one group ``()`` when not partitioned.

    Each key is dictionary-encoded and the codes combined into one integer per row, so the
    grouping is a stable NumPy sort (a null is a value of its own, as the folders treat it).
    """
    if not part.keys or table.num_rows == 0:
        return {(): np.arange(table.num_rows)} if table.num_rows else {}
    combined = np.zeros(table.num_rows, dtype=np.int64)
    dictionaries = []
    for values in label_columns(table, part):
        encoded = _compute().dictionary_encode(values.combine_chunks(), null_encoding="encode")
        dictionaries.append(encoded.dictionary.to_pylist())
        combined = combined * len(encoded.dictionary) + encoded.indices.to_numpy()
    codes, inverse = np.unique(combined, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    groups, start = {}, 0
    for code, count in zip(codes.tolist(), np.bincount(inverse).tolist()):
        label = []
        for dictionary in reversed(dictionaries):
            code, index = divmod(code, len(dictionary))
            label.append(dictionary[index])
        groups[tuple(reversed(label))] = order[start:start + count]
        start += count
    return groups


def segment(value: object) -> str:
    """A label as one safe folder-name component, percent-encoded as Hive readers expect.

    ``/``, ``..``, NUL and non-ASCII cannot escape or break the path; a label too long for a
    file name is cut and given a hash suffix so different long labels stay apart.
    """
    text = str(value)
    encoded = quote(text, safe="")
    if len(encoded) <= MAX_SEGMENT_BYTES:
        return encoded
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    while len(quote(text, safe="")) > MAX_SEGMENT_BYTES - 14:
        text = text[:-1]
    return f"{quote(text, safe='')}~{digest}"


def label_dir(part: Partitioning, label: Label) -> str:
    """Relative folder of a label ('' when not partitioned); see the module's docstring for nulls."""
    null = NULL_TIME if part.is_time else NULL_LABEL
    return "/".join(f"{key}={null if value is None else segment(value)}"
                    for key, value in zip(part.keys, label))


def drop_label_columns(table: pa.Table, part: Partitioning) -> pa.Table:
    """Remove top-level columns the folder names carry, so readers never see them twice."""
    present = [k for k in part.keys if k in table.column_names]
    return table.drop_columns(present) if present else table
