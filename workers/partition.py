"""One partition a worker holds, from its assignment to its revocation.

Per partition the way of a message is: consumed → its label read alone → held raw in the
buffer, by label → decoded to Arrow when its label leaves the buffer → appended to the flush's
open file → the flush handed to the worker's lander, which lands it off the loop (files
durable, then the offsets committed: finkdl.commit, workers.landing). Nothing held is ever
committed: a partition taken away is dropped, and its next owner reads those alerts again.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from finkdl.buffer import Decoder, Flush, PartitionBuffer
from finkdl.resume import Resume
from finkdl.config import DownloadConfig
from finkdl.conform import conform
from finkdl.decode import Decoded
from finkdl.errors import StaleError
from finkdl.fastdecode import decode_batch
from finkdl.folder import Folder
from finkdl.layout import Layout
from finkdl.stats import PartitionStats, Tally
from finkdl.writer import Spool, WrittenFile

from .landing import Lander, Landing


@dataclass
class Shared:
    """What every partition of a worker uses: its consumer, the folder and the run's settings."""

    cfg: DownloadConfig
    consumer: Consumer
    folder: Folder
    tally: Tally
    runs: Callable[[list, Layout, int], list[tuple[Layout, list]]]  # messages by writer schema
    fit: Callable[[Layout, int, int], None]  # a new writer schema fits the folder, or stops here
    make_room: Callable[[], None]  # the worker's buffers past their budget: spill the largest
    lander: Lander  # lands flushes off the loop, in order
    held: Callable[[], None]  # the loop waits for the lander: keep reporting
    settle: Callable[[], None]  # every flush handed over, durable and committed
    clock: Callable[[], float]
    topic_id: str | None = None  # kept in every file's metadata (finkdl.resume)


