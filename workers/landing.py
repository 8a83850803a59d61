"""Flushes made durable off the consumer loop: their files closed and fsynced, or uploaded to
object storage (finkdl.commit.make_durable), on a thread of the worker's own, one after the
other, in the order they were cut. The loop then commits each (finkdl.commit.commit_flush):
every call on the consumer stays on the loop's thread, rebalance callbacks included.

The loop goes on fetching and decoding while a flush's files go out. At most ``PENDING``
flushes wait behind the one landing (their files are open in the spool), so the spool and the
memory stay bounded: a flush cut while they wait holds the loop until one has landed.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from confluent_kafka import Consumer

from finkdl.buffer import Flush
from finkdl.commit import abandon, commit_flush
from finkdl.folder import Folder
from finkdl.stats import Tally
from finkdl.writer import Spool, WrittenFile

PENDING = 1  # flushes waiting behind the one landing
WAIT_STEP_S = 0.3  # how often a loop held by the lander is told so (to keep reporting)


@dataclass(frozen=True)
class Landing:
    """A flush handed to the lander: its partition's generation (bumped by every rewind: a
    flush of an older one is never committed), its files so far, and the bytes of its alerts as
    received (what waits to land)."""

    generation: int
    flush: Flush
    spool: Spool
    nbytes: int


@dataclass(frozen=True)
class Landed:
    job: Landing
    files: list[WrittenFile] | None  # durable; None: discarded unwritten (the worker stopping)
    error: BaseException | None = None


class Lander:
    """One thread making a worker's flushes durable in order (see the module's docstring)."""

    def __init__(self, make_durable: Callable[[Flush, Spool], list[WrittenFile]],
                 pending: int = PENDING) -> None:
        self._make_durable = make_durable
        self._jobs: queue.Queue[Landing | None] = queue.Queue(maxsize=pending)
        self._results: queue.Queue[Landed] = queue.Queue()
        self._lock = threading.Condition()
        self._in_flight = 0
        self.waiting_bytes = 0  # alerts' bytes handed over and not yet landed
        self._stopping = False
        self._started: float | None = None  # when the flush landing now began
        self._thread = threading.Thread(target=self._run, name="finkdl-lander", daemon=True)
        self._thread.start()

    def submit(self, job: Landing, while_held: Callable[[], None] = lambda: None) -> None:
        """Hand a flush over; waits (calling ``while_held`` now and then) while the queue is full."""
        with self._lock:
            self._in_flight += 1
            self.waiting_bytes += job.nbytes
        while True:
            try:
                self._jobs.put(job, timeout=WAIT_STEP_S)
                return
            except queue.Full:
                while_held()

    def finished(self) -> list[Landed]:
        """What landed since the last call, in order, without waiting."""
        out = []
        while True:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                return out

    def wait(self, while_held: Callable[[], None] = lambda: None) -> list[Landed]:
        """Everything handed over, landed; what landed since the last call."""
        with self._lock:
            while self._in_flight:
                if not self._lock.wait(WAIT_STEP_S):
                    while_held()
        return self.finished()

    def busy_for(self) -> float:
        """Seconds the flush landing now has taken (0 when none is landing)."""
        started = self._started
        return 0.0 if started is None else time.monotonic() - started

    def stop(self) -> None:
        """Discard what waits (its files are removed, its alerts read again by whoever resumes),
        let the flush landing now finish, and end the thread."""
        self._stopping = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._discard(job)
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._stopping:
                self._discard(job)
                continue
            self._started = time.monotonic()
            try:
                self._done(Landed(job, self._make_durable(job.flush, job.spool)))
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which raises it
                self._done(Landed(job, None, exc))
            finally:
                self._started = None

    def _discard(self, job: Landing) -> None:
        job.spool.discard()
        self._done(Landed(job, None))

    def _done(self, landed: Landed) -> None:
        self._results.put(landed)
        with self._lock:
            self._in_flight -= 1
            self.waiting_bytes -= landed.job.nbytes
            self._lock.notify_all()


class Held(Protocol):
    """What ``Landings`` needs of a partition a worker holds (workers.partition.Assigned)."""

    landing: int
    generation: int

    def rewind(self, offset: int) -> None: ...
    def committed(self, flush: Flush, files: list[WrittenFile]) -> None: ...


class Landings:
    """On the loop: each durable flush committed, in the order flushes were cut; one of a
    range read again (an earlier flush of its partition refused) abandoned; a refusal makes
    the partition read its range again."""

    def __init__(self, lander: Lander, partitions: dict[int, Held], folder: Folder,
                 consumer: Consumer, tally: Tally, waiting: Callable[[str], None]) -> None:
        self.lander, self.partitions, self.folder = lander, partitions, folder
        self.consumer, self.tally, self.waiting = consumer, tally, waiting

    def take(self) -> None:
        """Commit what the lander made durable since the last call."""
        for landed in self.lander.finished():
            self._commit(landed)

    def settle(self, while_held: Callable[[], None], commit: bool = True) -> None:
        """Wait for every flush handed over, and commit it (before a schema change, or at the
        end); without ``commit`` (partitions taken away: inside the group's rebalance a commit
        can wait long for an answer) abandon it: their next owner reads it again."""
        for landed in self.lander.wait(while_held):
            self._commit(landed, commit)

    def _commit(self, landed: Landed, commit: bool = True) -> None:
        if landed.error is not None:
            raise landed.error
        flush, files = landed.job.flush, landed.files
        assigned = self.partitions.get(flush.partition)
        if assigned is not None:
            assigned.landing -= 1
        if files is None:  # discarded unwritten: the worker is stopping
            return
        if not commit or assigned is None or landed.job.generation != assigned.generation:
            abandon(flush, files, self.folder, self.consumer)
            return
        files = commit_flush(flush, files, self.folder, self.consumer, self.waiting)
        if files is None:
            assigned.rewind(flush.first)
            return
        assigned.committed(flush, files)
        self.tally.add(flush, files)
