"""One worker process: its own consumer in the shared group, the partitions Kafka gives it
(``workers.partition.Assigned``), and a stats snapshot to the front end a few times a second.

When the schema travels in the message keys (Fink livestream style) it may change from one
message to the next: each message is decoded with the schema in its key, a flush is cut where
the schema changes (so no file mixes writer schemas), and a new schema must fit the folder's
(finkdl.folder) before anything of it is written.
"""
from __future__ import annotations

import gc
import importlib.abc
import signal
import sys
import time
from collections import defaultdict
from typing import Callable

import psutil
# Imported once, in the worker server (finkdl.startup): finkdl.partitioning loads it lazily,
# and each worker would otherwise import it at its first batch.
import pyarrow.compute  # noqa: F401
from confluent_kafka import Consumer, KafkaError, TopicPartition

from finkdl.commit import make_durable
from finkdl.config import WorkerPlan
from finkdl.errors import BrokerError, ExitCode, FinkdlError
from finkdl.folder import Folder
from finkdl.kafka import close_within, commit_offset, committed, open_consumer, rebalancing, watermarks
from finkdl.resume import resume, stale, stale_error
from finkdl.stats import PartitionStats, Tally, WorkerFailure, WorkerSnapshot
from finkdl.output import open_storage

from .landing import Lander, Landings
from .layouts import Layouts
from .partition import Assigned, Shared

REPORT_EVERY_S = 0.3
WATERMARK_EVERY_S = 1.0
ERROR_SHOWN_S = 15.0  # an error not repeated for this long is over
SLOW_LANDING_S = 5.0  # a flush landing longer than this is shown as held up
# A worker's buffers past this: the largest label goes to its file. It bounds a worker's memory
# (raw alerts, and a label's decoded while written): 32 MB made workers of 160-190 MB at their
# peak, 20 MB of 125-135 MB at the same CPU; 16 MB, smaller row groups and ~10% more CPU on
# alerts with cutouts (bench/results.md).
SPILL_BYTES = 20 * 1024 * 1024



