"""The Dask client hats-import runs on: a scheduler the user names, or one started here.

A local cluster has one single-threaded worker process per core (hats-import's tasks are
pandas/pyarrow work that holds the GIL) and shares the machine's memory between them, so a
task reading a pixel larger than its share is spilled or restarted instead of exhausting
the machine.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil


def cores() -> int:
    """The cores this process may run on (a Slurm allocation's, not the node's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def local_cluster_options(workdir: Path, memory: int | None = None, n: int | None = None) -> dict:
    """``LocalCluster``'s options for this machine: one worker per core, memory shared."""
    n = n or cores()
    memory = memory or psutil.virtual_memory().total
    return {"n_workers": n, "threads_per_worker": 1, "processes": True,
            "memory_limit": max(256 * 2**20, int(memory * 0.8) // n),
            "local_directory": str(workdir), "dashboard_address": ":0",
            "silence_logs": logging.ERROR}


@contextmanager
def dask_client(scheduler: str | None, workdir: Path) -> Iterator[object]:
    """A client of ``scheduler`` (``tcp://host:8786``), or of a local cluster closed at the end."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(**local_cluster_options(workdir)) as cluster, Client(cluster) as client:
        yield client
