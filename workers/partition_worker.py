"""One worker process: its own consumer in the shared group, the download loop over the
partitions Kafka assigns it, and a stats snapshot to the front end a few times a second.

Per partition the loop is: consume → label → buffer → decode to Arrow → write the files durably →
commit synchronously. Nothing buffered is ever committed; on a rebalance the buffer of a
revoked partition is dropped and its next owner reads those alerts again.

When the schema travels in the message keys (Fink livestream style) it may change from one
message to the next: each message is decoded with the schema in its key, a flush is cut
where the schema changes (so no file mixes writer schemas), and a new schema must fit the
folder's (finkdl.folder) before anything of it is written.
"""
from __future__ import annotations

import dataclasses
import importlib.abc
import signal
import sys
import time
from collections import Counter, defaultdict
from typing import Callable, Sequence

import psutil
# Imported once, in the worker server (finkdl.startup): finkdl.partitioning loads it lazily,
# so each worker would import it at its first batch (0.1 s of CPU, measured).
import pyarrow.compute  # noqa: F401
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from finkdl.buffer import Decoder, PartitionBuffer
from finkdl.columns import Layout, layout_for
from finkdl.config import WorkerPlan
from finkdl.conform import conform
from finkdl.decode import Decoded
from finkdl.errors import AuthError, BrokerError, ExitCode, FinkdlError
from finkdl.fastdecode import decode_batch
from finkdl.folder import Folder
from finkdl.kafka import committed, open_consumer, watermarks
from finkdl.offsets import commit, resume_point, scan, temporaries
from finkdl.schema import looks_like_schema, parse_schema
from finkdl.stats import PartitionStats, WorkerFailure, WorkerSnapshot
from finkdl.writer import Spool

REPORT_EVERY_S = 0.3
WATERMARK_EVERY_S = 1.0
ERROR_SHOWN_S = 15.0  # an error not repeated for this long is over
SPILL_BYTES = 32 * 1024 * 1024  # buffers of a worker past this: the largest label goes to its file
_REBALANCE_CODES = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                    KafkaError.UNKNOWN_MEMBER_ID, KafkaError._ASSIGNMENT_LOST}


