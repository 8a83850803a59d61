"""Where a partition resumes, which leftovers go, and the synchronous commit.

Commit order, per flush: write every file (temporary name, fsync, rename, fsync folder),
then commit ``last + 1`` synchronously and check the answer. A crash between the two leaves
complete files whose offsets are not committed: the next owner of the partition keeps a
range only if all its files are present, and removes anything else at or past its start.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import fastavro
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from .errors import BrokerError
from .kafka import RETRIABLE
from .naming import FileRange, parse_file_name, temporary_range


@dataclass(frozen=True)
class DataFile:
    path: Path
    range: FileRange


def scan(outdir: Path) -> list[DataFile]:
    """Every finkdl file under the output folder (including the quarantine), with its topic."""
    found = []
    for root, _dirs, files in os.walk(outdir):
        for name in files:
            parsed = parse_file_name(name)
            if parsed:
                path = Path(root) / name
                if parsed.topic is None:
                    parsed = dataclasses.replace(parsed, topic=_stored_topic(path))
                found.append(DataFile(path, parsed))
    return found


def _stored_topic(path: Path) -> str:
    """The topic of a file named before names held it, from the file's own metadata."""
    if path.suffix == ".avro":
        with open(path, "rb") as f:
            return fastavro.reader(f).metadata.get("finkdl.topic", "")
    return (pq.read_metadata(path).metadata or {}).get(b"finkdl.topic", b"").decode()


def temporaries(outdir: Path, topic: str, partition: int) -> list[Path]:
    """Half-written files of a topic's partition, left by a crash (never part of the output)."""
    found = []
    for root, _dirs, files in os.walk(outdir):
        for name in files:
            parsed = temporary_range(name)
            if parsed and parsed.partition == partition and parsed.topic in (topic, None):
                found.append(Path(root) / name)
    return found


def complete_ranges(files: Iterable[DataFile]) -> dict[tuple[int, int], list[DataFile]]:
    """Ranges (first, last) of one partition whose files are all present."""
    by_range: dict[tuple[int, int, int], list[DataFile]] = defaultdict(list)
    for f in files:
        by_range[(f.range.first, f.range.last, f.range.files)].append(f)
    return {(first, last): group for (first, last, n), group in by_range.items() if len(group) == n}


def resume_point(files: list[DataFile], start: int) -> tuple[int, list[DataFile]]:
    """Where a partition resumes, and the files to delete before resuming.

    Complete ranges that continue from ``start`` (written, not yet committed) are kept and
    skipped over; any other file at or past the resume point is a leftover of a crash.
    """
    complete = complete_ranges(files)
    advanced = True
    while advanced:
        advanced = False
        for first, last in complete:
            if first <= start <= last:
                start, advanced = last + 1, True
    leftovers = [f for f in files if f.range.last >= start]
    return start, leftovers


def commit(consumer: Consumer, topic: str, partition: int, next_offset: int,
           patience_s: float = 60.0, sleep=time.sleep, clock=time.monotonic,
           waiting: Callable[[str], None] = lambda reason: None) -> None:
    """Commit synchronously and raise if the broker refused it.

    A broker that is restarting is waited for (up to ``patience_s``, telling ``waiting`` why
    each time); the files are already durable, so waiting only delays the commit, and giving
    up leaves a rerun to resume.
    """
    deadline = clock() + patience_s
    while True:
        error = _try_commit(consumer, TopicPartition(topic, partition, next_offset))
        if error is None:
            return
        if not _retriable(error) or clock() >= deadline:
            raise BrokerError(f"commit of partition {partition} at offset {next_offset} failed: "
                              f"{error.str()}", hint="the files are on disk; rerun to resume") \
                from KafkaException(error)
        waiting(f"waiting to commit partition {partition}: {error.str()}")
        sleep(1.0)


def _try_commit(consumer: Consumer, tp: TopicPartition) -> KafkaError | None:
    try:
        result = consumer.commit(offsets=[tp], asynchronous=False)
    except KafkaException as exc:
        return exc.args[0]
    return next((r.error for r in result or [] if r.error), None)


def _retriable(error: KafkaError) -> bool:
    return error.retriable() or error.code() in RETRIABLE
