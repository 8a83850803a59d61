"""The raw ceiling: read every message of a topic with confluent-kafka and decode nothing.

Like the downloaders, it uses one consumer per process, each assigned some of the topic's
partitions, and stops at the high watermarks seen at start. Its consumers fetch with finkdl's
own settings (finkdl.kafka): with librdkafka's defaults, a consumer whose local queue fills
stops fetching for a whole second (fetch.queue.backoff.ms), and a gigabyte of cutouts then
took 2.9-3.0 s instead of 1.1-1.3 (0.8-1.2 with these settings, measured): a ceiling that a
downloader could beat.

With ``--parquet DIR`` it measures the Parquet floor instead (bench/parquet_floor.py): the
same reading, each batch also decoded and written to plain Parquet.

Prints one JSON line: ``{"messages": N, "bytes": B}`` (bytes of message values).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
from pathlib import Path
from typing import TYPE_CHECKING

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from finkdl.kafka import CONSUMER_DEFAULTS

if TYPE_CHECKING:
    from finkdl.schema import Schema

FETCH = {k: v for k, v in CONSUMER_DEFAULTS.items()
         if k.startswith(("fetch.", "queued.", "max.partition.fetch.", "reconnect."))}


def consume(servers: str, topic: str, group_id: str, partitions: list[int],
            floor: tuple[Schema, Path] | None) -> tuple[int, int]:
    """Read the given partitions from the beginning to their current end; count and size."""
    consumer = Consumer({"bootstrap.servers": servers, "group.id": group_id,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", **FETCH})
    sink = None
    if floor:
        from parquet_floor import ParquetFloor  # imported by main, before forking

        sink = ParquetFloor(*floor)
    try:
        ends, left = {}, 0
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p], left = high, left + high - low
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        messages = size = 0
        while ends:
            batches: dict[int, list[bytes]] = {}
            # A call returns once it holds as many messages as asked, else at its timeout:
            # never asked for more than are left, the last one does not wait a second.
            for msg in consumer.consume(max(1, min(1000, left - messages)), timeout=1.0):
                if msg.error() or msg.partition() not in ends:
                    continue
                value = msg.value() or b""
                messages += 1
                size += len(value)
                if sink:  # the ceiling itself keeps nothing
                    batches.setdefault(msg.partition(), []).append(value)
                if msg.offset() + 1 >= ends[msg.partition()]:
                    del ends[msg.partition()]
            if sink:
                sink.add(batches)
        return messages, size
    finally:
        if sink:
            sink.close()
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--parquet", type=Path, metavar="DIR",
                        help="also decode and write plain Parquet files here (the Parquet floor)")
    args = parser.parse_args()
    floor = None
    if args.parquet:  # before forking, as finkdl's front end finds the schema and its workers import
        from parquet_floor import schema_of

        args.parquet.mkdir(parents=True, exist_ok=True)
        floor = (schema_of(args.servers, args.group_id, args.topic), args.parquet)

    probe = Consumer({"bootstrap.servers": args.servers, "group.id": args.group_id})
    partitions = sorted(probe.list_topics(args.topic, timeout=10).topics[args.topic].partitions)
    probe.close()
    shares = [partitions[i::args.processes] for i in range(args.processes)]
    # fork: the cheapest start, so the ceiling is not lowered by interpreter start-ups
    # (the probe consumer, and its librdkafka threads, are gone before forking).
    with mp.get_context("fork").Pool(args.processes) as pool:
        counts = pool.starmap(consume, [(args.servers, args.topic, args.group_id, share, floor)
                                        for share in shares if share])
    print(json.dumps({"messages": sum(n for n, _ in counts), "bytes": sum(b for _, b in counts)}))


if __name__ == "__main__":
    main()