def warm_heap(nbytes: int, block: int = 1 << 20) -> None:
    """Fault in the heap a worker's buffers will use, while its consumer group forms (the
    broker waits ~0.2 s for the members, here, with the cores idle), instead of under the
    first batches: freed, the pages stay in the heap (finkdl.startup._worker_memory) and later
    batches reuse them (measured on alerts with cutouts: 5,000-7,000 page faults per worker
    while downloading instead of 38,000, whole runs 2.65 s instead of 3.1)."""
    blocks = [bytearray(block) for _ in range(nbytes // block)]
    del blocks


def batch_size(mean_message_bytes: float, target_bytes: int = 4 * 1024 * 1024) -> int:
    """Messages per consume call: large batches amortise the reading of their labels and the
    Python work per call; ~4 MB bounds what one call brings in at once."""
    return int(min(5000, max(1, target_bytes // max(mean_message_bytes, 1))))


def main(plan: WorkerPlan, index: int, queue, stop, go) -> None:
    """Process entry point: Ctrl-C is the front end's to handle; SIGTERM stops gracefully.

    Workers never use pandas, but pyarrow imports it, when installed, at its first NumPy
    conversion (to recognise pandas types): half a second of CPU in each worker (measured).
    In a worker, importing pandas therefore fails, and pyarrow goes without it.
    """
    sys.meta_path.insert(0, _NoPandas())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        Worker(plan, index, queue.put, stop.is_set, go.is_set).run()
    except FinkdlError as exc:
        queue.put(WorkerFailure(index, type(exc).__name__, exc.message, exc.hint))
        sys.exit(exc.exit_code)
    except Exception as exc:  # anything unexpected still reaches the user as one line
        queue.put(WorkerFailure(index, "WorkerError", f"{type(exc).__name__}: {exc}"))
        sys.exit(ExitCode.WORKER)


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
        cfg = plan.config
        self.plan, self.cfg, self.index, self.send, self.stopping, self.started, self.clock = (
            plan, cfg, index, send, stopping, started, clock)
        self.paused_for_start = False
        # The plan checked the first schema strictly and fitted the folder to it.
        self.first_layout = layout_for(parse_schema(plan.schema_text, "the topic's schema"), cfg,
                                       strict=False)
        self.part = self.first_layout.part
        self.layouts: dict[bytes, Layout] = {plan.schema_text.encode(): self.first_layout}
        self.fitted: set[Layout] = {self.first_layout}
        self.layout_of: dict[int, Layout] = {}  # per partition: the schema of its buffer
        self.folder = Folder(cfg.outdir)
        self.buffers: dict[int, PartitionBuffer] = {}
        self.spools: dict[int, Spool] = {}  # per partition: the files of its open flush
        self.stats: dict[int, PartitionStats] = {}
        self.last_message: dict[int, float] = {}
        self.watermark_at: dict[int, float] = {}
        self.eof: set[int] = set()
        self.pending_commit: dict[int, int] = {}
        self.labels: Counter[str] = Counter()
        self.totals: Counter[str] = Counter()
        self.quarantine_files: list[str] = []
        self.assigned = False
        self.received = self.received_bytes = 0
        self.last_error: str | None = None
        self.error_at = 0.0
        self.reported_at = 0.0
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        self.consumer: Consumer | None = None
        self.closing = False
        # One message first: its size sets the batches (~4 MB). A call gathers up to this many
        # messages for up to 0.2 s while librdkafka keeps fetching, so a larger first guess
        # took 100 messages of 6 MB at once (measured: peak 570 MB instead of 240).
        self.batch_size = 1

    # --- the loop -------------------------------------------------------------------
    def run(self) -> None:
        self.consumer, self.trap = open_consumer(self.cfg.connection,
                                                 **{"client.id": f"finkdl-{self.index}"})
        self.consumer.subscribe([self.cfg.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_revoke)
        warm_heap(self.plan.warm_bytes)
        try:
            while not self.stopping():
                self._step()
                self._report()
            for p in list(self.buffers):  # a graceful stop keeps what was fetched
                self._flush(p)
            self._report(force=True, state="done" if self._done() else "stopped")
        finally:
            for p in list(self.spools):  # stopped by an error: no half-written file stays
                self._drop(p)
            self.closing = True
            self.consumer.close()

    def _step(self) -> None:
        if self.paused_for_start and self.started():
            self.paused_for_start = False
            self._resume()
        # Joining or held back, a worker waits for its partitions, then for the go: it checks
        # often (the call that delivers the partitions lasts its whole timeout).
        starting = self.paused_for_start or not self.assigned
        messages = self.consumer.consume(self.batch_size, timeout=0.05 if starting else 0.2)
        now = self.clock()
        self.trap.raise_auth(self.cfg.connection)
        for err in self.trap.take():  # e.g. the broker unreachable: librdkafka retries, we show it
            self.last_error, self.error_at = err.str(), now
        if self.last_error and now - self.error_at > ERROR_SHOWN_S:
            self.last_error = None  # librdkafka says when a connection fails, not when it is back
        by_partition = defaultdict(list)
        for msg in messages:
            err = msg.error()
            if err is None:
                if msg.partition() in self.buffers:
                    by_partition[msg.partition()].append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                self.eof.add(msg.partition())
            elif err.fatal() or err.code() in (KafkaError._AUTHENTICATION,):
                raise BrokerError(f"the consumer stopped: {err.str()}")
            else:
                self.last_error, self.error_at = err.str(), now
        for p, msgs in by_partition.items():
            self._ingest(p, msgs, now)
        self._commit_pending()
        for p in list(self.buffers):
            self._refresh_watermark(p, now)
            self._advance(p, now)

    def _ingest(self, p: int, msgs: list, now: float) -> None:
        stop_at = self._stop_at(p)
        if stop_at is not None:
            msgs = [m for m in msgs if m.offset() < stop_at]
            if not msgs:
                return
        for layout, run in self._by_schema(p, msgs):
            if layout is not self.layout_of[p]:
                if not self._flush(p):  # its commit was refused: p rewound, to be read again
                    return
                self._fit(layout, p, run[0].offset())
                self.layout_of[p] = layout
            while run:  # a file never holds more than --flush-rows alerts
                room = self.cfg.flush.max_rows - self.buffers[p].messages
                self._add(p, layout, run[:room], now)
                run = run[room:]
                if run and not self._flush(p):
                    return
        if stop_at is not None and self.stats[p].position >= stop_at:
            self.consumer.pause([TopicPartition(self.cfg.topic, p)])

    def _by_schema(self, p: int, msgs: list) -> list[tuple[Layout, list]]:
        """Runs of consecutive messages written with one schema."""
        current = self.layout_of[p]
        if not self.plan.key_schemas:
            return [(current, msgs)]
        runs: list[tuple[Layout, list]] = []
        for msg in msgs:
            current = self._layout(msg.key(), current)
            if runs and runs[-1][0] is current:
                runs[-1][1].append(msg)
            else:
                runs.append((current, [msg]))
        return runs

    def _layout(self, key: bytes | None, current: Layout) -> Layout:
        """The layout of the schema in a message key; the current one for a key holding none."""
        layout = self.layouts.get(key) if key else None
        if layout is None and looks_like_schema(key):
            layout = layout_for(parse_schema(key, "a message key"), self.cfg, strict=False)
            self.layouts[key] = layout
        return layout or current

    def _fit(self, layout: Layout, p: int, offset: int) -> None:
        """A schema met mid-topic fits the folder (widening it), or stops the worker here,
        before anything of it is written: committed offsets stay before it."""
        if layout not in self.fitted:
            self.folder.fit(layout.written, layout.part.keys,
                            f"the schema in the key of partition {p}'s message at offset {offset}")
            self.fitted.add(layout)

    def _add(self, p: int, layout: Layout, msgs: list, now: float) -> None:
        """Hold consecutive messages of one schema in the partition's buffer, by label."""
        values = [m.value() or b"" for m in msgs]
        labelled = (decode_batch(values, layout.schema, layout.decoded, only=self.part.source)
                    if self.part.keys else None)
        self.buffers[p].add(values, [m.offset() for m in msgs], [m.key() for m in msgs],
                            [m.timestamp()[1] for m in msgs], now, labelled)
        while sum(b.held for b in self.buffers.values()) >= SPILL_BYTES:  # the largest label goes
            q = max(self.buffers, key=lambda k: self.buffers[k].held)
            groups, raw = self.buffers[q].release(self._decoder(q), self.buffers[q].largest())
            self.spools.setdefault(q, self._new_spool(q)).add(groups, raw, self.folder.current())
        self.stats[p].position = msgs[-1].offset() + 1
        self.last_message[p] = now
        self.eof.discard(p)
        nbytes = sum(len(v) for v in values)
        self.stats[p].fetched_bytes += nbytes
        self.received += len(msgs)
        self.received_bytes += nbytes
        self.batch_size = batch_size(nbytes / len(msgs))
        self.last_error = None

    def _advance(self, p: int, now: float) -> None:
        """Flush when due, and tell whether the partition is done."""
        st, buf = self.stats[p], self.buffers[p]
        stop_at = self._stop_at(p)
        reached = stop_at is not None and st.position >= stop_at
        caught_up = reached or p in self.eof or (st.high is not None and st.position >= st.high)
        idle = now - self.last_message[p]
        if buf.should_flush(self.cfg.flush, now, caught_up, idle, finishing=reached):
            self._flush(p)
        if buf.messages == 0 and (reached or (caught_up and idle >= self.cfg.timeout)):
            st.state = "done"
        else:
            st.state = "caught up" if caught_up else "fetching"

    def _flush(self, p: int) -> bool:
        """Write and commit what the partition holds; False when the commit was refused."""
        buf, st = self.buffers[p], self.stats[p]
        if not buf.messages:
            return True
        st.state = "writing"
        spool = self.spools.pop(p, None) or self._new_spool(p)
        flush = buf.take(self.cfg.topic, p, self._decoder(p))
        with self.folder.writing() as folder_schema:
            files = spool.finish(flush, folder_schema)
        try:
            commit(self.consumer, self.cfg.topic, p, flush.last + 1, waiting=self._waiting)
        except BrokerError as exc:
            # Not committed: these files must not outlive the partition's next owner's start,
            # unless the group's offset already covers them (the commit landed after all, or
            # the partition's next owner kept them as complete): then they are the only copy.
            if not self._committed_past(p, flush.first):
                with self.folder.writing():
                    for f in files:
                        f.path.unlink(missing_ok=True)
            cause = exc.__cause__
            code = cause.args[0].code() if cause is not None and cause.args else None
            if code not in _REBALANCE_CODES:
                raise
            self._rewind(p, flush.first)
            return False
        st.committed = flush.last + 1
        written_bytes = sum(f.bytes for f in files)
        st.written += flush.messages
        st.written_bytes += written_bytes
        st.files += len(files)
        st.quarantined += len(flush.bad)
        self.totals.update(written=flush.messages, written_bytes=written_bytes, files=len(files),
                           quarantined=len(flush.bad))
        for f in files:
            self.labels[f.label] += f.rows
            if f.label == "_quarantine":
                self.quarantine_files.append(str(f.path))
        return True

    def _decoder(self, p: int) -> Decoder:
        """Partition p's values → rows in the files' columns, as its current schema reads them."""
        layout = self.layout_of[p]

        def decode(values: Sequence[bytes]) -> Decoded:
            decoded = decode_batch(values, layout.schema, layout.decoded)
            return dataclasses.replace(decoded, table=conform(decoded.table, layout.kept))
        return decode

    def _new_spool(self, p: int) -> Spool:
        """Files for partition p's current flush (none is opened before rows arrive)."""
        return Spool(self.cfg.outdir, self.cfg.topic, p, self.buffers[p].first, self.part,
                     self.cfg.fmt, self.layout_of[p].schema.text)

    def _drop(self, p: int) -> None:
        """Forget what partition p holds and remove its open files: it will be read again."""
        spool = self.spools.pop(p, None)
        if spool is not None:
            spool.discard()

    def _waiting(self, reason: str) -> None:
        """Keep the display current while a commit waits for the broker."""
        self.last_error, self.error_at = reason, self.clock()
        self._report()

    def _committed_past(self, p: int, offset: int) -> bool:
        """True when the group's committed offset is past ``offset``, or cannot be read."""
        try:
            done = committed(self.consumer, self.cfg.topic, [p], timeout=10.0).get(p)
        except BrokerError:
            return True  # unknown: keeping files risks a duplicate, deleting them a loss
        return done is not None and done > offset

    def _buffer(self, first: int) -> PartitionBuffer:
        return PartitionBuffer(first=first, part=self.part, keep_raw=self.cfg.fmt == "avro")

    def _rewind(self, p: int, offset: int) -> None:
        """Read a range again (its commit was refused while the group rebalanced)."""
        self._drop(p)
        self.buffers[p] = self._buffer(offset)
        self.stats[p].position = offset
        self.eof.discard(p)  # a stale end-of-partition would mark it done before it is re-read
        self.last_message[p] = self.clock()
        try:
            self.consumer.seek(TopicPartition(self.cfg.topic, p, offset))
        except KafkaException:
            pass  # no longer ours: its next owner starts from the committed offset

    # --- assignment -----------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Resume each partition where its files end, after removing a crash's leftovers."""
        if self.closing:  # a last rebalance while leaving the group: nothing to resume
            return
        topic, now = self.cfg.topic, self.clock()
        existing = [f for f in scan(self.cfg.outdir) if f.range.topic == topic] if partitions else []
        group_offsets = committed(consumer, topic, [tp.partition for tp in partitions]) if partitions else {}
        for tp in partitions:
            p = tp.partition
            low, high = watermarks(consumer, topic, p)
            done = group_offsets.get(p)
            base = low if (self.cfg.from_beginning or done is None) else max(done, low)
            start, leftovers = resume_point([f for f in existing if f.range.partition == p], base)
            with self.folder.writing():  # never while a widening rewrites files
                for path in [f.path for f in leftovers] + temporaries(self.cfg.outdir, topic, p):
                    path.unlink(missing_ok=True)
            if start > (done if done is not None else -1) and start > base:
                self.pending_commit[p] = start
            tp.offset = start
            stop_at = self._stop_at(p)
            self.buffers[p] = self._buffer(start)
            self.layout_of[p] = self.first_layout
            self.stats[p] = PartitionStats(
                p, "fetching", committed=start if start > base else done, position=start,
                high=high, start=start,
                quota=None if stop_at is None else max(0, stop_at - start))
            self.last_message[p] = now
            self.watermark_at[p] = now
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
        for tp in partitions:
            self._drop(tp.partition)
            for table in (self.buffers, self.stats, self.last_message, self.pending_commit,
                          self.layout_of):
                table.pop(tp.partition, None)
            self.eof.discard(tp.partition)

    def _commit_pending(self) -> None:
        for p, offset in list(self.pending_commit.items()):
            commit(self.consumer, self.cfg.topic, p, offset, waiting=self._waiting)
            del self.pending_commit[p]

    def _resume(self) -> None:
        """Start fetching the partitions held back while the group formed.

        librdkafka's broker thread, idle while every partition is paused, notices a resume
        only at its next wake-up, a second later (measured); a request to each partition's
        broker wakes it at once (a watermark request, which also refreshes the partition's end).
        """
        self.consumer.resume(self.consumer.assignment())
        for p in self.stats:
            _low, high = watermarks(self.consumer, self.cfg.topic, p)
            self.stats[p].high = max(high, self.stats[p].high or 0)

    def _refresh_watermark(self, p: int, now: float) -> None:
        """The high watermark from the latest fetch response: no request to the broker.

        An explicit offsets request queues behind the consumer's long-poll fetch on the
        same connection and costs up to ``fetch.wait.max.ms`` each time.
        """
        if now - self.watermark_at.get(p, 0) < WATERMARK_EVERY_S:
            return
        self.watermark_at[p] = now
        _low, high = self.consumer.get_watermark_offsets(TopicPartition(self.cfg.topic, p), cached=True)
        if high >= 0:
            self.stats[p].high = max(high, self.stats[p].high or 0)

    def _stop_at(self, p: int) -> int | None:
        return None if self.plan.stop_at is None else self.plan.stop_at.get(p, 0)

    # --- reporting ------------------------------------------------------------------
    def _done(self) -> bool:
        """Every partition the group gave this worker is done (none given is done too, once the
        group has settled: another host may hold them all)."""
        return self.assigned and all(st.state == "done" for st in self.stats.values())

    def _report(self, force: bool = False, state: str | None = None) -> None:
        now = self.clock()
        if not force and now - self.reported_at < REPORT_EVERY_S:
            return
        self.reported_at = now
        done = self._done()
        if state is None:
            state = ("joining" if not self.assigned else "done" if done
                     else "error" if self.last_error else "running")
        self.send(WorkerSnapshot(
            worker=self.index, pid=self.process.pid, time=time.time(), state=state,
            partitions=[PartitionStats(**vars(st)) for st in self.stats.values()],
            received=self.received, received_bytes=self.received_bytes, **self.totals,
            labels=dict(self.labels), cpu_percent=self.process.cpu_percent(None),
            rss=self.process.memory_info().rss, done=done, error=self.last_error,
            quarantine_files=list(self.quarantine_files)))
