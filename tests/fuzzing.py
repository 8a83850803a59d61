"""Differential fuzzing of finkdl's C Avro decoder against the fastavro reference.

Random values written from the real Fink schemas and from schemas using every Avro type (nulls
everywhere, empty and long arrays, blocks with byte sizes true and false, maps with many keys,
extreme numbers, NaN, non-ASCII text, large bytes, dates and decimals at their bounds), byte
mutations and truncations of them and of real alerts. Every value of a batch is decoded by the C
decoder, whole and by a label read alone; what it accepts must be what ``decode_values`` accepts,
row for row, label for label. What it refuses goes to the reference in finkdl, so is not a
mismatch. ``tests/test_decoder_fuzz.py`` runs a bounded, seeded round in the test suite;
``make fuzz`` runs this script against an AddressSanitizer + UBSan build for as long as asked:

    python tests/fuzzing.py --seconds 1200 [--sanitized build/sanitized/_avro.so] [--seed 1]

With ``--sanitized`` and no ``--rounds``, rounds run in child processes that preload libasan: a
child stopped by a sanitizer report is counted, its output kept in ``--findings`` with the round
that made it, and a new child carries on. A round replays in this process with ``--seed S
--round R --rounds 1``, under the sanitizer with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)
ASAN_OPTIONS=detect_leaks=0`` and ``--sanitized``.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.machinery
import importlib.util
import json
import math
import os
import random
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import fastavro
import pyarrow as pa

from finkdl import fastdecode, program
from finkdl.local import generator
from finkdl.arrow_schema import arrow_schema, type_names
from finkdl.decode import decode_values
from finkdl.partitioning import column
from finkdl.schema import Schema, parse_schema

FINK_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fink"
TOO_MANY = "more array items and map entries than bytes"  # finkdl.decode's reason


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN: real alerts carry NaN features."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


# --- schemas -----------------------------------------------------------------------------------
def _record(name: str, fields: dict[str, Any]) -> dict:
    return {"type": "record", "name": name, "fields": [{"name": k, "type": t} for k, t in fields.items()]}


_KIND = {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C", "LONGER_SYMBOL"]}
_INNER = _record("Inner", {"x": "double", "tags": {"type": "array", "items": "string"},
                           "kind": ["null", "Kind"], "night": ["null", {"type": "int", "logicalType": "date"}]})
EVERY_TYPE = _record("Every", {
    "n": "null", "b": "boolean", "i": "int", "l": "long", "f": "float", "d": "double", "by": "bytes",
    "s": "string", "fx": {"type": "fixed", "name": "F16", "size": 16}, "e": _KIND,
    "fx0": {"type": "fixed", "name": "F0", "size": 0},
    "dec": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 3},
    "dec38": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 10},
    "decf": {"type": "fixed", "name": "D8", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4},
    "decf16": {"type": "fixed", "name": "D16", "size": 16, "logicalType": "decimal", "precision": 38},
    "date": {"type": "int", "logicalType": "date"},
    "tms": {"type": "int", "logicalType": "time-millis"},
    "tus": {"type": "long", "logicalType": "time-micros"},
    "tsms": {"type": "long", "logicalType": "timestamp-millis"},
    "tsus": ["null", {"type": "long", "logicalType": "timestamp-micros"}],
    "oi": ["null", "int"], "ol": ["long", "null"], "od": ["null", "double"], "os": ["string", "null"],
    "ob": ["null", "bytes"], "oe": ["null", "Kind"], "ofx": ["null", "F16"],
    "inner": _INNER, "oinner": ["null", "Inner"], "inners": {"type": "array", "items": "Inner"},
    "ints": {"type": "array", "items": "int"}, "olongs": {"type": "array", "items": ["null", "long"]},
    "floats": {"type": "array", "items": {"type": "array", "items": "float"}},
    "strs": ["null", {"type": "array", "items": "string"}],
    "decs": {"type": "array", "items": {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}},
    "m": {"type": "map", "values": "string"}, "mm": {"type": "map", "values": {"type": "map", "values": ["null", "double"]}},
    "minner": ["null", {"type": "map", "values": "Inner"}], "mbool": {"type": "map", "values": "boolean"},
    "label": "string",
})
# Items that take no bytes at all: fastavro reads these values only once read_past has.
_EMPTY = _record("Empty", {})
NO_BYTES = _record("NoBytes", {
    "nulls": {"type": "array", "items": "null"}, "empties": {"type": "array", "items": _EMPTY},
    "nullrecs": {"type": "array", "items": _record("Nulls", {"a": "null", "e": "Empty"})},
    "fixed0": {"type": "array", "items": {"type": "fixed", "name": "Z", "size": 0}},
    "nested": {"type": "array", "items": {"type": "array", "items": "null"}},
    "mnull": {"type": "map", "values": "null"}, "oempties": ["null", {"type": "array", "items": "Empty"}],
    "x": ["null", "long"], "label": "string",
})
# A label after arrays and maps of small items, where a block's byte size that lies matters.
LABEL_AFTER = _record("LabelAfter", {
    "xs": {"type": "array", "items": "long"}, "m": {"type": "map", "values": ["null", "int"]},
    "nested": {"type": "array", "items": {"type": "array", "items": "boolean"}}, "label": "string"})


@dataclass
class Subject:
    """A schema to fuzz, the values to start from, and the columns read alone as labels."""

    name: str
    schema: Schema
    corpus: list[bytes]
    labels: list[str]
    target: pa.Schema = field(init=False)

    def __post_init__(self) -> None:
        self.target = arrow_schema(self.schema.avro)


def _encoded(schema: Schema, records: list[dict]) -> list[bytes]:
    return [generator.encode(schema.parsed, r) for r in records]


@lru_cache(maxsize=1)
def subjects() -> tuple[Subject, ...]:
    """The schemas fuzzed: built-in ones always, real Fink ones where the samples are."""
    out = [Subject("every-type", parse_schema(json.dumps(EVERY_TYPE), "every"), [], ["label", "oinner.night", "i"]),
           Subject("no-bytes", parse_schema(json.dumps(NO_BYTES), "no-bytes"), [], ["label", "x"]),
           Subject("label-after", parse_schema(json.dumps(LABEL_AFTER), "label-after"), [], ["label"])]
    ztf = parse_schema(json.dumps(generator.ztf_schema(slim=False, cutouts=True)), "generated ztf")
    out.append(Subject("generated-ztf", ztf, _encoded(ztf, list(generator.alerts(6, hostile=True, seed=11))),
                       ["finkclass", "candidate.jd", "objectId"]))
    real = [("ztf", "ztf/alerts-ztf-2026-03-22.avro", "ztf/schema-ztf-ftransfer-2026-03-23.json",
             ["finkclass", "candidate.jd"]),
            ("lsst", "lsst/alerts-lsst-2026-03.avro", "lsst/schema-lsst-ftransfer-2026-03-18.json",
             ["diaSource.midpointMjdTai"]),
            ("ztf-2019", "ztf-2019/alerts-ztf-2019-fink-distribution.avro", None, ["candidate.jd"])]
    for name, alerts, schema_file, labels in real:
        if not (FINK_DATA / alerts).is_file():
            continue
        with open(FINK_DATA / alerts, "rb") as f:
            reader = fastavro.reader(f)
            records = list(reader)
        text = (FINK_DATA / schema_file).read_text() if schema_file else reader.metadata["avro.schema"]
        schema = parse_schema(text, name)
        out.append(Subject(name, schema, _encoded(schema, records), labels))
    return tuple(out)


# --- random values, written as bytes ------------------------------------------------------------
def zigzag(n: int, width: int = 0) -> bytes:
    """An Avro long; ``width`` pads it with continuation bytes (still valid up to 10 bytes)."""
    n = ((n << 1) ^ (n >> 63)) & (2**64 - 1)
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    while len(out) < width:
        out[-1] |= 0x80
        out.append(0)
    return bytes(out)


_INT32 = [0, 1, -1, 63, -64, 64, 2**31 - 1, -2**31, 2**24, -2**24]
_INT64 = _INT32 + [2**63 - 1, -2**63, 2**32, -2**32 - 1, 2**53 + 1]
_FLOATS = [0.0, -0.0, 1.5, -2.5e-3, math.inf, -math.inf, math.nan, 3.4e38, 1e-45, 1e308, 5e-324]
_NAN_BITS = [0x7FC00000, 0x7F800001, 0xFFC00001, 0x7FFFFFFF]
_TEXT = ["", "a", "abc", "é", "Ω", "中文", "😀", "\x00", "\U0010ffff", "e\u0301", "SN candidate", "Solar System MPC"]
_BAD_UTF8 = [b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82", b"\xff", b"\xf4\x90\x80\x80"]
# The integers a logical type's reference can read, and just past them (finkdl.program._LOGICAL).
_LOGICAL = {"date": (-719_162, 2_932_896), "time-millis": (0, 86_399_999), "time-micros": (0, 86_399_999_999),
            "timestamp-millis": (-62_135_596_800_000, 253_402_300_799_999),
            "timestamp-micros": (-62_135_596_800_000_000, 253_402_300_799_999_999)}


class Writer:
    """Writes random values of a schema: valid Avro, but for a few odd choices in some (a time
    past its day, a decimal past its precision, a union branch or enum index out of range, a
    length that lies, text that is not UTF-8, ...), where the two decoders could part ways."""

    def __init__(self, rng: random.Random, schema: dict, big: bool) -> None:
        self.rng, self.big, self.schema = rng, big, schema
        self.named: dict[str, Any] = {}
        self.items_left = 0  # the items a value may still hold, all its arrays and maps together
        self.odd_left = 0  # the odd choices it may still make
        self._collect(schema)

    def write(self) -> bytes:
        """A whole value, of up to a few hundred items (thousands, now and then, in long runs),
        with none, one or two odd choices."""
        self.items_left = self.rng.choice([20, 300, 3000 if self.big else 600])
        self.odd_left = self.rng.choice([0, 0, 1, 1, 2])
        return self.value(self.schema)

    def _collect(self, t: Any) -> None:
        if isinstance(t, list):
            for branch in t:
                self._collect(branch)
        elif isinstance(t, dict):
            for name in type_names(t):
                self.named[name] = t
            for f in t.get("fields", []):
                self._collect(f["type"])
            for key in ("items", "values"):
                if key in t:
                    self._collect(t[key])

    def odd(self) -> bool:
        """Whether to make an odd choice here: one in twenty where the value may still make one."""
        if self.odd_left and self.rng.random() < 0.05:
            self.odd_left -= 1
            return True
        return False

    def count(self) -> int:
        """How many items: mostly few, sometimes none, now and then as many as are left."""
        r = self.rng.random()
        n = 0 if r < 0.25 else self.rng.randint(1, 6) if r < 0.9 else self.rng.randint(50, 2000)
        n = min(n, self.items_left)
        self.items_left -= n
        return n

    def value(self, t: Any) -> bytes:
        rng = self.rng
        if isinstance(t, list):
            branch = rng.randrange(len(t))
            if self.odd():
                branch = rng.choice([-1, len(t), 2**40])
                return zigzag(branch) + self.value(t[rng.randrange(len(t))])
            return zigzag(branch) + self.value(t[branch])
        if isinstance(t, str):
            t = self.named.get(t, {"type": t})
        kind = t["type"]
        if isinstance(kind, (dict, list)):
            return self.value(kind)
        logical = t.get("logicalType")
        if logical == "decimal":
            return self.decimal(t)
        if logical in _LOGICAL:
            low, high = _LOGICAL[logical]
            v = rng.choice([low - 1, high + 1, -1] if self.odd() else [low, high, 0, rng.randint(low, high)])
            return zigzag(v, rng.choice([0, 0, 0, 10]))
        if kind == "null":
            return b""
        if kind == "boolean":
            return bytes([rng.choice([0, 1, 2, 255]) if self.odd() else rng.randint(0, 1)])
        if kind in ("int", "long"):
            v = rng.choice(_INT32 if kind == "int" else _INT64) if rng.random() < 0.5 else rng.randint(-1000, 1000)
            if kind == "int" and self.odd():
                v = rng.choice([2**31, -2**31 - 1, 2**62])
            return zigzag(v, rng.choice([0, 0, 0, 0, rng.randint(1, 10)]))
        if kind in ("float", "double"):
            return self.floating(kind)
        if kind in ("bytes", "string"):
            data = self.text() if kind == "string" else self.blob()
            size = len(data)
            if self.odd():
                size = rng.choice([size + 1, size - 1, -1, -size - 2, 2**40])
            return zigzag(size) + data
        if kind == "fixed":
            return rng.randbytes(t["size"])
        if kind == "enum":
            n = len(t["symbols"])
            return zigzag(rng.choice([-1, n, 2**33]) if self.odd() else rng.randrange(n))
        if kind == "record":
            return b"".join(self.value(f["type"]) for f in t["fields"])
        if kind == "array":
            items = [self.value(t["items"]) for _ in range(self.count())]
            return self.blocks(items)
        if kind == "map":
            n = self.count()
            keys = [self.text() + str(i).encode() * (rng.random() < 0.8) for i in range(n)]
            if keys and self.odd():
                keys[-1] = keys[0]  # a key repeated: fastavro keeps the last value
            return self.blocks([zigzag(len(k)) + k + self.value(t["values"]) for k in keys])
        raise ValueError(f"no writer for {t}")

    def blocks(self, items: list[bytes]) -> bytes:
        """Items in blocks: one, or several, each with its byte size (true or not) or without."""
        rng, out, i = self.rng, [], 0
        while i < len(items):
            n = len(items) - i if rng.random() < 0.7 else rng.randint(1, len(items) - i)
            body = b"".join(items[i:i + n])
            if rng.random() < 0.2:  # the size may lie: its jump end where an item does
                cut = sum(map(len, items[i:i + rng.randint(0, n)]))
                size = len(body) if rng.random() < 0.5 else rng.choice([cut, cut, -1, len(body) + 7, 2**40])
                out.append(zigzag(-n) + zigzag(size) + body)
            else:
                out.append(zigzag(n) + body)
            i += n
        if self.odd():
            out.append(zigzag(rng.choice([1, 5, 2**20, 2**62])))  # a count with no items after it
        return b"".join(out) + b"\x00"

    def floating(self, kind: str) -> bytes:
        rng = self.rng
        if rng.random() < 0.15:
            bits = rng.choice(_NAN_BITS) if rng.random() < 0.5 else rng.getrandbits(32)
            if kind == "float":
                return struct.pack("<I", bits)
            return struct.pack("<Q", (bits << 32) | rng.getrandbits(32))
        v = rng.choice(_FLOATS) if rng.random() < 0.5 else rng.uniform(-1e6, 1e6)
        if kind == "float" and abs(v) > 3.4e38:
            v = math.copysign(math.inf, v)  # past a float's range: struct refuses it
        return struct.pack("<f" if kind == "float" else "<d", v)

    def text(self) -> bytes:
        rng = self.rng
        s = "".join(rng.choice(_TEXT) for _ in range(rng.choice([0, 1, 2, 5, 40])))
        data = s.encode()
        if self.odd():
            at = rng.randint(0, len(data))
            data = data[:at] + rng.choice(_BAD_UTF8) + data[at:]
        return data

    def blob(self) -> bytes:
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            return b""
        if r < 0.97 or not self.big:
            return rng.randbytes(rng.choice([1, 7, 100, 2000]))
        return rng.randbytes(rng.choice([70_000, 1_000_000]))

    def decimal(self, t: dict) -> bytes:
        rng, precision = self.rng, t["precision"]
        bound = 10**precision
        v = rng.choice([bound, -bound, 2**127 - 1] if self.odd() else
                       [0, 1, -1, bound - 1, -(bound - 1), rng.randrange(-bound + 1, bound)])
        width = t.get("size") or max(1, (v.bit_length() + 8) // 8) + rng.choice([0, 0, 0, 1, 16])
        try:
            data = v.to_bytes(width, "big", signed=True)
        except OverflowError:  # beyond a fixed's bytes: its low bytes
            data = (v & (2 ** (8 * width) - 1)).to_bytes(width, "big")
        return data if t["type"] == "fixed" else zigzag(len(data)) + data


# --- mutations ----------------------------------------------------------------------------------
_BYTES = [0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFE, 0xFF]


def mutate(rng: random.Random, value: bytes, others: list[bytes]) -> bytes:
    """The value with one to four changes: bits flipped, bytes set, inserted, removed, repeated,
    or spliced with another value."""
    v = bytearray(value)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        at = rng.randint(0, len(v))
        if op == 0 and v:
            v[min(at, len(v) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and v:
            v[min(at, len(v) - 1)] = rng.choice(_BYTES)
        elif op == 2:
            v[at:at] = bytes([rng.choice(_BYTES)]) * rng.randint(1, 3)
        elif op == 3:
            del v[at:at + rng.randint(1, 8)]
        elif op == 4:
            v[at:at] = v[at:at + rng.randint(1, 32)]
        elif op == 5 and others:
            other = rng.choice(others)
            v = v[:at] + other[rng.randint(0, len(other)):]
        elif op == 6:
            v[at:at] = zigzag(rng.choice([-1, 1, 2**20, -2**20, 2**62, -(2**63)]))
        else:
            del v[at:]
    return bytes(v)


# --- comparing ----------------------------------------------------------------------------------
@dataclass
class Counts:
    """What a run did; mismatches hold a description of each value decoded otherwise."""

    rounds: int = 0
    values: int = 0
    accepted: int = 0  # by the reference
    rejected: int = 0  # by the reference
    too_many_items: int = 0  # of those rejected
    c_accepted: int = 0  # by the C decoder, whole
    c_refused: int = 0  # left to the reference
    labels_read: int = 0  # values the C decoder read a label of, alone
    labels_compared: int = 0  # ... that the reference accepted, their label compared
    mismatches: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def line(self) -> str:
        return (f"{self.rounds} rounds, {self.values} values: reference accepted {self.accepted}, "
                f"rejected {self.rejected} ({self.too_many_items} over the item bound); C accepted "
                f"{self.c_accepted}, left {self.c_refused} to the reference; {self.labels_read} labels "
                f"read alone ({self.labels_compared} compared); {len(self.mismatches)} mismatches")


def _accepted_by_c(values: list[bytes], nodes: tuple) -> list[int]:
    """The indices of the values the C decoder accepts, each on its own merit."""
    accepted, start = [], 0
    while start < len(values):
        out = fastdecode._avro.decode(nodes, values[start:])
        stop = len(values) if not isinstance(out, int) else start + out
        accepted.extend(range(start, stop))
        start = stop + 1
    return accepted


def _rows(table: pa.Table, only: str | None) -> list:
    """The table's rows (or column ``only``) as Python; a row Python cannot hold (a date past
    year 9999) as the exception it raises, which equals no row."""
    try:
        return table.to_pylist() if only is None else column(table, only).to_pylist()
    except (ValueError, OverflowError):
        if table.num_rows == 1:
            return [sys.exc_info()[1]]
        return [row for k in range(table.num_rows) for row in _rows(table.slice(k, 1), only)]


def compare(subject: Subject, values: list[bytes], counts: Counts, where: str) -> None:
    """Decode a batch every way and count; a value decoded otherwise than the reference's way
    is a mismatch."""
    def mismatch(i: int, what: str) -> None:
        value = values[i] if values else b""
        shown = value.hex() if len(value) <= 256 else f"{value[:128].hex()}...({len(value)} bytes)"
        counts.mismatches.append(f"{subject.name} {where} value {i}: {what}; value {shown}")

    ref = decode_values(values, subject.schema, subject.target)
    counts.values += len(values)
    counts.accepted += len(ref.indices)
    counts.rejected += len(ref.bad)
    counts.too_many_items += sum(u.reason == TOO_MANY for u in ref.bad)
    for only in [None] + subject.labels:
        projected = program.projection(subject.schema.text, subject.target, only) if only else None
        compiled = projected[0] if projected else program.compiled(subject.schema.text)
        target = projected[1] if projected else subject.target
        if compiled is None:
            counts.c_refused += len(values) * (only is None)
            continue
        accepted = _accepted_by_c(values, compiled.nodes)
        if only is None:
            counts.c_accepted += len(accepted)
            counts.c_refused += len(values) - len(accepted)
        else:
            counts.labels_read += len(accepted)
        table = fastdecode._decode([values[i] for i in accepted], compiled, target)
        if table is None:
            mismatch(accepted[0] if accepted else 0, f"refused as a batch, accepted one by one (only={only})")
            continue
        rows, expected = _rows(table, only), dict(zip(ref.indices, _rows(ref.table, only)))
        reasons = {u.index: u.reason for u in ref.bad}
        for i, row in zip(accepted, rows):
            if i in reasons:  # read alone, a label may pass: the whole decode refuses it later
                if only is None:
                    mismatch(i, f"accepted by C, rejected by the reference: {reasons[i]}")
                continue
            counts.labels_compared += only is not None
            if not same(row, expected[i]):
                mismatch(i, f"C gives {str(row)[:300]}, the reference {str(expected[i])[:300]} (only={only})")
        # The public function: the C path when every value passes, else the reference itself.
        if len(accepted) == len(values):
            public = fastdecode.decode_batch(values, subject.schema, subject.target, only=only)
            if public.indices != accepted or public.bad or not same(_rows(public.table, only), rows):
                mismatch(0, f"decode_batch differs from the C decoder (only={only})")


# --- rounds -------------------------------------------------------------------------------------
def _batch(rng: random.Random, subject: Subject, big: bool) -> tuple[str, list[bytes]]:
    """One batch of values to compare, and how it was made."""
    fresh = Writer(rng, subject.schema.avro, big=big).write
    size = rng.choice([0, 1, 1, 2, 5, 10, 20, 40])
    how = rng.choice(["valid", "valid", "mutated", "truncated", "mixed"])
    if how == "valid":
        return how, [fresh() for _ in range(size)]
    base = subject.corpus + [fresh() for _ in range(3)]
    if how == "truncated":
        value = rng.choice(base)
        cuts = sorted(rng.sample(range(len(value) + 1), min(size or 1, len(value) + 1)))
        return how, [value[:cut] for cut in cuts]
    values = [mutate(rng, rng.choice(base), base) for _ in range(size)]
    if how == "mixed":
        values += [fresh() for _ in range(size // 2)] + rng.sample(base, min(2, len(base)))
        rng.shuffle(values)
    return how, values


def _special(rng: random.Random, round_: int, subject: Subject) -> tuple[str, list[bytes], Subject] | None:
    """Now and then, in long runs: every truncation of a value, a batch of 100,000 values, or a
    value of 50 MB."""
    if round_ % 499 == 250:
        value = min(subject.corpus + [Writer(rng, subject.schema.avro, big=False).write()], key=len)
        return f"every truncation of a value of {len(value)} bytes", [value[:n] for n in range(len(value))], subject
    if round_ % 997 == 500:
        schema = parse_schema(json.dumps(_record("Small", {"x": ["null", "long"], "label": "string"})), "small")
        values = [b"\x00" + zigzag(len(t)) + t for t in (rng.choice(_TEXT).encode() for _ in range(100_000))]
        return "100,000 values", values, Subject("small", schema, [], ["label"])
    if round_ % 997 == 900:
        schema = parse_schema(json.dumps(_record("Big", {"by": "bytes", "label": "string"})), "big")
        data = rng.randbytes(50 * 2**20)
        return "a 50 MB value", [zigzag(len(data)) + data + b"\x06abc"], Subject("big", schema, [], ["label"])
    return None


def run_round(seed: int, round_: int, long_run: bool, among: Sequence[Subject]) -> Counts:
    """One round, the same for the same seed and round: a subject, a batch, every comparison."""
    counts = Counts(rounds=1)
    rng = random.Random(f"{seed}:{round_}")
    subject = rng.choice(among)
    special = _special(rng, round_, subject) if long_run else None
    if special is not None:
        how, values, subject = special
    else:
        how, values = _batch(rng, subject, big=long_run)
    compare(subject, values, counts, f"round {seed}:{round_} ({how})")
    return counts


def run(seed: int = 0, rounds: int | None = None, seconds: float | None = None, first_round: int = 0,
        long_run: bool = False, progress: Callable[[Counts, int], None] | None = None,
        among: Sequence[Subject] | None = None) -> Counts:
    """Rounds from ``first_round`` on, until ``rounds`` are done or ``seconds`` have passed, on
    the subjects ``among`` (all by default)."""
    among = among or subjects()
    counts, start, round_ = Counts(), time.monotonic(), first_round
    while (rounds is None or round_ < first_round + rounds) and (
            seconds is None or time.monotonic() - start < seconds):
        if progress is not None:
            progress(counts, round_)
        counts.add(run_round(seed, round_, long_run, among))
        round_ += 1
    return counts


# --- the sanitizer build, run in child processes -----------------------------------------------
def _use_module(path: str) -> None:
    """Decode with the C extension built at ``path`` (the sanitizer build) from now on."""
    loader = importlib.machinery.ExtensionFileLoader("finkdl._avro", path)
    spec = importlib.util.spec_from_file_location("finkdl._avro", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    fastdecode._avro = program._avro = module


def _child(args: argparse.Namespace) -> None:
    """Run rounds under the sanitizer, writing the counts and the round under way as it goes."""
    _use_module(args.sanitized)
    state = Path(args.state)

    def progress(counts: Counts, round_: int) -> None:
        state.write_text(json.dumps(dataclasses.asdict(counts) | {"round": round_}))

    counts = run(args.seed, args.rounds, args.seconds, args.round, long_run=True, progress=progress)
    state.write_text(json.dumps(dataclasses.asdict(counts) | {"done": True}))


def _sanitizer_env() -> dict[str, str]:
    """The environment of a child: libasan loaded first, as a Python not built with it needs."""
    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        sys.exit("libasan.so not found: install gcc's sanitizer libraries (Debian: apt-get install -y libasan8 libubsan1)")
    return os.environ | {
        "LD_PRELOAD": libasan,
        "ASAN_OPTIONS": "detect_leaks=0",  # CPython keeps memory to its end by design
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }


_REPORTS = ("ERROR: AddressSanitizer", "runtime error:")  # how each kind of report begins


def _state(path: Path) -> tuple[Counts, Any, bool]:
    """What a child wrote: its counts, the round under way, and whether it finished."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet, or being written
        return Counts(), "?", False
    at, finished = state.pop("round", "?"), state.pop("done", False)
    return Counts(**state), at, finished


