"""What a worker holds for one partition between two flushes, and when to flush it.

Messages are held raw, each with its label, read as they arrive from the label's column
alone (the rest of a value is read past, not stored). A label's messages are decoded
together when they leave the buffer, so each label's rows come out of the decoder as one
table, contiguous, with nothing to gather; and a label can leave on its own. Past a few tens
of MB the worker releases the largest label to the flush's open files (finkdl.writer.Spool):
the buffer never holds a whole flush, and the largest label leaving first makes row groups
as large as the budget allows (small row groups cost more to write per alert). Values that
would not decode go to the quarantine with their offsets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import pyarrow as pa

from .config import FlushPolicy
from .decode import Decoded
from .partitioning import Label, Partitioning, group_rows

Decoder = Callable[[Sequence[bytes]], Decoded]  # values → their rows, in the layout's schema
DECODE_BYTES = 8 * 1024 * 1024  # a label's messages are decoded this much at a time


@dataclass(frozen=True)
class Quarantined:
    """A message kept raw because it would not decode."""

    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    reason: str


@dataclass(frozen=True)
class Flush:
    """One partition's offset range [first, last], its rows already in the flush's open files
    (finkdl.writer.Spool), and the messages of it that would not decode."""

    topic: str
    partition: int
    first: int
    last: int
    messages: int
    bad: list[Quarantined]


@dataclass
class Held:
    """Messages, raw, in arrival order: one label's, or a batch's."""

    values: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    nbytes: int = 0

    def extend(self, batch: Held, rows: Iterable[int]) -> int:
        """Append a batch's messages at ``rows``; gives their bytes."""
        rows = list(rows)
        self.values.extend(batch.values[r] for r in rows)
        self.offsets.extend(batch.offsets[r] for r in rows)
        self.timestamps.extend(batch.timestamps[r] for r in rows)
        self.keys.extend(batch.keys[r] for r in rows)
        size = sum(len(batch.values[r]) for r in rows)
        self.nbytes += size
        return size

    def pop_first(self, nbytes: int) -> Held:
        """The first messages, one at least, up to about ``nbytes``, removed from here."""
        n, size = 0, 0
        while n < len(self.values) and (n == 0 or size < nbytes):
            size += len(self.values[n])
            n += 1
        first = Held(self.values[:n], self.offsets[:n], self.timestamps[:n], self.keys[:n], size)
        for column in (self.values, self.offsets, self.timestamps, self.keys):
            del column[:n]
        self.nbytes -= size
        return first


@dataclass
class PartitionBuffer:
    """The messages of one partition since ``first`` (the offset after the last commit)."""

    first: int
    part: Partitioning = Partitioning()
    keep_raw: bool = False
    started_at: float | None = None
    last: int | None = None
    messages: int = 0
    nbytes: int = 0
    held: int = 0  # bytes of the values still here, not yet released to a Spool
    labels: dict[Label, Held] = field(default_factory=dict)
    bad: list[Quarantined] = field(default_factory=list)

    def add(self, values: Sequence[bytes], offsets: Sequence[int], keys: Sequence[bytes | None],
            timestamps: Sequence[int], now: float, labelled: Decoded | None = None) -> None:
        """Append one batch of consecutive messages; ``labelled`` holds their label column
        (decoded alone), None when the output is not partitioned."""
        if not offsets:
            return
        if self.started_at is None:
            self.started_at = now
        self.last = offsets[-1]
        self.messages += len(offsets)
        batch = Held(list(values), list(offsets), list(timestamps), list(keys))
        if labelled is None:
            groups = {(): range(len(values))}
        else:
            rows = labelled.indices
            groups = {label: [rows[r] for r in found.tolist()]
                      for label, found in group_rows(labelled.table, self.part).items()}
            self._quarantine(labelled, batch)
        for label, rows in groups.items():
            size = self.labels.setdefault(label, Held()).extend(batch, rows)
            self.held += size
            self.nbytes += size

    def largest(self) -> Label:
        """The label holding the most bytes: the next to leave when the worker needs room."""
        return max(self.labels, key=lambda label: self.labels[label].nbytes)

    def release(self, decode: Decoder, label: Label | None = None
                ) -> tuple[dict[Label, list[pa.Table]], dict[Label, list[bytes]] | None]:
        """Decode and hand over one label's messages (every label's: None), to be appended to
        the flush's open files; the offset range stays open and is committed only at ``take``.

        A label's messages are decoded a few MB at a time, each part's raw values let go as it
        is decoded: a label holding the whole buffer (an unpartitioned download) never has its
        messages twice in memory."""
        groups: dict[Label, list[pa.Table]] = {}
        raw: dict[Label, list[bytes]] | None = {} if self.keep_raw else None
        for label in list(self.labels) if label is None else [label]:
            held = self.labels.pop(label)
            self.held -= held.nbytes
            tables, kept = [], []
            while held.values:
                part = held.pop_first(DECODE_BYTES)
                decoded = decode(part.values)
                self._quarantine(decoded, part)
                if decoded.table.num_rows:
                    tables.append(decoded.table)
                    if raw is not None:
                        kept.extend(part.values[i] for i in decoded.indices)
            if tables:
                groups[label] = tables
                if raw is not None:
                    raw[label] = kept
        return groups, raw

    def _quarantine(self, decoded: Decoded, messages: Held) -> None:
        """Keep aside, raw, the messages that would not decode."""
        self.bad.extend(Quarantined(messages.offsets[u.index], messages.timestamps[u.index],
                                    messages.keys[u.index], messages.values[u.index], u.reason)
                        for u in decoded.bad)

    def should_flush(self, policy: FlushPolicy, now: float, caught_up: bool,
                     idle_s: float, finishing: bool = False) -> bool:
        """Big enough, old enough, or caught up: at once when a tenth full (the usual end of a
        topic), else after a moment with nothing new (a topic still being filled, whose
        every catching up must not cut a small file)."""
        if not self.messages:
            return False
        return (finishing or self.messages >= policy.max_rows or self.nbytes >= policy.max_bytes
                or now - (self.started_at or now) >= policy.max_age_s
                or (caught_up and (idle_s >= policy.idle_s or self.messages >= policy.max_rows // 10
                                   or self.nbytes >= policy.max_bytes // 10)))

    def take(self, topic: str, partition: int) -> Flush:
        """The flush of the range held, once every label has been released to the flush's files
        (a message still held here would be in no file); the buffer then starts after it."""
        if self.labels:
            raise RuntimeError("a flush was cut with labels not yet written")
        flush = Flush(topic, partition, self.first, self.last, self.messages, self.bad)
        self.__init__(first=self.last + 1, part=self.part, keep_raw=self.keep_raw)
        return flush
