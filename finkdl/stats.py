"""What workers report: compact snapshots sent a few times a second, read by the front end."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .naming import QUARANTINE_DIR

if TYPE_CHECKING:
    from .buffer import Flush
    from .writer import WrittenFile


def lag(end: int, done: int) -> int:
    """What is left to read of a partition: from where it stands (``done``) to ``end``."""
    return max(0, end - done)


@dataclass
class PartitionStats:
    """One Kafka partition as its worker sees it."""

    partition: int
    state: str = "joining"
    committed: int | None = None
    position: int | None = None
    high: int | None = None
    start: int | None = None
    quota: int | None = None
    fetched_bytes: int = 0
    written: int = 0
    written_bytes: int = 0
    files: int = 0
    quarantined: int = 0

    @property
    def lag(self) -> int | None:
        """To commit still: from the committed offset to the end (--limit's share, else the topic's)."""
        done = self.committed if self.committed is not None else self.start
        if self.high is None or done is None:
            return None
        end = self.high if self.quota is None else min(self.high, (self.start or 0) + self.quota)
        return lag(end, done)


@dataclass
class Tally:
    """What a worker wrote, kept across rebalances (a partition's stats leave with it)."""

    written: int = 0
    written_bytes: int = 0
    files: int = 0
    quarantined: int = 0
    labels: Counter = field(default_factory=Counter)
    quarantine_files: list[str] = field(default_factory=list)

    def add(self, flush: Flush, files: list[WrittenFile]) -> None:
        self.written += flush.messages
        self.written_bytes += sum(f.bytes for f in files)
        self.files += len(files)
        self.quarantined += len(flush.bad)
        for f in files:
            self.labels[f.label] += f.rows
            if f.label == QUARANTINE_DIR:
                self.quarantine_files.append(str(f.path))


@dataclass
class WorkerSnapshot:
    """Everything the front end knows about one worker, replaced whole at each report."""

    worker: int
    pid: int
    time: float
    state: str = "joining"
    partitions: list[PartitionStats] = field(default_factory=list)
    received: int = 0
    received_bytes: int = 0
    written: int = 0  # totals of this worker, kept across rebalances (partition rows are not)
    written_bytes: int = 0
    files: int = 0
    quarantined: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    cpu_percent: float = 0.0
    rss: int = 0
    done: bool = False
    error: str | None = None
    quarantine_files: list[str] = field(default_factory=list)
    landing_bytes: int = 0  # received bytes of flushes handed over, not yet durable and committed


@dataclass(frozen=True)
class WorkerFailure:
    """Sent once by a worker that stops on an error; rebuilt as a FinkdlError by the front end."""

    worker: int
    kind: str
    message: str
    hint: str | None = None
