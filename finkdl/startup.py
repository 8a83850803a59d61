"""The console scripts, and the worker server they start before anything else on a download.

Workers fork from a server process that imported their code once (pyarrow and the rest: about
half a second of CPU). Started first, the server imports while this process imports the CLI,
on the other core, instead of after it.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys

WORKER_MODULE = "finkdl.workers.partition_worker"
WORKER_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024 * 1024),  # see _worker_memory
                 "MALLOC_TRIM_THRESHOLD_": str(256 * 1024 * 1024),
                 "ARROW_DEFAULT_MEMORY_POOL": "system"}


def worker_context() -> mp.context.BaseContext:
    """Worker processes forked from a fresh interpreter (not a fork of the threaded front
    end) that also imported the main module, which every spawned child would import again.
    Where there is no fork server, each worker is spawned and imports on its own. Idempotent.
    """
    _worker_memory()
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    from multiprocessing import forkserver
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", WORKER_MODULE])
    forkserver.ensure_running()
    return ctx


def run_worker(*args: object) -> None:
    """A worker process's entry point. Named here, the front end starts workers without
    importing their code (60 ms of its start-up, measured), which the server has imported."""
    from .workers.partition_worker import main as worker_main
    worker_main(*args)


def _worker_memory() -> None:
    """Workers allocate and free buffers of megabytes for every batch. glibc hands blocks past
    128 KB back to the kernel when freed, and faulting fresh pages in again cost about 3 ms
    per MB here (measured: a fifth of the time on alerts with cutouts): workers keep them.
    Arrow allocates from glibc too (its default, mimalloc, kept a high-water mark of its own
    beside glibc's: a worker's RSS was the sum of both, 253-312 MB on light curves against
    222-242 MB with one allocator, at the same speed, measured)."""
    for name, value in WORKER_MEMORY.items():
        os.environ.setdefault(name, value)


def _single_threaded_numpy() -> None:
    """finkdl does no linear algebra, but NumPy's OpenBLAS starts a thread per core when
    imported, which spins for ~0.1 s of CPU before it sleeps: in the front end and in the worker
    server, at start-up, while both cores are busy importing (measured: ``import numpy`` took
    0.18 s of CPU, 0.09 s with one thread). Set before NumPy's first import; a user's own
    setting wins."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    """``finkdl``."""
    _single_threaded_numpy()
    if sys.argv[1:2] == ["download"]:
        worker_context()
    from .cli import main as cli
    cli()


def fink_datatransfer() -> None:
    """``fink_datatransfer``: fink-client's command line, which always downloads."""
    _single_threaded_numpy()
    worker_context()
    from .cli import fink_datatransfer as cli
    cli()
