"""Prove an output folder exact: per topic and Kafka partition, the offset ranges on disk, their
gaps and overlaps, row counts against the messages each range held, and duplicate alert ids."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import fastavro
import pyarrow.parquet as pq

from .naming import QUARANTINE_DIR
from .offsets import DataFile, scan

ID_COLUMNS = ("candid", "diaSourceId")


@dataclass
class PartitionReport:
    partition: int
    ranges: list[tuple[int, int]] = field(default_factory=list)
    rows: int = 0
    quarantined: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    overlaps: list[tuple[int, int]] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    @property
    def merged(self) -> list[tuple[int, int]]:
        """Ranges joined where they touch: what a person reads first."""
        out: list[list[int]] = []
        for first, last in sorted(self.ranges):
            if out and first == out[-1][1] + 1:
                out[-1][1] = last
            else:
                out.append([first, last])
        return [tuple(r) for r in out]


@dataclass
class VerifyReport:
    outdir: Path
    topics: dict[str, dict[int, PartitionReport]]
    id_column: str | None
    duplicates: dict[object, int]

    @property
    def partitions(self) -> dict[int, PartitionReport]:
        """The partitions of a folder holding one topic (``topics`` has those of several)."""
        if len(self.topics) > 1:
            raise ValueError(f"{self.outdir} holds several topics: see .topics")
        return next(iter(self.topics.values()), {})

    def _all(self) -> list[PartitionReport]:
        return [p for parts in self.topics.values() for p in parts.values()]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self._all())

    @property
    def ok(self) -> bool:
        return not self.duplicates and all(not (p.gaps or p.overlaps or p.incomplete) for p in self._all())


def file_info(f: DataFile) -> tuple[int, int]:
    """Rows of a file, and messages of its range (from the file's own metadata)."""
    if f.range.ext == "avro":
        with open(f.path, "rb") as fo:
            reader = fastavro.block_reader(fo)
            messages = int(reader.metadata.get("finkdl.messages", "0"))
            return sum(block.num_records for block in reader), messages
    meta = pq.read_metadata(f.path)
    kv = meta.metadata or {}
    return meta.num_rows, int(kv.get(b"finkdl.messages", b"0"))


def verify(outdir: Path) -> VerifyReport:
    files = scan(outdir)
    by_partition: dict[tuple[str, int], list[DataFile]] = defaultdict(list)
    for f in files:
        by_partition[(f.range.topic, f.range.partition)].append(f)
    reports: dict[str, dict[int, PartitionReport]] = defaultdict(dict)
    for (topic, p), fs in sorted(by_partition.items()):
        reports[topic][p] = _check_partition(p, fs)
    id_column, duplicates = _duplicates([f for f in files if QUARANTINE_DIR not in f.path.parts])
    return VerifyReport(outdir, dict(reports), id_column, duplicates)


def _check_partition(p: int, files: list[DataFile]) -> PartitionReport:
    report = PartitionReport(p)
    groups: dict[tuple[int, int, int], list[DataFile]] = defaultdict(list)
    for f in files:
        groups[(f.range.first, f.range.last, f.range.files)].append(f)
    for (first, last, n), group in sorted(groups.items()):
        rows = messages = 0
        for f in group:
            r, messages = file_info(f)
            rows += r
            if QUARANTINE_DIR in f.path.parts:
                report.quarantined += r
            else:
                report.rows += r
        if len(group) != n or rows != messages:
            report.incomplete.append(f"{first}-{last}: {len(group)} of {n} files, "
                                     f"{rows} of {messages} messages")
        report.ranges.append((first, last))
    ranges = sorted(set(report.ranges))
    for (a1, b1), (a2, b2) in zip(ranges, ranges[1:]):
        if a2 > b1 + 1:
            report.gaps.append((b1 + 1, a2 - 1))
        elif a2 <= b1:
            report.overlaps.append((a2, min(b1, b2)))
    return report


def _duplicates(files: list[DataFile]) -> tuple[str | None, dict[object, int]]:
    """Alert ids seen more than once across all data files."""
    counts: Counter = Counter()
    id_column = None
    for f in files:
        ids = _ids(f)
        if ids is None:
            continue
        id_column = ids[0]
        counts.update(v for v in ids[1] if v is not None)
    return id_column, {k: n for k, n in counts.items() if n > 1}


def _ids(f: DataFile) -> tuple[str, list] | None:
    if f.range.ext == "avro":
        with open(f.path, "rb") as fo:
            records = list(fastavro.reader(fo))
        for name in ID_COLUMNS:
            if records and name in records[0]:
                return name, [r[name] for r in records]
        return None
    names = pq.read_schema(f.path).names
    for name in ID_COLUMNS:
        if name in names:
            return name, pq.read_table(f.path, columns=[name]).column(name).to_pylist()
    return None
