"""Where a worker's CPU goes, stage by stage, on prepared alerts: no broker, no other process.

One partition of a worker (workers.partition.Assigned) takes the alerts in consumer-sized
batches, as the worker loop hands them over, with a consumer stub that takes every commit at
once; its buffer spills past the worker's budget as it does in a download, and it runs with
the workers' memory settings (finkdl.processes). The functions of
each stage are timed (process CPU) where the worker calls them, and the stages printed in
µs per alert. What happens outside a partition (consume, reports) is measured on a real
download: py-spy, or the bench's CPU column against the raw ceiling.

    .venv/bin/python bench/stages.py lightcurve --partition-by finkclass
    .venv/bin/python bench/stages.py ztf lsst --profile     # and cProfile's top functions
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import functools
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from finkdl import buffer, commit, storage, writer
from finkdl.config import Connection, DownloadConfig
from finkdl.folder import Folder
from finkdl.layout import layout_for
from finkdl.processes import WORKER_MEMORY
from finkdl.resume import Resume
from finkdl.stats import Tally
from finkdl.workers import partition, worker
from finkdl.workers.landing import Lander
from samples import CASES, prepared

CPU: dict[str, float] = defaultdict(float)


def timed(stage: str, func):
    """``func``, its CPU time added to ``stage`` (less what stages inside it took)."""
    @functools.wraps(func)
    def run(*args, **kwargs):
        inner = sum(CPU.values())
        start = time.process_time()
        try:
            return func(*args, **kwargs)
        finally:
            spent = time.process_time() - start
            CPU[stage] += spent - (sum(CPU.values()) - inner)
    return run


def instrument() -> None:
    decode = partition.decode_batch
    partition.decode_batch = lambda values, schema, target, only=None: (
        timed("label read" if only else "decode", decode)(values, schema, target, only=only))
    partition.conform = timed("conform", partition.conform)
    buffer.PartitionBuffer.add = timed("buffering", buffer.PartitionBuffer.add)
    buffer.group_rows = timed("grouping by label", buffer.group_rows)
    writer._ParquetSink.add = timed("Parquet (encode, compress, write)", writer._ParquetSink.add)
    writer._ParquetSink.close = timed("Parquet footer, close", writer._ParquetSink.close)
    storage.LocalDisk.publish = timed("fsync, rename", storage.LocalDisk.publish)


class Message:
    __slots__ = ("_value", "_offset")

    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def offset(self) -> int:
        return self._offset

    def key(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000 + self._offset)


class Consumer:
    """Takes every commit at once."""

    def commit(self, offsets, asynchronous=False):
        return offsets

    def pause(self, partitions) -> None:
        pass


def run(case: str, partition_by: str, n: int, outdir: Path) -> tuple[int, float]:
    """Alerts through one partition; gives their count and the CPU seconds of the whole."""
    schema, values = prepared(case, n)
    cfg = DownloadConfig(connection=Connection("stub:9092", "stages"), topic="stages",
                         outdir=outdir, partition_by=partition_by, survey=CASES[case].survey)
    layout = layout_for(schema, cfg)
    folder = Folder(storage.LocalDisk(outdir))
    folder.storage.check_writable()
    folder.fit(layout.written, layout.part.keys, "the stages' schema")
    holder: dict[int, partition.Assigned] = {}

    def make_room() -> None:
        while holder[0].buffer.held >= worker.SPILL_BYTES:
            holder[0].spill()

    consumer = Consumer()
    parts = dict(cfg=cfg, consumer=consumer, folder=folder, tally=Tally(), make_room=make_room,
                 runs=lambda m, lay, p: [(lay, m)] if m else [], fit=lambda *a: None,
                 waiting=lambda reason: None, held=lambda: None, clock=time.monotonic)
    lander = parts["lander"] = Lander(lambda flush, spool: commit.make_durable(flush, spool, folder))
    parts["settle"] = lander.wait
    shared = partition.Shared(**{f.name: parts[f.name] for f in dataclasses.fields(partition.Shared)
                                 if f.name in parts})
    assigned = holder[0] = partition.Assigned(shared, 0, Resume(0, [], False), None, n, None, layout, 0.0)
    batch = worker.batch_size(sum(map(len, values[:100])) / min(100, len(values)))
    start = time.process_time()
    for first in range(0, n, batch):
        msgs = [Message(values[i], i) for i in range(first, min(n, first + batch))]
        timed("messages (stub)", lambda: None)()
        assigned.take(msgs, 0.0)
        assigned.advance(0.0)
    assigned.flush()
    lander.wait()
    lander.stop()
    return n, time.process_time() - start


def main() -> None:
    if any(os.environ.get(k) != v for k, v in WORKER_MEMORY.items()):  # read by glibc at start
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **WORKER_MEMORY})
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="+", choices=sorted(CASES))
    parser.add_argument("--partition-by", default="finkclass")
    parser.add_argument("-n", type=int, default=0, help="alerts (default: the case's own)")
    parser.add_argument("--profile", action="store_true", help="also cProfile's top functions")
    args = parser.parse_args()
    sys.meta_path.insert(0, worker._NoPandas())  # as in a worker, which imported pyarrow.compute
    instrument()
    for case in args.cases:
        CPU.clear()
        n = args.n or CASES[case].stage_alerts
        part = "time" if CASES[case].survey == "lsst" and args.partition_by == "finkclass" else args.partition_by
        with tempfile.TemporaryDirectory(prefix="finkdl-stages-") as tmp:
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            alerts, total = run(case, part, n, Path(tmp))
            if profiler:
                profiler.disable()
        print(f"\n{case} by {part}: {alerts:,} alerts, {total / alerts * 1e6:,.1f} µs CPU an alert")
        for stage, spent in sorted(CPU.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:36s} {spent / alerts * 1e6:8.2f} µs")
        print(f"  {'rest (partition loop)':36s} {(total - sum(CPU.values())) / alerts * 1e6:8.2f} µs")
        if profiler:
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
