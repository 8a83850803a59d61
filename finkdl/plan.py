"""Before any worker starts: the schema, the partitioning, the output folder, the --limit shares.

Everything a user can get wrong is checked here, once, with a clear error, so workers
start only on a run that can succeed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from confluent_kafka import TopicPartition

from .arrow_schema import arrow_schema
from .config import Connection, DownloadConfig
from .errors import BrokerError, ConfigError, OutputError, SchemaError, TopicError
from .folder import Folder
from .kafka import (TopicInfo, committed, describe_topic, group_members, open_consumer, read_all,
                    topic_id, watermarks)
from .layout import layout_for
from .naming import META_DIR
from .resume import SET_ASIDE, Stale, aside_path, resume, stale, stale_error
from .schema import Schema, load_schema_file, looks_like_schema, parse_schema, schema_topic
from .stats import lag
from .output import open_storage
from .storage import DataFile, Storage

KEY_SOURCE = "message keys"


@dataclass(frozen=True)
class RunPlan:
    topic: TopicInfo
    schema: Schema
    schema_source: str
    partitions: list[PartitionPlan]
    stop_at: dict[int, int] | None
    topic_id: str | None = None
    started_over: list[Stale] = field(default_factory=list)  # --start-over: these begin again
    set_aside: str | None = None  # where their earlier files went, as the user names places

    @property
    def key_schemas(self) -> bool:
        """The schema travels in the message keys, and may change from one message to the next."""
        return self.schema_source == KEY_SOURCE

    @property
    def to_fetch(self) -> int:
        if self.stop_at is None:
            return sum(p.lag for p in self.partitions)
        return sum(max(0, self.stop_at[p.partition] - p.start) for p in self.partitions)


def split_limit(lags: dict[int, int], limit: int) -> dict[int, int]:
    """Share ``limit`` alerts among partitions as evenly as their lags allow (water-filling)."""
    share = {p: 0 for p in lags}
    remaining = limit
    open_parts = sorted((lag, p) for p, lag in lags.items() if lag > 0)
    while remaining > 0 and open_parts:
        fair = max(1, remaining // len(open_parts))
        next_open = []
        for backlog, p in open_parts:
            take = min(fair, backlog - share[p], remaining)
            share[p] += take
            remaining -= take
            if share[p] < backlog:
                next_open.append((backlog, p))
            if remaining == 0:
                break
        open_parts = next_open
    return share


def find_schema(conn: Connection, topic: str, timeout: float,
                schema_file: Path | None = None) -> tuple[Schema, str]:
    """The writer schema: --schema file, else ``<topic>_schema``, else a schema-bearing key."""
    if schema_file:
        return load_schema_file(schema_file), str(schema_file)
    source = schema_topic(topic)
    try:
        messages, missing = read_all(conn, source, timeout=min(timeout, 15.0) + 5), False
    except TopicError:  # no schema topic: the schema may travel in the message keys
        messages, missing = [], True
    keyed = [m for m in messages if m.key()]
    if keyed:
        return parse_schema(keyed[-1].key(), f"topic {source}"), f"topic {source}"
    first = _first_message(conn, topic, timeout)
    if first is not None and looks_like_schema(first.key()):
        return parse_schema(first.key(), f"the key of {topic}'s messages"), KEY_SOURCE
    why = "does not exist" if missing else "holds no schema"
    raise SchemaError(f"no schema found for {topic}: topic {source} {why}",
                      hint="the transfer job may still be starting; or pass --schema FILE")


def _first_message(conn: Connection, topic: str, timeout: float):
    consumer, trap = open_consumer(conn, **{"group.id": "finkdl-schema-probe"})
    try:
        info = describe_topic(consumer, trap, conn, topic, timeout)
        for p in info.partitions:
            low, high = watermarks(consumer, topic, p)
            if high > low:
                consumer.assign([TopicPartition(topic, p, low)])
                for _ in range(20):
                    msg = consumer.poll(0.5)
                    if msg is not None and not msg.error():
                        return msg
        return None
    finally:
        consumer.close()


@dataclass(frozen=True)
class PartitionOffsets:
    """A partition's offsets, and the group's."""

    partition: int
    low: int
    high: int
    committed: int | None

    @property
    def lag(self) -> int:
        """What the group has still to read."""
        return lag(self.high, self.committed if self.committed is not None else self.low)


@dataclass(frozen=True)
class PartitionPlan:
    """Where this run starts a partition (after what the folder holds), and what it reads."""

    partition: int
    start: int
    high: int
    commit: bool = False  # complete ranges past the group's offset are on disk: committed first

    @property
    def lag(self) -> int:
        """What this run has to read of it."""
        return lag(self.high, self.start)


def topic_offsets(conn: Connection, topic: str, timeout: float) -> list[PartitionOffsets]:
    """Watermarks and the group's committed offset of every partition."""
    consumer, trap = open_consumer(conn)
    try:
        info = describe_topic(consumer, trap, conn, topic, timeout)
        group = committed(consumer, topic, info.partitions)
        return [PartitionOffsets(p, *watermarks(consumer, topic, p), group.get(p))
                for p in info.partitions]
    finally:
        consumer.close()


