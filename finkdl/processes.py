"""The worker server, started before anything else on a download, and the workers' entry point.

Workers fork from a server process that imported their code once (pyarrow and the rest: about
half a second of CPU). Started first, the server imports while this process imports the CLI,
on the other core, instead of after it.

The server is a new interpreter started with ``python -c``, which puts the current folder
first on its module path (and Python 3.11's server ignores the path it is given): started in
a checkout of finkdl, it would import that checkout's sources instead of the installed
package. It is started with PYTHONSAFEPATH, so it imports what the front end imports.
"""
from __future__ import annotations

import multiprocessing as mp
import os

WORKER_MODULE = "finkdl.workers.worker"
WORKER_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024 * 1024),  # see _worker_memory
                 "MALLOC_TRIM_THRESHOLD_": str(256 * 1024 * 1024),
                 "ARROW_DEFAULT_MEMORY_POOL": "system"}


def worker_context(object_storage: bool = False) -> mp.context.BaseContext:
    """Worker processes forked from a fresh interpreter (not a fork of the threaded front
    end) that also imported the main module, which every spawned child would import again,
    and, for an ``object_storage`` output, boto3 (finkdl.s3preload). Where there is no fork
    server, each worker is spawned and imports on its own. Idempotent: the first call's server
    stays.
    """
    _worker_memory()
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    from multiprocessing import forkserver
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", WORKER_MODULE]
                               + (["finkdl.s3preload"] if object_storage else []))
    saved = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"  # for the server only: see the module's docstring
    try:
        forkserver.ensure_running()
    finally:
        if saved is None:
            del os.environ["PYTHONSAFEPATH"]
        else:
            os.environ["PYTHONSAFEPATH"] = saved
    return ctx


def run_worker(*args: object) -> None:
    """A worker process's entry point. Named here, the front end starts workers without
    importing their code, which the server has imported."""
    from .workers.worker import main as worker_main
    worker_main(*args)


def _worker_memory() -> None:
    """Workers allocate and free buffers of megabytes for every batch. glibc hands blocks past
    128 KB back to the kernel when freed, and faulting fresh pages in again is slow: workers
    keep them. Arrow allocates from glibc too: its default, mimalloc, keeps a high-water mark
    of its own beside glibc's, and a worker's memory would be the sum of both."""
    for name, value in WORKER_MEMORY.items():
        os.environ.setdefault(name, value)
