"""The raw ceiling: read every message of a topic with confluent-kafka and decode nothing.

Like the downloaders, it uses one consumer per process, each assigned some of the topic's
partitions, and stops at the high watermarks seen at start. No downloader can be faster
than this on the same broker and machine; the benchmark reports finkdl as a share of it.

Prints one JSON line: ``{"messages": N, "bytes": B}`` (bytes of message values).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def consume(servers: str, topic: str, group_id: str, partitions: list[int]) -> tuple[int, int]:
    """Read the given partitions from the beginning to their current end; count and size."""
    consumer = Consumer({"bootstrap.servers": servers, "group.id": group_id,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        messages = size = 0
        while ends:
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error() or msg.partition() not in ends:
                    continue
                messages += 1
                size += len(msg.value() or b"")
                if msg.offset() + 1 >= ends[msg.partition()]:
                    del ends[msg.partition()]
        return messages, size
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--processes", type=int, required=True)
    args = parser.parse_args()

    probe = Consumer({"bootstrap.servers": args.servers, "group.id": args.group_id})
    partitions = sorted(probe.list_topics(args.topic, timeout=10).topics[args.topic].partitions)
    probe.close()
    shares = [partitions[i::args.processes] for i in range(args.processes)]
    # fork: the cheapest start, so the ceiling is not lowered by interpreter start-ups
    # (the probe consumer, and its librdkafka threads, are gone before forking).
    with mp.get_context("fork").Pool(args.processes) as pool:
        counts = pool.starmap(consume, [(args.servers, args.topic, args.group_id, share)
                                        for share in shares if share])
    print(json.dumps({"messages": sum(n for n, _ in counts), "bytes": sum(b for _, b in counts)}))


if __name__ == "__main__":
    main()
