"""The progress of a run as the front end knows it: the latest snapshot of each worker, and the
rates computed from them. Displays (finkdl.dashboard) only read it."""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import DownloadConfig
from .errors import ExitCode
from .stats import WorkerFailure, WorkerSnapshot

if TYPE_CHECKING:
    from .errors import FinkdlError
    from .plan import RunPlan

SILENT_S = 3.0  # workers report every 0.3 s: longer means a call blocked on the broker or disk
# Silent this long, a worker is stuck in a call that will not return: the run stops it rather
# than wait forever (a batch job would spend its allocation waiting). Every wait of the broker
# that finkdl knows of gives up well before (kafka.COMMIT_ANSWER_S), and a worker reports while
# it waits; what is left is a file system that stopped answering, or a bug.
STUCK_S = 300.0
RATE_WINDOW_S = 5.0


class Rate:
    """Alerts (or offsets) and bytes per second over the last few seconds."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int, int]] = deque()

    def add(self, now: float, count: int, nbytes: int) -> None:
        self.samples.append((now, count, nbytes))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window_s:
            self.samples.popleft()

    @property
    def per_s(self) -> float:
        return self._per_s(1)

    @property
    def bytes_per_s(self) -> float:
        return self._per_s(2)

    def _per_s(self, i: int) -> float:
        if len(self.samples) < 2:
            return 0.0
        first, last = self.samples[0], self.samples[-1]
        dt = last[0] - first[0]
        return (last[i] - first[i]) / dt if dt > 0 else 0.0


@dataclass
class RunView:
    """What a display needs: the run's settings, its plan, each worker's latest snapshot, rates."""

    config: DownloadConfig
    plan: RunPlan
    started: float
    workers: dict[int, WorkerSnapshot] = field(default_factory=dict)
    failures: list[WorkerFailure] = field(default_factory=list)
    stopping: str | None = None
    now: float = 0.0
    heard: dict[int, float] = field(default_factory=dict)  # when each worker last reported
    rate: Rate = field(default_factory=Rate)  # alerts received
    landed: Rate = field(default_factory=Rate)  # alerts and bytes made durable (written, uploaded)
    partition_rates: dict[int, Rate] = field(default_factory=dict)  # offsets read, bytes fetched

    def receive(self, item: WorkerSnapshot | WorkerFailure) -> None:
        """A worker's report, as it arrives."""
        if isinstance(item, WorkerFailure):
            self.failures.append(item)
            return
        self.workers[item.worker] = item
        self.heard[item.worker] = self.now
        for st in item.partitions:
            self.partition_rates.setdefault(st.partition, Rate()).add(
                self.now, st.position or 0, st.fetched_bytes)

    def tick(self, now: float) -> None:
        """The time moved on: rates take in the totals as they stand."""
        self.now = now
        self.rate.add(now, self.received, self.received_bytes)
        self.landed.add(now, self.total("written"), self.total("written_bytes"))

    def total(self, name: str) -> int:
        """A worker total (written, written_bytes, files, quarantined) summed over workers."""
        return sum(getattr(w, name) for w in self.workers.values())

    @property
    def received(self) -> int:
        return self.total("received")

    @property
    def received_bytes(self) -> int:
        return self.total("received_bytes")

    @property
    def to_fetch(self) -> int:
        """Alerts to fetch: the planned lag, at least what came."""
        return max(self.plan.to_fetch, self.received)

    @property
    def eta_s(self) -> float | None:
        left = self.to_fetch - self.received
        return left / self.rate.per_s if self.rate.per_s > 0 and left > 0 else None

    def partition_rate(self, partition: int) -> Rate:
        return self.partition_rates.get(partition) or Rate()

    def stuck(self, workers: int, limit_s: float = STUCK_S) -> int | None:
        """A worker not done and silent for ``limit_s`` (counted from the start until it first
        reports), if any."""
        for i in range(workers):
            snapshot = self.workers.get(i)
            if (snapshot is None or not snapshot.done) and self.now - self.heard.get(i, self.started) >= limit_s:
                return i
        return None

    def trouble(self, worker: WorkerSnapshot) -> str:
        """What a worker is held up by: its last error, or a silence (a call blocked on the
        broker or the disk reports nothing until it returns); '' when all is well."""
        silent = self.now - self.heard.get(worker.worker, self.now)
        if silent >= SILENT_S and not worker.done:
            return f"no report for {silent:.0f} s (waiting on the broker or the disk)"
        return worker.error or ""


@dataclass
class Summary:
    """The outcome of a run, for the final report and the exit code."""

    view: RunView
    wall_s: float
    outcome: ExitCode
    error: FinkdlError | None = None

    @property
    def alerts(self) -> int:
        return self.view.total("written")

    @property
    def bytes(self) -> int:
        return self.view.total("written_bytes")

    @property
    def files(self) -> int:
        return self.view.total("files")

    @property
    def quarantined(self) -> int:
        return self.view.total("quarantined")

    @property
    def labels(self) -> Counter:
        total: Counter = Counter()
        for w in self.view.workers.values():
            total.update(w.labels)
        return total
