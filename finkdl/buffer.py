"""What a worker holds for one partition between two flushes, and when to flush it.

Values are decoded as they arrive (so decoding overlaps with the consumer's own fetching)
and kept as Arrow with each row's label; past a few MB the worker releases them to the
flush's open files (finkdl.writer.Spool), so a buffer never holds a whole flush. The raw
bytes are kept only for the Avro output format and for values that would not decode, which
go to the quarantine with their offsets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pyarrow as pa

from .config import FlushPolicy
from .decode import Decoded
from .partitioning import Label, Partitioning, group_rows, indices


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
    """One partition's offset range [first, last], decoded, ready to be written."""

    topic: str
    partition: int
    first: int
    last: int
    messages: int
    groups: dict[Label, list[pa.Table]]
    raw: dict[Label, list[bytes]] | None
    bad: list[Quarantined]


@dataclass
class PartitionBuffer:
    """Decoded batches of one partition since ``first`` (the offset after the last commit).

    Batches are kept whole, with each label's row numbers; a release puts each label's rows
    together with one ``take`` over all of them, so the files get a few large row groups.
    """

    first: int
    part: Partitioning = Partitioning()
    keep_raw: bool = False
    started_at: float | None = None
    last: int | None = None
    messages: int = 0
    nbytes: int = 0
    held: int = 0  # bytes of the values whose rows are still here, not yet released to a Spool
    tables: list[pa.Table] = field(default_factory=list)
    rows: dict[Label, list[np.ndarray]] = field(default_factory=dict)  # into the tables, joined
    held_rows: int = 0
    raw: dict[Label, list[bytes]] = field(default_factory=dict)
    bad: list[Quarantined] = field(default_factory=list)

    def add(self, decoded: Decoded, offsets: Sequence[int], values: Sequence[bytes],
            keys: Sequence[bytes | None], timestamps: Sequence[int], now: float) -> None:
        """Append one decoded batch of consecutive messages of this partition."""
        if not offsets:
            return
        if self.started_at is None:
            self.started_at = now
        self.last = offsets[-1]
        self.messages += len(offsets)
        size = sum(len(v) for v in values)
        self.nbytes += size
        self.held += size
        table = decoded.table
        for label, rows in group_rows(table, self.part).items():
            self.rows.setdefault(label, []).append(rows + self.held_rows)
            if self.keep_raw:
                self.raw.setdefault(label, []).extend(values[decoded.indices[r]] for r in rows)
        if table.num_rows:
            self.tables.append(table)
            self.held_rows += table.num_rows
        self.bad.extend(Quarantined(offsets[u.index], timestamps[u.index], keys[u.index],
                                    values[u.index], u.reason) for u in decoded.bad)

    def groups(self) -> dict[Label, list[pa.Table]]:
        """Each label's rows held so far, in arrival order."""
        if not self.tables:
            return {}
        if len(self.rows) == 1:  # one label: the batches as they are
            return {label: self.tables for label in self.rows}
        order = [np.concatenate(parts) for parts in self.rows.values()]
        table = pa.concat_tables(self.tables).take(indices(np.concatenate(order)))
        groups, start = {}, 0
        for label, rows in zip(self.rows, order):
            groups[label] = [table.slice(start, len(rows))]
            start += len(rows)
        return groups

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

    def release(self) -> tuple[dict[Label, list[pa.Table]], dict[Label, list[bytes]] | None]:
        """Hand over the rows held so far, to be appended to the flush's open files; the
        offset range stays open and is committed only at ``take``."""
        groups, raw = self.groups(), self.raw if self.keep_raw else None
        self.tables, self.rows, self.raw, self.held, self.held_rows = [], {}, {}, 0, 0
        return groups, raw

    def take(self, topic: str, partition: int) -> Flush:
        """The flush of everything held; the buffer then starts after it."""
        flush = Flush(topic, partition, self.first, self.last, self.messages, self.groups(),
                      self.raw if self.keep_raw else None, self.bad)
        self.__init__(first=self.last + 1, part=self.part, keep_raw=self.keep_raw)
        return flush