def _parent(args: argparse.Namespace) -> int:
    """Children one after another until the time is up; each one a report (or an error) stops is
    counted, its output kept, and the next carries on with the next seed."""
    findings = Path(args.findings)
    findings.mkdir(parents=True, exist_ok=True)
    total, reports, errors = Counts(), 0, 0
    started = shown = time.monotonic()
    deadline, seed, env = started + args.seconds, args.seed, _sanitizer_env()
    print(f"fuzzing {', '.join(s.name for s in subjects())} for {args.seconds:.0f} s with {args.sanitized}; "
          f"findings in {findings}", flush=True)
    while time.monotonic() < deadline - 1:
        state, output = findings / f"child-{seed}.json", findings / f"child-{seed}.stderr"
        with open(output, "w") as stderr:
            child = subprocess.Popen([sys.executable, __file__, "--child", "--seed", str(seed), "--state", str(state),
                                      "--sanitized", args.sanitized, "--seconds", str(deadline - time.monotonic())],
                                     env=env, stderr=stderr)
            while child.poll() is None:
                time.sleep(1)
                if time.monotonic() - shown > 60:
                    so_far = dataclasses.replace(total)
                    so_far.add(_state(state)[0])
                    print(f"{time.monotonic() - started:5.0f} s: {so_far.line()}; {reports} sanitizer reports",
                          flush=True)
                    shown = time.monotonic()
        done, at, finished = _state(state)
        total.add(done)
        text = output.read_text(errors="replace")
        found = sum(text.count(marker) for marker in _REPORTS)
        if child.returncode == 0 and finished and not found:
            output.unlink()
            state.unlink()
        else:
            reports += found
            errors += not found
            print(f"child of seed {seed} stopped (exit {child.returncode}) in round {at}, {found} sanitizer "
                  f"reports, output in {output}; replay under the sanitizer with --seed {seed} --round {at} "
                  f"--rounds 1\n  " + "\n  ".join(text.strip().splitlines()[:12]), flush=True)
        seed += 1
    print(f"{total.line()}; {reports} sanitizer reports; {errors} children stopped otherwise", flush=True)
    for line in total.mismatches[:20]:
        print("MISMATCH", line)
    return 1 if total.mismatches or reports or errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--round", type=int, default=0, help="the first round")
    parser.add_argument("--sanitized", help="the sanitizer build of finkdl/_avro.c")
    parser.add_argument("--findings", default="build/fuzz", help="where reports and counts go")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds is None and args.rounds is None:
        args.seconds = 60.0
    if args.child:
        _child(args)
        return 0
    if args.sanitized and args.rounds is None:
        return _parent(args)
    if args.sanitized:
        _use_module(args.sanitized)
    counts = run(args.seed, args.rounds, args.seconds, args.round, long_run=True)
    print(counts.line())
    for line in counts.mismatches[:20]:
        print("MISMATCH", line)
    return 1 if counts.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
