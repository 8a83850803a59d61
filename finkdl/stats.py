"""Compact snapshots that workers send a few times a second; the dashboard reads only these."""
from __future__ import annotations

from dataclasses import dataclass, field


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
        done = self.committed if self.committed is not None else self.start
        if self.high is None or done is None:
            return None
        target = self.high if self.quota is None else min(self.high, (self.start or 0) + self.quota)
        return max(0, target - done)


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


@dataclass(frozen=True)
class WorkerFailure:
    """Sent once by a worker that stops on an error; rebuilt as a FinkdlError by the front end."""

    worker: int
    kind: str
    message: str
    hint: str | None = None
