"""The worker server, started before anything else on a download, and the workers' entry point.

Workers fork from a server process that imported their code once (pyarrow and the rest: about
half a second of CPU), so that no worker imports it again.

The front end imports the workers' code itself (it needs most of it for the plan) and then
forks the server from itself, before it has started any thread: the server then costs no
import at all, which was the largest fixed cost of a download after the front end's own
imports. Where that fork would not be safe (a thread already running besides jemalloc's, which
the server would lack; a Python whose fork server protocol differs), the server is a new
interpreter started with ``python -c``, as multiprocessing starts it. That one puts the current
folder first on its module path (and Python 3.11's server ignores the path it is given):
started in a checkout of finkdl, it would import that checkout's sources instead of the
installed package. It is started with PYTHONSAFEPATH, so it imports what the front end imports.
"""
from __future__ import annotations

import ctypes
import gc
import importlib
import multiprocessing as mp
import os
import socket
import sys

WORKER_MODULE = "finkdl.workers.worker"
WORKER_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024 * 1024),  # see _worker_memory
                 "MALLOC_TRIM_THRESHOLD_": str(256 * 1024 * 1024),
                 # Linux wheels of pyarrow have jemalloc; elsewhere Arrow would warn that it has not
                 "ARROW_DEFAULT_MEMORY_POOL": "jemalloc" if sys.platform == "linux" else "system"}


def worker_context(object_storage: bool = False) -> mp.context.BaseContext:
    """Worker processes forked from a server that imported their code (see the module's
    docstring) and, for an ``object_storage`` output, boto3 (finkdl.s3preload). Where there is
    no fork server, each worker is spawned and imports on its own. Idempotent: the first call's
    server stays.
    """
    _worker_memory()
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    from multiprocessing import forkserver
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", WORKER_MODULE]
                               + (["finkdl.s3preload"] if object_storage else []))
    if _fork_server_here():
        return ctx
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


# Python versions whose fork server is started as _fork_server_here starts it (3.14 added a
# key the server reads at start).
_SAME_FORK_SERVER = ((3, 11), (3, 12), (3, 13))


def _fork_server_here() -> bool:
    """Start multiprocessing's fork server as a fork of this process, which imports the
    workers' code first, instead of a new interpreter; False where it cannot (then nothing was
    started). The server is the same code as ever (``forkserver.main``), given the socket and
    the pipe multiprocessing would give it; it imports the other modules to preload itself,
    while this process goes on."""
    from multiprocessing import connection, forkserver, resource_tracker, util
    server = forkserver._forkserver
    if sys.version_info[:2] not in _SAME_FORK_SERVER or server._forkserver_pid is not None:
        return False
    importlib.import_module(WORKER_MODULE)
    if _other_threads():
        return False
    with server._lock:
        resource_tracker.ensure_running()
        gc.freeze()  # the modules' objects: never scanned again, here or in a worker
        sys.stdout.flush()
        sys.stderr.flush()
        with socket.socket(socket.AF_UNIX) as listener:
            address = connection.arbitrary_address("AF_UNIX")
            listener.bind(address)
            if not util.is_abstract_socket_namespace(address):
                os.chmod(address, 0o600)
            listener.listen()
            alive_r, alive_w = os.pipe()  # the server ends when no process holds alive_w
            pid = os.fork()
            if pid == 0:
                os.close(alive_w)
                _serve(listener.fileno(), alive_r, server._preload_modules)
            os.close(alive_r)
        server._forkserver_address, server._forkserver_alive_fd = address, alive_w
        server._forkserver_pid = pid
    return True


def _serve(listener_fd: int, alive_r: int, preload: list[str]) -> None:
    """The forked server: never returns."""
    from multiprocessing import forkserver
    code = 1
    try:
        _keep_freed_memory()
        forkserver.main(listener_fd, alive_r, [m for m in preload if m != "__main__"])
    except SystemExit:  # how the server ends: every client gone
        code = 0
    finally:
        os._exit(code)


def _other_threads() -> list[str]:
    """Threads of this process besides the main one and jemalloc's background thread (pyarrow's,
    which restarts in a fork), by name; none readable: one unknown."""
    try:
        tasks = os.listdir("/proc/self/task")
        names = [open(f"/proc/self/task/{t}/comm").read().strip()
                 for t in tasks if int(t) != os.getpid()]
    except OSError:
        return ["unknown"]
    return [n for n in names if n != "jemalloc_bg_thd"]


def run_worker(*args: object) -> None:
    """A worker process's entry point. Named here, the front end starts workers without
    importing their code, which the server has imported."""
    from .workers.worker import main as worker_main
    worker_main(*args)


def _worker_memory() -> None:
    """Workers allocate and free buffers of megabytes for every batch. glibc hands blocks past
    128 KB back to the kernel when freed, and faulting fresh pages in again is slow: workers
    keep them. Arrow's own allocations (the Parquet writer's pages and levels) come from
    jemalloc: from glibc they fragmented its heap among the raw alerts, freed a label at a time,
    and a worker crept past its high-water mark (140-155 MB at its peak, where jemalloc, which
    returns what it freed on its own, stays at 125-135); Arrow's default, mimalloc, keeps a
    high-water mark of its own (165-170 MB). One glibc arena for all of a worker's threads
    saved 6 MB more but cost 6% of CPU and 10% of wall time (the loop, the lander and
    librdkafka's threads then wait for each other's allocations). Figures: bench/results.md."""
    for name, value in WORKER_MEMORY.items():
        os.environ.setdefault(name, value)


def _keep_freed_memory() -> None:
    """WORKER_MEMORY's glibc settings in a process that started without them (glibc reads them
    at start only): the server forked from the front end, whose workers inherit them."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: its own allocator's defaults
        return
    mallopt(-1, int(os.environ["MALLOC_TRIM_THRESHOLD_"]))  # M_TRIM_THRESHOLD
    mallopt(-3, int(os.environ["MALLOC_MMAP_THRESHOLD_"]))  # M_MMAP_THRESHOLD
