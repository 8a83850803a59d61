"""File names that tell what they hold: Kafka partition, offset range, files of the flush.

``part-P003-000000001000-000000001999-of4.parquet`` holds alerts of Kafka partition 3 with
offsets 1000..1999; that range was written as 4 files (one per label). A reader proves the
output exact from names alone: every range complete (all its files present), ranges tiling
each partition without gap or overlap.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

QUARANTINE_DIR = "_quarantine"
META_DIR = "_finkdl"
_NAME = re.compile(r"^part-P(\d+)-(\d+)-(\d+)-of(\d+)\.(parquet|avro)$")


@dataclass(frozen=True, order=True)
class FileRange:
    """What a file name says about its content."""

    partition: int
    first: int
    last: int
    files: int
    ext: str


def file_name(partition: int, first: int, last: int, files: int, ext: str) -> str:
    return f"part-P{partition:03d}-{first:012d}-{last:012d}-of{files}.{ext}"


def parse_file_name(name: str) -> FileRange | None:
    """The range a finkdl file holds, or None for any other file (or a temporary one)."""
    match = _NAME.match(name)
    if not match:
        return None
    p, first, last, files, ext = match.groups()
    return FileRange(int(p), int(first), int(last), int(files), ext)


def temporary_name(name: str, token: str) -> str:
    """Name while writing: hidden (readers skip dot files) and not matching ``parse_file_name``."""
    return f".{name}.{token}.tmp"


def temporary_partition(name: str) -> int | None:
    """The Kafka partition of a temporary file (left by a crash), or None for other files."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    parsed = parse_file_name(name[1:].rsplit(".", 2)[0])
    return parsed.partition if parsed else None
