"""File names that tell what they hold: topic, Kafka partition, offset range, files of the flush.

``part-ftransfer_ztf_2026-11-28_1-P003-000000001000-000000001999-of4.parquet`` holds alerts of
partition 3 of topic ftransfer_ztf_2026-11-28_1 with offsets 1000..1999; that range was
written as 4 files (one per label). A reader proves the output exact from names alone: every
range complete (all its files present), ranges tiling each partition without gap or overlap.
The topic (Kafka names are safe in file names) lets several topics share a folder; names of
finkdl before it (``part-P003-…``) hold no topic: it is in the file's metadata.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Protocol, TypeVar

QUARANTINE_DIR = "_quarantine"
META_DIR = "_finkdl"
# A flush's undecodable messages go to a file of its own prefix (so that readers' globs of
# part-*.parquet leave it out); files of finkdl 0.1 kept part- there too.
_NAME = re.compile(r"^(?:part|quarantine)-(?:([A-Za-z0-9._-]+)-)?P(\d+)-(\d+)-(\d+)-of(\d+)\.(parquet|avro)$")


@dataclass(frozen=True, order=True)
class FileRange:
    """What a file name says about its content."""

    partition: int
    first: int
    last: int
    files: int
    ext: str
    topic: str | None = None  # None: a name without it (the file's metadata holds it)


def file_name(partition: int, first: int, last: int, files: int, ext: str,
              topic: str | None = None, kind: str = "part") -> str:
    """``kind`` is part (alerts) or quarantine (messages that would not decode). A range
    always reads first to last: a name past that would hide which offsets the file holds."""
    if not 0 <= first <= last:
        raise ValueError(f"offsets {first}-{last} do not make a range")
    prefix = f"{kind}-{topic}-" if topic else f"{kind}-"
    return f"{prefix}P{partition:03d}-{first:012d}-{last:012d}-of{files}.{ext}"


def parse_file_name(name: str) -> FileRange | None:
    """The range a finkdl file holds, or None for any other file (or a temporary one)."""
    match = _NAME.match(name)
    if not match:
        return None
    topic, p, first, last, files, ext = match.groups()
    return FileRange(int(p), int(first), int(last), int(files), ext, topic)


def temporary_name(name: str, token: str) -> str:
    """Name while writing: hidden (readers skip dot files) and not matching ``parse_file_name``."""
    return f".{name}.{token}.tmp"


def temporary_range(name: str) -> FileRange | None:
    """What a temporary file (left by a crash) was to hold, or None for other files."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    return parse_file_name(name[1:].rsplit(".", 2)[0])



class _Named(Protocol):
    range: FileRange


F = TypeVar("F", bound=_Named)


def by_range(files: Iterable[F]) -> dict[tuple[int, int, int], list[F]]:
    """Files grouped by the range of one flush: (first, last, number of files it was written as)."""
    groups: dict[tuple[int, int, int], list[F]] = defaultdict(list)
    for f in files:
        groups[(f.range.first, f.range.last, f.range.files)].append(f)
    return dict(groups)


def complete_ranges(files: Iterable[F]) -> dict[tuple[int, int], list[F]]:
    """Ranges (first, last) of one partition whose files are all present."""
    return {(first, last): group for (first, last, n), group in by_range(files).items()
            if len(group) == n}