def batch_size(mean_message_bytes: float, target_bytes: int = 4 * 1024 * 1024) -> int:
    """Messages per consume call: large batches spread the Python work of a call over many
    messages; ~4 MB bounds what one call brings in at once."""
    return int(min(5000, max(1, target_bytes // max(mean_message_bytes, 1))))


def main(plan: WorkerPlan, index: int, queue, stop, go, front_end) -> None:
    """Process entry point: Ctrl-C is the front end's to handle; SIGTERM stops gracefully, and
    so does the end of the front end (``front_end``, a pipe's reading end, nothing ever sent:
    readable once the front end is gone, even killed by SIGKILL). A worker without its front
    end would otherwise download on, unseen, and take partitions from the rerun.

    Workers never use pandas, but pyarrow imports it, when installed, at its first NumPy
    conversion (to recognise pandas types), which costs each worker half a second of CPU.
    In a worker, importing pandas therefore fails, and pyarrow goes without it.
    """
    sys.meta_path.insert(0, _NoPandas())
    # Each consume call makes thousands of messages, each a collection's worth of allocations:
    # what the server imported is left out of collections, which then come less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    orphaned = front_end.poll
    try:
        Worker(plan, index, queue.put, lambda: stop.is_set() or orphaned(), go.is_set).run()
    except FinkdlError as exc:
        queue.put(WorkerFailure(index, type(exc).__name__, exc.message, exc.hint))
        sys.exit(exc.exit_code)
    except Exception as exc:  # anything unexpected still reaches the user as one line
        queue.put(WorkerFailure(index, "WorkerError", f"{type(exc).__name__}: {exc}"))
        sys.exit(ExitCode.WORKER)
    finally:
        if orphaned():  # no one reads the reports: exiting must not wait to hand them over
            queue.cancel_join_thread()


class _NoPandas(importlib.abc.MetaPathFinder):
    """Makes ``import pandas`` fail (see ``main``)."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("finkdl's workers do without pandas")
        return None


class Worker:
    """The download loop of one consumer; partitions come and go with rebalances."""

    def __init__(self, plan: WorkerPlan, index: int, send: Callable[[object], None],
                 stopping: Callable[[], bool], started: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.plan, self.cfg, self.index, self.send = plan, plan.config, index, send
        self.stopping, self.started, self.clock = stopping, started, clock
        self.folder = Folder(open_storage(self.cfg.outdir))
        self.layouts = Layouts(self.cfg, plan.schema_text, plan.key_schemas, self.folder)
        self.partitions: dict[int, Assigned] = {}
        self.tally = Tally()
        self.shared: Shared | None = None
        self.assigned = self.closing = self.paused_for_start = False
        self.received = self.received_bytes = 0
        self.last_error: str | None = None
        self.error_at = self.reported_at = 0.0
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        # One message first: its size sets the batches (~4 MB). A call gathers up to this many
        # messages while librdkafka keeps fetching: a larger first guess takes in a hundred
        # messages of several MB at once.
        self.batch_size = 1

    # --- the loop -------------------------------------------------------------------
    def run(self) -> None:
        consumer, self.trap = open_consumer(self.cfg.connection, **{"client.id": f"finkdl-{self.index}"})
        self.consumer = consumer
        self.lander = Lander(lambda flush, spool: make_durable(flush, spool, self.folder))
        self.landings = Landings(self.lander, self.partitions, self.folder, consumer, self.tally,
                                 self._waiting)
        self.shared = Shared(self.cfg, consumer, self.folder, self.tally, self.layouts.runs,
                             self.layouts.fit, self._make_room, self.lander, self._held,
                             lambda: self.landings.settle(self._held), self.clock, self.plan.topic_id)
        consumer.subscribe([self.cfg.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_revoke)
        try:
            while not self.stopping():
                self._step()
                self._report()
            for assigned in self.partitions.values():  # a graceful stop keeps what was fetched
                assigned.flush()
            self.landings.settle(self._held)
            self._report(force=True, state="done" if self._done() else "stopped")
        finally:
            self.lander.stop()  # stopped by an error: what waits to land is read again later
            for assigned in self.partitions.values():  # no half-written file
                assigned.drop()
            self.closing = True
            close_within(consumer)

    def _step(self) -> None:
        self.landings.take()
        if self.paused_for_start and self.started():
            self.paused_for_start = False
            self._resume()
        # Joining or held back, a worker waits for its partitions, then for the go: it checks
        # often (the call that delivers the partitions lasts its whole timeout).
        starting = self.paused_for_start or not self.assigned
        messages = self.consumer.consume(self.batch_size, timeout=0.05 if starting else 0.2)
        now = self.clock()
        self._note_trouble(now)
        by_partition = defaultdict(list)
        for msg in messages:
            err = msg.error()
            if err is None:
                if msg.partition() in self.partitions:
                    by_partition[msg.partition()].append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                if msg.partition() in self.partitions:
                    self.partitions[msg.partition()].eof = True
            elif err.fatal() or err.code() in (KafkaError._AUTHENTICATION,):
                raise BrokerError(f"the consumer stopped: {err.str()}")
            else:
                self.last_error, self.error_at = err.str(), now
        for p, msgs in by_partition.items():
            if p in self.partitions:  # a flush may have lost it to a rebalance
                nbytes = self.partitions[p].take(msgs, now)
                self.received += len(msgs)
                self.received_bytes += nbytes
                self.batch_size = batch_size(nbytes / len(msgs))
                self.last_error = None
        self._commit_pending()
        for assigned in list(self.partitions.values()):
            self._refresh_watermark(assigned, now)
            assigned.advance(now)

    def _make_room(self) -> None:
        """Past the budget, the fullest partition's largest label leaves for its file."""
        while sum(a.buffer.held for a in self.partitions.values()) >= SPILL_BYTES:
            max(self.partitions.values(), key=lambda a: a.buffer.held).spill()

    def _waiting(self, reason: str) -> None:
        """Keep the display current while a commit waits for the broker."""
        self.last_error, self.error_at = reason, self.clock()
        self._report()

    def _note_trouble(self, now: float) -> None:
        """What holds the worker up, for the display: librdkafka's errors (the broker
        unreachable: it retries, we show it), a flush slow to land."""
        self.trap.raise_auth(self.cfg.connection)
        for err in self.trap.take():
            self.last_error, self.error_at = err.str(), now
        slow = self.lander.busy_for()
        if slow >= SLOW_LANDING_S:
            self.last_error, self.error_at = (f"a flush has been landing for {slow:.0f} s (waiting "
                                              "on the broker or the storage)"), now
        if self.last_error and now - self.error_at > ERROR_SHOWN_S:
            self.last_error = None  # librdkafka says when a connection fails, not when it is back

    def _held(self) -> None:
        """The loop waits for the lander: keep the display current."""
        self._note_trouble(self.clock())
        self._report()

    # --- assignment -----------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Resume each partition where its files end, after removing a crash's leftovers."""
        if self.closing:  # a last rebalance while leaving the group: nothing to resume
            return
        topic, now, storage = self.cfg.topic, self.clock(), self.folder.storage
        files = [f for f in storage.files() if f.range.topic == topic] if partitions else []
        group = committed(consumer, topic, [tp.partition for tp in partitions]) if partitions else {}
        for tp in partitions:
            p = tp.partition
            low, high = watermarks(consumer, topic, p)
            mine = [f for f in files if f.range.partition == p]
            again = self.cfg.from_beginning or p in self.plan.restart
            # The plan checked topic ids too; this catches a topic recreated since.
            found = stale(p, mine, high, group.get(p), None, set(), again)
            if found:
                raise stale_error(topic, self.cfg.outdir, [found])
            start = resume(mine, low, group.get(p), again)
            with self.folder.writing():  # never while a widening rewrites files
                storage.delete(start.leftovers + storage.temporaries(topic, p))
            tp.offset = start.start
            stop_at = None if self.plan.stop_at is None else self.plan.stop_at.get(p, 0)
            self.partitions[p] = Assigned(self.shared, p, start, group.get(p), high, stop_at,
                                          self.layouts.first, now)
        consumer.assign(partitions)
        if not self.started():  # the group is still forming: fetching now would be redone
            consumer.pause(partitions)
            self.paused_for_start = True
        self.assigned = True
        self._report(force=True)  # the front end starts everyone once all have partitions

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Until the group hands out partitions again this worker is not "done": in a rebalance
        # every worker holds none for a while (up to the session timeout of members a kill -9
        # left behind), and workers all "done" with nothing would end the run unread.
        self.assigned = False
        if not self.closing:  # what they handed over is read again by their next owner
            self.landings.settle(self._held, commit=False)
        for tp in partitions:
            assigned = self.partitions.pop(tp.partition, None)
            if assigned is not None:
                assigned.drop()

    def _commit_pending(self) -> None:
        """Commit past complete ranges found on disk at assignment (written, not committed)."""
        for assigned in list(self.partitions.values()):
            if assigned.pending_commit is None:
                continue
            error = commit_offset(self.consumer, self.cfg.topic, assigned.partition,
                                  assigned.pending_commit, waiting=self._waiting)
            if error is not None and not rebalancing(error):  # rebalancing: its next owner does it
                raise BrokerError(f"commit of partition {assigned.partition} at offset "
                                  f"{assigned.pending_commit} failed: {error.str()}",
                                  hint="rerun to resume")
            assigned.pending_commit = None

    def _resume(self) -> None:
        """Start fetching the partitions held back while the group formed.

        librdkafka's broker thread, idle while every partition is paused, notices a resume only
        at its next wake-up, a second later; a request to each partition's broker wakes it at
        once (a watermark request, which also refreshes the partition's end).
        """
        self.consumer.resume(self.consumer.assignment())
        for assigned in self.partitions.values():
            assigned.saw_high(watermarks(self.consumer, self.cfg.topic, assigned.partition)[1])

    def _refresh_watermark(self, assigned: Assigned, now: float) -> None:
        """The high watermark from the latest fetch response, without a request to the broker:
        an offsets request queues behind the consumer's long-poll fetch on the same connection."""
        if now - assigned.watermark_at < WATERMARK_EVERY_S:
            return
        assigned.watermark_at = now
        tp = TopicPartition(self.cfg.topic, assigned.partition)
        assigned.saw_high(self.consumer.get_watermark_offsets(tp, cached=True)[1])

    # --- reporting ------------------------------------------------------------------
    def _done(self) -> bool:
        """Every partition the group gave this worker is done (none given is done too, once the
        group has settled: another host may hold them all)."""
        return self.assigned and all(a.stats.state == "done" for a in self.partitions.values())

    def _report(self, force: bool = False, state: str | None = None) -> None:
        now = self.clock()
        if not force and now - self.reported_at < REPORT_EVERY_S:
            return
        self.reported_at = now
        done = self._done()
        if state is None:
            state = ("joining" if not self.assigned else "done" if done
                     else "error" if self.last_error else "running")
        tally = self.tally
        self.send(WorkerSnapshot(
            worker=self.index, pid=self.process.pid, time=time.time(), state=state,
            partitions=[PartitionStats(**vars(a.stats)) for a in self.partitions.values()],
            received=self.received, received_bytes=self.received_bytes, written=tally.written,
            written_bytes=tally.written_bytes, files=tally.files, quarantined=tally.quarantined,
            labels=dict(tally.labels), cpu_percent=self.process.cpu_percent(None),
            rss=self.process.memory_info().rss, done=done, error=self.last_error,
            landing_bytes=self.lander.waiting_bytes,
            quarantine_files=list(tally.quarantine_files)))
