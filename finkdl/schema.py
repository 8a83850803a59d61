"""Where an alert's Avro schema comes from, and what it tells about the alerts.

Fink publishes the writer schema of a data transfer topic as the *key* of a message in the
companion topic ``<topic>_schema``; a livestream-style message carries its schema in its own
key; a user may also pass a schema file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from .errors import SchemaError

AvroSchema = dict[str, Any]


@dataclass(frozen=True)
class Schema:
    """An Avro writer schema with its JSON text and fastavro's parsed form."""

    text: str
    avro: AvroSchema
    parsed: Any

    @property
    def fields(self) -> list[str]:
        return [f["name"] for f in self.avro.get("fields", [])]


def parse_schema(text: str | bytes, origin: str) -> Schema:
    """Parse a JSON Avro schema; ``origin`` names where it came from, for the message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        avro = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"the schema in {origin} is not JSON ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(avro, dict) or avro.get("type") != "record":
        raise SchemaError(f"the schema in {origin} is not an Avro record schema")
    try:
        parsed = fastavro.parse_schema(avro, _write_hint=False)
    except Exception as exc:  # fastavro raises several types for invalid schemas
        raise SchemaError(f"the schema in {origin} is not a valid Avro schema: {exc}") from exc
    return Schema(text=text, avro=avro, parsed=parsed)


def without_fastavro_keys(avro: Any) -> Any:
    """A schema as Avro writes it: Fink publishes the form fastavro parsed, with its own
    ``__fastavro_parsed`` and ``__named_schemas`` (every named record again) among the fields."""
    if isinstance(avro, dict):
        return {k: without_fastavro_keys(v) for k, v in avro.items() if not k.startswith("__")}
    if isinstance(avro, list):
        return [without_fastavro_keys(v) for v in avro]
    return avro


def looks_like_schema(key: bytes | None) -> bool:
    """True when a message key is a JSON Avro record schema (Fink livestream style)."""
    if not key or not key.lstrip().startswith(b"{"):
        return False
    try:
        return json.loads(key).get("type") == "record"
    except (ValueError, AttributeError):
        return False


def schema_topic(topic: str) -> str:
    """The companion topic holding a data transfer topic's schema."""
    return f"{topic}_schema"


def load_schema_file(path: Path) -> Schema:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SchemaError(f"cannot read schema file {path}: {exc.strerror}") from exc
    return parse_schema(text, str(path))


def _unwrap(avro_type: Any) -> Any:
    """The non-null branch of a ``[T, "null"]`` union, else the type itself."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) == 1:
            return branches[0]
    return avro_type


def column_paths(avro: AvroSchema, prefix: str = "") -> list[str]:
    """Every column reachable through records, as dotted paths (``candidate.jd``)."""
    paths = []
    for field in avro.get("fields", []):
        name = prefix + field["name"]
        paths.append(name)
        inner = _unwrap(field["type"])
        if isinstance(inner, dict) and inner.get("type") == "record":
            paths.extend(column_paths(inner, name + "."))
    return paths