class Assigned:
    """A partition of the topic this worker holds: its buffer, the files of its open flush, its
    offsets and its stats."""

    def __init__(self, shared: Shared, partition: int, resume: Resume, committed: int | None,
                 high: int, stop_at: int | None, layout: Layout, now: float) -> None:
        self.shared, self.partition, self.stop_at, self.layout = shared, partition, stop_at, layout
        self.buffer = self._buffer(resume.start)
        self.spool: Spool | None = None
        self.pending_commit = resume.start if resume.commit else None
        self.generation = 0  # bumped by every rewind: landings of an older one are void
        self.landing = 0  # flushes handed to the lander, not yet landed
        self.eof = False
        self.last_message = self.watermark_at = now
        self.stats = PartitionStats(
            partition, "fetching", committed=resume.start if resume.commit else committed,
            position=resume.start, high=high, start=resume.start,
            quota=None if stop_at is None else max(0, stop_at - resume.start))

    @property
    def reached(self) -> bool:
        """--limit's share of this partition is fetched."""
        return self.stop_at is not None and self.stats.position >= self.stop_at

    def take(self, msgs: list, now: float) -> int:
        """Hold consecutive messages of this partition; gives the bytes taken."""
        if self.stop_at is not None:
            msgs = [m for m in msgs if m.offset() < self.stop_at]
        if msgs and msgs[0].offset() < self.stats.position:
            raise StaleError(f"partition {self.partition} of {self.shared.cfg.topic} went back from "
                             f"offset {self.stats.position:,} to {msgs[0].offset():,} while downloading: "
                             "the topic was deleted and created again under its name",
                             hint="rerun: finkdl then says what this folder holds and how to go on")
        taken = 0
        for layout, run in self.shared.runs(msgs, self.layout, self.partition):
            if layout is not self.layout:  # a file never mixes writer schemas
                generation = self.generation
                self.flush()
                self.shared.settle()  # committed before a schema that may stop the worker
                if self.generation != generation:  # refused: the range is read again
                    return taken
                self.shared.fit(layout, self.partition, run[0].offset())
                self.layout = layout
            while run:  # a file never holds more than --flush-rows alerts
                room = self.shared.cfg.flush.max_rows - self.buffer.messages
                taken += self._hold(run[:room], now)
                run = run[room:]
                if run:
                    self.flush()
        if self.reached:
            self.shared.consumer.pause([TopicPartition(self.shared.cfg.topic, self.partition)])
        return taken

    def _hold(self, msgs: list, now: float) -> int:
        """Messages into the buffer, by label (read from the label's column alone)."""
        values = [m.value() or b"" for m in msgs]
        layout, part = self.layout, self.layout.part
        labelled = (decode_batch(values, layout.schema, layout.decoded, only=part.source)
                    if part.keys else None)
        self.buffer.add(values, [m.offset() for m in msgs], [m.key() for m in msgs],
                        [m.timestamp()[1] for m in msgs], now, labelled)
        self.stats.position = msgs[-1].offset() + 1
        self.last_message = now
        self.eof = False
        nbytes = sum(len(v) for v in values)
        self.stats.fetched_bytes += nbytes
        self.shared.make_room()
        return nbytes

    def spill(self) -> None:
        """The largest label's messages to the flush's open file, to free the buffer."""
        groups, raw = self.buffer.release(self._decoder(), self.buffer.largest())
        self._spool().add(groups, raw, self.shared.folder.current())

    def advance(self, now: float) -> None:
        """Flush when due, and tell whether the partition is done."""
        st, cfg = self.stats, self.shared.cfg
        reached = self.reached
        caught_up = reached or self.eof or (st.high is not None and st.position >= st.high)
        idle = now - self.last_message
        if self.buffer.should_flush(cfg.flush, now, caught_up, idle, finishing=reached):
            self.flush()
        if self.buffer.messages == 0 and not self.landing and (reached or (caught_up and idle >= cfg.timeout)):
            st.state = "done"
        else:
            st.state = "caught up" if caught_up else "fetching"

    def flush(self) -> None:
        """Hand what the partition holds to the lander; the loop commits it once it is durable
        (``Worker._landed``), or reads its range again if the group refused the commit.

        Its last rows are written here, a label at a time as a spill writes them: the lander
        only closes the files and makes them durable. Had it written them, their decoded rows
        would be held beside the next flush's buffer while it fills (~25 MB more at a worker's
        peak)."""
        if not self.buffer.messages:
            return
        self.stats.state = "writing"
        while self.buffer.labels:
            self.spill()
        spool, self.spool = self._spool(), None
        nbytes = self.buffer.nbytes
        flush = self.buffer.take(self.shared.cfg.topic, self.partition)
        self.landing += 1
        self.shared.lander.submit(Landing(self.generation, flush, spool, nbytes), self.shared.held)

    def committed(self, flush: Flush, files: list[WrittenFile]) -> None:
        """A flush of this partition is durable and committed: count it."""
        st = self.stats
        st.committed = flush.last + 1
        st.written += flush.messages
        st.written_bytes += sum(f.bytes for f in files)
        st.files += len(files)
        st.quarantined += len(flush.bad)

    def rewind(self, offset: int) -> None:
        """Read a range again (its commit was refused while the group rebalanced)."""
        self.drop()
        self.generation += 1
        self.buffer = self._buffer(offset)
        self.stats.position = offset
        self.eof = False  # a stale end of partition would mark it done before it is read again
        self.last_message = self.shared.clock()
        try:
            self.shared.consumer.seek(TopicPartition(self.shared.cfg.topic, self.partition, offset))
        except KafkaException:
            pass  # no longer ours: its next owner starts from the committed offset

    def drop(self) -> None:
        """Remove the open flush's files: their alerts will be read again."""
        if self.spool is not None:
            self.spool.discard()
            self.spool = None

    def saw_high(self, high: int) -> None:
        if high >= 0:
            self.stats.high = max(high, self.stats.high or 0)

    def _spool(self) -> Spool:
        """The files of the current flush, opened as its rows come."""
        if self.spool is None:
            cfg = self.shared.cfg
            self.spool = Spool(self.shared.folder.storage, cfg.topic, self.partition,
                               self.buffer.first, self.layout.part, cfg.fmt, self.layout.schema.text,
                               self.shared.topic_id)
        return self.spool

    def _buffer(self, first: int) -> PartitionBuffer:
        return PartitionBuffer(first=first, part=self.layout.part,
                               keep_raw=self.shared.cfg.fmt == "avro")

    def _decoder(self) -> Decoder:
        """Values → rows in the files' columns, as the partition's current schema reads them."""
        layout = self.layout

        def decode(values: Sequence[bytes]) -> Decoded:
            decoded = decode_batch(values, layout.schema, layout.decoded)
            return dataclasses.replace(decoded, table=conform(decoded.table, layout.kept))
        return decode
