"""Prove an output folder exact: per topic and Kafka partition, the offset ranges on disk, their
gaps and overlaps, row counts against the messages each range held, and duplicate alert ids.

An alert's id is its survey's (finkdl.surveys): ``candid`` for ZTF, ``diaSourceId`` for LSST,
``alertId`` for ELASTiCC. A folder may hold several kinds (one merged schema, the others'
ids null): each row is checked by the first id it has, and rows that have none are counted
apart, with the reason, never silently skipped.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import fastavro
import pyarrow.parquet as pq

from .errors import not_a_download
from .folder import read_folder_schema
from .naming import QUARANTINE_DIR, by_range
from .output import open_storage
from .storage import DataFile, Storage
from .surveys import id_columns

NULL_ID = "their id is null"
NO_ID_COLUMN = f"their files have no alert id column ({', '.join(id_columns())})"


@dataclass
class PartitionReport:
    partition: int
    ranges: list[tuple[int, int]] = field(default_factory=list)
    rows: int = 0
    quarantined: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    overlaps: list[tuple[int, int]] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files no download of finkdl writes

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
class IdCheck:
    """The duplicate check: rows checked per id column, rows not checked per reason."""

    checked: Counter = field(default_factory=Counter)
    unchecked: Counter = field(default_factory=Counter)
    duplicates: dict[tuple[str, object], int] = field(default_factory=dict)


@dataclass
class VerifyReport:
    topics: dict[str, dict[int, PartitionReport]]
    ids: IdCheck

    def _all(self) -> list[PartitionReport]:
        return [p for parts in self.topics.values() for p in parts.values()]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self._all())

    @property
    def duplicates(self) -> dict[tuple[str, object], int]:
        return self.ids.duplicates

    @property
    def ok(self) -> bool:
        return not self.duplicates and all(not (p.gaps or p.overlaps or p.incomplete or p.problems)
                                           for p in self._all())


def verify(outdir: str | Path) -> VerifyReport:
    """What OUTDIR holds, checked; a ConfigError for a folder finkdl never wrote to (an empty
    one, a mistyped path): nothing to check is not a success."""
    storage = open_storage(outdir)
    files = storage.files()
    if not files and read_folder_schema(storage) is None:
        raise not_a_download(storage.url)
    by_partition: dict[tuple[str, int], list[DataFile]] = defaultdict(list)
    for f in files:
        by_partition[(f.range.topic, f.range.partition)].append(f)
    reports: dict[str, dict[int, PartitionReport]] = defaultdict(dict)
    for (topic, p), fs in sorted(by_partition.items()):
        reports[topic][p] = _check_partition(p, fs, storage)
    ids = check_ids(storage, (f for f in files if QUARANTINE_DIR not in f.path.parts))
    return VerifyReport(dict(reports), ids)


@dataclass(frozen=True)
class FileInfo:
    rows: int
    messages: int  # of the file's range, from its own metadata
    topic_id: str | None


def file_info(storage: Storage, f: DataFile) -> FileInfo:
    """Rows of a file, and what its own metadata says of its range."""
    with storage.open(f.path) as fo:
        if f.range.ext == "avro":
            reader = fastavro.block_reader(fo)
            kv = {k: v for k, v in reader.metadata.items() if k.startswith("finkdl.")}
            rows = sum(block.num_records for block in reader)
        else:
            meta = pq.read_metadata(fo)
            kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
            rows = meta.num_rows
    return FileInfo(rows, int(kv.get("finkdl.messages", "0")), kv.get("finkdl.topic_id"))


def _check_partition(p: int, files: list[DataFile], storage: Storage) -> PartitionReport:
    report = PartitionReport(p)
    infos = {f.path: file_info(storage, f) for f in files}
    topic_ids = {info.topic_id for info in infos.values() if info.topic_id}
    if len(topic_ids) > 1:
        report.problems.append(f"TOPICS: files of {len(topic_ids)} different topics of this name "
                               f"(topic ids {', '.join(sorted(topic_ids))}): offsets of one are not "
                               "those of the other")
    for (first, last, n), group in sorted(by_range(files).items()):
        if first > last:
            report.problems.append(f"REVERSED: {', '.join(f.path.name for f in group)} names offsets "
                                   f"{first}-{last}, first after last: which offsets it holds is unknown")
            continue
        rows = messages = 0
        for f in group:
            info = infos[f.path]
            rows, messages = rows + info.rows, info.messages
            if QUARANTINE_DIR in f.path.parts:
                report.quarantined += info.rows
            else:
                report.rows += info.rows
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


def check_ids(storage: Storage, files) -> IdCheck:
    """Every row's id, across all data files: each row by the first id column it has a value in."""
    seen: Counter = Counter()
    check = IdCheck()
    for f in files:
        columns = _id_columns(storage, f)
        if not columns:
            check.unchecked[NO_ID_COLUMN] += file_info(storage, f).rows
            continue
        for row in zip(*columns.values()):
            found = next(((name, v) for name, v in zip(columns, row) if v is not None), None)
            if found is None:
                check.unchecked[NULL_ID] += 1
            else:
                check.checked[found[0]] += 1
                seen[found] += 1
    check.duplicates = {key: n for key, n in seen.items() if n > 1}
    # In the surveys' order, not the order the file system lists the files in.
    check.checked = Counter({name: check.checked[name] for name in id_columns() if name in check.checked})
    return check


def _id_columns(storage: Storage, f: DataFile) -> dict[str, list]:
    """The values of each id column a file has, in the order of finkdl.surveys."""
    with storage.open(f.path) as fo:
        if f.range.ext == "avro":
            records = list(fastavro.reader(fo))
            names = [n for n in id_columns() if records and n in records[0]]
            return {n: [r[n] for r in records] for n in names}
        parquet = pq.ParquetFile(fo)
        names = [n for n in id_columns() if n in parquet.schema_arrow.names]
        if not names:
            return {}
        table = parquet.read(columns=names)
    return {n: table.column(n).to_pylist() for n in names}