def committed_to_end(conn: Connection, topic: str, partitions: list[int],
                     stop_at: dict[int, int] | None) -> bool:
    """Whether the group committed every one of ``partitions`` to its end (--limit's, else the
    high watermark): then they are on disk, wherever the consumer that did it ran."""
    consumer, _trap = open_consumer(conn)
    try:
        done = committed(consumer, topic, partitions)
        return all((done.get(p) or 0) >= (stop_at[p] if stop_at is not None
                                          else watermarks(consumer, topic, p)[1])
                   for p in partitions)
    except BrokerError:
        return False  # not known now: asked again shortly
    finally:
        consumer.close()


def make_plan(cfg: DownloadConfig) -> RunPlan:
    if cfg.fmt == "avro" and (cfg.columns or cfg.drop_columns or cfg.drop_cutouts):
        raise ConfigError("--columns, --drop-columns and --drop-cutouts apply to Parquet output: "
                          "Avro files keep each alert's own bytes", hint="drop --format avro, or those options")
    storage = open_storage(cfg.outdir)  # first: its setup overlaps the questions to Kafka
    offsets = topic_offsets(cfg.connection, cfg.topic, cfg.timeout)
    info = TopicInfo(cfg.topic, [o.partition for o in offsets])
    tid = topic_id(cfg.connection, cfg.topic, cfg.timeout)
    schema, source = find_schema(cfg.connection, cfg.topic, cfg.timeout, cfg.schema_file)
    layout = layout_for(schema, cfg)
    storage.check_writable()
    if not storage.several_writers_safe() and group_members(cfg.connection, cfg.timeout):
        raise OutputError(f"{storage.url} does not honour conditional writes (If-None-Match, If-Match), "
                          f"and another finkdl of the group {cfg.connection.group_id!r} is running: "
                          "two writers could overwrite each other's folder schema there",
                          hint="run one finkdl at a time into this prefix (its workers are safe), "
                               "or write to a server that honours conditional writes")
    existing = [f for f in storage.files() if f.range.topic == cfg.topic]
    by_partition = {o.partition: [f for f in existing if f.range.partition == o.partition] for o in offsets}
    found = [s for o in offsets if (s := stale(
        o.partition, by_partition[o.partition], o.high, o.committed, tid,
        file_topic_ids(storage, by_partition[o.partition]), cfg.from_beginning))]
    aside = None
    if found and not cfg.start_over:
        raise stale_error(cfg.topic, storage.url, found)
    replaced = [f for s in found for f in by_partition[s.partition]]
    if replaced:
        aside = storage.url_of(set_aside(storage, replaced))  # s3://…, not the spool
        for s in found:
            by_partition[s.partition] = []
    restart = {s.partition for s in found}
    # Before any data file of the run: refuse a conflicting version, or widen the folder.
    Folder(storage).fit(layout.written, layout.part.keys, f"topic {cfg.topic}", check_files=True)
    plans = []
    for o in offsets:
        begin = resume(by_partition[o.partition], o.low, o.committed,
                       cfg.from_beginning or o.partition in restart)
        plans.append(PartitionPlan(o.partition, begin.start, o.high, begin.commit))
    stop_at = None
    if cfg.limit is not None:
        shares = split_limit({pp.partition: pp.lag for pp in plans}, cfg.limit)
        stop_at = {pp.partition: pp.start + shares[pp.partition] for pp in plans}
    if cfg.dump_schemas:
        dump_schemas(storage, schema)
    return RunPlan(info, schema, source, plans, stop_at, tid, found, aside)


def file_topic_ids(storage: Storage, files: list[DataFile]) -> set[str]:
    """The topic ids a partition's files carry, read from its first and its last range (a
    folder holds one topic of a name, once finkdl stopped at a recreated one)."""
    if not files:
        return set()
    ends = {min(files, key=lambda f: f.range.first).path, max(files, key=lambda f: f.range.last).path}
    return {tid for path in ends if (tid := storage.metadata(path).get("finkdl.topic_id"))}


def set_aside(storage: Storage, files: list[DataFile]) -> Path:
    """Move files of partitions that start over out of the download (--start-over)."""
    folder = storage.root / SET_ASIDE / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    storage.move([(f.path, aside_path(storage.root, f.path, folder)) for f in files])
    return folder


def dump_schemas(storage: Storage, schema: Schema) -> None:
    """The Avro and Arrow schemas beside the output (in a folder readers skip)."""
    avro = json.dumps(schema.avro, indent=2).encode()
    arrow = arrow_schema(schema.avro).to_string(show_schema_metadata=False).encode()
    storage.write_durably(storage.root / META_DIR / "schema.avsc", lambda f: f.write(avro))
    storage.write_durably(storage.root / META_DIR / "schema.arrow.txt", lambda f: f.write(arrow))
